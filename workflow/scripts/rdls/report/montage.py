"""Imaging examples per subtype: the tumour of the most confidently assigned subjects."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.report._html import natural_sorted, subtype_colours


def pick_examples(
    assignments: pd.DataFrame, *, available: set[str], per_subtype: int = 6
) -> dict[str, list[str]]:
    """Subjects shown per subtype: the highest ``confidence`` first, then subject_id.

    Only subjects in ``available`` (those with a preprocessed crop) are picked.
    """
    table = assignments[assignments["subject_id"].astype(str).isin(available)].copy()
    if "confidence" not in table.columns:
        table["confidence"] = 1.0
    table["confidence"] = pd.to_numeric(table["confidence"], errors="coerce").fillna(0.0)
    picked = {}
    for subtype in natural_sorted(table["subtype"].dropna().unique()):
        rows = table[table["subtype"].astype(str) == subtype]
        rows = rows.sort_values(["confidence", "subject_id"], ascending=[False, True])
        picked[subtype] = rows["subject_id"].astype(str).head(per_subtype).tolist()
    return picked


def load_crops(paths: Sequence[str | Path], subjects: set[str]) -> dict[str, np.ndarray]:
    """The ``(2, x, y, z)`` crop (image, mask) of each wanted subject from the shards' .npz."""
    crops = {}
    for path in paths:
        with np.load(path) as data:
            ids = [str(s) for s in data["subject_id"]]
            wanted = [i for i, s in enumerate(ids) if s in subjects]
            if wanted:
                stack = data["crops"]
                for i in wanted:
                    crops[ids[i]] = np.asarray(stack[i], dtype=np.float32)
    return crops


def subtype_montage_png(
    crops: Mapping[str, np.ndarray], examples: Mapping[str, Sequence[str]], *, dpi: int = 100
) -> bytes:
    """A PNG with one row per subtype: each example's largest tumour slice, mask outlined."""
    from matplotlib.figure import Figure

    subtypes = [s for s in examples if any(x in crops for x in examples[s])]
    columns = max([sum(x in crops for x in examples[s]) for s in subtypes] or [1])
    rows = max(1, len(subtypes))
    colours = subtype_colours(subtypes)
    figure = Figure(figsize=(1.5 * columns + 0.9, 1.6 * rows + 0.2))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for r, subtype in enumerate(subtypes):
        shown = [x for x in examples[subtype] if x in crops]
        axes[r, 0].set_ylabel(subtype, fontsize=11, color=colours[subtype], fontweight="bold")
        for c, subject in enumerate(shown):
            crop = crops[subject]
            mask = crop[1] > 0.5
            z = int(np.argmax(mask.sum(axis=(0, 1)))) if mask.any() else crop.shape[-1] // 2
            ax = axes[r, c]
            # arrays are RAS: rotate for the radiological view, as the QC montages do
            ax.imshow(np.rot90(crop[0, :, :, z]), cmap="gray", vmin=0.0, vmax=1.0)
            if mask[:, :, z].any():
                ax.contour(
                    np.rot90(mask[:, :, z]).astype(float),
                    levels=[0.5],
                    colors=colours[subtype],
                    linewidths=0.9,
                )
            ax.set_title(subject, fontsize=7)
    if not subtypes:
        axes[0, 0].text(0.5, 0.5, "no crops", ha="center", va="center")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
