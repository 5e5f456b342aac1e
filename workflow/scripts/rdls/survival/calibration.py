"""Calibration of predicted risks by a horizon: slope, observed/expected and a smoothed curve.

For predicted risks ``p_i = P(T_i <= h)`` of a locked model in one cohort:

- **Calibration slope**: the coefficient of a Cox regression of the outcome on the model's
  linear predictor, here ``cloglog(p) = log(-log(1 - p))``, which differs from it by a
  constant (the log baseline cumulative hazard at ``h``). 1 is ideal; below 1, predictions
  are too extreme (overfitting); above 1, too modest. Wald interval.
- **Calibration in the large** at ``h``: observed risk ``O = 1 - KM(h)`` against the mean
  predicted risk ``E``; the ratio ``O/E`` with an interval from the Kaplan-Meier estimate's
  Greenwood variance on the log scale (Debray et al., BMJ 2017, for time-to-event outcomes).
- **Smoothed calibration curve** (Austin, Harrell and van Klaveren, Stat Med 2020): a Cox
  model of the outcome on a restricted cubic spline of ``cloglog(p)`` (knots at its 10th, 50th
  and 90th percentiles; Harrell's parameterisation) gives each subject's observed risk by
  ``h`` as a smooth function of the predicted one; the integrated calibration index ``ICI`` is
  the mean absolute difference between the two, ``E50`` and ``E90`` its median and 90th
  percentile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from rdls.errors import InputError
from rdls.survival._efron import efron_fit, efron_information

_EDGE = 1e-12  # risks at exactly 0 or 1 have no cloglog


def calibration_summary(risk, time, event, *, horizon: float, confidence: float = 0.95) -> dict:
    """Slope, observed/expected and the ICI of ``risk`` by ``horizon`` in one cohort.

    Returns
    -------
    dict
        ``slope``, ``slope_ci_lower``, ``slope_ci_upper``, ``observed``, ``expected``,
        ``oe_ratio``, ``oe_ci_lower``, ``oe_ci_upper``, ``ici``, ``e50``, ``e90``; NaN where
        the cohort cannot estimate one (``note`` says why).
    """
    p, t, e = _checked(risk, time, event)
    z = float(norm.ppf(0.5 + confidence / 2))
    out = dict.fromkeys(
        ("slope", "slope_ci_lower", "slope_ci_upper", "observed", "expected", "oe_ratio",
         "oe_ci_lower", "oe_ci_upper", "ici", "e50", "e90"), np.nan,
    )  # fmt: skip
    notes = []
    expected = float(p.mean())
    observed, se_log = _km_risk(t, e, horizon)
    out.update(observed=observed, expected=expected)
    if observed > 0 and expected > 0:
        ratio = observed / expected
        out.update(
            oe_ratio=ratio,
            oe_ci_lower=float(ratio * np.exp(-z * se_log)),
            oe_ci_upper=float(ratio * np.exp(z * se_log)),
        )
    else:
        notes.append(f"no event by {horizon:g}: observed/expected is not defined")
    lp = _cloglog(p)
    if not e.any() or np.ptp(lp) == 0:
        notes.append("no events or no spread in the predictions: no slope or curve")
        return {**out, "note": "; ".join(notes)}
    slope, se = _slope(lp, t, e)
    out.update(slope=slope, slope_ci_lower=slope - z * se, slope_ci_upper=slope + z * se)
    curve = smoothed_calibration(p, t, e, horizon=horizon)
    gap = np.abs(curve["observed"] - curve["predicted"])
    out.update(ici=float(gap.mean()), e50=float(gap.median()), e90=float(gap.quantile(0.9)))
    return {**out, "note": "; ".join(notes)}


def smoothed_calibration(risk, time, event, *, horizon: float) -> pd.DataFrame:
    """Each subject's predicted risk and its smoothed observed risk by ``horizon``.

    Returns
    -------
    pandas.DataFrame
        ``predicted`` and ``observed``, one row per subject, sorted by ``predicted``.
    """
    p, t, e = _checked(risk, time, event)
    lp = _cloglog(p)
    basis = _rcs_basis(lp, np.quantile(lp, [0.1, 0.5, 0.9]))
    if np.linalg.matrix_rank(basis - basis.mean(axis=0)) < basis.shape[1]:
        basis = lp[:, None]  # too few distinct predictions for a spline: linear
    beta, _ = efron_fit(basis, t, e, allow_divergence=True)
    eta = basis @ beta
    baseline = _breslow_at(eta, t, e, horizon)
    observed = -np.expm1(-baseline * np.exp(eta))
    frame = pd.DataFrame({"predicted": p, "observed": observed})
    return frame.sort_values("predicted", kind="stable").reset_index(drop=True)


def _slope(lp: np.ndarray, t: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    centred = (lp - lp.mean())[:, None]
    beta, _ = efron_fit(centred, t, e, allow_divergence=True)
    information = efron_information(centred, t, e, beta)
    return float(beta[0]), float(np.sqrt(1.0 / information[0, 0]))


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline (Harrell's ``rcs``): ``x`` and one term per inner knot."""
    k = np.unique(knots)
    if len(k) < 3:
        return x[:, None]
    scale = (k[-1] - k[0]) ** 2

    def cube(v):
        return np.clip(v, 0, None) ** 3

    columns = [x]
    for j in range(len(k) - 2):
        term = (
            cube(x - k[j])
            - cube(x - k[-2]) * (k[-1] - k[j]) / (k[-1] - k[-2])
            + cube(x - k[-1]) * (k[-2] - k[j]) / (k[-1] - k[-2])
        )
        columns.append(term / scale)
    return np.column_stack(columns)


def _breslow_at(eta: np.ndarray, t: np.ndarray, e: np.ndarray, horizon: float) -> float:
    """Breslow baseline cumulative hazard at ``horizon`` for the linear predictor ``eta``."""
    risk = np.exp(eta - eta.max())
    times = np.unique(t[e & (t <= horizon)])
    at_risk = np.array([risk[t >= s].sum() for s in times])
    deaths = np.array([(e & (t == s)).sum() for s in times])
    return float((deaths / at_risk).sum() * np.exp(-eta.max()))


def _km_risk(t: np.ndarray, e: np.ndarray, horizon: float) -> tuple[float, float]:
    """``1 - KM(horizon)`` and the standard error of its logarithm (Greenwood, delta method)."""
    times = np.unique(t[e & (t <= horizon)])
    if times.size == 0:
        return 0.0, np.nan
    at_risk = (t[None, :] >= times[:, None]).sum(axis=1)
    deaths = ((t[None, :] == times[:, None]) & e[None, :]).sum(axis=1)
    survival = float(np.prod(1 - deaths / at_risk))
    with np.errstate(divide="ignore"):
        greenwood = float((deaths / (at_risk * (at_risk - deaths))).sum())
    risk = 1 - survival
    se_log = survival * np.sqrt(greenwood) / risk if risk > 0 else np.nan
    return risk, float(se_log)


def _cloglog(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EDGE, 1 - _EDGE)
    return np.log(-np.log1p(-q))


def _checked(risk, time, event):
    p = np.asarray(risk, dtype=float).ravel()
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event, dtype=float).ravel()
    if not len(p) == len(t) == len(e):
        raise InputError(
            f"calibration: {len(p)} risks, {len(t)} times and {len(e)} events; give one of "
            "each per subject."
        )
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise InputError("calibration: predicted risks must be probabilities in [0, 1].")
    if not (np.isfinite(t).all() and np.isin(e, (0, 1)).all()):
        raise InputError("calibration: times must be finite and events 0 or 1.")
    return p, t, e.astype(bool)
