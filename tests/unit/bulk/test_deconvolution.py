"""Deconvolution: a signature from single cells, NNLS recovers the fractions planted in bulk."""

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rdls.bulk.counts import counts_per_million
from rdls.bulk.deconvolution import (
    mean_cpm_by_type,
    nnls_fractions,
    read_annotated,
    select_markers,
)
from rdls.errors import InputError

TYPES = ("Tcell", "fibroblast", "epithelial", "myeloid")


def profiles(n_genes=400, markers=10, seed=0):
    """Types x genes expression shares: a shared background, ten 50-fold markers per type."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0, 1, n_genes) * np.exp(rng.normal(0, 0.2, (len(TYPES), n_genes)))
    for t in range(len(TYPES)):
        base[t, t * markers : (t + 1) * markers] *= 50
    return base / base.sum(axis=1, keepdims=True)


def single_cells(shares, *, cells_per_type=60, umis=3000, seed=1):
    rng = np.random.default_rng(seed)
    labels = np.repeat(TYPES, cells_per_type)
    rates = shares[[TYPES.index(t) for t in labels]] * umis
    return sp.csr_matrix(rng.poisson(rates)), labels


def bulk(shares, fractions, *, depth=2e7, seed=2):
    rng = np.random.default_rng(seed)
    mean = depth * fractions @ shares  # samples x genes
    return pd.DataFrame(rng.poisson(mean).T, columns=[f"s{i}" for i in range(len(fractions))])


@pytest.fixture(scope="module")
def planted():
    shares = profiles()
    genes = [f"G{i}" for i in range(shares.shape[1])]
    cells, labels = single_cells(shares)
    fractions = np.random.default_rng(3).dirichlet(np.full(len(TYPES), 2.0), size=12)
    counts = bulk(shares, fractions).set_axis(genes)
    return genes, cells, labels, fractions, counts


def test_signature_markers_are_the_planted_ones(planted):
    genes, cells, labels, _, _ = planted
    mean = mean_cpm_by_type(cells, labels, genes=genes)
    assert sorted(mean.columns) == sorted(TYPES)
    assert np.allclose(mean.sum(axis=0), 1e6)
    markers = select_markers(mean, genes_per_type=10, min_fold_change=4)
    for t, kind in enumerate(TYPES):
        chosen = set(markers.index[markers == kind])
        assert chosen == {f"G{i}" for i in range(t * 10, (t + 1) * 10)}
    limited = select_markers(mean, genes_per_type=3, genes=genes[5:])
    assert len(limited) == 12 and "G0" not in limited.index


def test_nnls_recovers_the_planted_fractions(planted):
    genes, cells, labels, fractions, counts = planted
    mean = mean_cpm_by_type(cells, labels, genes=genes)
    signature = mean.loc[select_markers(mean, genes_per_type=10).index]
    for scale in (False, True):
        found = nnls_fractions(counts_per_million(counts), signature, scale_genes=scale)
        estimated = found[list(TYPES)].to_numpy()
        assert np.allclose(estimated.sum(axis=1), 1.0)
        assert np.abs(estimated - fractions).max() <= 0.05, scale
        assert (found["fit_correlation"] > 0.95).all()


def test_rare_types_are_left_out_and_one_type_is_not_enough(planted):
    genes, cells, labels, _, _ = planted
    rare = labels.copy()
    rare[:5] = "platelet"
    assert "platelet" not in mean_cpm_by_type(cells, rare, genes=genes, min_cells=10).columns
    with pytest.raises(InputError, match=r"only 1 cell type\(s\)"):
        mean_cpm_by_type(cells, np.full(len(labels), "Tcell"), genes=genes)


def test_read_annotated_wants_raw_counts_and_cell_types(tmp_path, planted):
    genes, cells, labels, _, _ = planted
    obs = pd.DataFrame({"cell_type": labels}, index=[f"c{i}" for i in range(len(labels))])
    var = pd.DataFrame(index=genes)
    logged = anndata.AnnData(X=sp.csr_matrix(np.log1p(cells.toarray())), obs=obs, var=var)
    logged.write_h5ad(tmp_path / "logged.h5ad")
    with pytest.raises(InputError, match=r"does not hold raw counts.*layers\['counts'\]"):
        read_annotated(tmp_path / "logged.h5ad")
    with pytest.raises(InputError, match=r"obs has no column 'celltype'"):
        read_annotated(tmp_path / "logged.h5ad", cell_type_key="celltype")
    logged.layers["counts"] = cells
    logged.write_h5ad(tmp_path / "with_counts.h5ad")
    matrix, found_labels, found_genes = read_annotated(tmp_path / "with_counts.h5ad")
    assert (matrix != cells).nnz == 0
    assert found_labels.tolist() == labels.tolist() and found_genes == genes
