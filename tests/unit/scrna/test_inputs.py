"""Bad inputs stop with a message that names the file and the fix; small pure functions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from rdls.errors import InputError
from rdls.scrna._io import read_counts
from rdls.scrna.annotate import best_types, cluster_labels, read_assignments, read_markers
from rdls.scrna.composition import (
    bh_adjust,
    compare_composition,
    read_signature,
    signature_genes,
)
from rdls.scrna.integrate import louvain_labels, ordered_by_size
from rdls.scrna.qc import low_quality, qc_metrics, qc_thresholds
from rdls.scrna.steps import annotate_step, qc_step, read_qc_samples

GENES = ["MT-CO1", "CD3D", "CD3E", "EPCAM", "KRT8", "COL1A1", "DCN", "LYZ"]


def _adata(n_cells=20, genes=GENES, seed=0, **obs) -> ad.AnnData:
    counts = np.random.default_rng(seed).poisson(3.0, (n_cells, len(genes))).astype(np.float32)
    frame = pd.DataFrame(obs, index=[f"C{i}" for i in range(n_cells)])
    return ad.AnnData(sp.csr_matrix(counts), obs=frame, var=pd.DataFrame(index=genes))


@pytest.fixture
def tenx(tiny_cohort):
    """One h5 sample and one mtx sample of the tiny demo."""
    sheet = tiny_cohort.plan.scrna
    return {fmt: tiny_cohort.root / sheet.loc[sheet["format"] == fmt, "path"].iloc[0]
            for fmt in ("10x_h5", "10x_mtx")}  # fmt: skip


def test_a_missing_file_names_the_sample_and_the_path(tmp_path):
    with pytest.raises(InputError, match=r"sample SC01, column 'path': .*nope.h5 does not exist"):
        read_counts(tmp_path / "nope.h5", fmt="10x_h5", sample_id="SC01")


def test_an_unknown_format_names_the_column(tmp_path):
    with pytest.raises(InputError, match=r"column 'format': 'loom' is not a known format"):
        read_counts(tmp_path, fmt="loom", sample_id="SC01")


def test_a_format_that_does_not_match_the_file_says_which_format_to_use(tenx, tmp_path):
    with pytest.raises(InputError, match="is a folder but the format is '10x_h5'"):
        read_counts(tenx["10x_mtx"], fmt="10x_h5", sample_id="SC03")
    with pytest.raises(InputError, match="It looks like HDF5: set the format to '10x_h5'"):
        read_counts(tenx["10x_h5"], fmt="10x_mtx", sample_id="SC01")
    h5ad = tmp_path / "sample.h5ad"
    _adata().write_h5ad(h5ad)
    with pytest.raises(InputError, match=r"is an AnnData .* set the format column to 'h5ad'"):
        read_counts(h5ad, fmt="10x_h5", sample_id="SC01")
    with pytest.raises(InputError, match=r"is not an \.h5ad \(HDF5\) file"):
        read_counts(tenx["10x_mtx"], fmt="h5ad", sample_id="SC03")


def test_a_corrupt_or_foreign_h5_file_is_named(tenx, tmp_path):
    truncated = tmp_path / "truncated.h5"
    content = tenx["10x_h5"].read_bytes()
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(InputError, match=r"truncated\.h5 cannot be"):
        read_counts(truncated, fmt="10x_h5", sample_id="SC01")
    text = tmp_path / "text.h5"
    text.write_text("barcode,count\n")
    with pytest.raises(InputError, match=r"text\.h5 is not an HDF5 file"):
        read_counts(text, fmt="10x_h5", sample_id="SC01")


def test_a_matrix_folder_without_its_files_lists_what_it_expects(tmp_path):
    (tmp_path / "barcodes.tsv.gz").write_bytes(b"")
    with pytest.raises(InputError, match=r"lacks the matrix files; expected barcodes.tsv.gz, "
                                          r"features.tsv.gz, matrix.mtx.gz"):  # fmt: skip
        read_counts(tmp_path, fmt="10x_mtx", sample_id="SC03")


def test_an_empty_matrix_is_refused(tmp_path):
    empty = tmp_path / "empty.h5ad"
    _adata(n_cells=0).write_h5ad(empty)
    with pytest.raises(InputError, match=r"the count matrix is empty \(0 cells x 8 genes"):
        read_counts(empty, fmt="h5ad", sample_id="SC01")
    zeros = _adata()
    zeros.X = sp.csr_matrix(zeros.shape, dtype=np.float32)
    zeros.write_h5ad(empty)
    with pytest.raises(InputError, match="the count matrix is empty"):
        read_counts(empty, fmt="h5ad", sample_id="SC01")


def test_gene_ids_without_symbols_and_normalised_values_are_refused(tmp_path):
    path = tmp_path / "ids.h5ad"
    _adata(genes=[f"ENSG{i:011d}" for i in range(8)]).write_h5ad(path)
    with pytest.raises(InputError, match="the genes have no symbols"):
        read_counts(path, fmt="h5ad", sample_id="SC01")
    with_symbols = _adata(genes=[f"ENSG{i:011d}" for i in range(8)])
    with_symbols.var["gene_symbols"] = GENES
    with_symbols.write_h5ad(path)
    assert read_counts(path, fmt="h5ad", sample_id="SC01").var_names.tolist() == GENES
    logged = _adata()
    logged.X = sp.csr_matrix(np.log1p(logged.X.toarray()))
    logged.write_h5ad(path)
    with pytest.raises(InputError, match=r"normalised values .* store the counts"):
        read_counts(path, fmt="h5ad", sample_id="SC01")
    logged.layers["counts"] = sp.csr_matrix(np.expm1(logged.X.toarray()).round())
    logged.write_h5ad(path)
    assert read_counts(path, fmt="h5ad", sample_id="SC01").X.sum() > 0


def test_an_unknown_setting_is_named(tmp_path):
    with pytest.raises(InputError, match=r"config scrna.qc: unknown setting\(s\) 'n_mad'"):
        qc_step(sample_id="SC01", subject_id="S1", path=tmp_path / "x.h5", fmt="10x_h5",
                settings={"n_mad": 3}, seed=0, allow_exclusions=True,
                out_h5ad=tmp_path / "o.h5ad", out_metrics=tmp_path / "o.tsv",
                out_png=tmp_path / "o.png")  # fmt: skip


def test_integration_refuses_a_sample_id_given_twice(tmp_path):
    for name in ("a", "b"):
        _adata(sample_id="SC01", subject_id="S1").write_h5ad(tmp_path / f"{name}.h5ad")
    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    with pytest.raises(InputError, match=r"sample id 'SC01' is given twice \(.*a.h5ad and"):
        read_qc_samples(paths)
    with pytest.raises(InputError, match="holds sample 'SC01' but is passed as sample 'SC02'"):
        read_qc_samples({"SC01": paths[0], "SC02": paths[1]})
    with pytest.raises(InputError, match="does not exist; run scrna_qc"):
        read_qc_samples({"SC03": tmp_path / "c.h5ad"})


def _integrated(path, genes=GENES):
    adata = _adata(genes=genes, sample_id="SC01", subject_id="S1", leiden="0")
    adata.layers["counts"] = adata.X.copy()
    adata.write_h5ad(path)
    return path


def _annotate(tmp_path, markers, assignments=None):
    annotate_step(integrated_h5ad=_integrated(tmp_path / "int.h5ad"), markers=markers,
                  assignments=assignments, settings={}, out_h5ad=tmp_path / "a.h5ad",
                  out_cell_types=tmp_path / "c.tsv",
                  out_dotplot_png=tmp_path / "d.png")  # fmt: skip


def test_marker_file_problems_are_named(tmp_path):
    with pytest.raises(InputError, match=r"marker file .*missing\.tsv does not exist"):
        _annotate(tmp_path, tmp_path / "missing.tsv")
    markers = tmp_path / "markers.tsv"
    markers.write_text("celltype\tsymbol\nT\tCD3D\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) 'cell_type', 'gene'"):
        _annotate(tmp_path, markers)
    markers.write_text("cell_type\tgene\nB\tMS4A1\nB\tCD79A\nNK\tGNLY\n")
    with pytest.raises(InputError, match="none of its 3 marker genes is in the single-cell"):
        _annotate(tmp_path, markers)
    markers.write_text("cell_type\tgene\nunassigned\tCD3D\n")
    with pytest.raises(InputError, match="'unassigned' is reserved"):
        read_markers(markers)


def test_assignment_and_signature_tables_need_their_columns(tmp_path):
    table = tmp_path / "table.tsv"
    pd.DataFrame({"subject_id": ["S1"], "cluster": [1]}).to_csv(table, sep="\t", index=False)
    with pytest.raises(InputError, match=r"lack column\(s\) 'subtype'"):
        read_assignments(table)
    with pytest.raises(InputError, match=r"'RDLS1_vs_rest': .* lacks column\(s\) 'gene', "):
        read_signature(table, name="RDLS1_vs_rest")
    assert read_assignments(None).empty


def test_mad_bounds_adapt_to_the_sample_and_the_fixed_ones_hold():
    metrics = pd.DataFrame({"total_counts": [1000, 1100, 900, 1050, 950, 60],
                            "n_genes": [500, 520, 480, 510, 490, 40],
                            "mito_fraction": [0.04, 0.05, 0.045, 0.05, 0.04, 0.5]})  # fmt: skip
    fixed = qc_thresholds(metrics, method="fixed", min_counts=100, min_genes=50)
    assert fixed == {"min_counts": 100, "min_genes": 50, "max_mito_fraction": 0.2}
    mad = qc_thresholds(metrics, method="mad", n_mads=5, min_counts=100, min_genes=50)
    assert 100 < mad["min_counts"] < 900 and 50 < mad["min_genes"] < 480
    assert 0.05 < mad["max_mito_fraction"] < 0.2
    assert low_quality(metrics, mad).tolist() == [False] * 5 + [True]
    # Without spread (no mitochondrial reads at all) the fixed bound holds alone.
    flat = metrics.assign(mito_fraction=0.0)
    assert qc_thresholds(flat, method="mad")["max_mito_fraction"] == 0.2
    with pytest.raises(InputError, match="'median' is not one of mad, fixed"):
        qc_thresholds(metrics, method="median")


def test_qc_metrics_count_umis_genes_and_mitochondrial_share():
    counts = sp.csr_matrix(np.array([[2, 0, 8], [0, 0, 0]]))
    metrics = qc_metrics(counts, ["mt-Co1", "Actb", "Cd3e"], mito_prefix="MT-")
    assert metrics["total_counts"].tolist() == [10, 0]
    assert metrics["n_genes"].tolist() == [2, 0]
    assert metrics["mito_fraction"].tolist() == [0.2, 0.0]


def test_cluster_labels_take_the_majority_and_report_agreement():
    scores = pd.DataFrame({"T": [2.0, 1.5, 0.1, -1.0, -0.5],
                           "B": [0.1, 0.2, 0.9, -2.0, 0.3]})  # fmt: skip
    best = best_types(scores, min_score=0.0)
    assert best.tolist() == ["T", "T", "B", "unassigned", "B"]
    labels = cluster_labels(best, pd.Series(["0", "0", "0", "1", "1"]))
    assert labels.loc["0", "cell_type"] == "T"
    assert labels.loc["0", "confidence"] == pytest.approx(2 / 3)
    assert labels.loc["0", "second_type"] == "B"
    assert labels.loc["1", "cell_type"] == "B"  # a tie goes to the first name: B < unassigned


def test_kruskal_wallis_is_computed_with_replicates_and_adjusted():
    rows = [{"sample_id": f"S{i}", "subject_id": f"P{i}", "subtype": subtype,
             "cell_type": cell_type, "cells": 1, "fraction": fraction}
            for i, (subtype, t_nk) in enumerate([("RDLS1", 0.1), ("RDLS1", 0.12),
                                                 ("RDLS2", 0.4), ("RDLS2", 0.45),
                                                 ("RDLS3", 0.15), ("RDLS3", 0.11)])
            for cell_type, fraction in (("T_NK", t_nk), ("mast", 0.02))]  # fmt: skip
    tests = compare_composition(pd.DataFrame(rows)).set_index("cell_type")
    expected = stats.kruskal([0.1, 0.12], [0.4, 0.45], [0.15, 0.11])
    assert tests.loc["T_NK", "statistic"] == pytest.approx(expected.statistic)
    assert tests.loc["T_NK", "pvalue"] == pytest.approx(expected.pvalue)
    assert tests.loc["T_NK", "padj"] == pytest.approx(expected.pvalue)  # the one computable test
    assert tests.loc["T_NK", "mean_fraction_RDLS2"] == pytest.approx(0.425)
    assert tests.loc["mast", "note"].startswith("not computable: the fraction is the same")


def test_bh_adjust_matches_the_textbook_and_skips_nan():
    adjusted = bh_adjust(np.array([0.01, 0.04, np.nan, 0.03, 0.5]))
    # Ranks 1-4 of the finite four: 0.01*4/1, min(0.03*4/2, 0.04*4/3), 0.04*4/3, 0.5*4/4.
    np.testing.assert_allclose(adjusted, [0.04, 0.16 / 3, np.nan, 0.16 / 3, 0.5], rtol=1e-12)


def test_signature_genes_are_the_top_significant_up_genes():
    table = pd.DataFrame({"gene": ["A", "B", "C", "D", "E"],
                          "log2FoldChange": [3.0, 1.5, 4.0, -3.0, 0.5],
                          "padj": [0.01, 0.001, 0.2, 0.001, 0.001]})  # fmt: skip
    assert signature_genes(table, top_genes=50) == ["A", "B"]
    assert signature_genes(table, top_genes=1) == ["A"]


def test_clusters_are_named_by_size_and_louvain_splits_two_cliques():
    assert ordered_by_size(["x", "y", "y", "z", "y", "x"]).tolist() == list("100201")
    block = np.ones((5, 5)) - np.eye(5)
    graph = sp.block_diag([block, block]).tolil()
    graph[4, 5] = graph[5, 4] = 0.1
    labels = louvain_labels(graph.tocsr(), resolution=1.0, seed=0)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[9]
