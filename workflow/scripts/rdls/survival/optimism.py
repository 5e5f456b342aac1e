"""Optimism-corrected performance of a Cox model: Harrell's bootstrap, as rms ``validate``.

A model scored on the subjects it was fitted to looks better than it will on new ones. The
bootstrap estimate of that optimism (Efron 1983; Harrell, Lee and Mark, Stat Med 1996)
refits the *whole* modelling procedure on each resample of the training cohort, scores the
refitted model on the resample (its apparent performance there) and on the original cohort
(a test set it was not fitted to), and averages the difference. The corrected figure is the
apparent one minus that average. ``fit`` is the procedure, so a procedure that selects
features or a cut-off repeats its selection inside every resample.

The measures are rms's for ``cph`` (``validate.cph``), computed on the linear predictor ``lp``
of a model in a sample of ``n`` subjects from a one-covariate Cox refit of the outcome on
``lp``, which gives the calibration slope and the likelihood-ratio statistic ``LR``:

- ``Dxy``: Somers' rank correlation of ``lp`` with the time to event, ``2 (C - 1/2)``, with
  Harrell's ``C``;
- ``C``: Harrell's concordance;
- ``R2``: Nagelkerke's, ``(1 - exp(-LR/n)) / (1 - exp(-L0/n))`` with ``L0`` minus twice the
  null log partial likelihood;
- ``Slope``: the calibration slope, the refit's coefficient (1 where the model was fitted);
- ``D``: the discrimination index ``(LR - 1) / L0``;
- ``AUC``: the time-dependent AUC at ``horizon`` (:mod:`rdls.survival.td_auc`), when given.

Ties are Efron's throughout (R's default). On the CRCSC cohort (783 subjects, 202 events,
clinical + CMS model) 400 resamples give corrected Dxy, R2 and slope within 0.01 of
rms 6.5's ``validate(B = 400)`` (a different random stream: a Monte Carlo comparison; tested).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from rdls.errors import InputError
from rdls.survival._efron import efron_fit, efron_loglik
from rdls.survival.td_auc import time_dependent_auc

log = logging.getLogger(__name__)

MEASURES = ("Dxy", "C", "R2", "Slope", "D", "AUC")

#: ``fit(X, time, event)`` returns a function giving the linear predictor of any rows of X.
Procedure = Callable[[pd.DataFrame, np.ndarray, np.ndarray], Callable[[pd.DataFrame], np.ndarray]]


def bootstrap_optimism(
    fit: Procedure,
    X: pd.DataFrame,
    time,
    event,
    *,
    n_boot: int = 200,
    seed: int,
    horizon: float | None = None,
    apparent_lp=None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Apparent, optimism and optimism-corrected performance of the procedure ``fit``.

    Parameters
    ----------
    fit : callable
        ``fit(X, time, event) -> predict``, ``predict(X) -> linear predictor``; the whole
        modelling procedure, repeated on every resample. A resample on which it raises
        ``InputError`` (a level without events, say) is skipped and counted.
    X : pandas.DataFrame
        The training cohort's predictors, one row per subject.
    time, event : array-like
        Follow-up and event indicator (0/1), aligned with ``X``.
    n_boot : int
        Resamples (rms's ``B``); at least 1.
    seed : int
        Seeds the resamples (``numpy.random.default_rng(seed)``).
    horizon : float, optional
        Time of the AUC; without it the table has no AUC row.
    apparent_lp : array-like, optional
        The linear predictor, on ``X``, of the model that is reported, where that model was
        not fitted by ``fit`` on ``X`` alone (an RRS fitted on subjects whose clinical
        covariates are incomplete, say): its apparent performance is the one corrected. By
        default the procedure fitted on ``X``.

    Returns
    -------
    pandas.DataFrame
        Index the measures; columns ``apparent``, ``optimism``, ``corrected`` and ``n`` (the
        resamples used).

    Raises
    ------
    rdls.errors.InputError
        Misaligned or non-finite survival data, no events, or a procedure that fails on the
        whole cohort or on every resample.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event, dtype=float).ravel()
    if not (len(t) == len(e) == len(X)):
        raise InputError(
            f"optimism correction: {len(X)} rows of predictors, {len(t)} times and {len(e)} "
            "events; give one of each per subject."
        )
    if not (np.isfinite(t).all() and np.isin(e, (0, 1)).all()):
        raise InputError(
            "optimism correction: times must be finite and events 0 or 1; leave subjects "
            "with missing follow-up out."
        )
    if not e.any():
        raise InputError("optimism correction: the cohort has no events.")
    e = e.astype(bool)
    if apparent_lp is None:
        apparent_lp = fit(X, t, e)(X)
    apparent = performance(np.asarray(apparent_lp, dtype=float), t, e, horizon=horizon)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(t), len(t)) for _ in range(n_boot)]
    if n_jobs > 1:
        from joblib import Parallel, delayed

        found = Parallel(n_jobs=n_jobs)(
            delayed(_one_resample)(fit, X, t, e, rows, horizon) for rows in resamples
        )
    else:
        found = [_one_resample(fit, X, t, e, rows, horizon) for rows in resamples]
    differences = [d for d in found if not isinstance(d, str)]
    failures = len(found) - len(differences)
    for reason in dict.fromkeys(d for d in found if isinstance(d, str)):
        log.debug("optimism resample skipped: %s", reason)
    if not differences:
        raise InputError(
            f"optimism correction: the model could not be fitted on any of {n_boot} resamples "
            "(see the log); the cohort is too small or too sparse for a bootstrap."
        )
    if failures:
        log.warning("optimism correction: %d of %d resamples could not be fitted", failures,
                    n_boot)  # fmt: skip
    stacked = pd.concat(differences, axis=1)
    optimism = stacked.mean(axis=1, skipna=True)
    return pd.DataFrame(
        {
            "apparent": apparent,
            "optimism": optimism,
            "corrected": apparent - optimism,
            "n": stacked.notna().sum(axis=1).astype(int),
        }
    )


def _one_resample(fit: Procedure, X, t, e, rows, horizon) -> pd.Series | str:
    """Performance on the resample minus on the original data, or why it could not be fitted."""
    X_b, t_b, e_b = X.iloc[rows], t[rows], e[rows]
    try:
        predict = fit(X_b, t_b, e_b)
        on_resample = performance(predict(X_b), t_b, e_b, horizon=horizon)
        on_original = performance(predict(X), t, e, horizon=horizon)
    except InputError as error:
        return str(error)
    return on_resample - on_original


def refit_cox(columns: list[str]) -> Procedure:
    """The Cox model on ``columns``, refitted as rms ``validate`` refits it.

    At most 10 Newton steps and a relative tolerance of 1e-4; a coefficient that runs off
    (a level without events in a resample) is kept where it stands, as R keeps it, rather
    than the resample being dropped, which would leave out exactly the resamples where the
    model is least stable.
    """

    def fit(X: pd.DataFrame, time, event):
        beta, _ = efron_fit(
            X[columns].to_numpy(dtype=float), np.asarray(time, float), np.asarray(event, bool),
            max_iter=10, tol=1e-4, allow_divergence=True,
        )  # fmt: skip
        return lambda rows: rows[columns].to_numpy(dtype=float) @ beta

    return fit


def performance(lp, time, event, *, horizon: float | None = None) -> pd.Series:
    """rms's measures of a linear predictor in one sample (see the module's docstring)."""
    x = np.asarray(lp, dtype=float).ravel()
    t, e = np.asarray(time, dtype=float), np.asarray(event).astype(bool)
    n = len(x)
    values = dict.fromkeys(MEASURES if horizon is not None else MEASURES[:-1], np.nan)
    null_loglik = efron_loglik(np.zeros((n, 1)), t, e, np.zeros(1))
    l0 = -2 * null_loglik
    if np.ptp(x) == 0:  # rms: a constant predictor discriminates nothing
        values.update(Dxy=0.0, C=0.5, R2=0.0, Slope=1.0, D=0.0)
    else:
        # a model whose coefficients are near zero has a steep slope: not a divergence
        slope, loglik = efron_fit(x[:, None], t, e, allow_divergence=True)
        lr = 2 * (loglik - null_loglik)
        concordance = harrell_c(x, t, e)
        values.update(
            Dxy=2 * (concordance - 0.5),
            C=concordance,
            R2=(1 - np.exp(-lr / n)) / (1 - np.exp(-l0 / n)),
            Slope=float(slope[0]),
            D=(lr - 1) / l0,
        )
    if horizon is not None:
        values["AUC"] = time_dependent_auc(t, e.astype(int), x, horizon=horizon).auc
    return pd.Series(values, dtype=float)


def harrell_c(risk, time, event) -> float:
    """Harrell's C: among pairs whose shorter time is an event, the share ordered by ``risk``.

    Pairs with equal times count where one is an event and the other censored (the censored
    one outlived it); tied risks count one half (scikit-survival's and rms's convention).
    """
    r, t, e = np.asarray(risk, float), np.asarray(time, float), np.asarray(event, bool)
    events = np.flatnonzero(e)
    ti, ri = t[events][:, None], r[events][:, None]
    comparable = (t[None, :] > ti) | ((t[None, :] == ti) & ~e[None, :])
    concordant = (r[None, :] < ri) + 0.5 * (r[None, :] == ri)
    pairs = comparable.sum()
    return float((comparable * concordant).sum() / pairs) if pairs else np.nan
