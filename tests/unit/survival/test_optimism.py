"""rdls.survival.optimism: Harrell's bootstrap optimism correction and its Cox machinery.

Against R: coxph's coefficients and rms 6.5 ``validate(cph(...), B = 400)`` on the CRCSC
cohort (validation data; skipped without it). Without it: a model of pure noise, whose
apparent concordance is optimistic and whose corrected one must fall back to chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sksurv.metrics import concordance_index_censored

from rdls.errors import InputError
from rdls.survival._efron import efron_fit, efron_loglik
from rdls.survival.optimism import bootstrap_optimism, harrell_c, performance, refit_cox
from tests.unit.survival.test_r_reference import _r_design


def _cox(X: pd.DataFrame, time, event):
    """rms's refit in validate (refit_cox on every column)."""
    return refit_cox(list(X.columns))(X, time, event)


def _noise(n: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"z{i}" for i in range(p)])
    events = rng.exponential(30, n)
    censoring = rng.uniform(10, 80, n)
    time = np.round(np.minimum(events, censoring), 1)  # rounding plants tied times
    return X, time, (events <= censoring).astype(int)


@pytest.fixture(scope="module")
def reference(shared_data):
    return shared_data / "survival" / "r_reference"


@pytest.fixture(scope="module")
def crcsc(reference):
    cohort = pd.read_csv(reference / "cms_complete.tsv", sep="\t")
    return _r_design(cohort), cohort["rfsMo"].to_numpy(float), cohort["rfsStat"].to_numpy()


def test_efron_fit_equals_rs_coxph(reference, crcsc):
    X, time, event = crcsc
    table = pd.read_csv(reference / "cox_coefficients.tsv", sep="\t")
    for _, expected in table.groupby("model"):
        beta, _ = efron_fit(X[expected["term"]].to_numpy(), time, event.astype(bool))
        np.testing.assert_allclose(beta, expected["coef"], atol=1e-6)


def test_efron_fit_equals_lifelines_with_ties():
    X, time, event = _noise(300, 3, seed=1)
    beta, loglik = efron_fit(X.to_numpy(), time, event.astype(bool))
    frame = X.assign(time=time, event=event)
    fitted = CoxPHFitter().fit(frame, "time", "event")
    np.testing.assert_allclose(beta, fitted.params_.to_numpy(), atol=1e-6)
    assert loglik == pytest.approx(fitted.log_likelihood_, abs=1e-6)
    assert efron_loglik(X.to_numpy(), time, event.astype(bool), beta) == pytest.approx(loglik)


def test_a_level_without_events_is_refused_unless_divergence_is_allowed():
    X, time, event = _noise(200, 1, seed=2)
    X["empty"] = 0.0
    X.loc[:9, "empty"] = 1.0
    event[:10] = 0
    with pytest.raises(InputError, match="a coefficient diverges"):
        efron_fit(X.to_numpy(), time, event.astype(bool))
    beta, _ = efron_fit(X.to_numpy(), time, event.astype(bool), max_iter=10, tol=1e-4,
                        allow_divergence=True)  # fmt: skip
    assert beta[1] < -3


def test_harrell_c_equals_scikit_survival():
    X, time, event = _noise(300, 1, seed=3)
    risk = np.round(X["z0"].to_numpy(), 1)  # tied risks
    expected = concordance_index_censored(event.astype(bool), time, risk)[0]
    assert harrell_c(risk, time, event) == pytest.approx(expected, abs=1e-12)


def test_corrected_figures_match_rms_validate(reference, crcsc):
    X, time, event = crcsc
    expected = pd.read_csv(reference / "rms_validate_B400.tsv", sep="\t").set_index("index")
    table = bootstrap_optimism(_cox, X, time, event, n_boot=400, seed=1, horizon=60)
    for measure in ("Dxy", "R2", "D"):
        assert table.loc[measure, "apparent"] == pytest.approx(
            expected.loc[measure, "apparent"], abs=1e-5
        )
    tolerance = {"Dxy": 0.02, "Slope": 0.02, "R2": 0.01, "D": 0.005}  # Monte Carlo
    for measure, within in tolerance.items():
        assert table.loc[measure, "corrected"] == pytest.approx(
            expected.loc[measure, "corrected"], abs=within
        )
    assert (table["n"] == 400).all()
    assert table.loc["AUC", "corrected"] < table.loc["AUC", "apparent"]


