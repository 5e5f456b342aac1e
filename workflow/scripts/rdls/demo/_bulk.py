"""Synthetic bulk RNA-seq counts with planted subtype modules and cell-type mixtures.

Counts follow the model DESeq2 assumes, so that a correct analysis recovers the planted fold
changes: negative binomial counts with per-sample size factors and a gene-wise dispersion
around the trend ``alpha = a1 / mu + a0``. On top of the subtype modules sit the nuisance
effects a real cohort has: a mild batch effect and a weak continuous subject-level programme.

Each sample is also a mixture of the nine cell types of the scRNA-seq demo: its composition
is drawn around its subtype's expected composition (the same Dirichlet as a scRNA-seq
patient's), and the canonical cell-type markers (``CELL_TYPE_MARKERS``) follow that mixture
of the very per-type profiles the scRNA-seq demo draws its cells from
(:func:`rdls.demo._scrna._type_profiles`). A signature matrix built from the demo's
single cells therefore deconvolves the bulk samples into their planted fractions. Cell
fractions are taken as mRNA fractions (each cell type contributes in proportion to its
fraction, not to its RNA content), so the planted fractions are what deconvolution estimates.

Only the markers carry the mixture; every other gene is modelled as if composition had been
regressed out, so that the modules' planted fold changes stay exactly what the truth table
says. Markers that are also module genes (CD3E, CD3D, CD2, CD8A, NKG7, CD79A, MS4A1, CD19 in
the immune module; COL1A1, COL1A2, DCN, LUM, FAP, PDGFRB, ACTA2 in the stromal one) get their
subtype difference from the mixture alone (no module effect on top); they keep their module
in the truth table, with the log2 fold change the expected compositions imply (about 1.2 to
1.9, in the module's direction). The other markers get module ``cell_type_marker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.demo._genes import (
    BULK_MODULES,
    CELL_TYPE_MARKERS,
    CELL_TYPES,
    MITOCHONDRIAL_GENES,
    gene_universe,
)
from rdls.demo._plan import SUBTYPES
from rdls.demo._scrna import COMPOSITION_CONCENTRATION, SUBTYPE_COMPOSITION, _type_profiles

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

# Module label, in the truth table, of the cell-type markers that are in no module.
MARKER_MODULE = "cell_type_marker"

_REQUIRED_COLUMNS = ("sample_id", "subject_id", "batch", "subtype")


@dataclass(frozen=True)
class BulkCohort:
    """A simulated bulk RNA-seq cohort and its planted truth.

    Attributes
    ----------
    counts
        Column ``gene``, then one integer column per sample, as written to the counts TSV.
    genes
        The per-gene truth (see :func:`write_bulk`).
    composition
        Column ``sample_id``, then one column per cell type (``CELL_TYPES`` order): the
        sample's planted cell fractions, summing to 1.
    """

    counts: pd.DataFrame
    genes: pd.DataFrame
    composition: pd.DataFrame


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
        One row per gene: ``gene``, ``module`` (``immune``, ``stromal``, ``tgfb_exclusion``,
        ``cell_type_marker`` or ``none``), ``up_in_subtype`` (empty for unplanted genes),
        ``log2_fold_change`` (of that subtype against the mean of the other two; 0 for
        unplanted genes; for markers, the one the expected compositions imply) and
        ``base_mean_expected`` (the expected DESeq2 baseMean: mean normalised count over these
        samples, without noise and nuisance effects). The sample compositions are in
        :func:`simulate_bulk`'s result.
    """
    cohort = simulate_bulk(samples=samples, n_genes=n_genes, rng=rng)
    cohort.counts.to_csv(out_counts, sep="\t", index=False)
    return cohort.genes


