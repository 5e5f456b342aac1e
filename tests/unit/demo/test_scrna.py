"""The demo scRNA-seq generator: Cell Ranger files scanpy reads, planted types and composition."""

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from rdls.demo._genes import CELL_TYPE_MARKERS, CELL_TYPES, MITOCHONDRIAL_GENES, gene_universe
from rdls.demo._plan import SUBTYPES, item_rng
from rdls.demo._scrna import expected_composition, write_scrna_sample

N_CELLS = 800
GENES = gene_universe(1000)


def _write(path, *, subtype, fmt="10x_h5", seed=11, index=0, n_cells=N_CELLS, genes=GENES):
    return write_scrna_sample(
        out_path=path, fmt=fmt, sample_id=f"SC{index + 1:02d}", subtype=subtype,
        n_cells=n_cells, genes=genes, rng=item_rng(seed, "scrna", index),
    )  # fmt: skip


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """One sample per subtype, read back with scanpy: subtype -> (AnnData, truth)."""
    folder = tmp_path_factory.mktemp("scrna")
    read = {}
    for index, subtype in enumerate(SUBTYPES):
        path = folder / f"{subtype}.h5"
        truth = _write(path, subtype=subtype, index=index)
        read[subtype] = (sc.read_10x_h5(path), truth)
    return read


def test_10x_h5_reads_back_with_scanpy(samples):
    adata, truth = samples["RDLS1"]
    assert adata.shape == (N_CELLS, len(GENES))
    assert adata.obs_names.tolist() == truth["barcode"].tolist()
    assert adata.var_names.tolist() == GENES
    assert adata.var["gene_ids"].str.fullmatch(r"ENSG\d{11}").all()
    assert adata.var["gene_ids"].is_unique
    assert (adata.var["feature_types"] == "Gene Expression").all()
    assert (adata.var["genome"] == "GRCh38").all()
    assert np.array_equal(adata.X.data, np.round(adata.X.data))  # UMI counts
    assert adata.X.min() >= 0


def test_10x_mtx_reads_back_with_scanpy(tmp_path):
    folder = tmp_path / "SC01_filtered_feature_bc_matrix"
    truth = _write(folder, subtype="RDLS2", fmt="10x_mtx", n_cells=300)
    adata = sc.read_10x_mtx(folder)
    assert adata.shape == (300, len(GENES))
    assert adata.obs_names.tolist() == truth["barcode"].tolist()
    assert adata.var_names.tolist() == GENES
    assert sorted(p.name for p in folder.iterdir()) == [
        "barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"
    ]  # fmt: skip
    # The same generator state gives the same counts in either format.
    _write(tmp_path / "twin.h5", subtype="RDLS2", n_cells=300)
    assert (adata.X != sc.read_10x_h5(tmp_path / "twin.h5").X).nnz == 0


def test_barcodes_look_like_10x_and_are_unique(samples):
    _, truth = samples["RDLS1"]
    assert truth["barcode"].str.fullmatch(r"[ACGT]{16}-1").all()
    assert truth["barcode"].is_unique
    assert (truth["sample_id"] == "SC01").all()


def test_markers_are_highest_in_their_cell_type(samples):
    adata, truth = samples["RDLS2"]
    singlets = (truth["cell_type"] != "doublet").to_numpy()
    adata = adata[singlets].copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    scores = pd.DataFrame(
        {
            cell_type: np.asarray(adata[:, list(markers)].X.mean(axis=1)).ravel()
            for cell_type, markers in CELL_TYPE_MARKERS.items()
        }
    )
    by_type = scores.groupby(truth.loc[singlets, "cell_type"].to_numpy()).mean()
    # Rare types (mast cells at 2%) can be absent from one patient; the rest must be there.
    assert len(by_type) >= 7
    for cell_type in by_type.index:
        assert by_type[cell_type].idxmax() == cell_type
        others = by_type[cell_type].drop(cell_type)
        assert by_type.at[cell_type, cell_type] >= 2 * others.max(), cell_type


def test_composition_follows_subtype(samples):
    fractions = pd.DataFrame(
        {s: truth["cell_type"].value_counts(normalize=True) for s, (_, truth) in samples.items()}
    ).fillna(0.0)
    assert fractions.loc["epithelial"].idxmax() == "RDLS1"
    assert fractions.loc["T_NK"].idxmax() == "RDLS2"
    assert fractions.loc["fibroblast"].idxmax() == "RDLS3"
    assert set(fractions.index) == {*CELL_TYPES, "doublet"}


def test_low_quality_cells_have_more_mito_and_fewer_umis(samples):
    adata, truth = samples["RDLS3"]
    low = truth["low_quality"].to_numpy()
    umis = np.asarray(adata.X.sum(axis=1)).ravel()
    mito = np.asarray(adata[:, list(MITOCHONDRIAL_GENES)].X.sum(axis=1)).ravel() / umis
    assert 0.01 <= low.mean() <= 0.06
    assert np.median(mito[low]) >= 0.2
    assert 0.02 <= np.median(mito[~low]) <= 0.08
    assert np.mean((mito[~low] >= 0.02) & (mito[~low] <= 0.08)) >= 0.85
    assert np.median(umis[low]) < 0.5 * np.median(umis[~low])
    assert 3000 <= np.median(umis[~low]) <= 6000


def test_doublets_combine_two_different_types(samples):
    adata, truth = samples["RDLS2"]
    doublet = (truth["cell_type"] == "doublet").to_numpy()
    assert 0.01 <= doublet.mean() <= 0.08
    pairs = truth.loc[doublet, "doublet_types"].str.split("+", expand=True)
    assert pairs.isin(CELL_TYPES).all().all()
    assert (pairs[0] != pairs[1]).all()
    assert (truth.loc[~doublet, "doublet_types"] == "").all()
    assert not truth.loc[doublet, "low_quality"].any()
    umis = np.asarray(adata.X.sum(axis=1)).ravel()
    assert np.median(umis[doublet]) > 1.5 * np.median(umis[~doublet])


def test_same_seed_same_files(tmp_path):
    for name in ("a", "b"):
        _write(tmp_path / f"{name}.h5", subtype="RDLS3", n_cells=200)
        _write(tmp_path / f"{name}_mtx", subtype="RDLS3", fmt="10x_mtx", n_cells=200)
    _write(tmp_path / "c.h5", subtype="RDLS3", n_cells=200, seed=12)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert (tmp_path / "a.h5").read_bytes() != (tmp_path / "c.h5").read_bytes()
    for name in ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"):
        assert (tmp_path / "a_mtx" / name).read_bytes() == (tmp_path / "b_mtx" / name).read_bytes()


def test_expected_composition_covers_the_nine_types():
    for subtype in SUBTYPES:
        composition = expected_composition(subtype)
        assert list(composition) == list(CELL_TYPES)
        assert sum(composition.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown subtype"):
        expected_composition("CMS1")


def test_genes_without_markers_are_refused(tmp_path):
    genes = [g for g in GENES if g != "EPCAM"]
    with pytest.raises(ValueError, match="EPCAM"):
        _write(tmp_path / "x.h5", subtype="RDLS1", genes=genes)
