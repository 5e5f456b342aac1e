"""The transcriptomic branches on the tiny demo: every output of the contracts is there, with
its columns, and the QC and exclusion tables account for every sample."""

import anndata as ad
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

DE_COLUMNS = ["gene", "baseMean", "log2FoldChange", "lfcSE", "pvalue", "padj"]


def read(workdir, path):
    return pd.read_csv(workdir / path, sep="\t")


def test_annotated_cells_carry_the_contract_columns(tiny_run):
    cells = ad.read_h5ad(tiny_run / "results/scrna/annotated.h5ad")
    assert {"sample_id", "subject_id", "cell_type", "subtype"} <= set(cells.obs.columns)
    sheet = read(tiny_run, "results/demo/tiny/sheets/scrna.tsv")
    assert set(cells.obs["sample_id"]) == set(sheet["sample_id"])
    assignments = read(tiny_run, "results/subtypes/assignments.tsv").set_index("subject_id")
    expected = cells.obs["subject_id"].map(assignments["subtype"]).fillna("unassigned")
    assert (cells.obs["subtype"].astype(str) == expected.astype(str)).all()
    assert "counts" in cells.layers
    qc = read(tiny_run, "results/scrna/qc/summary.tsv")
    assert qc["sample_id"].tolist() == sheet["sample_id"].tolist()
    assert (qc["cells_kept"] <= qc["cells_in"]).all()


def test_every_contrast_has_its_de_table_and_gsea(tiny_run):
    summary = read(tiny_run, "results/bulk/deseq2/summary.tsv")
    subtypes = read(tiny_run, "results/subtypes/assignments.tsv")["subtype"].dropna().unique()
    assert len(summary) >= len(subtypes) * (len(subtypes) - 1) // 2
    for contrast in summary["contrast"]:
        table = read(tiny_run, f"results/bulk/deseq2/{contrast}.tsv")
        assert table.columns[:6].tolist() == DE_COLUMNS
        assert (tiny_run / f"results/bulk/gsea/{contrast}.tsv").is_file()
    gsea = read(tiny_run, "results/bulk/gsea/summary.tsv")
    assert set(gsea["contrast"]) <= set(summary["contrast"])


def test_scores_and_fractions_cover_every_bulk_sample(tiny_run):
    sheet = read(tiny_run, "results/demo/tiny/sheets/bulk.tsv")
    scores = read(tiny_run, "results/bulk/scores/scores.tsv")
    fractions = read(tiny_run, "results/bulk/deconvolution/fractions.tsv")
    assert set(scores["sample_id"]) == set(sheet["sample_id"])
    assert set(fractions["sample_id"]) == set(sheet["sample_id"])
    cell_types = fractions.columns.drop(["sample_id", "subject_id", "subtype"])
    assert fractions[cell_types].sum(axis=1).round(6).eq(1).all()