def simulate_bulk(*, samples: pd.DataFrame, n_genes: int, rng: np.random.Generator) -> BulkCohort:
    """Counts, per-gene truth and per-sample composition of a bulk cohort (nothing written).

    Parameters are those of :func:`write_bulk`.
    """
    _check_samples(samples)
    genes = gene_universe(n_genes, rng=rng)
    truth = _plant_modules(genes, rng)
    base_mean = _draw_base_means(truth, rng)
    subtype = samples["subtype"].to_numpy()
    composition = _draw_compositions(subtype, rng)

    up = truth["up_in_subtype"].to_numpy()[:, None] == subtype[None, :]
    log_effect = np.log(2.0) * truth["log2_fold_change"].to_numpy()[:, None] * up
    marker = truth["gene"].isin(_marker_genes()).to_numpy()
    log_effect[marker] = 0.0  # markers differ between subtypes through the mixture alone
    log_effect += _batch_effects(samples["batch"].to_numpy(), len(genes), rng)
    log_effect += _subject_effects(samples["subject_id"].to_numpy(), len(genes), rng)
    size_factors = np.exp(rng.normal(0.0, SIZE_FACTOR_LOG_SD, len(samples)))
    expression = np.repeat(base_mean[:, None], len(samples), axis=1)
    mixtures = _marker_mixtures(genes, base_mean)
    expression[marker] = mixtures[marker] @ composition.T
    mean = expression * np.exp(log_effect) * size_factors[None, :]

    # Dispersions follow the trend at each gene's mean (the mixture's, for markers).
    counts = _negative_binomial(mean, _dispersions(expression.mean(axis=1), rng), rng)
    table = pd.DataFrame(counts, columns=samples["sample_id"].tolist())
    table.insert(0, "gene", genes)

    module_effect = np.exp2(truth["log2_fold_change"].to_numpy()[:, None] * up)
    truth["base_mean_expected"] = base_mean * module_effect.mean(axis=1)
    _label_markers(truth, mixtures, subtype)
    fractions = pd.DataFrame(composition, columns=list(CELL_TYPES))
    fractions.insert(0, "sample_id", samples["sample_id"].to_numpy())
    return BulkCohort(counts=table, genes=truth, composition=fractions)


def _marker_genes() -> list[str]:
    return list(dict.fromkeys(g for markers in CELL_TYPE_MARKERS.values() for g in markers))


def _draw_compositions(subtype: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Samples x cell types: each sample's fractions, Dirichlet around its subtype's."""
    expected = {s: np.array([SUBTYPE_COMPOSITION[s][t] for t in CELL_TYPES]) for s in SUBTYPES}
    return np.array([rng.dirichlet(COMPOSITION_CONCENTRATION * expected[s]) for s in subtype])


def _marker_mixtures(genes: list[str], base_mean: np.ndarray) -> np.ndarray:
    """Genes x cell types: a marker's expected count per unit fraction of each type.

    The per-type profiles are shares of a cell's transcripts, so a marker's count is its
    profile share times the library: the expected count total at size factor 1. Rows of
    genes that are not markers are zero.
    """
    profiles, _, _ = _type_profiles(tuple(genes))
    mixtures = np.zeros((len(genes), len(CELL_TYPES)))
    rows = np.isin(genes, _marker_genes())
    mixtures[rows] = base_mean.sum() * profiles[:, rows].T
    return mixtures


def _label_markers(truth: pd.DataFrame, mixtures: np.ndarray, subtype: np.ndarray) -> None:
    """Truth of the markers: the fold changes and base means the expected compositions give.

    A marker's ``up_in_subtype`` is its module's subtype, or for markers outside the modules
    the subtype where it is highest against the other two; ``log2_fold_change`` is that
    subtype's expected expression over the mean of the other two subtypes'.
    """
    expected = np.array([[SUBTYPE_COMPOSITION[s][t] for t in CELL_TYPES] for s in SUBTYPES])
    rows = np.flatnonzero(truth["gene"].isin(_marker_genes()).to_numpy())
    by_subtype = mixtures[rows] @ expected.T  # markers x subtypes
    others = (by_subtype.sum(axis=1, keepdims=True) - by_subtype) / (len(SUBTYPES) - 1)
    log2_ratio = np.log2(by_subtype / others)
    column = {s: k for k, s in enumerate(SUBTYPES)}
    for row, ratios, levels in zip(rows, log2_ratio, by_subtype, strict=True):
        if truth.at[row, "module"] == "none":
            truth.at[row, "module"] = MARKER_MODULE
            truth.at[row, "up_in_subtype"] = SUBTYPES[int(np.argmax(ratios))]
        k = column[truth.at[row, "up_in_subtype"]]
        truth.at[row, "log2_fold_change"] = ratios[k]
        truth.at[row, "base_mean_expected"] = np.mean([levels[column[s]] for s in subtype])


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
