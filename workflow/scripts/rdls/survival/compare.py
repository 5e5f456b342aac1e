"""Does the RRS add to the clinical model? Locked Cox models compared across cohorts.

Each model (a list of columns, e.g. ``clinical`` and ``clinical + RRS``) is a Cox model fitted
once on the training cohort and then applied unchanged to every cohort, the training cohort
included (its numbers are apparent performance). At a horizon (months) each subject gets a
predicted risk of recurrence, ``1 - S(horizon | x)``, and every cohort reports:

- the time-dependent cumulative/dynamic AUC (:mod:`rdls.survival.td_auc`, equal to timeROC's
  with ``weighting = "marginal"``): cases recurred before the horizon, controls were still
  recurrence-free after it, cases weighted by the inverse probability of censoring estimated
  by Kaplan-Meier *in the cohort itself*; subjects censored before the horizon are neither.
  Its standard error and the paired test of two models' AUCs come from the estimator's iid
  representation (Blanche et al., Stat Med 2013), as timeROC's ``compare``;
- Harrell's and Uno's (``tau`` = horizon, censoring weights from the cohort itself)
  concordance;
- calibration (:mod:`rdls.survival.calibration`): the calibration slope, observed/expected
  by the horizon, a smoothed calibration curve with its integrated calibration index, and
  risk groups (mean predicted risk against 1 - Kaplan-Meier at the horizon);
- decision curves (net benefit with the Kaplan-Meier event rate among those treated; Vickers
  et al., BMC Med Inform Decis Mak 2008);
- the ROC curve at the horizon.

Concordance intervals: ``n_boot`` resamples of each cohort's subjects, drawn with
``numpy.random.default_rng([seed, crc32(cohort name)])`` and shared by all models (paired).
Models are *not* refitted in a resample, in the validation cohorts nor in the training
cohort: the training intervals describe the apparent performance's sampling variation and
carry its optimism. A resample without a comparable pair is skipped; ``n_boot_used`` says
how many were used. The concordances are computed in closed form from per-subject bootstrap
counts and agree with scikit-survival's ``concordance_index_censored`` and
``concordance_index_ipcw`` (the cohort as its own ``survival_train``) on the original sample
(tested), including their tie rule (risks within 1e-8 are tied).

A cohort without a recurrence before the horizon, or with nobody followed beyond it, has no
AUC there: its AUC rows are NaN with the reason in ``note``, and everything else is reported.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from rdls.errors import InputError, some
from rdls.survival.calibration import calibration_summary, smoothed_calibration
from rdls.survival.rrs import _survival
from rdls.survival.td_auc import compare_auc, ipcw_case_weights, time_dependent_auc

log = logging.getLogger(__name__)

TRAINING = "training"
TIED_TOL = 1e-8  # scikit-survival's tied_tol
_Z95 = 1.959963984540054
_CHUNK = 256  # bootstrap resamples evaluated at once


@dataclass
class ComparisonResult:
    """Tables of ``compare_models``; every table has ``cohort`` and ``model`` columns.

    Attributes
    ----------
    auc : pandas.DataFrame
        cohort, model, horizon, auc, ci_lower, ci_upper, n, events_by_horizon (the cases:
        recurred before the horizon), controls, censored_before_horizon (neither), se, note
        (why the AUC is not estimable; empty otherwise).
    auc_difference : pandas.DataFrame
        cohort, model_a, model_b, difference (b - a), ci_lower, ci_upper, p_value, se.
    cindex : pandas.DataFrame
        cohort, model, harrell, harrell_ci_lower, harrell_ci_upper, uno, uno_ci_lower,
        uno_ci_upper, n_boot_used.
    calibration : pandas.DataFrame
        cohort, model, group, n, predicted, observed, observed_ci_lower, observed_ci_upper.
    calibration_summary : pandas.DataFrame
        cohort, model, slope (with ci_lower, ci_upper), observed, expected, oe_ratio (with
        its interval), ici, e50, e90, note.
    calibration_curve : pandas.DataFrame
        cohort, model, predicted, observed: the smoothed calibration curve (at most 101
        points per cohort and model).
    decision_curve : pandas.DataFrame
        cohort, model (also "treat all" and "treat none"), threshold, net_benefit.
    roc : pandas.DataFrame
        cohort, model, threshold, fpr, tpr (from threshold +inf at (0, 0)).
    coefficients : pandas.DataFrame
        model, covariate, coef, hazard_ratio, hr_ci_lower, hr_ci_upper, p_value.
    predictions : pandas.DataFrame
        cohort, subject (the row label), model, risk.
    horizon : float
    notes : list of str
    locked : dict
        Per model, the fitted model as :func:`lock_model` gives it (for scoring new
        subjects with :func:`risk_from_locked`).
    """

    auc: pd.DataFrame
    auc_difference: pd.DataFrame
    cindex: pd.DataFrame
    calibration: pd.DataFrame
    decision_curve: pd.DataFrame
    roc: pd.DataFrame
    coefficients: pd.DataFrame
    predictions: pd.DataFrame
    calibration_summary: pd.DataFrame
    calibration_curve: pd.DataFrame
    horizon: float
    notes: list[str] = field(default_factory=list)
    locked: dict[str, dict] = field(default_factory=dict)
    penalties: dict[str, float] = field(default_factory=dict)


def fit_survival_model(X: pd.DataFrame, time, event, *, penalizer: float = 0.0):
    """A Cox proportional-hazards model (lifelines ``CoxPHFitter``, Efron ties) on all of ``X``.

    Parameters
    ----------
    X : pandas.DataFrame
        Numeric design: one column per covariate (dummy-code categories beforehand).
    time, event : array-like
        Follow-up (months) and event (0/1), aligned with ``X``.
    penalizer : float
        lifelines' L2 penalty; 0 is the plain partial likelihood.
    """
    from lifelines import CoxPHFitter

    where = "survival model training data"
    _design(X, list(X.columns), where=where)
    t, e = _survival(time, event, X.index, where=where)
    frame = X.astype(float).copy()
    frame["__time__"] = t
    frame["__event__"] = e.astype(int)
    try:
        return CoxPHFitter(penalizer=penalizer).fit(frame, "__time__", "__event__")
    except Exception as exc:  # lifelines' ConvergenceError and linear-algebra failures
        raise InputError(
            f"the Cox model on {', '.join(map(repr, X.columns))} did not converge ({exc}); "
            "drop collinear or near-constant covariates, or set a small penalizer."
        ) from exc


def risk_at(model, X: pd.DataFrame, *, horizon: float) -> pd.Series:
    """Predicted probability of recurrence by ``horizon``: ``1 - S(horizon | x)``.

    ``S(t | x) = exp(-H0(t) exp((x - xbar) b))`` with the Breslow baseline cumulative hazard as
    a step function (lifelines' own ``predict_survival_function`` interpolates it linearly
    between event times).
    """
    columns = list(model.params_.index)
    _design(X, columns, where="table to predict")
    baseline = model.baseline_cumulative_hazard_.iloc[:, 0]
    last = float(model.durations.max())
    if horizon > last:
        raise InputError(
            f"horizon {horizon} months lies beyond the training cohort's longest follow-up "
            f"({last:g} months); choose a shorter horizon."
        )
    position = int(np.searchsorted(baseline.index.to_numpy(), horizon, side="right")) - 1
    h0 = float(baseline.iloc[position]) if position >= 0 else 0.0
    hazard = model.predict_partial_hazard(X[columns].astype(float)).to_numpy(dtype=float)
    return pd.Series(-np.expm1(-h0 * hazard), index=X.index, name="risk")


RISK_RANGE = (0.001, 0.999)
MAX_SHARE_OUTSIDE = 0.01


def check_locked_risks(name: str, risks: np.ndarray, *, horizon: float) -> None:
    """Refuse a model that predicts near-certain recurrence or none for many training subjects.

    Risks below 0.001 or above 0.999 by the horizon for more than 1% of the training cohort
    come from a coefficient that ran off (a level without events, a separating covariate),
    not from the data; such a model must not be locked.

    Raises
    ------
    rdls.errors.InputError
        Naming the model, the share of subjects outside the range and what to do.
    """
    low, high = RISK_RANGE
    outside = (risks < low) | (risks > high)
    if outside.mean() > MAX_SHARE_OUTSIDE:
        raise InputError(
            f"model {name!r}: {outside.sum()} of {len(risks)} training subjects "
            f"({outside.mean():.0%}) get a predicted risk by {horizon:g} months outside "
            f"[{low}, {high}] (smallest {risks.min():.2g}, largest {risks.max():.2g}); a "
            "coefficient has run off, usually a covariate level with no events. Merge sparse "
            "levels, leave the covariate out or fit with a penalty."
        )


GUARD_PENALTIES = (0.01, 0.03, 0.1, 0.3, 1.0)


def _guarded_fit(name: str, X: pd.DataFrame, t, e, *, penalizer: float, horizon: float):
    """Fit, and where the fit's training risks fail :func:`check_locked_risks` (or it does not
    converge), refit with a growing ridge penalty until they pass: ``(fit, penalty, note)``.

    Few events per variable let coefficients run off (the tiny demo: 9 events, 7 terms);
    shrinking them is the standard remedy, and the note says that the model's hazard ratios
    are shrunk and its intervals not ordinary ones. No penalty that passes: refused.
    """
    first_failure = ""
    for strength in (penalizer, *[p for p in GUARD_PENALTIES if p > penalizer]):
        try:
            fit = fit_survival_model(X, t, e, penalizer=strength)
            check_locked_risks(name, risk_at(fit, X, horizon=horizon).to_numpy(), horizon=horizon)
        except InputError as error:
            first_failure = first_failure or str(error).split("; ")[0]
            continue
        note = ""
        if strength != penalizer:
            note = (
                f"{name}: fitted with ridge penalty {strength:g} ({first_failure}); its hazard "
                "ratios are shrunk towards 1 and their intervals are not ordinary Wald intervals"
            )
        return fit, strength, note
    largest = max((penalizer, *GUARD_PENALTIES))
    raise InputError(
        f"model {name!r} is refused: {first_failure}, and so with every ridge penalty up to "
        f"{largest:g}. Use fewer covariates or merge their levels."
    )


def lock_model(model, *, horizon: float) -> dict:
    """Everything needed to predict the risk by ``horizon`` without lifelines' fitted object.

    A JSON-ready dict: ``covariates`` (in order), ``coefficients`` and ``means`` (the training
    means lifelines centres the covariates on), ``baseline_cumulative_hazard`` (Breslow, at
    the horizon) and ``horizon``. :func:`risk_from_locked` applies it.
    """
    columns = list(model.params_.index)
    reference = pd.DataFrame([model._norm_mean[columns].to_numpy()], columns=columns)
    h0 = float(-np.log1p(-risk_at(model, reference, horizon=horizon).iloc[0]))
    return {
        "covariates": columns,
        "coefficients": {c: float(model.params_[c]) for c in columns},
        "means": {c: float(model._norm_mean[c]) for c in columns},
        "baseline_cumulative_hazard": h0,
        "horizon": float(horizon),
    }


def risk_from_locked(locked: dict, X: pd.DataFrame) -> pd.Series:
    """Probability of recurrence by the locked model's horizon for each row of ``X``."""
    columns = list(locked["covariates"])
    _design(X, columns, where="table to predict")
    beta = np.array([locked["coefficients"][c] for c in columns])
    centre = np.array([locked["means"][c] for c in columns])
    hazard = np.exp((X[columns].to_numpy(dtype=float) - centre) @ beta)
    risk = -np.expm1(-locked["baseline_cumulative_hazard"] * hazard)
    return pd.Series(risk, index=X.index, name="risk")


