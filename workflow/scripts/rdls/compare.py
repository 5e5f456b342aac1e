"""Values compared across subtypes, the same way in every branch that compares them.

Kruskal-Wallis across the subtypes, then Mann-Whitney U for every pair with Benjamini-Hochberg
adjustment within each measure, on one value per subject (a subject's slides or samples are
averaged first, so that a subject with several counts once). Subtypes are ordered naturally
(RDLS2 before RDLS10).

Consensus clustering may find no significant subtypes: every subject's subtype is then
``"none"`` (:data:`NO_STRUCTURE`) and ``results/subtypes/consensus/structure.json`` says why.
``"none"`` is not a subtype: :func:`subtype_levels` leaves it out, and every comparison by
subtype asks :func:`nothing_to_compare` first, so that with fewer than two subtypes it writes
its outputs with a note saying why instead of tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

TEST_COLUMNS = ("metric", "comparison", "test", "statistic", "p_value", "p_adjusted", "note")
# The subtype of every subject when consensus clustering finds no significant subtypes, and of
# subjects the workflow could not type ("unassigned", single cells of subjects without MRI).
NO_STRUCTURE = "none"
NOT_SUBTYPES = (NO_STRUCTURE, "unassigned")
NO_SUBTYPES_NOTE = "no significant subtypes: nothing to compare by subtype"


def natural_key(value) -> tuple:
    """Sort key that orders "RDLS2" before "RDLS10"."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def subtype_levels(values) -> list[str]:
    """The subtypes among ``values`` in natural order.

    Missing and empty values, ``"none"`` (no significant subtypes) and ``"unassigned"`` are
    not subtypes and are left out.

    Examples
    --------
    >>> subtype_levels(["RDLS10", "RDLS2", None, "none", "RDLS2"])
    ['RDLS2', 'RDLS10']
    """
    found = {str(v).strip() for v in pd.Series(list(values), dtype=object).dropna()}
    return sorted(found - {"", *NOT_SUBTYPES}, key=natural_key)


def nothing_to_compare(values) -> str:
    """Why ``values`` (each subject's subtype) cannot be compared by subtype; ``""`` if they can.

    Comparisons need at least two subtypes. All ``"none"``: consensus clustering found no
    significant subtypes (:data:`NO_SUBTYPES_NOTE`).

    Examples
    --------
    >>> nothing_to_compare(["none", "none"])
    'no significant subtypes: nothing to compare by subtype'
    >>> nothing_to_compare(["RDLS1", "RDLS1"])
    'one subtype only (RDLS1): nothing to compare by subtype'
    >>> nothing_to_compare(["RDLS1", "RDLS2"])
    ''
    """
    values = [str(v).strip() for v in pd.Series(list(values), dtype=object).dropna()]
    levels = subtype_levels(values)
    if len(levels) >= 2:
        return ""
    if len(levels) == 1:
        return f"one subtype only ({levels[0]}): nothing to compare by subtype"
    if NO_STRUCTURE in values:
        return NO_SUBTYPES_NOTE
    return "no subject has a subtype: nothing to compare by subtype"


def compare_by_subtype(
    table: pd.DataFrame,
    *,
    columns: Sequence[str],
    group: str = "subtype",
    subject: str = "subject_id",
    what: str = "table to compare",
) -> pd.DataFrame:
    """Kruskal-Wallis across subtypes and pairwise Mann-Whitney U per column.

    Parameters
    ----------
    table
        One row per slide or sample with ``subject``, ``group`` and ``columns``; rows
        without a group are left out.
    columns
        The measures to compare.
    what
        What ``table`` is, for the message when a column is missing.

    Returns
    -------
    pandas.DataFrame
        One row per measure and comparison: ``metric``, ``comparison`` (``all`` or
        ``RDLS1 vs RDLS2``), ``test``, ``statistic``, ``p_value``, ``p_adjusted`` (pairs
        only), ``note``, then ``median_<subtype>`` on the ``all`` rows. A measure present in
        one subtype gets its ``all`` row with the median and no test, one in none no row; a
        measure without spread gets no Kruskal-Wallis statistic. With fewer than two
        subtypes in ``table`` the ``note`` says why there is no test
        (:func:`nothing_to_compare`); with no significant subtypes (all ``"none"``) every
        measure gets one ``all`` row with that note and no median.
    """
    from scipy import stats  # here: the report and parse time import this module without it

    missing = [c for c in (subject, group, *columns) if c not in table.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {some(missing)}")
    note = nothing_to_compare(table[group])
    known = table[table[group].astype(str).isin(subtype_levels(table[group]))]
    per_subject = known.groupby([subject, group], as_index=False)[list(columns)].mean()
    groups = sorted(per_subject[group].astype(str).unique(), key=natural_key)
    per_subject[group] = per_subject[group].astype(str)
    rows = []
    if note == NO_SUBTYPES_NOTE:  # not for a table without subtypes at all: nothing to say
        rows = [{"metric": column, "comparison": "all", "note": note} for column in columns]
    for column in columns:
        values = {g: per_subject.loc[per_subject[group] == g, column].dropna() for g in groups}
        present = [g for g in groups if len(values[g])]
        if not present:
            continue
        overall = {"metric": column, "comparison": "all", "test": "Kruskal-Wallis", "note": note,
                   **{f"median_{g}": float(values[g].median()) for g in present}}  # fmt: skip
        pooled = np.concatenate([values[g].to_numpy() for g in present])
        if len(present) >= 2 and len(pooled) > len(present) and np.ptp(pooled) > 0:
            result = stats.kruskal(*(values[g] for g in present))
            overall.update(statistic=float(result.statistic), p_value=float(result.pvalue))
        rows.append(overall)
        pairs = []
        for a, b in combinations(present, 2):
            result = stats.mannwhitneyu(values[a], values[b], alternative="two-sided")
            pairs.append({"metric": column, "comparison": f"{a} vs {b}", "test": "Mann-Whitney U",
                          "statistic": float(result.statistic),
                          "p_value": float(result.pvalue)})  # fmt: skip
        if pairs:
            adjusted = stats.false_discovery_control([p["p_value"] for p in pairs], method="bh")
            for pair, p in zip(pairs, np.atleast_1d(adjusted), strict=True):
                pair["p_adjusted"] = float(p)
        rows.extend(pairs)
    medians = [f"median_{g}" for g in groups]
    return pd.DataFrame(rows).reindex(columns=[*TEST_COLUMNS, *medians])
