"""Time of the transcriptomic branches at the sizes the study had, as Markdown tables.

Usage: .venv/bin/python scripts/benchmark_transcriptomics.py [--threads 2] [--cells 10000]

1. DESeq2 at the paper's bulk scale: 83 samples x 20,000 genes of negative binomial counts
   (DESeq2's mean-dispersion trend, three subtypes, 300 genes with planted fold changes), one
   one-vs-rest contrast through rdls.bulk.de.differential_expression with and without apeGLM
   shrinkage, on ``--threads`` threads. The demo's own gene universe stops at ~4,400 real
   symbols, so these genes are numbered.
2. The single-cell steps per 10k cells: demo samples (rdls.demo) adding up to ``--cells``
   cells through rdls.scrna.steps' qc_step (each sample), integrate_step and annotate_step.

Each step once (these take minutes): wall seconds and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

import numpy as np
import pandas as pd

from rdls.config import validate_config

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def deseq2_paper_scale(*, threads: int, seed: int = 0) -> list[tuple[str, float]]:
    from rdls.bulk.de import differential_expression

    rng = np.random.default_rng(seed)
    n_samples, n_genes = 83, 20_000
    subtype = rng.choice(["RDLS1", "RDLS2", "RDLS3"], size=n_samples, p=[0.35, 0.35, 0.30])
    base = np.exp(rng.normal(4.0, 1.6, n_genes))
    effect = np.zeros((n_genes, n_samples))
    planted = rng.choice(n_genes, 300, replace=False)
    effect[planted] = np.log(2) * rng.uniform(1, 2.5, (300, 1)) * (subtype == "RDLS1")
    size = np.exp(rng.normal(0, 0.25, n_samples))
    mean = base[:, None] * np.exp(effect) * size[None, :]
    dispersion = (2.0 / base + 0.07) * np.exp(rng.normal(0, 0.4, n_genes))
    shape = 1 / dispersion[:, None]
    counts = rng.poisson(rng.gamma(np.broadcast_to(shape, mean.shape), mean / shape))
    samples = [f"B{i:03d}" for i in range(n_samples)]
    table = pd.DataFrame(counts, index=[f"G{i:05d}" for i in range(n_genes)], columns=samples)
    table = table[(table >= 10).sum(axis=1) >= 20]
    group = np.where(subtype == "RDLS1", "RDLS1", "rest")
    design = pd.DataFrame({"group": group}, index=samples)
    rows = []
    for shrink in (False, True):
        start = time.perf_counter()
        differential_expression(table, design, group="group", level="RDLS1", reference="rest",
                                lfc_shrink=shrink, threads=threads)  # fmt: skip
        label = f"DESeq2, {len(table)} genes x {n_samples} samples, one contrast" + (
            ", with apeGLM shrinkage" if shrink else ""
        )
        rows.append((label, time.perf_counter() - start))
    return rows


def scrna_per_10k(*, cells: int, threads: int, seed: int = 42) -> list[tuple[str, float]]:
    from rdls.demo import plan_cohort
    from rdls.demo._genes import gene_universe
    from rdls.demo._scrna import write_scrna_sample
    from rdls.scrna.steps import annotate_step, integrate_step, qc_step

    settings = validate_config({})["scrna"]
    n_samples = 7
    per_sample = cells // n_samples
    plan = plan_cohort(scale="tiny", seed=seed)
    genes = gene_universe(3000, rng=np.random.default_rng(seed))
    subtypes = ["RDLS1", "RDLS2", "RDLS3"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        paths = {}
        for i in range(n_samples):
            sample = f"S{i}"
            paths[sample] = out / f"{sample}.h5"
            write_scrna_sample(out_path=paths[sample], fmt="10x_h5", sample_id=sample,
                               subtype=subtypes[i % 3], n_cells=per_sample, genes=genes,
                               rng=np.random.default_rng([seed, i]))  # fmt: skip
        del plan
        start = time.perf_counter()
        qc = {}
        for sample, path in paths.items():
            qc[sample] = out / f"{sample}.qc.h5ad"
            qc_step(sample_id=sample, subject_id=sample, path=path, fmt="10x_h5",
                    settings=settings["qc"], seed=seed, allow_exclusions=True,
                    out_h5ad=qc[sample], out_metrics=out / f"{sample}.tsv",
                    out_png=out / f"{sample}.png")  # fmt: skip
        rows.append((f"scRNA QC + Scrublet, {n_samples} samples, {per_sample * n_samples} "
                     "cells", time.perf_counter() - start))  # fmt: skip
        start = time.perf_counter()
        integrate_step(samples=qc, settings=settings["integrate"], seed=seed, threads=threads,
                       out_h5ad=out / "integrated.h5ad", out_umap_png=out / "umap.png")  # fmt: skip
        rows.append(("scRNA integrate (HVG, PCA, Harmony, Leiden, UMAP)",
                     time.perf_counter() - start))  # fmt: skip
        start = time.perf_counter()
        annotate_step(integrated_h5ad=out / "integrated.h5ad",
                      markers=REPO / "resources/markers/crc_tme_markers.tsv", assignments=None,
                      settings=settings["annotate"], seed=seed, out_h5ad=out / "annotated.h5ad",
                      out_cell_types=out / "cell_types.tsv",
                      out_dotplot_png=out / "dotplot.png")  # fmt: skip
        rows.append(("scRNA annotate (marker scores, dot plot)", time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cells", type=int, default=10_000)
    args = parser.parse_args()
    rows = deseq2_paper_scale(threads=args.threads)
    rows += scrna_per_10k(cells=args.cells, threads=args.threads)
    print(f"| step ({args.threads} threads) | wall s |")
    print("|---|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} |")
    print(f"\npeak RSS of the process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
