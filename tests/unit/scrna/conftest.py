"""The tiny demo's scRNA samples, run once through every step for the tests of this folder.

The run is shared (session scope) because numba compiles scanpy's and UMAP's kernels on first
use, which costs more than all the steps together on 1200 cells.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from rdls.demo import generate_scrna, plan_cohort

REPO = Path(__file__).resolve().parents[3]
MARKERS = REPO / "resources" / "markers" / "crc_tme_markers.tsv"
SEED = 42
EXCLUDED = "SC99"  # a sample made to fail QC: integration must leave it out


def run_integrate_annotate(qc: dict, out: Path, *, assignments: Path | None) -> SimpleNamespace:
    """integrate_step then annotate_step into ``out``; the output paths."""
    from rdls.scrna.steps import annotate_step, integrate_step

    out.mkdir(parents=True, exist_ok=True)
    paths = SimpleNamespace(integrated=out / "integrated.h5ad", umap=out / "umap.png",
                            annotated=out / "annotated.h5ad", cell_types=out / "cell_types.tsv",
                            dotplot=out / "dotplot.png")  # fmt: skip
    integrate_step(samples=qc, settings={}, seed=SEED, threads=2,
                   out_h5ad=paths.integrated, out_umap_png=paths.umap)  # fmt: skip
    annotate_step(integrated_h5ad=paths.integrated, markers=MARKERS, assignments=assignments,
                  settings={}, seed=SEED, out_h5ad=paths.annotated,
                  out_cell_types=paths.cell_types, out_dotplot_png=paths.dotplot)  # fmt: skip
    return paths


def write_signatures(folder: Path) -> dict[str, Path]:
    """Bulk DESeq2-like tables: lymphoid genes up in RDLS2, stromal genes up in RDLS3."""
    up = {"RDLS2_vs_rest": ["CD3D", "CD3E", "CD2", "TRAC", "NKG7", "GNLY", "CD8A", "IL7R"],
          "RDLS3_vs_rest": ["COL1A1", "COL1A2", "DCN", "LUM", "PDGFRA", "FAP"],
          "RDLS1_vs_RDLS2": ["EPCAM", "KRT8", "KRT18"]}  # fmt: skip
    paths = {}
    for name, genes in up.items():
        table = pd.DataFrame({"gene": [*genes, "EPCAM", "NOT_A_GENE"],
                              "baseMean": 100.0,
                              "log2FoldChange": [2.0] * len(genes) + [0.2, 3.0],
                              "padj": [1e-4] * len(genes) + [0.6, 1e-6]})  # fmt: skip
        paths[name] = folder / f"{name}.tsv"
        table.to_csv(paths[name], sep="\t", index=False)
    return paths


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("scrna_demo")
    plan = plan_cohort(scale="tiny", seed=SEED)
    truth = generate_scrna(plan, root=root)
    truth.index = truth["sample_id"] + ":" + truth["barcode"]
    return SimpleNamespace(root=root, plan=plan, truth=truth)


@pytest.fixture(scope="session")
def tiny_run(tiny_cohort, tmp_path_factory):
    from rdls.scrna.steps import by_subtype_step, qc_step

    out = tmp_path_factory.mktemp("scrna_run")
    sheet = tiny_cohort.plan.scrna
    qc, metrics = {}, {}
    rows = [*sheet.itertuples(index=False)]
    for row in rows:
        qc[row.sample_id] = out / "qc" / f"{row.sample_id}.h5ad"
        metrics[row.sample_id] = out / "qc" / f"{row.sample_id}.tsv"
        qc_step(sample_id=row.sample_id, subject_id=row.subject_id,
                path=tiny_cohort.root / row.path, fmt=row.format, settings={}, seed=SEED,
                allow_exclusions=True, out_h5ad=qc[row.sample_id],
                out_metrics=metrics[row.sample_id],
                out_png=out / "qc" / f"{row.sample_id}.png")  # fmt: skip
    # The first sample again, under a bar it cannot pass: excluded, and left out downstream.
    first = rows[0]
    qc[EXCLUDED] = out / "qc" / f"{EXCLUDED}.h5ad"
    metrics[EXCLUDED] = out / "qc" / f"{EXCLUDED}.tsv"
    qc_step(sample_id=EXCLUDED, subject_id="S9999", path=tiny_cohort.root / first.path,
            fmt=first.format, settings={"min_cells_after_qc": 10**6, "doublets": False},
            seed=SEED, allow_exclusions=True, out_h5ad=qc[EXCLUDED],
            out_metrics=metrics[EXCLUDED], out_png=out / "qc" / f"{EXCLUDED}.png")  # fmt: skip

    assignments = out / "assignments.tsv"
    tiny_cohort.plan.truth_subjects[["subject_id", "subtype"]].to_csv(assignments, sep="\t",
                                                                      index=False)  # fmt: skip
    paths = run_integrate_annotate(qc, out / "first", assignments=assignments)
    signatures = write_signatures(out)
    by = SimpleNamespace(composition=out / "composition.tsv", tests=out / "tests.tsv",
                         bars=out / "bars.png", scores=out / "signature_scores.tsv",
                         signature_png=out / "signatures.png")  # fmt: skip
    by_subtype_step(annotated_h5ad=paths.annotated, signatures=signatures, settings={},
                    seed=SEED, out_composition=by.composition, out_tests=by.tests,
                    out_bars_png=by.bars, out_signature_scores=by.scores,
                    out_signature_png=by.signature_png)  # fmt: skip
    return SimpleNamespace(out=out, qc=qc, metrics=metrics, assignments=assignments,
                           by=by, **vars(paths))  # fmt: skip
