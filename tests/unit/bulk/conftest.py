"""Small synthetic bulk cohorts with planted effects, shared by the bulk tests."""

import numpy as np
import pandas as pd
import pytest

GROUPS = ("RDLS1", "RDLS2", "RDLS3")


def planted_counts(
    *, per_group=6, n_genes=300, n_up=20, log2_fold_change=2.0, seed=0, up_in="RDLS1"
):
    """Negative binomial counts (genes x samples) with ``n_up`` genes up in ``up_in``.

    Returns the counts, the bulk sheet and the assignments of the samples' subjects.
    """
    rng = np.random.default_rng(seed)
    subtype = np.repeat(GROUPS, per_group)
    n = len(subtype)
    base = np.exp(rng.normal(5.0, 1.0, n_genes))
    effect = np.zeros(n_genes)
    effect[:n_up] = log2_fold_change
    log_mean = np.log(base)[:, None] + np.log(2) * effect[:, None] * (subtype == up_in)[None, :]
    size_factors = np.exp(rng.normal(0, 0.2, n))
    mean = np.exp(log_mean) * size_factors
    dispersion = 0.05 + 1.0 / base
    shape = 1.0 / dispersion[:, None]
    counts = rng.poisson(rng.gamma(np.broadcast_to(shape, mean.shape), mean / shape))
    samples = [f"B{i + 1:02d}" for i in range(n)]
    genes = [f"UP{i}" if i < n_up else f"G{i}" for i in range(n_genes)]
    table = pd.DataFrame(counts, index=pd.Index(genes, name="gene"), columns=samples)
    sheet = pd.DataFrame({"sample_id": samples, "subject_id": [f"P{i + 1:02d}" for i in range(n)],
                          "batch": [f"b{i % 2}" for i in range(n)]})  # fmt: skip
    assignments = pd.DataFrame({"subject_id": sheet["subject_id"], "cohort": "biological",
                                "subtype": subtype, "confidence": 1.0,
                                "source": "consensus"})  # fmt: skip
    return table, sheet, assignments


@pytest.fixture(scope="session")
def planted():
    return planted_counts()


def write_cohort(folder, counts, sheet, assignments):
    """The three input files of the bulk steps; returns their paths."""
    paths = {"counts": folder / "counts.tsv", "sheet": folder / "bulk.tsv",
             "assignments": folder / "assignments.tsv"}  # fmt: skip
    counts.reset_index().to_csv(paths["counts"], sep="\t", index=False)
    sheet.to_csv(paths["sheet"], sep="\t", index=False)
    assignments.to_csv(paths["assignments"], sep="\t", index=False)
    return paths
