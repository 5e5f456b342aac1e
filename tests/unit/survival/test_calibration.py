"""rdls.survival.calibration: slope, observed/expected and the smoothed curve by a horizon.

Cohorts drawn from a known Cox model (hazard 0.01/month x exp(x)); the true risks by 60 months
are perfectly calibrated, and two planted miscalibrations must show where they should: risks
too extreme (linear predictor doubled: slope 1/2) and a doubled baseline hazard (slope 1,
observed/expected well below 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from rdls.errors import InputError
from rdls.survival.calibration import _rcs_basis, calibration_summary, smoothed_calibration

HORIZON = 60.0


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.normal(size=n)
    events = rng.exponential(1 / (0.01 * np.exp(x)))
    censoring = rng.uniform(20, 120, n)
    return x, np.minimum(events, censoring), (events <= censoring).astype(int)


def _risk(x, *, scale=1.0, baseline=0.01):
    return -np.expm1(-baseline * HORIZON * np.exp(scale * x))


def test_true_risks_are_calibrated(cohort):
    x, time, event = cohort
    found = calibration_summary(_risk(x), time, event, horizon=HORIZON)
    assert found["slope_ci_lower"] < 1 < found["slope_ci_upper"]
    assert found["oe_ci_lower"] < 1 < found["oe_ci_upper"]
    assert found["ici"] < 0.015 and found["e90"] < 0.03
    assert found["note"] == ""


def test_too_extreme_risks_have_a_slope_of_one_half(cohort):
    x, time, event = cohort
    found = calibration_summary(_risk(x, scale=2.0), time, event, horizon=HORIZON)
    assert found["slope"] == pytest.approx(0.5, abs=0.05)
    assert found["ici"] > 0.05


def test_a_doubled_baseline_overpredicts_without_changing_the_slope(cohort):
    x, time, event = cohort
    found = calibration_summary(_risk(x, baseline=0.02), time, event, horizon=HORIZON)
    assert found["slope"] == pytest.approx(1.0, abs=0.08)
    assert found["oe_ci_upper"] < 0.8
    assert found["expected"] > found["observed"] + 0.1


def test_the_smoothed_curve_follows_the_true_risks(cohort):
    x, time, event = cohort
    curve = smoothed_calibration(_risk(x), time, event, horizon=HORIZON)
    assert curve["predicted"].is_monotonic_increasing
    assert (curve["observed"] - curve["predicted"]).abs().quantile(0.9) < 0.03
    overpredicted = smoothed_calibration(_risk(x, baseline=0.02), time, event, horizon=HORIZON)
    assert (overpredicted["observed"] < overpredicted["predicted"]).mean() > 0.95


def test_restricted_cubic_spline_is_linear_beyond_the_outer_knots():
    x = np.linspace(-5, 5, 201)
    basis = _rcs_basis(x, np.array([-1.0, 0.0, 1.0]))
    assert basis.shape == (201, 2)
    tail = basis[x > 1.5, 1]
    np.testing.assert_allclose(np.diff(tail, 2), 0, atol=1e-10)
    assert (basis[x < -1, 1] == 0).all()


def test_a_cohort_without_events_by_the_horizon_says_so(cohort):
    x, time, event = cohort
    found = calibration_summary(_risk(x), time, np.zeros_like(event), horizon=HORIZON)
    assert np.isnan(found["oe_ratio"]) and np.isnan(found["slope"])
    assert "no event by 60" in found["note"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([0.1, 0.2], [1.0], [1, 0]), "2 risks, 1 times and 2 events"),
        (([0.1, 1.2], [1.0, 2.0], [1, 0]), "must be probabilities"),
        (([0.1, 0.2], [1.0, np.nan], [1, 0]), "times must be finite"),
    ],
)
def test_bad_input_is_named(arguments, message):
    with pytest.raises(InputError, match=message):
        calibration_summary(*arguments, horizon=1.5)
