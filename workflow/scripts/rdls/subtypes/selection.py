"""Features for clustering: filtered and scaled on the training cohort, applied everywhere.

Three filters run in this order on the training cohort only:

1. **Near-constant.** A feature whose standard deviation is 0, or whose most frequent value
   is held by at least ``near_constant_fraction`` of the subjects, cannot separate subtypes.
2. **Prognostic (optional, supervised).** Univariable Cox regression of recurrence-free
   survival on each remaining feature (Efron ties, Wald test, as lifelines' ``CoxPHFitter``);
   features with ``p < p_threshold`` stay. It runs before the correlation filter so that a
   feature dropped as not prognostic never knocks out a correlated one that is prognostic.
3. **Redundancy.** Features are visited in column order; a feature is kept unless its
   absolute Pearson correlation with an already kept feature exceeds ``max_abs_correlation``
   (of two correlated features, the later one goes).

The kept features are standardised with the training mean and standard deviation (ddof=1);
:func:`apply_selection` applies that same transform, unchanged, to any cohort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from rdls.errors import InputError
from rdls.errors import some as _names

_NEWTON_STEPS = 50
_MAX_STEP = 2.0  # largest Newton step on the standardised feature scale


@dataclass
class FeatureSelection:
    """What :func:`select_features` learned on the training cohort.

    Attributes
    ----------
    columns : list of str
        The kept features, in the order of the training table.
    mean, scale : pandas.Series
        Training mean and standard deviation (ddof=1) of every kept feature, indexed by
        ``columns``; ``scale`` is never 0.
    report : pandas.DataFrame
        One row per candidate feature: ``feature``, ``kept`` (bool), ``reason`` (``"kept"``,
        ``"near-constant"``, ``"correlated with <other>"`` or ``"not prognostic (p=...)"``)
        and ``p_value`` (univariable Cox p; NaN where the prognostic filter did not test it).
    """

    columns: list[str]
    mean: pd.Series
    scale: pd.Series
    report: pd.DataFrame

    def to_dict(self) -> dict:
        """A JSON-ready form: columns, mean, scale and the report's records."""
        return {
            "columns": list(self.columns),
            "mean": {c: float(self.mean[c]) for c in self.columns},
            "scale": {c: float(self.scale[c]) for c in self.columns},
            "report": [
                {
                    "feature": str(row.feature),
                    "kept": bool(row.kept),
                    "reason": str(row.reason),
                    "p_value": None if pd.isna(row.p_value) else float(row.p_value),
                }
                for row in self.report.itertuples(index=False)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSelection:
        """The inverse of :meth:`to_dict`."""
        columns = list(data["columns"])
        report = pd.DataFrame(data["report"], columns=["feature", "kept", "reason", "p_value"])
        report["kept"] = report["kept"].astype(bool)
        report["p_value"] = report["p_value"].astype(float)
        return cls(
            columns=columns,
            mean=pd.Series(data["mean"], dtype=float).reindex(columns),
            scale=pd.Series(data["scale"], dtype=float).reindex(columns),
            report=report,
        )


def select_features(
    train: pd.DataFrame,
    *,
    max_abs_correlation: float = 0.9,
    near_constant_fraction: float = 0.95,
    prognostic: dict | None = None,
) -> FeatureSelection:
    """Choose and standardise the features to cluster on, from the training cohort.

    Parameters
    ----------
    train : pandas.DataFrame
        Training subjects (index ``subject_id``) by numeric feature columns; no missing values.
    max_abs_correlation : float
        A feature goes when its absolute Pearson correlation with an earlier kept feature is
        above this (in (0, 1]; 1 switches the filter off).
    near_constant_fraction : float
        A feature goes when its most frequent value is held by at least this share of the
        subjects (in (0, 1]).
    prognostic : dict, optional
        ``{"time": Series, "event": Series, "p_threshold": 0.05}``: recurrence-free survival
        of the training subjects (indexed by subject_id; months and 0/1) for the univariable
        Cox filter. Subjects without follow-up are left out of the Cox fits. None: no filter.

    Returns
    -------
    FeatureSelection

    Raises
    ------
    rdls.errors.InputError
        Non-numeric or missing values, too few subjects, bad options, no feature passing the
        prognostic filter, or fewer than two features left.
    """
    if not 0 < max_abs_correlation <= 1:
        raise InputError(
            f"subtypes.selection.max_abs_correlation must be in (0, 1], got "
            f"{max_abs_correlation!r}. Use e.g. 0.9 (1 keeps correlated features)."
        )
    if not 0 < near_constant_fraction <= 1:
        raise InputError(
            f"subtypes.selection.near_constant_fraction must be in (0, 1], got "
            f"{near_constant_fraction!r}. Use e.g. 0.95."
        )
    values = _numeric_matrix(train, where="training features")
    n_subjects = values.shape[0]
    if n_subjects < 3:
        raise InputError(
            f"training features: {n_subjects} subject(s); at least 3 are needed to select "
            "and scale features. Check that the training cohort's features were computed."
        )
    features = [str(c) for c in train.columns]
    reasons: dict[str, str] = {}
    p_values = pd.Series(np.nan, index=features, dtype=float)

    constant = _near_constant(values, near_constant_fraction)
    for name in np.asarray(features)[constant]:
        reasons[name] = "near-constant"
    remaining = np.flatnonzero(~constant)

    if prognostic is not None and remaining.size:
        remaining = _prognostic_filter(train, values, remaining, prognostic, reasons, p_values)

    kept = _decorrelate(values, remaining, features, max_abs_correlation, reasons)
    columns = [features[i] for i in kept]
    for name in columns:
        reasons[name] = "kept"

    report = pd.DataFrame(
        {
            "feature": features,
            "kept": [reasons[f] == "kept" for f in features],
            "reason": [reasons[f] for f in features],
            "p_value": p_values.to_numpy(),
        }
    )
    if len(columns) < 2:
        counts = (
            report["reason"]
            .str.extract(r"^(kept|near-constant|correlated|not prognostic)")[0]
            .value_counts()
        )
        summary = ", ".join(f"{n} {reason}" for reason, n in counts.items())
        raise InputError(
            f"training features: {len(columns)} of {len(features)} feature(s) left after "
            f"selection ({summary}); clustering needs at least 2. Relax "
            "subtypes.selection (near_constant_fraction, max_abs_correlation, "
            "prognostic_filter) or add feature families."
        )
    kept_values = values[:, kept]
    mean = pd.Series(kept_values.mean(axis=0), index=columns, dtype=float)
    scale = pd.Series(kept_values.std(axis=0, ddof=1), index=columns, dtype=float)
    return FeatureSelection(columns=columns, mean=mean, scale=scale, report=report)


def apply_selection(selection: FeatureSelection, features: pd.DataFrame) -> pd.DataFrame:
    """The selected features of any cohort, standardised with the training mean and scale.

    Parameters
    ----------
    selection : FeatureSelection
        From :func:`select_features` on the training cohort.
    features : pandas.DataFrame
        Subjects (index ``subject_id``) by feature columns; extra columns are ignored.

    Returns
    -------
    pandas.DataFrame
        Same index, columns ``selection.columns``: ``(value - mean) / scale``.

    Raises
    ------
    rdls.errors.InputError
        A selected column is absent, not numeric or has missing values.
    """
    missing = [c for c in selection.columns if c not in features.columns]
    if missing:
        raise InputError(
            f"features: {len(missing)} selected feature column(s) missing: "
            f"{_names(missing)}. Compute these features for the cohort with the same "
            "settings as in training (feature families and extraction settings must match)."
        )
    subset = features[selection.columns]
    values = _numeric_matrix(subset, where="features")
    out = (values - selection.mean.to_numpy()) / selection.scale.to_numpy()
    return pd.DataFrame(out, index=features.index.copy(), columns=list(selection.columns))


def univariable_cox(
    values: np.ndarray, time: np.ndarray, event: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Univariable Cox regression of survival on each column of ``values`` at once.

    Efron's handling of tied event times and the Wald test, as lifelines' ``CoxPHFitter``
    without penalty. Fitted by Newton-Raphson on each standardised feature.

    Parameters
    ----------
    values : numpy.ndarray
        ``(subjects, features)``, finite, every column non-constant.
    time, event : numpy.ndarray
        Follow-up time and 0/1 event of each subject.

    Returns
    -------
    coef, se, p : numpy.ndarray
        Log hazard ratio per unit of each feature, its standard error and Wald p-value.
    """
    x = np.asarray(values, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    center = x.mean(axis=0)
    spread = x.std(axis=0)
    spread[spread == 0] = 1.0
    z = (x - center) / spread

    order = np.argsort(time, kind="stable")
    z, time, event = z[order], time[order], event[order]
    # Risk set at each event time: everyone whose time is at least that time. With times
    # sorted, that is a suffix starting at the first subject with that time.
    event_times, first = np.unique(time, return_index=True)
    is_event = event == 1
    groups = np.searchsorted(event_times, time)  # tie group of every subject
    deaths = np.bincount(groups, weights=is_event, minlength=event_times.size)
    has_death = deaths > 0
    start = first[has_death]  # first index of each event time's risk set
    d = deaths[has_death]
    group_of_event = np.flatnonzero(has_death)
    n_times = start.size
    # position in the list of event times for every subject with an event
    event_slot = np.searchsorted(group_of_event, groups[is_event])

    beta = np.zeros(z.shape[1])
    info = np.ones(z.shape[1])
    for _ in range(_NEWTON_STEPS):
        eta = z * beta
        eta -= eta.max(axis=0)  # the score and information do not depend on this shift
        w = np.exp(eta)
        wz = w * z
        wzz = wz * z
        # suffix sums give the risk-set sums; pick the rows where each event time starts
        s0 = np.cumsum(w[::-1], axis=0)[::-1][start]
        s1 = np.cumsum(wz[::-1], axis=0)[::-1][start]
        s2 = np.cumsum(wzz[::-1], axis=0)[::-1][start]
        e0 = np.zeros((n_times, z.shape[1]))
        e1 = np.zeros_like(e0)
        e2 = np.zeros_like(e0)
        np.add.at(e0, event_slot, w[is_event])
        np.add.at(e1, event_slot, wz[is_event])
        np.add.at(e2, event_slot, wzz[is_event])
        score = z[is_event].sum(axis=0)
        info = np.zeros(z.shape[1])
        for step in range(int(d.max())):
            active = (step < d)[:, None]
            frac = (step / d)[:, None]
            phi0 = s0 - frac * e0
            phi1 = s1 - frac * e1
            phi2 = s2 - frac * e2
            mean1 = np.where(active, phi1 / np.where(active, phi0, 1.0), 0.0)
            mean2 = np.where(active, phi2 / np.where(active, phi0, 1.0), 0.0)
            score -= mean1.sum(axis=0)
            info += (mean2 - mean1**2).sum(axis=0)
        info = np.maximum(info, 1e-300)
        delta = np.clip(score / info, -_MAX_STEP, _MAX_STEP)
        beta += delta
        if np.all(np.abs(delta) < 1e-10):
            break
    se = 1.0 / np.sqrt(info)
    p = 2.0 * stats.norm.sf(np.abs(beta / se))
    return beta / spread, se / spread, p


def _prognostic_filter(
    train: pd.DataFrame,
    values: np.ndarray,
    remaining: np.ndarray,
    prognostic: dict,
    reasons: dict[str, str],
    p_values: pd.Series,
) -> np.ndarray:
    unknown = set(prognostic) - {"time", "event", "p_threshold"}
    if unknown or not {"time", "event"} <= set(prognostic):
        raise InputError(
            "prognostic must be {'time': Series, 'event': Series, 'p_threshold': float}; got "
            f"keys {sorted(map(str, prognostic))}."
        )
    threshold = float(prognostic.get("p_threshold", 0.05))
    if not 0 < threshold <= 1:
        raise InputError(
            f"subtypes.selection.prognostic_p must be in (0, 1], got {threshold!r}. Use e.g. 0.05."
        )
    time, event = _followup(train.index, prognostic["time"], prognostic["event"])
    known = ~np.isnan(time) & ~np.isnan(event)
    if event[known].sum() == 0:
        raise InputError(
            f"prognostic filter: no recurrence among the {int(known.sum())} training subjects "
            "with follow-up (rfs_event); a Cox filter needs events. Check rfs_event, or set "
            "subtypes.selection.prognostic_filter: false."
        )
    usable = values[known][:, remaining]
    varies = usable.std(axis=0) > 0
    p = np.ones(remaining.size)
    if varies.any():
        _, _, p[varies] = univariable_cox(usable[:, varies], time[known], event[known])
    names = [str(train.columns[i]) for i in remaining]
    p_values[names] = p
    passed = p < threshold
    if not passed.any():
        raise InputError(
            f"prognostic filter: none of the {remaining.size} candidate features has a "
            f"univariable Cox p < {threshold:g} in training (smallest p = {p.min():.3g}). "
            "Relax subtypes.selection.prognostic_p, or set "
            "subtypes.selection.prognostic_filter: false."
        )
    for name, value in zip(names, p, strict=True):
        if value >= threshold:
            reasons[name] = f"not prognostic (p={value:.3g})"
    return remaining[passed]


def _followup(index: pd.Index, time, event) -> tuple[np.ndarray, np.ndarray]:
    """Time and event of the training subjects, aligned on ``index``; NaN where unknown."""
    out = []
    for name, series in (("time", time), ("event", event)):
        if isinstance(series, pd.Series):
            absent = index.difference(series.index)
            if len(absent):
                raise InputError(
                    f"prognostic filter: {name} is missing for {len(absent)} training "
                    f"subject(s): {_names(absent)}. Give follow-up for every training subject "
                    "(empty cells for unknown)."
                )
            series = series.reindex(index)
        array = pd.to_numeric(pd.Series(np.asarray(series)), errors="coerce").to_numpy(float)
        if array.shape != (len(index),):
            raise InputError(
                f"prognostic filter: {name} has {array.size} values for {len(index)} training "
                "subjects. Pass a Series indexed by subject_id."
            )
        out.append(array)
    time_values, event_values = out
    bad_event = ~np.isnan(event_values) & ~np.isin(event_values, (0.0, 1.0))
    if bad_event.any():
        raise InputError(
            f"prognostic filter: event must be 0 or 1; subject(s) {_names(index[bad_event])} "
            "have other values. Write 1 (recurrence) or 0 (censored)."
        )
    if (time_values[~np.isnan(time_values)] < 0).any():
        bad = index[~np.isnan(time_values) & (np.nan_to_num(time_values) < 0)]
        raise InputError(
            f"prognostic filter: negative follow-up time for subject(s) {_names(bad)}. "
            "Times are months from surgery and cannot be negative."
        )
    return time_values, event_values


def _near_constant(values: np.ndarray, fraction: float) -> np.ndarray:
    n = values.shape[0]
    constant = values.std(axis=0) == 0
    ordered = np.sort(values, axis=0)
    # longest run of equal values in each sorted column = count of its most frequent value
    change = np.vstack(
        [np.ones((1, values.shape[1]), bool), ordered[1:] != ordered[:-1]]
    )  # True where a run starts
    for j in np.flatnonzero(~constant):
        starts = np.flatnonzero(change[:, j])
        longest = np.diff(np.append(starts, n)).max()
        constant[j] = longest >= fraction * n
    return constant


def _decorrelate(
    values: np.ndarray,
    candidates: np.ndarray,
    features: list[str],
    threshold: float,
    reasons: dict[str, str],
) -> list[int]:
    if candidates.size == 0:
        return []
    if threshold >= 1:
        return list(candidates)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(np.corrcoef(values[:, candidates], rowvar=False))
    r = np.atleast_2d(np.nan_to_num(r, nan=0.0))
    kept: list[int] = []  # positions in candidates
    for i in range(candidates.size):
        if kept:
            against = r[i, kept]
            worst = int(np.argmax(against))
            if against[worst] > threshold:
                reasons[features[candidates[i]]] = (
                    f"correlated with {features[candidates[kept[worst]]]}"
                )
                continue
        kept.append(i)
    return [int(candidates[i]) for i in kept]


def _numeric_matrix(frame: pd.DataFrame, *, where: str) -> np.ndarray:
    if frame.shape[1] == 0:
        raise InputError(f"{where}: no feature columns. Check the feature tables.")
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise InputError(
            f"{where}: duplicated column name(s) {_names(duplicated)}. Prefix each family's "
            "features so that every name is unique."
        )
    not_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not_numeric:
        raise InputError(
            f"{where}: column(s) {_names(not_numeric)} are not numeric. Clustering features "
            "must be numbers; drop identifier or text columns before selection."
        )
    values = frame.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        columns = frame.columns[bad.any(axis=0)]
        subjects = frame.index[bad.any(axis=1)]
        raise InputError(
            f"{where}: missing or infinite values in {len(columns)} column(s) "
            f"({_names(columns)}) for {len(subjects)} subject(s) ({_names(subjects)}). "
            "Impute them, drop those features, or exclude those subjects before selection."
        )
    return values
