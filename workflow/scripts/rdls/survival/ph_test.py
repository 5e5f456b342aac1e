"""Test of proportional hazards: the score test of survival 3.x's ``cox.zph``.

Grambsch and Therneau (Biometrika 1994) test whether a coefficient drifts with time by adding
``beta_j g(t)`` terms to the Cox model, with ``g`` a transform of time, and asking whether
they are zero. Survival 3.0 (2019) replaced the familiar approximation (a regression of the
scaled Schoenfeld residuals on ``g``, with the information matrix taken as constant over time)
with the exact score test of these terms at the fitted coefficients: the score of the
``x g(t)`` block and the full information matrix of the enlarged model, both evaluated at
``(beta_hat, 0)``. The two disagree where the covariates' spread in the risk set changes over
follow-up, which is the rule in a cohort with stage and subtype effects.

A term with several columns (a categorical covariate) is tested with its columns together, as
``cox.zph(terms = TRUE)`` does, and the global test adds every column at once. Tied event
times are handled as Efron's approximation handles them in the fit.

Agrees with R survival 3.5 on the CRCSC cohort (783 subjects, 8 columns in 4 terms) to 1e-6
in every statistic, for both the "km" and the "identity" transforms (tested).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2, rankdata

from rdls.errors import InputError

TRANSFORMS = ("km", "identity", "rank", "log")


def cox_zph(
    X: pd.DataFrame,
    time,
    event,
    coefficients,
    *,
    terms: dict[str, list[str]] | None = None,
    transform: str = "km",
    penalty_hessian: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score test of proportional hazards for a fitted Cox model (survival 3.x ``cox.zph``).

    Parameters
    ----------
    X : pandas.DataFrame
        The model's design (numeric columns, as fitted), one row per subject.
    time, event : array-like
        Follow-up and event indicator (0/1), aligned with ``X``.
    coefficients : array-like
        The fitted coefficients, one per column of ``X``.
    terms : dict, optional
        Term name -> its columns of ``X``; a term with several columns is tested jointly. By
        default each column is its own term.
    transform : {"km", "identity", "rank", "log"}
        Time transform ``g``: one minus the left-continuous Kaplan-Meier estimate (``cox.zph``'s
        default), time itself, its rank, or its logarithm.
    penalty_hessian : numpy.ndarray, optional
        Second derivative of a penalty on the coefficients (p x p), added to both blocks of
        the information matrix as ``cox.zph`` does for penalised fits.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``statistic`` (chi-square), ``df``, ``p_value``; one row per term, then
        ``GLOBAL``.

    Raises
    ------
    rdls.errors.InputError
        Unknown transform, a term naming a column ``X`` lacks, misaligned or non-finite input,
        or no events.
    """
    if transform not in TRANSFORMS:
        raise InputError(
            f"proportional-hazards test: transform {transform!r} is not one of "
            f"{', '.join(TRANSFORMS)}."
        )
    columns = list(X.columns)
    terms = terms or {c: [c] for c in columns}
    unknown = [c for cols in terms.values() for c in cols if c not in columns]
    if unknown:
        raise InputError(
            f"proportional-hazards test: term columns {unknown} are not in the design ({columns})."
        )
    x = X.to_numpy(dtype=float)
    t = np.asarray(time, dtype=float).ravel()
    d = np.asarray(event, dtype=float).ravel().astype(bool)
    beta = np.asarray(coefficients, dtype=float).ravel()
    if not (len(t) == len(d) == len(x)) or len(beta) != x.shape[1]:
        raise InputError(
            f"proportional-hazards test: {len(x)} design rows, {len(t)} times, {len(d)} events "
            f"and {len(beta)} coefficients for {x.shape[1]} columns do not line up."
        )
    if not (np.isfinite(x).all() and np.isfinite(t).all() and np.isfinite(beta).all()):
        raise InputError(
            "proportional-hazards test: the design, times and coefficients must be finite."
        )
    if not d.any():
        raise InputError("proportional-hazards test: there are no events.")

    g = _time_transform(t, d, transform)
    g = g - g[d].mean()
    score, information = _enlarged_score_and_information(x - x.mean(axis=0), t, d, beta, g)
    p = x.shape[1]
    if penalty_hessian is not None:
        information[:p, :p] += penalty_hessian
        information[p:, p:] += penalty_hessian

    rows = []
    for name, cols in terms.items():
        block = [columns.index(c) for c in cols]
        rows.append({"term": name, **_score_test(score, information, block, p)})
    rows.append({"term": "GLOBAL", **_score_test(score, information, list(range(p)), p)})
    return pd.DataFrame(rows, columns=["term", "statistic", "df", "p_value"])


