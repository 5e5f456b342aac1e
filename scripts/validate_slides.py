"""Slide metrics of a demo run against the demo's planted truth, as a Markdown table.

Usage: .venv/bin/python scripts/validate_slides.py RUN_DIR [--scale default] [--variant ...]

Reads ``RUN_DIR/results/wsi/slide_metrics.tsv`` and the demo's truth
(``RUN_DIR/results/demo/<scale>/truth/slides.tsv``), and prints, per metric, the Spearman
correlation of measured against planted values over the slides and the median, 10th and 90th
percentile of measured / planted; then the immune phenotype measured against the planted one,
per subtype. docs/wsi.md quotes its output for the default demo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

METRICS = (
    "lymphocyte_density_mm2",
    "intratumoral_lymphocyte_density_mm2",
    "stromal_lymphocyte_density_mm2",
    "margin_lymphocyte_density_mm2",
    "exclusion_index",
    "stroma_fraction",
    "tissue_mm2",
)


def compare(run: Path, truth_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per metric agreement, and the phenotype cross-table (planted subtype x measured)."""
    metrics = pd.read_csv(run / "results/wsi/slide_metrics.tsv", sep="\t")
    truth = pd.read_csv(truth_dir / "slides.tsv", sep="\t")
    both = metrics.merge(truth, on="slide_id", suffixes=("", "_true"))
    rows = []
    for column in METRICS:
        measured, planted = both[column].to_numpy(float), both[f"{column}_true"].to_numpy(float)
        ok = np.isfinite(measured) & np.isfinite(planted) & (planted > 0)
        ratio = measured[ok] / planted[ok]
        rows.append({"metric": column, "slides": int(ok.sum()),
                     "spearman": spearmanr(measured[ok], planted[ok]).statistic,
                     "median_ratio": np.median(ratio), "ratio_p10": np.percentile(ratio, 10),
                     "ratio_p90": np.percentile(ratio, 90)})  # fmt: skip
    phenotypes = pd.crosstab(
        [both["subtype"], both["immune_phenotype_true"]], both["immune_phenotype"].fillna("")
    )
    return pd.DataFrame(rows), phenotypes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the workflow's working directory")
    parser.add_argument("--scale", default="default")
    parser.add_argument("--truth", type=Path, help="truth folder (default: the demo's)")
    args = parser.parse_args(argv)
    truth = args.truth or args.run / "results/demo" / args.scale / "truth"
    table, phenotypes = compare(args.run, truth)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print()
    print("Immune phenotype (rows: subtype and planted phenotype; columns: measured):")
    print()
    print(phenotypes.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