def compare_models(
    *,
    train: dict,
    cohorts: dict[str, dict],
    models: dict[str, list[str]],
    horizon: float = 60.0,
    n_boot: int = 1000,
    seed: int,
    thresholds=np.linspace(0.01, 0.6, 60),  # noqa: B008 (read-only default)
    calibration_groups: int = 5,
    penalizer: float = 0.0,
    confidence: float = 0.95,
) -> ComparisonResult:
    """Fit each model on the training cohort and compare them in every cohort.

    Parameters
    ----------
    train, cohorts[name] : dict
        ``{"X": DataFrame, "time": Series, "event": Series}``; ``X`` holds every column any
        model needs (numeric, finite). The training cohort is also evaluated, as "training".
    models : dict
        Model name -> columns, e.g. ``{"clinical": [...], "clinical + RRS": [..., "rrs"]}``.
        Differences are reported for every pair, later minus earlier in this order.
    horizon : float
        Months; below the training cohort's longest follow-up.
    n_boot : int
        Bootstrap resamples per cohort for the concordance intervals (0: none).
    seed : int
        Seeds the resamples.
    thresholds : array-like
        Risk thresholds of the decision curves, in (0, 1).
    calibration_groups : int
        Groups of equal size by predicted risk, per model and cohort.
    penalizer : float
        lifelines' L2 penalty for every model.
    confidence : float
        Level of the AUC's Wald intervals, the percentile bootstrap intervals and the
        Kaplan-Meier intervals.

    Returns
    -------
    ComparisonResult
        The tables, cohorts in the order training, then ``cohorts``; models in ``models``'
        order.

    Raises
    ------
    InputError
        A model column missing from a cohort, missing values in the needed columns, time or
        event; a horizon at or beyond the training follow-up; a model whose training risks
        leave [0.001, 0.999] for more than 1% of subjects (:func:`check_locked_risks`).
    """
    if TRAINING in cohorts:
        raise InputError(
            f"cohort name {TRAINING!r} is reserved for the training cohort; rename it."
        )
    if not models:
        raise ValueError("models must name at least one model")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    if calibration_groups < 1:
        raise ValueError(f"calibration_groups must be >= 1, got {calibration_groups}")
    thresholds = np.asarray(thresholds, dtype=float)
    if thresholds.size == 0 or (thresholds <= 0).any() or (thresholds >= 1).any():
        raise ValueError("thresholds must lie strictly between 0 and 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if not horizon > 0:
        raise InputError(f"horizon must be positive months, got {horizon}")
    from sksurv.nonparametric import CensoringDistributionEstimator
    from sksurv.util import Surv

    needed = list(dict.fromkeys(c for cols in models.values() for c in cols))
    data = {TRAINING: train, **cohorts}
    checked = {name: _cohort(name, d, needed) for name, d in data.items()}
    X_tr, t_tr, e_tr = checked[TRAINING]
    if horizon >= t_tr.max():
        raise InputError(
            f"horizon {horizon:g} months is not below the training cohort's longest follow-up "
            f"({t_tr.max():g} months); the censoring distribution is unknown beyond it. Choose "
            "a shorter horizon."
        )
    fits, penalties, guard_notes = {}, {}, []
    for name, cols in models.items():
        fits[name], penalties[name], note = _guarded_fit(
            name, X_tr[cols], t_tr, e_tr, penalizer=penalizer, horizon=horizon
        )
        if note:
            log.warning("%s", note)
            guard_notes.append(note)
    notes = [
        *guard_notes,
        "training cohort: apparent performance; models are not refitted in bootstrap "
        f"resamples, so its intervals do not correct for optimism ({n_boot} resamples)",
    ]
    alpha = (1 - confidence) / 2
    z = float(_normal_quantile(1 - alpha))
    tables: dict[str, list] = {
        k: [] for k in ("auc", "diff", "cindex", "cal", "dca", "roc", "pred", "cal_sum", "curve")
    }

    for cohort, (X, t, e) in checked.items():
        n = len(t)
        censored_early = int((~e & (t <= horizon)).sum())
        if censored_early:
            notes.append(
                f"{cohort}: {censored_early} subjects censored before {horizon:g} months are "
                "neither cases nor controls (cases are weighted by inverse censoring "
                "probability, estimated in this cohort)"
            )
        censoring = CensoringDistributionEstimator().fit(Surv.from_arrays(event=e, time=t))
        uno_events = e & (t < horizon)
        uno_w = np.zeros(n)
        if uno_events.any():
            uno_w[uno_events] = 1.0 / _censoring_survival(censoring, t[uno_events], cohort) ** 2

        rng = np.random.default_rng([seed, zlib.crc32(cohort.encode())])
        counts = _bootstrap_counts(n, n_boot, rng)
        risks = {name: risk_at(fit, X, horizon=horizon).to_numpy() for name, fit in fits.items()}
        aucs = {}
        for name, r in risks.items():
            aucs[name] = estimate = time_dependent_auc(t, e, r, horizon=horizon)
            h_point, h_boot = _concordance(r, t, e, np.where(e, 1.0, 0.0), counts)
            u_point, u_boot = _concordance(r, t, e, uno_w, counts)
            lower, upper = estimate.interval(confidence) if estimate.se > 0 else (np.nan,) * 2
            tables["auc"].append(
                {
                    "cohort": cohort,
                    "model": name,
                    "horizon": float(horizon),
                    "auc": estimate.auc,
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "n": n,
                    "events_by_horizon": estimate.cases,
                    "controls": estimate.controls,
                    "censored_before_horizon": censored_early,
                    "se": estimate.se,
                    "note": estimate.reason,
                }
            )
            c_used = np.isfinite(h_boot) & np.isfinite(u_boot)
            tables["cindex"].append(
                {
                    "cohort": cohort,
                    "model": name,
                    "harrell": h_point,
                    **_interval(h_boot[c_used], alpha, "harrell_ci"),
                    "uno": u_point,
                    **_interval(u_boot[c_used], alpha, "uno_ci"),
                    "n_boot_used": int(c_used.sum()),
                }
            )
            tables["cal"].append(
                _calibration(r, t, e, horizon, calibration_groups, z).assign(
                    cohort=cohort, model=name
                )
            )
            summary = calibration_summary(r, t, e, horizon=horizon, confidence=confidence)
            tables["cal_sum"].append({"cohort": cohort, "model": name, **summary})
            if np.isfinite(summary["slope"]):
                curve = smoothed_calibration(r, t, e, horizon=horizon)
                keep = np.unique(np.linspace(0, len(curve) - 1, 101).round().astype(int))
                tables["curve"].append(curve.iloc[keep].assign(cohort=cohort, model=name))
            tables["dca"].append(
                pd.DataFrame(
                    {
                        "cohort": cohort,
                        "model": name,
                        "threshold": thresholds,
                        "net_benefit": _net_benefit(r, t, e, horizon, thresholds),
                    }
                )
            )
            if not estimate.reason:
                tables["roc"].append(_roc(r, t, e, horizon).assign(cohort=cohort, model=name))
            tables["pred"].append(
                pd.DataFrame({"cohort": cohort, "subject": X.index, "model": name, "risk": r})
            )
        s_all = _km_at(t, e, horizon, z)[0]
        odds = thresholds / (1 - thresholds)
        for name, nb in (("treat all", (1 - s_all) - s_all * odds), ("treat none", 0.0 * odds)):
            tables["dca"].append(
                pd.DataFrame(
                    {"cohort": cohort, "model": name, "threshold": thresholds, "net_benefit": nb}
                )
            )
        for a, b in combinations(models, 2):
            test = compare_auc(aucs[a], aucs[b])
            tables["diff"].append(
                {
                    "cohort": cohort,
                    "model_a": a,
                    "model_b": b,
                    "difference": test["difference"],
                    "ci_lower": test["difference"] - z * test["se"],
                    "ci_upper": test["difference"] + z * test["se"],
                    "p_value": test["p_value"],
                    "se": test["se"],
                }
            )
        if reason := next(iter(aucs.values())).reason:
            notes.append(f"{cohort}: no AUC at the horizon ({reason})")

    cal_columns = ["cohort", "model", "group", "n", "predicted", "observed"]
    cal_columns += ["observed_ci_lower", "observed_ci_upper"]
    return ComparisonResult(
        auc=pd.DataFrame(tables["auc"]),
        auc_difference=pd.DataFrame(tables["diff"]),
        cindex=pd.DataFrame(tables["cindex"]),
        calibration=pd.concat(tables["cal"], ignore_index=True)[cal_columns],
        decision_curve=pd.concat(tables["dca"], ignore_index=True),
        roc=pd.concat(tables["roc"], ignore_index=True)[
            ["cohort", "model", "threshold", "fpr", "tpr"]
        ]
        if tables["roc"]
        else pd.DataFrame(columns=["cohort", "model", "threshold", "fpr", "tpr"]),
        coefficients=_coefficients(fits),
        predictions=pd.concat(tables["pred"], ignore_index=True),
        calibration_summary=pd.DataFrame(tables["cal_sum"]),
        calibration_curve=(
            pd.concat(tables["curve"], ignore_index=True)[
                ["cohort", "model", "predicted", "observed"]
            ]
            if tables["curve"]
            else pd.DataFrame(columns=["cohort", "model", "predicted", "observed"])
        ),
        horizon=float(horizon),
        notes=notes,
        locked={name: lock_model(fit, horizon=horizon) for name, fit in fits.items()},
        penalties=penalties,
    )


# ---------------------------------------------------------------------------------------------
# Measures (closed forms in per-subject bootstrap counts; counts of ones give the sample value)


def _concordance(r, t, e, weights, counts) -> tuple[float, np.ndarray]:
    """Weighted concordance as scikit-survival: Harrell with weights 1, Uno with 1/G(t)^2."""
    events = np.flatnonzero(e & (weights > 0))
    ti, ri = t[events][:, None], r[events][:, None]
    comparable = (t[None, :] > ti) | ((t[None, :] == ti) & ~e[None, :])
    tie = np.abs(r[None, :] - ri) <= TIED_TOL
    score = comparable * (((r[None, :] < ri) & ~tie) + 0.5 * tie)
    comparable = comparable.astype(float)
    w = weights[events]

    def value(c: np.ndarray) -> np.ndarray:
        ce = c[:, events] * w
        num = (ce * (c @ score.T)).sum(axis=1)
        den = (ce * (c @ comparable.T)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)

    return float(value(np.ones((1, len(r))))[0]), _chunked(value, counts)


def _roc(r, t, e, horizon) -> pd.DataFrame:
    """ROC at the horizon: positive when risk >= threshold; IPCW-weighted true positives."""
    weights = ipcw_case_weights(t, e, horizon=horizon)
    case, control = weights > 0, t > horizon
    rank = _tie_ranks(r)
    groups = np.unique(rank)[::-1]  # highest risk first
    w_case = np.bincount(rank[case], weights=weights[case], minlength=groups.max() + 1)
    n_ctrl = np.bincount(rank[control], minlength=groups.max() + 1)
    lowest = pd.Series(r).groupby(rank).min()
    tpr = np.cumsum(w_case[groups]) / weights[case].sum()
    fpr = np.cumsum(n_ctrl[groups]) / control.sum()
    return pd.DataFrame(
        {
            "threshold": np.r_[np.inf, lowest.loc[groups].to_numpy()],
            "fpr": np.r_[0.0, fpr],
            "tpr": np.r_[0.0, tpr],
        }
    )


def _calibration(r, t, e, horizon, groups, z) -> pd.DataFrame:
    k = min(groups, len(r))
    label = pd.qcut(pd.Series(r).rank(method="first"), k, labels=False).to_numpy() + 1
    rows = []
    for g in range(1, k + 1):
        m = label == g
        s, lo, hi = _km_at(t[m], e[m], horizon, z)
        rows.append(
            {
                "group": g,
                "n": int(m.sum()),
                "predicted": float(r[m].mean()),
                "observed": 1 - s,
                "observed_ci_lower": 1 - hi,
                "observed_ci_upper": 1 - lo,
            }
        )
    return pd.DataFrame(rows)


def _net_benefit(r, t, e, horizon, thresholds) -> np.ndarray:
    """Net benefit of treating those with risk >= threshold (Vickers 2008, survival form)."""
    n = len(r)
    out = np.zeros(len(thresholds))
    for i, pt in enumerate(thresholds):
        treat = r >= pt
        if treat.any():
            s = _km_at(t[treat], e[treat], horizon)[0]
            out[i] = treat.sum() / n * ((1 - s) - s * pt / (1 - pt))
    return out


def _km_at(t, e, horizon, z: float = _Z95) -> tuple[float, float, float]:
    """Kaplan-Meier survival at ``horizon`` with a log-log Greenwood interval (NaN at 0 or 1)."""
    event_times = np.unique(t[e & (t <= horizon)])
    if event_times.size == 0:
        return 1.0, np.nan, np.nan
    at_risk = (t[None, :] >= event_times[:, None]).sum(axis=1)
    deaths = ((t[None, :] == event_times[:, None]) & e[None, :]).sum(axis=1)
    s = float(np.prod(1 - deaths / at_risk))
    if s <= 0 or s >= 1:
        return s, np.nan, np.nan
    greenwood = float((deaths / (at_risk * (at_risk - deaths))).sum())
    se = np.sqrt(greenwood) / abs(np.log(s))
    theta = np.log(-np.log(s))
    return s, float(np.exp(-np.exp(theta + z * se))), float(np.exp(-np.exp(theta - z * se)))


# ---------------------------------------------------------------------------------------------
# Helpers


def _cohort(name: str, d: dict, needed: list[str]):
    missing_keys = [k for k in ("X", "time", "event") if k not in d]
    if missing_keys:
        raise InputError(f"cohort {name!r} lacks {', '.join(missing_keys)}.")
    X = d["X"]
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"cohort {name!r}: X must be a table (pandas DataFrame).")
    _design(X, needed, where=f"cohort {name!r}")
    t, e = _survival(d["time"], d["event"], X.index, where=f"cohort {name!r}")
    return X[needed].astype(float), t, e


