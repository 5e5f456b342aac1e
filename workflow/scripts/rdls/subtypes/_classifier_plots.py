"""The reliability diagram of the subtype classifier's out-of-fold probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

STAGES = {
    "uncalibrated": ("#999999", "s", "uncalibrated"),
    "calibrated": ("#08306b", "o", "calibrated"),
}


def plot_reliability(
    reliability: pd.DataFrame,
    *,
    calibration: pd.DataFrame | None,
    min_confidence: float,
    png: str | Path,
    svg: str | Path | None = None,
    message: str = "",
) -> Figure:
    """Accuracy against confidence of the top subtype, before and after calibration.

    Parameters
    ----------
    reliability : pandas.DataFrame
        :meth:`rdls.subtypes.classifier.AssignmentModel.reliability_table`.
    calibration : pandas.DataFrame or None
        :meth:`rdls.subtypes.classifier.AssignmentModel.calibration_table`, for the legend's
        Brier score and ECE.
    min_confidence : float
        Drawn as a dotted line: subjects left of it are flagged uncertain.
    message : str
        Shown instead of the curves when there is nothing to draw (no classifier fitted).

    The upper panel has one point per non-empty bin at (mean confidence, accuracy), the
    diagonal being perfect calibration; the lower panel the number of subjects per bin.
    """
    figure = Figure(figsize=(5.2, 5.8), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
    top.plot([0, 1], [0, 1], color="0.75", linewidth=0.8, label="perfect calibration")
    stages = [s for s in STAGES if s in set(reliability.get("stage", []))]
    width = float((reliability["upper"] - reliability["lower"]).iloc[0]) if stages else 0.0
    for offset, stage in zip(np.linspace(-0.2, 0.2, max(len(stages), 1)), stages, strict=False):
        colour, marker, label = STAGES[stage]
        rows = reliability[(reliability["stage"] == stage) & (reliability["n"] > 0)]
        if calibration is not None and stage in set(calibration["stage"]):
            numbers = calibration.set_index("stage").loc[stage]
            label += f" (Brier {numbers['brier']:.3f}, ECE {numbers['ece']:.3f})"
        top.plot(rows["mean_confidence"], rows["accuracy"], marker=marker, color=colour,
                 label=label)  # fmt: skip
        bottom.bar((rows["lower"] + rows["upper"]) / 2 + offset * width, rows["n"],
                   width=width * 0.4, color=colour, label=stage)  # fmt: skip
        for _, row in rows.iterrows():
            bottom.annotate(f"{int(row['n'])}", ((row["lower"] + row["upper"]) / 2 + offset * width,
                            row["n"]), ha="center", va="bottom", fontsize=6)  # fmt: skip
    if np.isfinite(min_confidence):
        for ax in (top, bottom):
            ax.axvline(min_confidence, color="#d95f02", linewidth=0.8, linestyle=":")
        top.plot([], [], color="#d95f02", linewidth=0.8, linestyle=":",
                 label=f"min_confidence {min_confidence:g}")  # fmt: skip
    if message:
        top.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize="small",
                 transform=top.transAxes)  # fmt: skip
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.02)
    top.set_ylabel("accuracy (share assigned their training subtype)")
    top.set_title("Reliability of the top subtype's probability (out of fold)")
    top.legend(frameon=False, fontsize="x-small", loc="upper left")
    bottom.set_xlabel("confidence: probability of the assigned subtype")
    bottom.set_ylabel("subjects")
    for path in (png, svg):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    if svg is not None:
        figure.savefig(svg)
    return figure
