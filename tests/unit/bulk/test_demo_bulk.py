"""The demo's bulk samples carry planted cell-type mixtures that deconvolution recovers."""

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr

from rdls.bulk.counts import counts_per_million
from rdls.bulk.deconvolution import mean_cpm_by_type, nnls_fractions, select_markers
from rdls.demo import generate_bulk, plan_cohort
from rdls.demo._bulk import MARKER_MODULE, simulate_bulk
from rdls.demo._genes import BULK_MODULES, CELL_TYPE_MARKERS, CELL_TYPES, gene_universe
from rdls.demo._plan import SUBTYPES, item_rng
from rdls.demo._scrna import SUBTYPE_COMPOSITION, _type_profiles, write_scrna_sample

PER_SUBTYPE = 10
MARKERS = list(dict.fromkeys(g for genes in CELL_TYPE_MARKERS.values() for g in genes))


def samples(per_subtype=PER_SUBTYPE):
    n = per_subtype * len(SUBTYPES)
    return pd.DataFrame({"sample_id": [f"B{i + 1:03d}" for i in range(n)],
                         "subject_id": [f"S{i + 1:04d}" for i in range(n)],
                         "batch": [f"batch{i % 2 + 1}" for i in range(n)],
                         "subtype": np.repeat(SUBTYPES, per_subtype)})  # fmt: skip


@pytest.fixture(scope="module")
def cohort():
    table = samples()
    return table, simulate_bulk(samples=table, n_genes=1500, rng=item_rng(11, "bulk", 0))


def test_compositions_are_drawn_around_their_subtype(cohort):
    table, simulated = cohort
    composition = simulated.composition
    assert list(composition.columns) == ["sample_id", *CELL_TYPES]
    assert composition["sample_id"].tolist() == table["sample_id"].tolist()
    fractions = composition[list(CELL_TYPES)]
    assert np.allclose(fractions.sum(axis=1), 1.0) and (fractions.to_numpy() > 0).all()
    means = fractions.groupby(table["subtype"].to_numpy()).mean()
    for subtype in SUBTYPES:
        expected = pd.Series(SUBTYPE_COMPOSITION[subtype])
        assert (means.loc[subtype] - expected).abs().max() <= 0.04, subtype


def test_markers_follow_the_mixture_of_the_scrna_profiles(cohort):
    _, simulated = cohort
    counts = simulated.counts.set_index("gene")
    profiles, _, _ = _type_profiles(tuple(counts.index))
    rows = [counts.index.get_loc(g) for g in MARKERS]
    signature = pd.DataFrame(1e6 * profiles[:, rows].T, index=MARKERS, columns=list(CELL_TYPES))
    found = nnls_fractions(counts_per_million(counts), signature)[list(CELL_TYPES)]
    truth = simulated.composition.set_index("sample_id")[list(CELL_TYPES)]
    assert pearsonr(found.to_numpy().ravel(), truth.to_numpy().ravel()).statistic >= 0.95
    assert np.abs(found.to_numpy() - truth.to_numpy()).mean() <= 0.03


