"""Kaplan-Meier curves, numbers at risk, log-rank tests and survival at a horizon, by group.

Every function takes three aligned arrays (time, event, group) so that it can be called on a
column of a subjects table or on a small hand example alike. ``check_survival`` is where a
table's follow-up enters: it says which subjects have unusable follow-up and how to fix it.

Kaplan-Meier estimates and their 95% confidence intervals come from lifelines; the intervals
are the exponential Greenwood ("log-log") ones, as R's ``survfit(conf.type = "log-log")``.
"""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from lifelines.utils import median_survival_times
from statsmodels.stats.multitest import multipletests

from rdls.compare import natural_key
from rdls.errors import InputError

log = logging.getLogger(__name__)

_SHOWN_IDS = 5


def check_survival(
    frame: pd.DataFrame,
    *,
    time: str = "rfs_months",
    event: str = "rfs_event",
    where: str = "subjects",
) -> pd.DataFrame:
    """The rows of ``frame`` with usable follow-up, time as float and event as 0/1 int.

    Rows where both ``time`` and ``event`` are missing are left out (not followed up); the
    number left out is logged.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject; a ``subject_id`` column (else the index) names rows in errors.
    time, event : str
        Columns with the follow-up time (not negative) and the event indicator (0 censored,
        1 event).
    where : str
        What ``frame`` is, for error messages (``"subjects.tsv"``).

    Raises
    ------
    rdls.errors.InputError
        A column is absent, a time is negative or not a number, an event is not 0 or 1, or
        only one of the two is given for a subject.
    """
    for column in (time, event):
        if column not in frame.columns:
            raise InputError(
                f"{where}: column {column!r} is missing (columns: {', '.join(map(str, frame))}). "
                "Add it, or name the follow-up columns in the config."
            )
    times = pd.to_numeric(frame[time], errors="coerce")
    events = pd.to_numeric(frame[event], errors="coerce")
    ids = _ids(frame)

    not_number = times.isna() & frame[time].notna()
    _fail_if(
        not_number, ids, f"{where}, column {time!r}: not a number", "Write the time in months."
    )
    not_number = events.isna() & frame[event].notna()
    _fail_if(not_number, ids, f"{where}, column {event!r}: not a number", "Write 1 (event) or 0.")
    _fail_if(
        times.notna() & events.isna(),
        ids,
        f"{where}: column {time!r} is given but {event!r} is missing",
        f"Give {event!r} (1 event, 0 censored), or leave both empty to leave the subject "
        "out of survival analyses.",
    )
    _fail_if(
        times.isna() & events.notna(),
        ids,
        f"{where}: column {event!r} is given but {time!r} is missing",
        f"Give {time!r} (follow-up in months), or leave both empty to leave the subject "
        "out of survival analyses.",
    )
    _fail_if(
        times < 0,
        ids,
        f"{where}, column {time!r}: negative follow-up time",
        "Times count from the start of follow-up (diagnosis or surgery) and cannot be "
        "negative; check the dates.",
    )
    _fail_if(
        pd.Series(np.isinf(times), index=frame.index),
        ids,
        f"{where}, column {time!r}: infinite follow-up time",
        "Write the last follow-up time in months.",
    )
    _fail_if(
        events.notna() & ~events.isin([0, 1]),
        ids,
        f"{where}, column {event!r}: event is not 0 or 1",
        "Write 1 for an event (recurrence) and 0 for censored follow-up.",
    )
    present = times.notna() & events.notna()
    if (~present).any():
        log.info(
            "%s: %d of %d rows have no follow-up and are left out",
            where,
            (~present).sum(),
            len(frame),
        )
    out = frame.loc[present].copy()
    out[time] = times[present].astype(float)
    out[event] = events[present].astype(int)
    return out


