"""Differential expression with DESeq2's model (PyDESeq2) for one contrast between subtypes.

Contrasts are named ``<level>_vs_<reference>``:

- ``RDLS1_vs_rest``: one subtype against all other samples, from a design with a two-level
  factor (``rest`` is the reference);
- ``RDLS1_vs_RDLS2``: two subtypes, from the full design over every subtype (all samples
  with a subtype estimate the dispersions), RDLS2 the reference.

Positive log2 fold changes are higher in the first level. The design is
``~ covariates + group`` with the group last, as in DESeq2's convention; numeric covariates
are centred and scaled (as DESeq2 advises), text covariates are factors.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from rdls.compare import natural_key
from rdls.errors import InputError, some

log = logging.getLogger(__name__)

REST = "rest"
SEPARATOR = "_vs_"
RESULT_COLUMNS = ("gene", "baseMean", "log2FoldChange", "lfcSE", "pvalue", "padj")
SHRUNK_COLUMN = "log2FoldChange_shrunk"
_GROUP = "group"  # the factor's name inside the design formula


def contrasts(
    subtypes: Iterable[str], *, one_vs_rest: bool = True, pairwise: bool = True
) -> list[str]:
    """Names of the contrasts between ``subtypes``.

    Subtypes are taken in natural order (RDLS2 before RDLS10); empty values are ignored.
    One-vs-rest contrasts come first, then every pair with the earlier subtype as the tested
    level. With only two subtypes a one-vs-rest contrast is the pairwise one, so it is not
    repeated.

    Examples
    --------
    >>> contrasts(["RDLS2", "RDLS1", "RDLS3", "RDLS1"])
    ['RDLS1_vs_rest', 'RDLS2_vs_rest', 'RDLS3_vs_rest', 'RDLS1_vs_RDLS2', 'RDLS1_vs_RDLS3', 'RDLS2_vs_RDLS3']
    """  # noqa: E501
    levels = _levels(subtypes)
    names = []
    if one_vs_rest and len(levels) > 2:
        names += [f"{level}{SEPARATOR}{REST}" for level in levels]
    if pairwise:
        names += [f"{a}{SEPARATOR}{b}" for a, b in combinations(levels, 2)]
    return names


def parse_contrast(contrast: str, *, levels: Iterable[str] | None = None) -> tuple[str, str]:
    """The tested level and the reference (``"rest"`` for one-vs-rest) of a contrast name.

    Raises
    ------
    InputError
        When the name is not ``<level>_vs_<reference>``, or (with ``levels``) names a subtype
        not in ``levels``.
    """
    parts = contrast.split(SEPARATOR)
    if len(parts) != 2 or not all(parts) or parts[0] == REST:
        raise InputError(
            f"contrast '{contrast}' is not of the form '<subtype>_vs_<subtype>' or "
            "'<subtype>_vs_rest' (for example RDLS1_vs_rest or RDLS1_vs_RDLS2)."
        )
    level, reference = parts
    if level == reference:
        raise InputError(f"contrast '{contrast}' compares a subtype with itself.")
    if levels is None:
        return level, reference
    levels = _levels(levels)
    unknown = [p for p in parts if p not in levels and not (p == reference == REST)]
    if unknown:
        raise InputError(
            f"contrast '{contrast}' names subtype(s) {some(unknown)} that no sample with "
            f"counts has (subtypes: {some(levels, shown=10)}); use one of "
            f"{some(contrasts(levels), shown=8)}."
        )
    return level, reference


def contrast_groups(subtype: pd.Series, contrast: str) -> tuple[pd.Series, str, str]:
    """The design's group of each sample for one contrast.

    Parameters
    ----------
    subtype
        Subtype per sample (index: sample IDs); samples without one must be left out first.
    contrast
        ``<level>_vs_rest`` or ``<level>_vs_<reference>``.

    Returns
    -------
    group, level, reference
        For one-vs-rest the group is the level or ``"rest"``; for a pairwise contrast it is
        the subtype itself (the full design).
    """
    level, reference = parse_contrast(contrast, levels=subtype.unique())
    if reference == REST:
        group = subtype.where(subtype == level, REST)
        if (group == REST).sum() == 0:
            raise InputError(f"contrast '{contrast}': every sample is {level}, no rest.")
        return group.astype(str), level, reference
    return subtype.astype(str), level, reference


def differential_expression(
    counts: pd.DataFrame,
    design: pd.DataFrame,
    *,
    group: str,
    level: str,
    reference: str,
    covariates: Sequence[str] = (),
    alpha: float = 0.05,
    lfc_shrink: bool = False,
    refit_cooks: bool = True,
    cooks_filter: bool = True,
    independent_filter: bool = True,
    fit_type: str = "parametric",
    threads: int = 1,
) -> pd.DataFrame:
    """DESeq2's Wald test of ``level`` against ``reference`` for every gene.

    Parameters
    ----------
    counts
        Integer counts, genes x samples.
    design
        One row per sample (index: the samples to use, all in ``counts``) with the column
        ``group`` and every covariate.
    group
        Column of ``design`` holding the compared factor.
    level, reference
        Levels of ``group``: positive log2 fold changes are higher in ``level``.
    covariates
        Columns of ``design`` added to the design before the group, e.g. ``["batch"]``. A
        covariate with a single value among the samples is left out (with a log message).
    alpha
        Significance level that independent filtering optimises (DESeq2's ``alpha``).
    lfc_shrink
        Also report apeGLM-shrunk log2 fold changes (``log2FoldChange_shrunk``); p-values and
        ``lfcSE`` stay those of the unshrunk estimate, as in DESeq2.
    refit_cooks, cooks_filter, independent_filter, fit_type
        As in DESeq2: refit genes with outlier counts (groups of >= 7 samples), set p-values
        of genes with outliers to NaN, filter by mean count to optimise the number of
        discoveries, and the form of the dispersion trend ("parametric" or "mean").
    threads
        Processes for the gene-wise fits.

    Returns
    -------
    pandas.DataFrame
        One row per gene in the order of ``counts``: ``gene``, ``baseMean``,
        ``log2FoldChange``, ``lfcSE``, ``pvalue``, ``padj`` and, with ``lfc_shrink``,
        ``log2FoldChange_shrunk``.
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    metadata, formula = _design_frame(design, group=group, level=level, reference=reference,
                                      covariates=covariates)  # fmt: skip
    data = counts.loc[:, metadata.index].T
    inference = DefaultInference(n_cpus=max(1, int(threads)))
    with _single_threaded_blas():
        with warnings.catch_warnings():  # a rank-deficient design is reported below
            warnings.filterwarnings("ignore", message="The design matrix is not full rank")
            dds = DeseqDataSet(counts=data, metadata=metadata, design=formula,
                               fit_type=fit_type, refit_cooks=refit_cooks, inference=inference,
                               quiet=True)  # fmt: skip
        _check_rank(dds.obsm["design_matrix"], covariates)
        dds.deseq2()
        stats = DeseqStats(dds, contrast=[_GROUP, level, reference], alpha=alpha,
                           cooks_filter=cooks_filter, independent_filter=independent_filter,
                           inference=inference, quiet=True)  # fmt: skip
        stats.summary()
        result = stats.results_df.copy()
        if lfc_shrink:
            stats.lfc_shrink(coeff=f"{_GROUP}[T.{level}]")
            result[SHRUNK_COLUMN] = stats.results_df["log2FoldChange"]
    result.index.name = "gene"
    columns = [*RESULT_COLUMNS[1:], *([SHRUNK_COLUMN] if lfc_shrink else [])]
    table = result[columns].reset_index()
    n_sig = int((table["padj"] < alpha).sum())
    log.info("%s vs %s: %d genes tested, %d with padj < %g", level, reference, len(table),
             n_sig, alpha)  # fmt: skip
    return table


def variance_stabilised(
    counts: pd.DataFrame, *, fit_type: str = "parametric", threads: int = 1
) -> pd.DataFrame:
    """DESeq2's blind variance-stabilising transformation (``vst(blind=TRUE)``).

    Parameters
    ----------
    counts
        Integer counts, genes x samples.

    Returns
    -------
    pandas.DataFrame
        VST values (log2-like scale), genes x samples.
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference

    metadata = pd.DataFrame(index=counts.columns.astype(str))
    inference = DefaultInference(n_cpus=max(1, int(threads)))
    with _single_threaded_blas():
        dds = DeseqDataSet(counts=counts.T, metadata=metadata, design="~1", fit_type=fit_type,
                           inference=inference, quiet=True)  # fmt: skip
        dds.vst(use_design=False)
    return pd.DataFrame(np.asarray(dds.layers["vst_counts"]).T, index=counts.index,
                        columns=counts.columns)  # fmt: skip


def _design_frame(
    design: pd.DataFrame, *, group: str, level: str, reference: str, covariates: Sequence[str]
) -> tuple[pd.DataFrame, str]:
    """The metadata PyDESeq2 gets (columns renamed to safe names) and its formula."""
    missing = [c for c in (group, *covariates) if c not in design.columns]
    if missing:
        raise InputError(
            f"design lacks column(s) {some(missing)}; name covariates that are columns of "
            "the bulk sheet or the subjects sheet."
        )
    groups = design[group].astype(str)
    for name in (level, reference):
        if not (groups == name).any():
            raise InputError(f"no sample of group '{name}' among the samples compared.")
    others = [g for g in _levels(groups) if g not in (level, reference)]
    metadata = pd.DataFrame(index=design.index.astype(str))
    terms = []
    for i, column in enumerate(covariates):
        values = design[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            raise InputError(
                f"covariate '{column}' is empty for sample(s) {some(design.index[empty])}. "
                "Fill it in the sheet, or drop the covariate from the config (bulk.deseq2"
                ".covariates)."
            )
        numbers = pd.to_numeric(values, errors="coerce")
        name = f"covariate{i}"
        if numbers.notna().all() and not pd.api.types.is_bool_dtype(values):
            if numbers.std() == 0 or len(numbers) < 2:
                log.info("covariate '%s' is constant over these samples: left out", column)
                continue
            metadata[name] = ((numbers - numbers.mean()) / numbers.std()).to_numpy()
        else:
            text = values.astype(str)
            if text.nunique() < 2:
                log.info("covariate '%s' has one value over these samples: left out", column)
                continue
            metadata[name] = pd.Categorical(text.to_numpy(), categories=_levels(text))
        terms.append(name)
    metadata[_GROUP] = pd.Categorical(groups.to_numpy(), categories=[reference, level, *others])
    return metadata, "~" + " + ".join([*terms, _GROUP])


def _check_rank(matrix: pd.DataFrame, covariates: Sequence[str]) -> None:
    values = np.asarray(matrix, dtype=float)
    if values.shape[0] <= values.shape[1]:
        raise InputError(
            f"{values.shape[0]} samples for a design of {values.shape[1]} coefficients "
            f"(covariates {some(covariates) if covariates else 'none'} + subtype): no "
            "replicates are left to estimate the dispersions. Add samples, or drop covariates "
            "from bulk.deseq2.covariates."
        )
    if np.linalg.matrix_rank(values) < values.shape[1]:
        raise InputError(
            f"the design (covariates {some(covariates) if covariates else 'none'} + subtype) "
            "is not of full rank: a covariate is confounded with the compared groups (for "
            "example every sample of one subtype in one batch) or with another covariate. "
            "Drop that covariate from bulk.deseq2.covariates."
        )


def _levels(values: Iterable) -> list[str]:
    present = {str(v) for v in values if v is not None and not pd.isna(v) and str(v) != ""}
    return sorted(present, key=natural_key)


def _single_threaded_blas():
    """BLAS threads off: DESeq2's tiny per-gene fits only lose time to them."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)
