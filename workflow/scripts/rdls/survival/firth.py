"""Firth's penalised Cox regression with profile penalised-likelihood intervals.

Where a covariate level has no events in a small cohort (monotone likelihood) the ordinary
Cox estimate runs off to infinity and its Wald interval is meaningless. Firth's penalty,
half the log determinant of the information, keeps the estimate finite and removes its
first-order bias (Heinze & Schemper 2001, the method of R's ``coxphf``). The intervals and
p-values come from the profile penalised likelihood, as ``coxphf`` reports them by default:
Wald intervals of a penalised fit are not reported as if ordinary.

Ties are Efron's (the rest of the package's Cox models); ``coxphf`` uses Breslow's, which
is the same likelihood where no two events share a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from rdls.errors import InputError
from rdls.survival._efron import _efron

#: Beyond this |coefficient| a profile bound is reported as infinite (a hazard ratio > 1e21).
_BOUND = 50.0


@dataclass(frozen=True)
class FirthResult:
    """A Firth fit: coefficients, their SE (inverse information), profile intervals, p-values.

    ``ci_lower``/``ci_upper`` bound the coefficient (log hazard ratio), at ``level``;
    ``p_value`` is the penalised likelihood-ratio test of each coefficient being 0.
    """

    coef: np.ndarray
    se: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    p_value: np.ndarray
    penalised_loglik: float
    level: float


def penalised_loglik(x: np.ndarray, t: np.ndarray, e: np.ndarray, beta: np.ndarray) -> float:
    """Log partial likelihood plus Firth's penalty, ``0.5 * log det I(beta)``."""
    loglik, _, hessian = _efron(x, t, e, beta)
    return loglik + 0.5 * _logdet(-hessian)


def firth_fit(
    x: np.ndarray,
    t: np.ndarray,
    e: np.ndarray,
    *,
    level: float = 0.95,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> FirthResult:
    """Firth's penalised Cox fit of ``x`` (subjects by terms) on times ``t``, events ``e``.

    Raises
    ------
    rdls.errors.InputError
        No events, a constant or collinear column (the information is singular at 0), or the
        penalised likelihood has no maximum within ``max_iter`` Fisher-scoring steps.
    """
    x, t, e = (np.asarray(a, float) for a in (x, t, e))
    if x.ndim != 2 or len(x) != len(t) or len(t) != len(e):
        raise InputError("Firth Cox fit: x must be subjects by terms, with a time and event each.")
    if e.sum() == 0:
        raise InputError("Firth Cox fit: no events, so there is nothing to fit.")
    free = np.ones(x.shape[1], bool)
    beta, best = _maximise(x, t, e, np.zeros(x.shape[1]), free, max_iter=max_iter, tol=tol)
    information = -_efron(x, t, e, beta)[2]
    se = np.sqrt(np.diag(np.linalg.inv(information)))
    critical = stats.chi2.ppf(level, 1)
    lower, upper, p_value = [], [], []
    for j in range(x.shape[1]):
        profile = _Profile(x, t, e, beta, j, best, max_iter=max_iter, tol=tol)
        lower.append(profile.bound(-1, critical, se[j]))
        upper.append(profile.bound(+1, critical, se[j]))
        p_value.append(float(stats.chi2.sf(max(profile.deviance(0.0), 0.0), 1)))
    return FirthResult(
        coef=beta,
        se=se,
        ci_lower=np.array(lower),
        ci_upper=np.array(upper),
        p_value=np.array(p_value),
        penalised_loglik=best,
        level=level,
    )


class _Profile:
    """The profile penalised likelihood of one coefficient, warm-started between points."""

    def __init__(self, x, t, e, beta, index, best, *, max_iter, tol):
        self.x, self.t, self.e, self.index, self.best = x, t, e, index, best
        self.start, self.max_iter, self.tol = beta.copy(), max_iter, tol
        self.free = np.ones(len(beta), bool)
        self.free[index] = False

    def deviance(self, value: float) -> float:
        """Twice the drop of the penalised log-likelihood with the coefficient fixed there."""
        start = self.start.copy()
        start[self.index] = value
        _, loglik = _maximise(self.x, self.t, self.e, start, self.free, max_iter=self.max_iter,
                              tol=self.tol)  # fmt: skip
        return 2 * (self.best - loglik)

    def bound(self, side: int, critical: float, se: float) -> float:
        centre = self.start[self.index]
        step = max(se, 0.1)

        def excess(value):
            return self.deviance(value) - critical

        inner, outer = centre, centre + side * step
        while excess(outer) < 0:
            if abs(outer) > _BOUND:
                return side * np.inf
            inner, outer = outer, outer + side * step
            step *= 2
        return float(optimize.brentq(excess, min(inner, outer), max(inner, outer), xtol=1e-8))


def _maximise(x, t, e, beta, free, *, max_iter, tol):
    """Fisher scoring on the free coefficients with step halving: ``(beta, penalised loglik)``."""
    beta = beta.astype(float).copy()
    current = penalised_loglik(x, t, e, beta)
    if not free.any():
        return beta, current
    for _ in range(max_iter):
        score, information = _score_and_information(x, t, e, beta)
        try:
            step = np.linalg.solve(information[np.ix_(free, free)], score[free])
        except np.linalg.LinAlgError as error:
            raise InputError(
                "Firth Cox fit: the information matrix is singular (a constant or collinear "
                "column); leave one of the columns out."
            ) from error
        for _ in range(40):
            candidate = beta.copy()
            candidate[free] += step
            value = penalised_loglik(x, t, e, candidate)
            if np.isfinite(value) and value >= current - 1e-12 * max(1.0, abs(current)):
                break
            step = step / 2
        else:
            break
        beta, previous, current = candidate, current, value
        if np.abs(step).max(initial=0) < tol and abs(current - previous) < tol:
            return beta, current
    if not np.isfinite(current) or np.abs(beta).max(initial=0) > _BOUND:
        raise InputError(
            f"Firth Cox fit did not converge in {max_iter} steps; a covariate may be constant "
            "or collinear with another."
        )
    return beta, current


def _score_and_information(x, t, e, beta):
    """Firth's modified score and the information at ``beta``.

    The penalty's gradient, ``0.5 * trace(I^-1 dI/dbeta_j)``, is taken from central
    differences of the information, which the Efron derivatives give in closed form.
    """
    _, gradient, hessian = _efron(x, t, e, beta)
    information = -hessian
    inverse = np.linalg.pinv(information)
    delta = 1e-5
    penalty = np.empty(len(beta))
    for j in range(len(beta)):
        shift = np.zeros(len(beta))
        shift[j] = delta
        upper = -_efron(x, t, e, beta + shift)[2]
        lower = -_efron(x, t, e, beta - shift)[2]
        penalty[j] = 0.5 * np.trace(inverse @ (upper - lower)) / (2 * delta)
    return gradient + penalty, information


def _logdet(information: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(information)
    return float(value) if sign > 0 else -np.inf
