"""Synthetic bulk RNA-seq counts with planted subtype modules.

Counts follow the model DESeq2 assumes, so that a correct analysis recovers the planted fold
changes: negative binomial counts with per-sample size factors and a gene-wise dispersion
around the trend ``alpha = a1 / mu + a0``. On top of the subtype modules sit the nuisance
effects a real cohort has: a mild batch effect and a weak continuous subject-level programme.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rdls.demo._genes import BULK_MODULES, MITOCHONDRIAL_GENES, gene_universe
from rdls.demo._plan import SUBTYPES

# Mean counts at an average size factor: log-normal, so that most genes are low-count and the
# top genes reach several thousand counts, as in a ~20M-read tumour library.
LOG_MEAN_COUNT = (4.0, 1.6)  # natural-log mean and sd
# Planted genes are well expressed in tumour tissue (immune, collagen and TGF-beta genes), so
# their effects are measurable at cohort sizes of tens of samples.
LOG_MEAN_COUNT_PLANTED = (6.0, 1.0)
# Mitochondrial transcripts are among the most abundant in bulk libraries.
LOG_MEAN_COUNT_MITOCHONDRIAL = (8.5, 0.5)
LOG2_FOLD_CHANGE_RANGE = (1.0, 2.5)
SIZE_FACTOR_LOG_SD = 0.25
DISPERSION_ASYMPTOTE = 0.07  # a0: biological variation between patients
DISPERSION_EXTRA_POISSON = 2.0  # a1: how fast dispersion grows for low-count genes
DISPERSION_LOG_SD = 0.4  # scatter of gene-wise dispersions around the trend
BATCH_LOG_SD = 0.15
SUBJECT_LOADING_LOG_SD = 0.1

_REQUIRED_COLUMNS = ("sample_id", "subject_id", "batch", "subtype")


def write_bulk(
    *, samples: pd.DataFrame, out_counts: str | Path, n_genes: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Write a genes x samples count matrix with planted subtype modules.

    Parameters
    ----------
    samples
        One row per sample with columns ``sample_id``, ``subject_id``, ``batch`` and
        ``subtype`` (the planted truth, one of ``SUBTYPES``).
    out_counts
        TSV to write: column ``gene``, then one integer column per ``sample_id`` in the order
        of ``samples``.
    n_genes
        Genes wanted; see :func:`rdls.demo._genes.gene_universe` for the cap at the shipped
        real symbols.
    rng
        The only source of randomness: the same generator state gives the same file.

    Returns
    -------
    pandas.DataFrame
        One row per gene: ``gene``, ``module`` (``immune``, ``stromal``, ``tgfb_exclusion`` or
        ``none``), ``up_in_subtype`` (empty for unplanted genes), ``log2_fold_change`` (of the
        module's subtype against the other two; 0 for unplanted genes) and
        ``base_mean_expected`` (the expected DESeq2 baseMean: mean normalised count over these
        samples, without noise and nuisance effects).
    """
    _check_samples(samples)
    genes = gene_universe(n_genes, rng=rng)
    truth = _plant_modules(genes, rng)
    base_mean = _draw_base_means(truth, rng)

    subtype = samples["subtype"].to_numpy()
    up = truth["up_in_subtype"].to_numpy()[:, None] == subtype[None, :]
    log_effect = np.log(2.0) * truth["log2_fold_change"].to_numpy()[:, None] * up
    log_effect += _batch_effects(samples["batch"].to_numpy(), len(genes), rng)
    log_effect += _subject_effects(samples["subject_id"].to_numpy(), len(genes), rng)
    size_factors = np.exp(rng.normal(0.0, SIZE_FACTOR_LOG_SD, len(samples)))
    mean = base_mean[:, None] * np.exp(log_effect) * size_factors[None, :]

    counts = _negative_binomial(mean, _dispersions(base_mean, rng), rng)
    table = pd.DataFrame(counts, columns=samples["sample_id"].tolist())
    table.insert(0, "gene", genes)
    table.to_csv(out_counts, sep="\t", index=False)

    module_effect = np.exp2(truth["log2_fold_change"].to_numpy()[:, None] * up)
    truth["base_mean_expected"] = base_mean * module_effect.mean(axis=1)
    return truth


def _check_samples(samples: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"bulk samples lack column(s) {', '.join(missing)}")
    if samples["sample_id"].duplicated().any():
        raise ValueError("bulk samples have duplicate sample_id values")
    unknown = sorted(set(samples["subtype"]) - set(SUBTYPES))
    if unknown:
        raise ValueError(f"bulk samples have unknown subtype(s) {unknown}; use {SUBTYPES}")


def _plant_modules(genes: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """Module membership and a planted log2 fold change per gene (0 outside modules)."""
    truth = pd.DataFrame(
        {"gene": genes, "module": "none", "up_in_subtype": "", "log2_fold_change": 0.0}
    )
    for module, (subtype, module_genes) in BULK_MODULES.items():
        rows = truth["gene"].isin(module_genes).to_numpy()
        truth.loc[rows, "module"] = module
        truth.loc[rows, "up_in_subtype"] = subtype
        truth.loc[rows, "log2_fold_change"] = rng.uniform(*LOG2_FOLD_CHANGE_RANGE, rows.sum())
    return truth


def _draw_base_means(truth: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Mean count per gene in the subtypes where its module is not up."""
    log_mean = rng.normal(*LOG_MEAN_COUNT, len(truth))
    planted = (truth["module"] != "none").to_numpy()
    log_mean[planted] = rng.normal(*LOG_MEAN_COUNT_PLANTED, planted.sum())
    mitochondrial = truth["gene"].isin(MITOCHONDRIAL_GENES).to_numpy()
    log_mean[mitochondrial] = rng.normal(*LOG_MEAN_COUNT_MITOCHONDRIAL, mitochondrial.sum())
    return np.exp(log_mean)


def _batch_effects(batch: np.ndarray, n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """Gene-wise log shifts per batch, centred per gene so baseMean stays unbiased."""
    names, index = np.unique(batch, return_inverse=True)
    shifts = rng.normal(0.0, BATCH_LOG_SD, (n_genes, len(names)))
    shifts -= shifts.mean(axis=1, keepdims=True)
    return shifts[:, index]


def _subject_effects(subject: np.ndarray, n_genes: int, rng: np.random.Generator) -> np.ndarray:
    """A weak continuous programme (say tumour purity): one score per subject, gene loadings."""
    names, index = np.unique(subject, return_inverse=True)
    scores = rng.standard_normal(len(names))
    loadings = rng.normal(0.0, SUBJECT_LOADING_LOG_SD, n_genes)
    return loadings[:, None] * scores[None, index]


def _dispersions(base_mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gene-wise dispersion: DESeq2's parametric trend with log-normal scatter."""
    trend = DISPERSION_EXTRA_POISSON / base_mean + DISPERSION_ASYMPTOTE
    return trend * np.exp(rng.normal(0.0, DISPERSION_LOG_SD, len(base_mean)))


def _negative_binomial(
    mean: np.ndarray, dispersion: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Negative binomial counts as a gamma-Poisson mixture (variance mu + alpha * mu^2)."""
    shape = 1.0 / dispersion[:, None]
    rate = rng.gamma(np.broadcast_to(shape, mean.shape), mean / shape)
    return rng.poisson(rate)
