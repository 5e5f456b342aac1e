"""Validation of the imaging features and subtypes on the demo's MRI variants and seeds;
writes its section of docs/validation.md.

Usage:
    .venv/bin/python scripts/validate_subtypes.py [--workdir /tmp/rdls-validation]
        [--variants mixed,size,margin,texture,intensity,none] [--seeds 42]
        [--scale default] [--cores 2] [--doc docs/validation.md] [--report-only]

For every variant and seed the workflow itself runs (Snakemake, in a working directory of its
own under --workdir, with `demo.mri_signal` and `seed` set) up to the imaging features and the
subtype assignment; then the run's tables are compared with the demo's planted truth
(rdls.validation): the supervised balanced accuracy of the stable deep and radiomic features,
the R² with which the deep features predict the radiomic features' first ten principal
components, the k chosen with its p-value, the training ARI and the external balanced accuracy
of the assignment. Results of every run go to --workdir/validation.json; a later call adds to
them, and the section between the markers in --doc is rewritten from all of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

VARIANTS = ("mixed", "size", "margin", "texture", "intensity", "none")
BEGIN = "<!-- validate_subtypes.py: begin -->"
END = "<!-- validate_subtypes.py: end -->"
TARGETS = (
    "results/imaging/features/deep.parquet",
    "results/imaging/features/radiomics.parquet",
    "results/subtypes/assignments.tsv",
    "results/subtypes/consensus/summary.tsv",
)


def run_directory(workdir: Path, *, variant: str, seed: int, scale: str) -> Path:
    return workdir / f"{scale}-{variant}-seed{seed}"


def run_workflow(directory: Path, *, variant: str, seed: int, scale: str, cores: int) -> float:
    """Snakemake up to the subtypes in ``directory``; returns the wall time in seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    # The repository's config as it is now: a rerun after a change picks the change up.
    shutil.rmtree(directory / "config", ignore_errors=True)
    shutil.copytree(REPO / "config", directory / "config")
    (directory / "override.yaml").write_text(
        f"seed: {seed}\ndemo:\n  scale: {scale}\n  mri_signal: {variant}\n"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--cores", str(cores), "--configfile", "override.yaml", "--quiet", "rules",
         "--", *TARGETS],
        cwd=directory, check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def _features(path: Path) -> pd.DataFrame:
    from rdls.imaging.features import feature_matrix

    meta, values = feature_matrix(path)
    return values.loc[meta["cohort"].eq("training").to_numpy()]


def measure(directory: Path) -> dict:
    """The validation numbers of one finished run (rdls.validation)."""
    from rdls.validation import (
        principal_component_r2,
        subtype_recovery,
        supervised_balanced_accuracy,
    )

    truth_file = next((directory / "results" / "demo").glob("*/truth/mri.tsv"))
    truth = pd.read_csv(truth_file, sep="\t", dtype={"subject_id": str}).set_index("subject_id")
    planted = truth["subtype"]
    deep = _features(directory / "results/imaging/features/deep.parquet")
    radiomics = _features(directory / "results/imaging/features/radiomics.parquet")
    deep_ba = supervised_balanced_accuracy(deep, planted)
    radiomics_ba = supervised_balanced_accuracy(radiomics, planted)
    r2 = principal_component_r2(deep, radiomics)
    assignments = pd.read_csv(
        directory / "results/subtypes/assignments.tsv", sep="\t", dtype={"subject_id": str}
    ).set_index("subject_id")
    recovery = subtype_recovery(assignments, planted)
    structure = _structure(directory / "results/subtypes/consensus")
    return {
        "deep_features": deep.shape[1],
        "radiomic_features": radiomics.shape[1],
        "deep_ba": deep_ba,
        "radiomics_ba": radiomics_ba,
        "deep_over_radiomics": deep_ba / radiomics_ba if radiomics_ba else float("nan"),
        "r2_weighted": float(r2["weighted"]),
        "r2_mean": float(r2["mean"]),
        **structure,
        "training_ari": recovery["training_ari"],
        "external_ba": recovery.get("external_validation_balanced_accuracy", float("nan")),
    }


def _structure(folder: Path) -> dict:
    """k chosen and its p-value (structure.json where the run writes one)."""
    path = folder / "structure.json"
    if path.exists():
        found = json.loads(path.read_text())
        k = found.get("k")
        p = found.get("p_values", {}).get(str(k)) if k is not None else None
        lowest = min(found.get("p_values", {}).values(), default=None)
        return {"structure": bool(found.get("structure")), "k": k, "p_value": p,
                "lowest_p": lowest}  # fmt: skip
    summary = pd.read_csv(folder / "summary.tsv", sep="\t")
    k = int(summary.loc[summary["chosen"], "k"].iloc[0])
    return {"structure": True, "k": k, "p_value": None, "lowest_p": None}


def _number(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        small = 0 < abs(value) < 10**-digits
        return f"{value:.1e}" if small else f"{value:.{digits}f}"
    return str(value)


def markdown(results: dict) -> str:
    """The section of docs/validation.md: one row per variant and seed."""
    lines = [
        BEGIN,
        "",
        "| variant | seed | deep BA | radiomic BA | deep / radiomic | R² deep → radiomic PCs "
        "(weighted) | k | p (k; without subtypes the lowest over k) | training ARI | "
        "external BA | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(results, key=lambda k: (VARIANTS.index(results[k]["variant"]),
                                               results[k]["seed"])):  # fmt: skip
        row = results[key]
        k = row["k"] if row["structure"] else "none"
        p = row["p_value"] if row["structure"] else row.get("lowest_p")
        lines.append(
            f"| {row['variant']} | {row['seed']} | {_number(row['deep_ba'])} | "
            f"{_number(row['radiomics_ba'])} | {_number(row['deep_over_radiomics'])} | "
            f"{_number(row['r2_weighted'])} | {k} | {_number(p, 3)} | "
            f"{_number(row['training_ari'])} | {_number(row['external_ba'])} | "
            f"{row['seconds'] / 60:.1f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(doc: Path, section: str) -> None:
    text = doc.read_text() if doc.exists() else f"# Validation\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(head + section + tail)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rdls-validation"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--scale", default="default")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "validation.md")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite --doc from --workdir/validation.json; run nothing",
    )
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    store = args.workdir / "validation.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    if not args.report_only:
        for variant in variants:
            for seed in seeds:
                directory = run_directory(args.workdir, variant=variant, seed=seed,
                                          scale=args.scale)  # fmt: skip
                seconds = run_workflow(directory, variant=variant, seed=seed, scale=args.scale,
                                       cores=args.cores)  # fmt: skip
                row = {"variant": variant, "seed": seed, "scale": args.scale,
                       "seconds": seconds, **measure(directory)}  # fmt: skip
                results[f"{args.scale}-{variant}-{seed}"] = row
                print(json.dumps(row), flush=True)
                args.workdir.mkdir(parents=True, exist_ok=True)
                store.write_text(json.dumps(results, indent=1))
    write_section(args.doc, markdown(results))


if __name__ == "__main__":
    main()
