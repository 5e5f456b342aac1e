"""Score rdls.wsi.nuclei on real H&E with labelled nucleus centroids (BRCA-M2C layout).

The directory holds ``images/<stem>.png`` (H&E at about 0.5 um/px) and
``centroids_csv/<stem>.csv`` (``x,y,class``; classes lymphocyte, tumor_epithelial, stromal).
Each image goes through stain separation (with and without Macenko normalisation first) and
:func:`rdls.wsi.nuclei.detect` with the shipped defaults; detections are matched one to one to
labelled centroids within 6 um. The script prints, and writes as Markdown, per image and
pooled: lymphocyte precision, recall and F1, and the confusion of truth class by detected class.
It also reports a leave-one-image-out check of the one parameter one could fit here, the
relative darkness of lymphocytes: chosen on nine images, scored on the tenth.

Usage::

    python scripts/evaluate_nuclei_real.py --data DIR --out nuclei_real.md
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from rdls.wsi.nuclei import NucleusSettings, classify, match_points, measure, segment
from rdls.wsi.tiles import macenko_normalise, separate_stains

MATCH_UM = 6.0
TRUTH_CLASSES = ("lymphocyte", "tumor_epithelial", "stromal")
DETECTED_CLASSES = ("lymphocyte", "tumour", "fibroblast", "other", "unmatched")
LOIO_GRID = np.round(np.arange(0.5, 0.86, 0.05), 2)  # lymphocyte_min_relative candidates


def image_mpp(path: Path, width: int) -> float:
    """Microns per pixel from the BRCA-M2C name: last field is 4 x the native mpp of a
    1000 px crop that was resized to ``width`` px."""
    try:
        native = float(path.stem.rsplit("_", 1)[1]) / 4
        return native * 1000 / width
    except (IndexError, ValueError):
        return 0.5


def load(data: Path) -> list[dict]:
    images = sorted((data / "images").glob("*.png"))
    if not images:
        raise SystemExit(f"no images/*.png under {data}")
    out = []
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        truth = pd.read_csv(data / "centroids_csv" / f"{path.stem}.csv")
        out.append({"name": path.stem, "rgb": rgb, "truth": truth,
                    "mpp": image_mpp(path, rgb.shape[1])})  # fmt: skip
    return out


def measured(images, *, macenko: bool, settings: NucleusSettings) -> list[pd.DataFrame]:
    """Segmented and measured nuclei per image (classification is left to the caller)."""
    tables = []
    for image in images:
        rgb = macenko_normalise(image["rgb"]) if macenko else image["rgb"]
        h, e = separate_stains(rgb)
        labels = segment(h, mpp=image["mpp"], settings=settings)
        tables.append(measure(labels, h, e, mpp=image["mpp"]))
    return tables


def score(images, tables, settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image rows and the pooled confusion."""
    rows, confusion = [], None
    for image, nuclei in zip(images, tables, strict=True):
        detected = pd.DataFrame(
            {"x": nuclei["col"], "y": nuclei["row"], "class": classify(nuclei, settings=settings)}
        )
        result = match_points(detected, image["truth"], radius_px=MATCH_UM / image["mpp"])
        c = result["confusion"].reindex(
            index=[*TRUTH_CLASSES, "unmatched"], columns=list(DETECTED_CLASSES), fill_value=0
        )
        confusion = c if confusion is None else confusion + c
        rows.append({"image": image["name"][:23], "tp": result["tp"], "fp": result["fp"],
                     "fn": result["fn"], "precision": result["precision"],
                     "recall": result["recall"], "f1": result["f1"]})  # fmt: skip
    return _with_pooled(pd.DataFrame(rows), "pooled"), confusion


def _with_pooled(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The per-image rows and one more: counts summed over images, their ratios."""
    tp, fp, fn = table[["tp", "fp", "fn"]].sum()
    pooled = {"image": name, "tp": tp, "fp": fp, "fn": fn,
              "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
              "f1": _ratio(2 * tp, 2 * tp + fp + fn)}  # fmt: skip
    return pd.concat([table, pd.DataFrame([pooled])], ignore_index=True)


def pooled_f1(images, tables, settings) -> float:
    table, _ = score(images, tables, settings)
    return float(table["f1"].iloc[-1])


def leave_one_image_out(images, tables, settings) -> tuple[pd.DataFrame, list[float]]:
    """Choose lymphocyte_min_relative on nine images, score the tenth; pool the counts."""
    rows, chosen = [], []
    for i in range(len(images)):
        train = [j for j in range(len(images)) if j != i]
        f1 = [
            pooled_f1([images[j] for j in train], [tables[j] for j in train],
                      dataclasses.replace(settings, lymphocyte_min_relative=float(v)))
            for v in LOIO_GRID
        ]  # fmt: skip
        best = float(LOIO_GRID[int(np.argmax(f1))])
        chosen.append(best)
        fitted = dataclasses.replace(settings, lymphocyte_min_relative=best)
        table, _ = score([images[i]], [tables[i]], fitted)
        rows.append(table.iloc[0])
    return _with_pooled(pd.DataFrame(rows), "pooled (LOIO)"), chosen


def _ratio(a, b) -> float:
    return a / b if b else float("nan")


def markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False, floatfmt=".3f")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="directory with images/ and centroids_csv/")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the tables here as Markdown")
    args = parser.parse_args(argv)
    images = load(args.data)
    settings = NucleusSettings()
    lines = [f"Matching radius {MATCH_UM} um; {len(images)} images; shipped NucleusSettings."]
    for macenko in (False, True):
        start = time.perf_counter()
        tables = measured(images, macenko=macenko, settings=settings)
        seconds = time.perf_counter() - start
        table, confusion = score(images, tables, settings)
        loio, chosen = leave_one_image_out(images, tables, settings)
        title = "with Macenko normalisation" if macenko else "without stain normalisation"
        lines += [
            f"\n### Lymphocytes, {title}\n", markdown(table),
            f"\nConfusion (rows: labelled class; columns: detected class), {title}:\n",
            confusion.to_markdown(),
            f"\nLeave-one-image-out, {title}: lymphocyte_min_relative chosen on the other "
            f"nine images from {LOIO_GRID[0]}-{LOIO_GRID[-1]} (chosen: "
            f"{', '.join(f'{c:.2f}' for c in chosen)}), scored on the held-out one:\n",
            markdown(loio),
            f"\n(segmentation and measurement: {seconds:.1f} s for the {len(images)} images)",
        ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
