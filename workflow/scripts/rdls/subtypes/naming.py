"""Subtype names from recurrence risk in the training cohort, the same on every rerun.

Cluster ids from a clustering algorithm are arbitrary; names must not be. The rule:

1. Compute each cluster's recurrence incidence rate in the training cohort: recurrences
   divided by person-time (the sum of recurrence-free follow-up in months). Subjects whose
   time or event is missing count in no rate but are still named with their cluster.
2. Order the clusters by decreasing rate; ties go to the larger cluster, then to the smaller
   cluster id.
3. ``{prefix}1`` is the first cluster (highest rate), ``{prefix}2`` the last (lowest rate)
   and ``{prefix}3``, ``{prefix}4``, ... the clusters in between, in decreasing rate.

With three clusters this gives RDLS1 the highest risk, RDLS2 the lowest and RDLS3 the one in
between, as in the study; with two, RDLS1 high and RDLS2 low.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rdls.errors import InputError
from rdls.errors import some as _names


def incidence_rates(labels, time, event) -> pd.DataFrame:
    """Recurrences per person-time in each cluster.

    Parameters
    ----------
    labels : array-like
        Cluster id of each subject.
    time, event : array-like
        Recurrence-free follow-up (months) and event (1 recurrence, 0 censored) of each
        subject, in the order of ``labels`` (or Series aligned on its index when ``labels``
        is a Series); NaN where unknown.

    Returns
    -------
    pandas.DataFrame
        One row per cluster, in cluster id order: ``cluster``, ``n`` (members),
        ``n_followup`` (members with time and event), ``events``, ``person_months`` and
        ``rate_per_100_person_years`` (NaN where a cluster has no person-time).

    Raises
    ------
    rdls.errors.InputError
        Lengths or subjects do not match, an event is not 0/1, a time is negative, or a label
        is missing.
    """
    labels, time, event = _aligned(labels, time, event)
    known = ~np.isnan(time) & ~np.isnan(event)
    rows = []
    for cluster in _sorted_unique(labels):
        member = labels == cluster
        use = member & known
        events = int(event[use].sum())
        person_months = float(time[use].sum())
        rate = events / (person_months / 12.0) * 100.0 if person_months > 0 else np.nan
        rows.append(
            {
                "cluster": cluster,
                "n": int(member.sum()),
                "n_followup": int(use.sum()),
                "events": events,
                "person_months": person_months,
                "rate_per_100_person_years": rate,
            }
        )
    return pd.DataFrame(rows)


def name_subtypes(labels: np.ndarray, time, event, *, prefix: str = "RDLS") -> dict[int, str]:
    """Name each training cluster by its recurrence incidence rate (see the module docstring).

    Parameters
    ----------
    labels : numpy.ndarray
        Cluster id of each training subject.
    time, event : array-like
        Recurrence-free survival of the same subjects (months, 0/1), NaN where unknown.
    prefix : str
        Start of every name.

    Returns
    -------
    dict
        ``{cluster id: name}`` for every cluster in ``labels``.

    Raises
    ------
    rdls.errors.InputError
        No recurrence-free survival at all, no recurrence at all, or a cluster with no
        follow-up (its risk, hence its name, would be undefined).
    """
    rates = incidence_rates(labels, time, event)
    if rates["n_followup"].sum() == 0:
        raise InputError(
            "naming subtypes: no training subject has recurrence-free survival (rfs_months "
            "and rfs_event). Subtypes are named by their recurrence rate in the training "
            "cohort; fill in follow-up for the training subjects."
        )
    if rates["events"].sum() == 0:
        raise InputError(
            f"naming subtypes: no recurrence among the {int(rates['n_followup'].sum())} "
            "training subjects with follow-up (rfs_event is 0 everywhere). Subtypes are named "
            "by their recurrence rate in the training cohort; check rfs_event."
        )
    undefined = rates.loc[rates["rate_per_100_person_years"].isna(), "cluster"]
    if len(undefined):
        raise InputError(
            f"naming subtypes: cluster(s) {', '.join(map(str, undefined))} have no subject "
            "with recurrence-free follow-up (rfs_months > 0 and rfs_event), so their risk and "
            "name are undefined. Fill in follow-up, or choose a k without such a cluster."
        )
    ranked = sorted(
        zip(rates["cluster"], rates["rate_per_100_person_years"], rates["n"], strict=True),
        key=lambda row: (-row[1], -row[2], _sort_key(row[0])),
    )
    order = [row[0] for row in ranked]
    if len(order) > 1:
        order = [order[0], order[-1], *order[1:-1]]
    return {_native(cluster): f"{prefix}{rank}" for rank, cluster in enumerate(order, start=1)}


def _aligned(labels, time, event) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(labels, pd.Series):
        index = labels.index
        series = []
        for name, values in (("time", time), ("event", event)):
            if isinstance(values, pd.Series):
                absent = index.difference(values.index)
                if len(absent):
                    raise InputError(
                        f"naming subtypes: {name} is missing for {len(absent)} subject(s) with "
                        f"a cluster: {_names(absent)}. Give follow-up for every training "
                        "subject (empty cells for unknown)."
                    )
                values = values.reindex(index)
            series.append(values)
        time, event = series
        ids = index
    else:
        ids = None
    label_values = np.asarray(labels, dtype=object).ravel()
    arrays = []
    for name, values in (("time", time), ("event", event)):
        array = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
        if len(array) != len(label_values):
            raise InputError(
                f"naming subtypes: {len(array)} {name} value(s) for {len(label_values)} "
                "labels. Pass one time and one event per labelled subject, in the same order."
            )
        arrays.append(array.to_numpy(dtype=float))
    time_values, event_values = arrays
    ids = ids if ids is not None else pd.RangeIndex(len(label_values))
    if pd.isna(pd.Series(label_values)).any():
        raise InputError(
            f"naming subtypes: subject(s) {_names(ids[pd.isna(pd.Series(label_values))])} "
            "have no cluster label. Every training subject needs a cluster."
        )
    bad = ~np.isnan(event_values) & ~np.isin(event_values, (0.0, 1.0))
    if bad.any():
        raise InputError(
            f"naming subtypes: event must be 0 or 1; subject(s) {_names(ids[bad])} have "
            "other values. Write 1 (recurrence) or 0 (censored)."
        )
    bad = ~np.isnan(time_values) & (np.nan_to_num(time_values) < 0)
    if bad.any():
        raise InputError(
            f"naming subtypes: negative follow-up time for subject(s) {_names(ids[bad])}. "
            "Times are months and cannot be negative."
        )
    return label_values, time_values, event_values


def _sorted_unique(labels: np.ndarray) -> list:
    return sorted({_native(v) for v in labels}, key=_sort_key)


def _sort_key(value):
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


def _native(value):
    return value.item() if isinstance(value, np.generic) else value
