"""scikit-survival's Coxnet against R glmnet, and rdls' RRS fit against Coxnet.

The reference paths are those scikit-survival's own tests/test_coxnet.py checks (shipped in
the shared data as survival/sksurv_testdata, GPL-3, from scikit-survival's tests/data):
``glmnet(x, Surv(time, status), family = "cox")`` coefficient matrices, one column per
lambda of glmnet's own path, on cox-example.csv (1000 subjects, 30 features) and on the
GSE7390 breast-cancer data that scikit-survival bundles. glmnet's lambda is Coxnet's alpha and
its alpha is Coxnet's l1_ratio. The first lambda of each path and a few deviance ratios are
quoted from the same test file, where they were taken from glmnet.

Tolerances are scikit-survival's: 6 decimals (|difference| < 1.5e-6) on cox-example, 5 on the
standardised and the breast-cancer paths, where glmnet's convergence threshold shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_almost_equal
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from rdls.survival.rrs import _cox_loglik, _saturated_loglik, fit_rrs

REFERENCE = "survival/sksurv_testdata"


@pytest.fixture(scope="module")
def example(shared_data):
    frame = pd.read_csv(shared_data / REFERENCE / "cox-example.csv")
    X = frame.drop(columns=["time", "status"])
    return X, frame["time"].to_numpy(float), frame["status"].to_numpy() == 1


def _reference(shared_data, name: str, **kwargs) -> pd.DataFrame:
    return pd.read_csv(shared_data / REFERENCE / name, **kwargs)


def test_elastic_net_path_matches_glmnet(shared_data, example):
    """glmnet(alpha = 0.5, lambda.min.ratio = 1e-4, standardize = FALSE): cox-example-coef-1."""
    X, time, event = example
    fit = CoxnetSurvivalAnalysis(l1_ratio=0.5, alpha_min_ratio=0.0001)
    fit.fit(X.to_numpy(), Surv.from_arrays(event=event, time=time))
    expected = _reference(shared_data, "cox-example-coef-1.csv")
    assert fit.coef_.shape == expected.shape == (30, 51)
    assert fit.alphas_[0] == pytest.approx(0.468899812444165, rel=1e-9)
    assert fit.alphas_[-1] == pytest.approx(0.00447587592297602, rel=1e-9)
    assert_array_almost_equal(fit.coef_, expected.to_numpy(), decimal=6)
    # glmnet's dev.ratio at the second and last lambda
    assert fit.deviance_ratio_[1] == pytest.approx(0.00149456666347458, abs=1e-9)
    assert fit.deviance_ratio_[-1] == pytest.approx(0.0586884909745359, abs=1e-9)


def test_standardised_path_matches_glmnet(shared_data, example):
    """glmnet(alpha = 0.9, standardize = TRUE): cox-example-coef-2-std, on the original scale.

    This is the setting of fit_rrs: standardise with the mean and the ddof=0 standard
    deviation, then fit Coxnet.
    """
    X, time, event = example
    scaler = StandardScaler().fit(X.to_numpy())
    fit = CoxnetSurvivalAnalysis(l1_ratio=0.9, alpha_min_ratio=0.0001)
    fit.fit(scaler.transform(X.to_numpy()), Surv.from_arrays(event=event, time=time))
    expected = _reference(shared_data, "cox-example-coef-2-std.csv")
    assert fit.coef_.shape == expected.shape == (30, 49)
    assert fit.alphas_[0] == pytest.approx(0.263066005037211, rel=1e-9)
    assert_array_almost_equal(fit.coef_ / scaler.scale_[:, None], expected.to_numpy(), decimal=5)


def test_lasso_path_matches_glmnet_on_breast_cancer(shared_data):
    """glmnet(alpha = 1) on 76 genes and 6 clinical columns: breast_cancer_glmnet_coefficients."""
    from sksurv.column import encode_categorical
    from sksurv.datasets import load_breast_cancer

    X, y = load_breast_cancer()
    X = encode_categorical(X)
    fit = CoxnetSurvivalAnalysis(l1_ratio=1.0).fit(X.to_numpy(), y)
    expected = _reference(shared_data, "breast_cancer_glmnet_coefficients.csv", index_col=0)
    expected.index = expected.index.str.replace("'", "")  # R quotes factor levels
    expected = expected.loc[list(X.columns)]
    assert fit.alpha_min_ratio_ == 0.0001
    assert fit.coef_.shape == expected.shape == (82, 88)
    assert fit.alphas_[0] == pytest.approx(0.207764947265866, rel=1e-6)
    assert_array_almost_equal(fit.coef_, expected.to_numpy(), decimal=5)


def test_partial_likelihood_reproduces_glmnet_deviance_ratio(example):
    """rdls' Breslow log partial likelihood (the CV deviance) gives glmnet's dev.ratio path."""
    X, time, event = example
    fit = CoxnetSurvivalAnalysis(l1_ratio=0.5, alpha_min_ratio=0.0001)
    fit.fit(X.to_numpy(), Surv.from_arrays(event=event, time=time))
    eta = (X.to_numpy() - X.to_numpy().mean(axis=0)) @ fit.coef_
    saturated = _saturated_loglik(time, event)
    null = 2 * (saturated - _cox_loglik(np.zeros(len(time)), time, event))
    deviance = 2 * (saturated - _cox_loglik(eta, time, event))
    assert_allclose(1 - deviance / null, fit.deviance_ratio_, atol=1e-9)


def test_rrs_scores_equal_coxnet_predictions_at_the_chosen_alpha(example):
    X, time, event = example
    model, cv = fit_rrs(X, time, event.astype(int), l1_ratio=0.5, seed=11)
    chosen = cv.loc[cv["chosen"], "alpha"].item()
    assert model.alpha == chosen
    z = StandardScaler().fit_transform(X.to_numpy())
    fit = CoxnetSurvivalAnalysis(l1_ratio=0.5, alpha_min_ratio=0.01)
    fit.fit(z, Surv.from_arrays(event=event, time=time))
    assert_allclose(fit.alphas_, cv["alpha"], rtol=1e-12)
    expected = fit.predict(z, alpha=chosen)
    assert_allclose(model.score(X).to_numpy(), expected, atol=1e-10)
    column = int(np.flatnonzero(np.isclose(fit.alphas_, chosen))[0])
    kept = {f: c for f, c in zip(X.columns, fit.coef_[:, column], strict=True) if c != 0}
    assert model.coefficients == pytest.approx(kept, abs=1e-12)
