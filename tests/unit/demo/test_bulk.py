"""The demo bulk RNA-seq generator: planted modules recoverable, nuisance only noise."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from rdls.demo._bulk import write_bulk
from rdls.demo._genes import BULK_MODULES, gene_universe, planted_genes
from rdls.demo._plan import SUBTYPES, item_rng

PER_SUBTYPE = 8
N_GENES = 2000
SHIPPED = Path(__file__).resolve().parents[3] / "workflow/scripts/rdls/demo/gene_symbols.txt"


def _samples(per_subtype=PER_SUBTYPE):
    n = per_subtype * len(SUBTYPES)
    return pd.DataFrame(
        {
            "sample_id": [f"B{i + 1:03d}" for i in range(n)],
            "subject_id": [f"S{i + 1:04d}" for i in range(n)],
            "batch": [f"batch{i % 2 + 1}" for i in range(n)],
            "subtype": np.repeat(SUBTYPES, per_subtype),
        }
    )


def _write(path, *, n_genes=N_GENES, seed=7):
    samples = _samples()
    truth = write_bulk(
        samples=samples, out_counts=path, n_genes=n_genes, rng=item_rng(seed, "bulk", 0)
    )
    return samples, truth, pd.read_csv(path, sep="\t", index_col="gene")


def _median_of_ratios(counts):
    """DESeq2's size factors, on the genes expressed in every sample."""
    logs = np.log(counts[(counts > 0).all(axis=1)])
    return np.exp(np.median(logs - logs.mean(axis=1, keepdims=True), axis=0))


def _log2_ratio_vs_rest(normalised, subtypes, subtype):
    inside = normalised[:, subtypes == subtype].mean(axis=1)
    rest = normalised[:, subtypes != subtype].mean(axis=1)
    return np.log2(inside / rest)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    samples, truth, counts = _write(tmp_path_factory.mktemp("bulk") / "counts.tsv")
    values = counts.to_numpy().astype(float)
    return samples, truth, counts, values / _median_of_ratios(values)


def test_planted_genes_carry_their_fold_changes(cohort):
    samples, truth, _, normalised = cohort
    subtypes = samples["subtype"].to_numpy()
    planted = (truth["module"] != "none").to_numpy()
    ratios = {s: _log2_ratio_vs_rest(normalised[planted], subtypes, s) for s in SUBTYPES}
    up_in = truth.loc[planted, "up_in_subtype"]
    observed = np.array([ratios[subtype][k] for k, subtype in enumerate(up_in)])
    expected = truth.loc[planted, "log2_fold_change"].to_numpy()
    assert spearmanr(observed, expected).statistic >= 0.7
    assert np.median(np.abs(observed - expected)) <= 0.35


def test_unplanted_genes_do_not_differ_between_subtypes(cohort):
    samples, truth, _, normalised = cohort
    # Like DESeq2's independent filtering: genes with a handful of reads are all noise.
    keep = (truth["module"] == "none").to_numpy() & (normalised.mean(axis=1) >= 10)
    for subtype in SUBTYPES:
        ratio = _log2_ratio_vs_rest(normalised[keep], samples["subtype"].to_numpy(), subtype)
        assert np.median(np.abs(ratio)) < 0.2, subtype


def test_expected_base_means_match_the_data(cohort):
    _, truth, _, normalised = cohort
    rho = spearmanr(normalised.mean(axis=1), truth["base_mean_expected"]).statistic
    assert rho >= 0.95


def test_counts_are_integers_on_real_gene_names(cohort):
    samples, truth, counts, _ = cohort
    assert list(counts.columns) == samples["sample_id"].tolist()
    assert counts.index.tolist() == truth["gene"].tolist()
    assert len(counts) == N_GENES
    assert counts.index.is_unique
    assert all(np.issubdtype(t, np.integer) for t in counts.dtypes)
    assert (counts.to_numpy() >= 0).all()
    known = set(SHIPPED.read_text().split()) | set(planted_genes())
    assert set(counts.index) <= known
    mean_counts = counts.mean(axis=1)
    assert np.sort(mean_counts)[-20] >= 1000  # the top genes reach thousands of counts
    assert (mean_counts < 10).mean() >= 0.1  # and many genes are low-count


def test_truth_table_names_every_module(cohort):
    _, truth, _, _ = cohort
    assert list(truth.columns) == [
        "gene", "module", "up_in_subtype", "log2_fold_change", "base_mean_expected"
    ]  # fmt: skip
    for module, (subtype, genes) in BULK_MODULES.items():
        rows = truth[truth["module"] == module]
        assert sorted(rows["gene"]) == sorted(genes)
        assert (rows["up_in_subtype"] == subtype).all()
        assert rows["log2_fold_change"].between(1.0, 2.5).all()
    unplanted = truth[truth["module"] == "none"]
    assert (unplanted["log2_fold_change"] == 0).all()
    assert (unplanted["up_in_subtype"] == "").all()


def test_same_seed_same_file(tmp_path):
    _write(tmp_path / "a.tsv", n_genes=500)
    _write(tmp_path / "b.tsv", n_genes=500)
    _write(tmp_path / "c.tsv", n_genes=500, seed=8)
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (tmp_path / "a.tsv").read_bytes() != (tmp_path / "c.tsv").read_bytes()


def test_unknown_subtype_is_refused(tmp_path):
    samples = _samples().assign(subtype="CMS4")
    with pytest.raises(ValueError, match="unknown subtype"):
        write_bulk(
            samples=samples, out_counts=tmp_path / "x.tsv", n_genes=500,
            rng=np.random.default_rng(0),
        )  # fmt: skip


def test_gene_universe_holds_planted_genes_and_caps_at_real_symbols():
    shipped = set(SHIPPED.read_text().split())
    small = gene_universe(1000)
    assert len(small) == 1000
    assert set(planted_genes()) <= set(small)
    assert gene_universe(1000) == small  # every scRNA sample must get the same features
    everything = gene_universe(20000)
    assert len(everything) == len(shipped | set(planted_genes()))
    assert gene_universe(10) == sorted(planted_genes())


def test_deseq2_finds_the_planted_genes(tmp_path):
    pytest.importorskip("pydeseq2")
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    samples, truth, counts = _write(tmp_path / "counts.tsv", n_genes=1000)
    # The planted genes and a sample of the others: DESeq2's per-gene fits dominate the time.
    unplanted = truth.loc[truth["module"] == "none", "gene"].sample(300, random_state=0)
    planted = truth.loc[truth["module"] != "none", "gene"]
    inference = DefaultInference(n_cpus=1)
    dds = DeseqDataSet(
        counts=counts.loc[[*planted, *unplanted]].T, metadata=samples.set_index("sample_id"),
        design="~batch + subtype", inference=inference, quiet=True,
    )  # fmt: skip
    # DESeq2 fits each gene with tiny matrix operations, for which BLAS threads only add
    # overhead (three times the run time on a busy machine).
    with threadpool_limits(limits=1):
        dds.deseq2()
        for module, (subtype, genes) in BULK_MODULES.items():
            other = next(s for s in SUBTYPES if s != subtype)
            stats = DeseqStats(
                dds, contrast=["subtype", subtype, other], inference=inference, quiet=True
            )
            stats.summary()
            result = stats.results_df
            found = (result.loc[list(genes), "padj"] < 0.05) & (
                result.loc[list(genes), "log2FoldChange"] > 0
            )
            assert found.mean() >= 0.8, module
            assert (result.loc[unplanted, "padj"] < 0.05).mean() <= 0.05, module
