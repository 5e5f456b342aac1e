"""Per-sample values compared by subtype: Kruskal-Wallis, then pairwise Mann-Whitney (BH)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from rdls.bulk.de import natural_key
from rdls.errors import InputError, some

TEST_COLUMNS = ("metric", "comparison", "test", "statistic", "p_value", "p_adjusted")


def compare_by_subtype(
    table: pd.DataFrame,
    *,
    columns: Sequence[str],
    group: str = "subtype",
    subject: str = "subject_id",
) -> pd.DataFrame:
    """Kruskal-Wallis across subtypes and pairwise Mann-Whitney U per column.

    Samples of one subject are averaged first, so that each subject counts once. Pairwise
    p-values are adjusted by Benjamini-Hochberg within each column.

    Returns
    -------
    pandas.DataFrame
        One row per column and comparison: ``metric``, ``comparison`` (``all`` or
        ``RDLS1 vs RDLS2``), ``test``, ``statistic``, ``p_value``, ``p_adjusted`` (pairs
        only), then ``median_<subtype>`` on the ``all`` rows. Empty (these columns) with
        fewer than two subtypes.
    """
    missing = [c for c in (subject, group, *columns) if c not in table.columns]
    if missing:
        raise InputError(f"table to compare lacks column(s) {some(missing)}")
    known = table.dropna(subset=[group])
    per_subject = known.groupby([subject, group], as_index=False)[list(columns)].mean()
    groups = sorted(per_subject[group].astype(str).unique(), key=natural_key)
    rows = []
    for column in columns:
        values = {g: per_subject.loc[per_subject[group] == g, column].dropna() for g in groups}
        present = [g for g in groups if len(values[g])]
        if len(present) < 2:
            continue
        overall = {"metric": column, "comparison": "all", "test": "Kruskal-Wallis",
                   **{f"median_{g}": float(values[g].median()) for g in present}}  # fmt: skip
        pooled = np.concatenate([values[g].to_numpy() for g in present])
        if len(pooled) > len(present) and np.ptp(pooled) > 0:
            result = stats.kruskal(*(values[g] for g in present))
            overall.update(statistic=float(result.statistic), p_value=float(result.pvalue))
        rows.append(overall)
        pairs = []
        for a, b in combinations(present, 2):
            result = stats.mannwhitneyu(values[a], values[b], alternative="two-sided")
            pairs.append({"metric": column, "comparison": f"{a} vs {b}", "test": "Mann-Whitney U",
                          "statistic": float(result.statistic),
                          "p_value": float(result.pvalue)})  # fmt: skip
        adjusted = stats.false_discovery_control([p["p_value"] for p in pairs], method="bh")
        for pair, p in zip(pairs, np.atleast_1d(adjusted), strict=True):
            pair["p_adjusted"] = float(p)
        rows.extend(pairs)
    medians = [f"median_{g}" for g in groups]
    return pd.DataFrame(rows).reindex(columns=[*TEST_COLUMNS, *medians])
