"""Summarise a finished run's imaging benchmarks as the Markdown tables of docs/benchmarks.md.

Usage: .venv/bin/python scripts/benchmark_imaging.py WORKDIR [--label default]

Reads Snakemake's benchmark: files under WORKDIR/benchmarks/imaging and the status tables of
the shards, and prints per step: jobs, subjects, wall seconds summed over jobs, median seconds
per job, seconds per subject and the largest peak memory (max_rss, MB); then the encoder's
training time per epoch and the embedding throughput.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

STEPS = {
    "ingested": ("mri_ingest", "ingested"),
    "crops": ("mri_preprocess", "crops"),
    "radiomics": ("mri_radiomics", "radiomics"),
    "embeddings": ("mri_embed", "crops"),
}


def shard_subjects(workdir: Path, folder: str) -> dict[str, int]:
    counts = {}
    for table in (workdir / "results/imaging" / folder).glob("*.tsv"):
        status = pd.read_csv(table, sep="\t")
        counts[table.stem] = int((status["status"] == "ok").sum()) if len(status) else 0
    return counts


def summarise(workdir: Path) -> pd.DataFrame:
    rows = []
    for step, (rule, status_folder) in STEPS.items():
        files = sorted((workdir / "benchmarks/imaging" / step).glob("*.tsv"))
        if not files:
            continue
        runs = pd.concat([pd.read_csv(f, sep="\t").assign(shard=f.stem) for f in files])
        subjects = shard_subjects(workdir, status_folder)
        n = sum(subjects.get(shard, 0) for shard in runs["shard"])
        rows.append(
            {
                "rule": rule,
                "jobs": len(runs),
                "subjects": n,
                "wall_s_total": runs["s"].sum(),
                "median_s_per_job": runs["s"].median(),
                "s_per_subject": runs["s"].sum() / max(n, 1),
                "max_rss_mb": runs["max_rss"].max(),
            }
        )
    for name, rule in (("encoder/train", "mri_train_encoder"), ("stability", "imaging_stability"),
                       ("features", "imaging_features")):  # fmt: skip
        path = workdir / "benchmarks/imaging" / f"{name}.tsv"
        if path.is_file():
            run = pd.read_csv(path, sep="\t").iloc[0]
            rows.append({"rule": rule, "jobs": 1, "wall_s_total": run["s"],
                         "median_s_per_job": run["s"], "max_rss_mb": run["max_rss"]})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    table = summarise(args.workdir)
    print(f"### {args.label or args.workdir}\n")
    print(table.to_markdown(index=False, floatfmt=".2f"))
    curve = args.workdir / "results/imaging/encoder/training_curve.tsv"
    if curve.is_file():
        epochs = pd.read_csv(curve, sep="\t")
        print(f"\nEncoder: {len(epochs)} epochs, median {epochs['seconds'].median():.2f} s per "
              f"epoch, {epochs['seconds'].sum():.0f} s in all.")  # fmt: skip
    logs = sorted((args.workdir / "logs/imaging/embeddings").glob("*.log"))
    embedded, seconds = 0, 0.0
    for log in logs:
        for line in log.read_text().splitlines():
            if "embedded" in line and "subjects in" in line:
                words = line.split()
                embedded += int(words[words.index("embedded") + 1])
                seconds += float(words[words.index("in") + 1])
    if seconds:
        print(f"Embedding: {embedded} subjects in {seconds:.1f} s of embedding time, "
              f"{embedded / seconds:.1f} subjects per s (imports excluded).")  # fmt: skip


if __name__ == "__main__":
    main()