def km_estimates(time, event, group=None) -> pd.DataFrame:
    """Kaplan-Meier survival of each group at each of its distinct times (and at 0).

    Returns a long table: ``group``, ``time``, ``survival``, ``ci_lower``, ``ci_upper``
    (95%, log-log) and ``at_risk`` (subjects still followed just before ``time``). Groups
    come in natural order ("RDLS2" before "RDLS10"); without ``group`` all subjects are one
    group called "all".
    """
    t, e, g = _arrays(time, event, group)
    frames = []
    for level in _levels(g):
        fitter = _fit(t[g == level], e[g == level])
        ci = fitter.confidence_interval_survival_function_
        frames.append(
            pd.DataFrame(
                {
                    "group": level,
                    "time": fitter.survival_function_.index.to_numpy(float),
                    "survival": fitter.survival_function_.iloc[:, 0].to_numpy(),
                    "ci_lower": ci.iloc[:, 0].to_numpy(),
                    "ci_upper": ci.iloc[:, 1].to_numpy(),
                    "at_risk": fitter.event_table["at_risk"].to_numpy(int),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def at_risk_table(time, event, group=None, *, times) -> pd.DataFrame:
    """Numbers at risk: subjects of each group (rows) still followed at each of ``times``.

    A subject is at risk at ``t`` when its follow-up time is ``t`` or longer (as R's
    ``summary(survfit(...), times = t)$n.risk``).
    """
    t, _, g = _arrays(time, event, group)
    times = [float(x) for x in np.atleast_1d(times)]
    table = pd.DataFrame(
        [[int((t[g == level] >= x).sum()) for x in times] for level in _levels(g)],
        index=pd.Index(_levels(g), name="group"),
        columns=pd.Index(times, name="time"),
    )
    return table


def logrank(time, event, group, *, adjust: str = "fdr_bh") -> tuple[dict, pd.DataFrame]:
    """Log-rank test across all groups and between every pair of groups.

    Parameters
    ----------
    time, event, group : array-like
        Follow-up, 0/1 events and group labels, aligned; at least two groups.
    adjust : str
        Multiple-testing correction of the pairwise p-values, a ``method`` of
        ``statsmodels.stats.multitest.multipletests`` (default Benjamini-Hochberg).

    Returns
    -------
    overall : dict
        ``test`` ("log-rank"), ``statistic`` (chi-squared), ``df`` (groups - 1),
        ``p_value``, ``n`` and ``events``.
    pairwise : pandas.DataFrame
        ``group_a``, ``group_b``, ``statistic``, ``p_value`` and ``p_adjusted``.
    """
    t, e, g = _arrays(time, event, group)
    levels = _levels(g)
    if len(levels) < 2:
        raise InputError(
            f"log-rank test needs at least two groups, got {len(levels)} ({levels}). "
            "Compare groups only where there is more than one."
        )
    test = multivariate_logrank_test(t, g, e)
    overall = {
        "test": "log-rank",
        "statistic": float(test.test_statistic),
        "df": len(levels) - 1,
        "p_value": float(test.p_value),
        "n": len(t),
        "events": int(e.sum()),
    }
    rows = []
    for a, b in combinations(levels, 2):
        pair = logrank_test(t[g == a], t[g == b], e[g == a], e[g == b])
        rows.append(
            {
                "group_a": a,
                "group_b": b,
                "statistic": float(pair.test_statistic),
                "p_value": float(pair.p_value),
            }
        )
    pairwise = pd.DataFrame(rows)
    pairwise["p_adjusted"] = multipletests(pairwise["p_value"], method=adjust)[1]
    return overall, pairwise


def survival_at(time, event, group=None, *, horizon: float) -> pd.DataFrame:
    """Kaplan-Meier survival of each group at ``horizon`` and its median survival.

    Returns ``group``, ``n``, ``events`` (over all follow-up), ``horizon``, ``survival``,
    ``ci_lower``, ``ci_upper`` (95%, log-log), ``median_survival``, ``median_ci_lower`` and
    ``median_ci_upper``. Survival is NaN where no subject of the group is followed as long
    as ``horizon``; a median is infinite where survival never falls to one half.
    """
    t, e, g = _arrays(time, event, group)
    rows = []
    for level in _levels(g):
        fitter = _fit(t[g == level], e[g == level])
        followed = t[g == level].max() >= horizon
        index = fitter.survival_function_.index
        row = index[index <= horizon][-1]
        ci = fitter.confidence_interval_survival_function_.loc[row]
        median_ci = median_survival_times(fitter.confidence_interval_).iloc[0]
        rows.append(
            {
                "group": level,
                "n": int((g == level).sum()),
                "events": int(e[g == level].sum()),
                "horizon": float(horizon),
                "survival": float(fitter.survival_function_.loc[row].iloc[0])
                if followed
                else np.nan,
                "ci_lower": float(ci.iloc[0]) if followed else np.nan,
                "ci_upper": float(ci.iloc[1]) if followed else np.nan,
                "median_survival": float(fitter.median_survival_time_),
                "median_ci_lower": float(median_ci.iloc[0]),
                "median_ci_upper": float(median_ci.iloc[1]),
            }
        )
    return pd.DataFrame(rows)


def _levels(group: np.ndarray) -> list:
    return sorted(pd.unique(group), key=natural_key)


def _fit(t: np.ndarray, e: np.ndarray) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(t, event_observed=e)


def _arrays(time, event, group) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated numpy copies of the three aligned inputs (data errors as InputError)."""
    t = np.asarray(time, dtype=float).ravel()
    e_raw = np.asarray(event, dtype=float).ravel()
    g = np.full(len(t), "all", dtype=object) if group is None else np.asarray(group, object).ravel()
    if not len(t) == len(e_raw) == len(g):
        raise ValueError(
            f"time, event and group must have the same length, got {len(t)}, {len(e_raw)} "
            f"and {len(g)}"
        )
    if len(t) == 0:
        raise InputError("no subjects with follow-up: survival needs at least one subject")
    hint = "Pass the table through rdls.survival.km.check_survival first."
    if not np.isfinite(t).all():
        raise InputError(f"{(~np.isfinite(t)).sum()} follow-up times are missing. {hint}")
    if (t < 0).any():
        raise InputError(f"{(t < 0).sum()} follow-up times are negative. {hint}")
    if not np.isin(e_raw, (0, 1)).all():
        raise InputError(f"{(~np.isin(e_raw, (0, 1))).sum()} events are not 0 or 1. {hint}")
    if pd.isna(g).any():
        raise InputError(
            f"{pd.isna(g).sum()} subjects have no group. Leave them out or give them a group."
        )
    return t, e_raw.astype(int), g


def _ids(frame: pd.DataFrame) -> pd.Series:
    if "subject_id" in frame.columns:
        return frame["subject_id"].astype(str)
    return pd.Series(frame.index.astype(str), index=frame.index)


def _fail_if(bad: pd.Series, ids: pd.Series, what: str, fix: str) -> None:
    bad = bad.fillna(False).astype(bool)
    if not bad.any():
        return
    shown = ", ".join(ids[bad].iloc[:_SHOWN_IDS])
    more = f" and {bad.sum() - _SHOWN_IDS} more" if bad.sum() > _SHOWN_IDS else ""
    raise InputError(f"{what} for {bad.sum()} subjects ({shown}{more}). {fix}")


def nelson_aalen_at(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Nelson-Aalen cumulative hazard at each subject's own time (events at t included)."""
    times, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=event.astype(float), minlength=len(times))
    leaving = np.bincount(inverse, minlength=len(times))
    at_risk = leaving[::-1].cumsum()[::-1]
    return np.cumsum(deaths / at_risk)[inverse]