def test_pure_noise_looks_predictive_until_corrected():
    X, time, event = _noise(150, 10, seed=4)
    table = bootstrap_optimism(_cox, X, time, event, n_boot=100, seed=5, horizon=40)
    assert table.loc["C", "apparent"] > 0.58
    assert table.loc["C", "corrected"] == pytest.approx(0.5, abs=0.04)
    assert table.loc["Slope", "corrected"] < 0.5  # predictions of noise shrink towards none
    again = bootstrap_optimism(_cox, X, time, event, n_boot=100, seed=5, horizon=40)
    pd.testing.assert_frame_equal(table, again)


def test_resamples_refitted_in_parallel_give_the_same_table():
    X, time, event = _noise(120, 5, seed=6)
    serial = bootstrap_optimism(_cox, X, time, event, n_boot=20, seed=7, horizon=40)
    parallel = bootstrap_optimism(_cox, X, time, event, n_boot=20, seed=7, horizon=40, n_jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_a_reported_model_fitted_elsewhere_gets_the_procedures_optimism():
    X, time, event = _noise(150, 10, seed=4)
    plain = bootstrap_optimism(_cox, X, time, event, n_boot=30, seed=5, horizon=40)
    reported = X.iloc[:, 0].to_numpy()  # any linear predictor of the reported model
    table = bootstrap_optimism(_cox, X, time, event, n_boot=30, seed=5, horizon=40,
                               apparent_lp=reported)  # fmt: skip
    pd.testing.assert_series_equal(table["optimism"], plain["optimism"])
    expected = performance(reported, time, event, horizon=40)
    pd.testing.assert_series_equal(table["apparent"], expected, check_names=False)
    pd.testing.assert_series_equal(table["corrected"], expected - plain["optimism"],
                                   check_names=False)  # fmt: skip


def test_resamples_the_procedure_cannot_fit_are_skipped_and_counted(caplog):
    X, time, event = _noise(120, 2, seed=6)
    calls = {"n": 0}

    def sometimes(rows, t, e):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise InputError("a level without events")
        return _cox(rows, t, e)

    table = bootstrap_optimism(sometimes, X, time, event, n_boot=30, seed=7)
    assert (table["n"] == 20).all()
    assert "10 of 30 resamples could not be fitted" in caplog.text


def test_a_procedure_that_never_fits_is_an_error():
    X, time, event = _noise(60, 2, seed=8)
    calls = {"n": 0}

    def once(rows, t, e):
        calls["n"] += 1
        if calls["n"] > 1:
            raise InputError("no")
        return _cox(rows, t, e)

    with pytest.raises(InputError, match="could not be fitted on any of 5 resamples"):
        bootstrap_optimism(once, X, time, event, n_boot=5, seed=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [("short_time", "60 rows of predictors, 59 times"), ("no_events", "has no events"),
     ("nan_time", "times must be finite")],
)  # fmt: skip
def test_bad_survival_data_is_named(change, message):
    X, time, event = _noise(60, 2, seed=9)
    if change == "short_time":
        time = time[:-1]
    elif change == "no_events":
        event = np.zeros_like(event)
    else:
        time = time.copy()
        time[3] = np.nan
    with pytest.raises(InputError, match=message):
        bootstrap_optimism(_cox, X, time, event, n_boot=2, seed=0)


def test_a_constant_predictor_discriminates_nothing():
    _, time, event = _noise(50, 1, seed=10)
    values = performance(np.zeros(50), time, event)
    assert values.to_dict() == {"Dxy": 0.0, "C": 0.5, "R2": 0.0, "Slope": 1.0, "D": 0.0}