def _design(X: pd.DataFrame, columns: list[str], *, where: str) -> None:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise InputError(
            f"{where}: model column(s) {', '.join(map(repr, missing))} are missing; add them "
            "(the RRS as column 'rrs', categories dummy-coded) or change the model definition."
        )
    block = X[columns]
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(block[c])]
    if non_numeric:
        raise InputError(
            f"{where}: column(s) {', '.join(map(repr, non_numeric))} are not numeric; "
            "dummy-code them."
        )
    bad = ~np.isfinite(block.to_numpy(dtype=float))
    if bad.any():
        raise InputError(
            f"{where}: missing or non-finite values for subjects "
            f"{some(block.index[bad.any(axis=1)], quote=False)} in column(s) "
            f"{', '.join(map(repr, block.columns[bad.any(axis=0)]))}; impute them or leave "
            "those subjects out."
        )


def _censoring_survival(censoring, times: np.ndarray, cohort: str) -> np.ndarray:
    g = censoring.predict_proba(times)
    if (g <= 0).any():
        raise InputError(
            f"cohort {cohort!r}: its censoring survival is 0 at an event time before the "
            "horizon; choose an earlier horizon."
        )
    return g


def _tie_ranks(r: np.ndarray) -> np.ndarray:
    """Dense ranks (0 = lowest) where neighbours within TIED_TOL share a rank (sksurv's rule)."""
    order = np.argsort(r, kind="mergesort")
    new = np.r_[True, np.diff(r[order]) > TIED_TOL]
    rank = np.empty(len(r), dtype=int)
    rank[order] = np.cumsum(new) - 1
    return rank


def _bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each subject appears in each resample: ``(n_boot, n)``."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _chunked(value, counts: np.ndarray) -> np.ndarray:
    if len(counts) == 0:
        return np.empty(0)
    return np.concatenate([value(counts[i : i + _CHUNK]) for i in range(0, len(counts), _CHUNK)])


def _interval(values: np.ndarray, alpha: float, prefix: str) -> dict:
    if len(values) == 0:
        return {f"{prefix}_lower": np.nan, f"{prefix}_upper": np.nan}
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return {f"{prefix}_lower": float(lo), f"{prefix}_upper": float(hi)}


def _coefficients(fits: dict) -> pd.DataFrame:
    rows = []
    for name, fit in fits.items():
        s = fit.summary
        rows.append(
            pd.DataFrame(
                {
                    "model": name,
                    "covariate": s.index.astype(str),
                    "coef": s["coef"].to_numpy(),
                    "hazard_ratio": s["exp(coef)"].to_numpy(),
                    "hr_ci_lower": s["exp(coef) lower 95%"].to_numpy(),
                    "hr_ci_upper": s["exp(coef) upper 95%"].to_numpy(),
                    "p_value": s["p"].to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))
