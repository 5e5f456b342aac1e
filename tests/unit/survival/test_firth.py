"""Firth's penalised Cox fit: finite under monotone likelihood, the penalised maximum, profile
intervals at the chi-square cut, bias reduced in small samples, ordinary Cox in large ones."""

import numpy as np
import pytest
from scipy import optimize, stats

from rdls.errors import InputError
from rdls.survival._efron import efron_fit
from rdls.survival.firth import firth_fit, penalised_loglik


def separated(n=120, seed=0):
    """Three covariates, the third a level in which nobody has an event."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n), rng.integers(0, 2, n)])
    t = rng.exponential(np.exp(-(0.7 * x[:, 0] + 0.3 * x[:, 1])))
    c = rng.exponential(2, n)
    e = (t < c).astype(float)
    e[x[:, 2] == 1] = 0
    return x.astype(float), np.minimum(t, c).round(2), e


def test_the_coxphf_example_converges_where_ordinary_cox_does_not():
    # coxphf's own documented case: times 1, 2, 3, all events, x = 1, 1, 0
    x, t, e = np.array([[1.0], [1.0], [0.0]]), np.array([1.0, 2.0, 3.0]), np.ones(3)
    with pytest.raises(InputError, match="diverges"):
        efron_fit(x, t, e)
    fit = firth_fit(x, t, e)
    assert np.isfinite(fit.coef).all() and 0.5 < fit.coef[0] < 3
    assert fit.ci_lower[0] < 0 < fit.coef[0] < fit.ci_upper[0] < np.inf


def test_the_estimate_is_the_maximum_of_the_penalised_likelihood():
    x, t, e = separated()
    fit = firth_fit(x, t, e)
    options = {"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000}
    found = optimize.minimize(lambda b: -penalised_loglik(x, t, e, b), np.zeros(3),
                              method="Nelder-Mead", options=options)  # fmt: skip
    np.testing.assert_allclose(fit.coef, found.x, atol=1e-5)
    assert fit.penalised_loglik == pytest.approx(-found.fun, abs=1e-8)
    assert -12 < fit.coef[2] < -3  # finite where the ordinary estimate runs to minus infinity


def test_profile_bounds_lie_where_the_penalised_deviance_reaches_the_chi_square_cut():
    x, t, e = separated(n=80, seed=1)
    fit = firth_fit(x, t, e)
    cut = stats.chi2.ppf(0.95, 1)
    for j in range(3):
        for bound in (fit.ci_lower[j], fit.ci_upper[j]):
            others = [k for k in range(3) if k != j]

            def minus(free, j=j, bound=bound, others=others):
                beta = np.empty(3)
                beta[j], beta[others] = bound, free
                return -penalised_loglik(x, t, e, beta)

            best = optimize.minimize(minus, fit.coef[others], method="Nelder-Mead",
                                     options={"xatol": 1e-9, "fatol": 1e-12})  # fmt: skip
            assert 2 * (fit.penalised_loglik + best.fun) == pytest.approx(cut, abs=1e-4)
        assert fit.ci_lower[j] < fit.coef[j] < fit.ci_upper[j]
    # the p-value is the penalised likelihood-ratio test of 0: below 0.05 exactly when the
    # interval leaves 0 out
    assert ((fit.p_value < 0.05) == ((fit.ci_lower > 0) | (fit.ci_upper < 0))).all()


def test_in_a_large_sample_without_separation_firth_is_ordinary_cox():
    rng = np.random.default_rng(4)
    n = 1500
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)]).astype(float)
    t = rng.exponential(np.exp(-(0.5 * x[:, 0] - 0.4 * x[:, 1])))
    c = rng.exponential(2, n)
    e, t = (t < c).astype(float), np.minimum(t, c)
    fit = firth_fit(x, t, e)
    ordinary, _ = efron_fit(x, t, e)
    np.testing.assert_allclose(fit.coef, ordinary, atol=0.01)
    wald = ordinary[:, None] + np.outer(fit.se, [-1.96, 1.96])
    np.testing.assert_allclose(np.column_stack([fit.ci_lower, fit.ci_upper]), wald, atol=0.02)


def test_firth_reduces_the_small_sample_bias_of_the_log_hazard_ratio():
    rng = np.random.default_rng(5)
    truth, firth, ordinary = 1.0, [], []
    for _ in range(150):
        x = np.repeat([0.0, 1.0], 15)[:, None]
        t = rng.exponential(np.exp(-truth * x[:, 0]))
        c = rng.exponential(1.5, 30)
        e, t = (t < c).astype(float), np.minimum(t, c)
        firth.append(firth_fit(x, t, e).coef[0])
        ordinary.append(efron_fit(x, t, e, allow_divergence=True, max_iter=20)[0][0])
    firth, ordinary = np.array(firth), np.array(ordinary)
    assert abs(firth.mean() - truth) < 0.5 * abs(ordinary.mean() - truth)
    assert abs(firth.mean() - truth) < 0.06
    assert np.isfinite(firth).all() and np.abs(firth).max() < 5


def test_no_events_and_a_constant_column_are_refused():
    x, t, e = separated(n=30)
    with pytest.raises(InputError, match="no events"):
        firth_fit(x, t, np.zeros_like(e))
    constant = np.column_stack([x[:, :2], np.ones(len(x))])
    with pytest.raises(InputError, match="singular"):
        firth_fit(constant, t, e)
    with pytest.raises(InputError, match="subjects by terms"):
        firth_fit(x[:, 0], t, e)