def test_truth_labels_markers_by_the_fold_changes_compositions_imply(cohort):
    table, simulated = cohort
    truth = simulated.genes.set_index("gene")
    module_of = {g: m for m, (_, genes) in BULK_MODULES.items() for g in genes}
    for gene in MARKERS:
        row = truth.loc[gene]
        if gene in module_of:  # CD3E, COL1A1, ...: their module, the mixture's fold change
            assert row["module"] == module_of[gene]
            assert row["up_in_subtype"] == BULK_MODULES[module_of[gene]][0]
            assert 1.0 <= row["log2_fold_change"] <= 2.5, gene
        else:
            assert row["module"] == MARKER_MODULE
            assert row["up_in_subtype"] in SUBTYPES and row["log2_fold_change"] > 0
    assert truth.loc["EPCAM", "up_in_subtype"] == "RDLS1"
    assert truth.loc["TRAC", "up_in_subtype"] == "RDLS2"
    assert truth.loc["PDGFRA", "up_in_subtype"] == "RDLS3"
    none = truth[truth["module"] == "none"]
    assert (none["log2_fold_change"] == 0).all() and not set(none.index) & set(MARKERS)
    # The observed fold changes of the markers follow the labels.
    normalised = counts_per_million(simulated.counts.set_index("gene")).loc[MARKERS].to_numpy()
    subtype = table["subtype"].to_numpy()
    observed = []
    for k, gene in enumerate(MARKERS):
        inside = truth.loc[gene, "up_in_subtype"]
        observed.append(np.log2(normalised[k, subtype == inside].mean()
                                / normalised[k, subtype != inside].mean()))  # fmt: skip
    expected = truth.loc[MARKERS, "log2_fold_change"].to_numpy()
    assert np.median(np.abs(np.array(observed) - expected)) <= 0.3


def test_generate_bulk_writes_the_composition_truth(tmp_path):
    plan = plan_cohort(scale="tiny", seed=5)
    genes = generate_bulk(plan, root=tmp_path / "a")
    generate_bulk(plan, root=tmp_path / "b")
    composition = pd.read_csv(tmp_path / "a/truth/bulk_composition.tsv", sep="\t")
    assert list(composition.columns) == ["sample_id", *CELL_TYPES]
    assert composition["sample_id"].tolist() == plan.bulk["sample_id"].tolist()
    assert np.allclose(composition[list(CELL_TYPES)].sum(axis=1), 1.0)
    written = pd.read_csv(tmp_path / "a/truth/bulk_genes.tsv", sep="\t", keep_default_na=False)
    assert written["gene"].tolist() == genes["gene"].tolist()
    for name in ("bulk/counts.tsv", "truth/bulk_composition.tsv", "truth/bulk_genes.tsv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _read_10x_h5(path):
    with h5py.File(path) as f:
        m = f["matrix"]
        shape = tuple(m["shape"][()])[::-1]  # cells x genes
        counts = sp.csr_matrix((m["data"][()], m["indices"][()], m["indptr"][()]), shape=shape)
        return counts, [g.decode() for g in m["features/name"][()]]


def test_a_signature_from_the_demo_single_cells_recovers_the_bulk_fractions(tmp_path, cohort):
    """The demo end to end: scRNA cells of each subtype -> signature -> NNLS on bulk."""
    _, simulated = cohort
    parts, labels = [], []
    for k, subtype in enumerate(SUBTYPES):
        cells = write_scrna_sample(
            out_path=tmp_path / f"{subtype}.h5",
            fmt="10x_h5",
            sample_id=subtype,
            subtype=subtype,
            n_cells=700,
            genes=gene_universe(1000),
            rng=item_rng(3, "scrna", k),
        )
        counts, genes = _read_10x_h5(tmp_path / f"{subtype}.h5")
        singlets = ((cells["cell_type"] != "doublet") & ~cells["low_quality"]).to_numpy()
        parts.append(counts[singlets])
        labels += cells.loc[singlets, "cell_type"].tolist()
    mean = mean_cpm_by_type(sp.vstack(parts), labels, genes=genes)
    bulk = simulated.counts.set_index("gene")
    markers = select_markers(mean, genes=bulk.index)
    assert set(MARKERS) <= set(markers.index)
    found = nnls_fractions(counts_per_million(bulk), mean.loc[markers.index])[list(CELL_TYPES)]
    truth = simulated.composition.set_index("sample_id")[list(CELL_TYPES)]
    assert pearsonr(found.to_numpy().ravel(), truth.to_numpy().ravel()).statistic >= 0.9
    for cell_type in ("epithelial", "T_NK", "fibroblast"):
        assert pearsonr(found[cell_type], truth[cell_type]).statistic >= 0.8, cell_type