def _score_test(score: np.ndarray, information: np.ndarray, block: list[int], p: int) -> dict:
    """``u' I^-1 u`` over the coefficients and the block's time terms, the former's score 0."""
    keep = list(range(p)) + [p + j for j in block]
    u = np.r_[np.zeros(p), score[block]]
    statistic = float(u @ np.linalg.solve(information[np.ix_(keep, keep)], u))
    p_value = float(chi2.sf(statistic, len(block)))
    return {"statistic": statistic, "df": len(block), "p_value": p_value}


def _time_transform(t: np.ndarray, d: np.ndarray, transform: str) -> np.ndarray:
    if transform == "identity":
        return t.copy()
    if transform == "rank":
        return rankdata(t)
    if transform == "log":
        return np.log(t)
    # 1 - S(t-): the Kaplan-Meier estimate just before each subject's time
    times = np.unique(t[d])
    t_sorted = np.sort(t)
    at_risk = len(t) - np.searchsorted(t_sorted, times, side="left")
    deaths = np.searchsorted(np.sort(t[d]), times, side="right") - np.searchsorted(
        np.sort(t[d]), times, side="left"
    )
    survival = np.r_[1.0, np.cumprod(1.0 - deaths / at_risk)]
    return 1.0 - survival[np.searchsorted(times, t, side="left")]


def _enlarged_score_and_information(
    x: np.ndarray, t: np.ndarray, d: np.ndarray, beta: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score of the ``x g(t)`` terms and the 2p x 2p information at ``(beta, 0)``, Efron ties."""
    p = x.shape[1]
    risk = np.exp(x @ beta - (x @ beta).mean())
    order = np.argsort(-t, kind="stable")  # latest first: risk sets accumulate
    x, t, d, risk, g = x[order], t[order], d[order], risk[order], g[order]
    rx = risk[:, None] * x
    s0 = np.cumsum(risk)
    s1 = np.cumsum(rx, axis=0)
    s2 = np.cumsum(rx[:, :, None] * x[:, None, :], axis=0)
    last_of_time = np.r_[t[1:] != t[:-1], True]  # the row closing each time's risk set
    score = np.zeros(p)
    info = np.zeros((p, p))
    info_g = np.zeros((p, p))
    info_gg = np.zeros((p, p))
    start = 0
    for end in np.flatnonzero(last_of_time):
        group = slice(start, end + 1)
        start = end + 1
        dead = np.flatnonzero(d[group]) + group.start
        if dead.size == 0:
            continue
        k = dead.size
        d0, d1 = risk[dead].sum(), rx[dead].sum(axis=0)
        d2 = (rx[dead][:, :, None] * x[dead][:, None, :]).sum(axis=0)
        variance = np.zeros((p, p))
        mean_sum = np.zeros(p)
        for share in np.arange(k) / k:  # Efron: the tied deaths leave the risk set in turn
            denominator = s0[end] - share * d0
            mean = (s1[end] - share * d1) / denominator
            variance += (s2[end] - share * d2) / denominator - np.outer(mean, mean)
            mean_sum += mean
        weight = g[dead[0]]
        score += weight * (x[dead].sum(axis=0) - mean_sum)
        info += variance
        info_g += weight * variance
        info_gg += weight**2 * variance
    information = np.block([[info, info_g], [info_g, info_gg]])
    return score, information
