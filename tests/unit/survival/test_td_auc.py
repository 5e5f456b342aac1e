"""rdls.survival.td_auc: the time-dependent AUC, its standard error and the paired test.

Exact checks against simpler estimators where they coincide (no censoring before the horizon:
the Mann-Whitney AUC; untied times: scikit-survival with the cohort as its own censoring
sample), and Monte Carlo checks that the standard errors describe the estimator's spread.
The comparison with timeROC itself is in test_r_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from sklearn.metrics import roc_auc_score
from sksurv.metrics import cumulative_dynamic_auc
from sksurv.util import Surv

from rdls.errors import InputError
from rdls.survival.td_auc import compare_auc, ipcw_case_weights, time_dependent_auc

HORIZON = 36.0


def _cohort(n: int, rng: np.random.Generator, *, censor_from: float = 6.0):
    """Exponential times with hazard 0.02 exp(x); markers x (informative) and x + noise."""
    x = rng.normal(size=n)
    events = rng.exponential(1 / (0.02 * np.exp(x)))
    censoring = rng.uniform(censor_from, 96, n)
    time = np.minimum(events, censoring)
    return time, (events <= censoring).astype(int), x, x + rng.normal(scale=1.5, size=n)


def test_without_censoring_before_the_horizon_it_is_the_mann_whitney_auc():
    time, event, marker, _ = _cohort(400, np.random.default_rng(1), censor_from=HORIZON + 1)
    result = time_dependent_auc(time, event, marker, horizon=HORIZON)
    case, control = (time < HORIZON) & (event == 1), time > HORIZON
    labels = np.r_[np.ones(case.sum()), np.zeros(control.sum())]
    expected = roc_auc_score(labels, np.r_[marker[case], marker[control]])
    assert result.auc == pytest.approx(expected, abs=1e-12)
    assert (result.cases, result.controls, result.neither) == (case.sum(), control.sum(), 0)


def test_with_untied_times_it_is_scikit_survivals_auc_with_the_cohorts_own_censoring():
    time, event, marker, _ = _cohort(500, np.random.default_rng(2))
    y = Surv.from_arrays(event=event == 1, time=time)
    expected, _ = cumulative_dynamic_auc(y, y, marker, HORIZON)
    assert time_dependent_auc(time, event, marker, horizon=HORIZON).auc == pytest.approx(
        expected[0], abs=1e-12
    )


def test_inverse_censoring_weights_reproduce_the_kaplan_meier_incidence():
    time, event, _, _ = _cohort(300, np.random.default_rng(3))
    weights = ipcw_case_weights(time, event, horizon=HORIZON)
    km = KaplanMeierFitter().fit(time, event)
    assert weights.sum() / len(time) == pytest.approx(
        1 - km.survival_function_at_times(HORIZON - 1e-9).item(), abs=1e-12
    )
    assert (weights[(time >= HORIZON) | (event == 0)] == 0).all()


def test_standard_errors_match_the_spread_over_replicate_cohorts():
    rng = np.random.default_rng(4)
    aucs, ses, differences, difference_ses = [], [], [], []
    for _ in range(300):
        time, event, marker, noisy = _cohort(250, rng)
        a = time_dependent_auc(time, event, noisy, horizon=HORIZON)
        b = time_dependent_auc(time, event, marker, horizon=HORIZON)
        test = compare_auc(a, b)
        aucs.append(b.auc)
        ses.append(b.se)
        differences.append(test["difference"])
        difference_ses.append(test["se"])
    assert np.mean(ses) / np.std(aucs, ddof=1) == pytest.approx(1.0, abs=0.12)
    assert np.mean(difference_ses) / np.std(differences, ddof=1) == pytest.approx(1.0, abs=0.12)
    # the informative marker beats its noisy copy: the test has power at this size
    assert np.mean(np.array(differences) / np.array(difference_ses) > 1.96) > 0.8


def test_the_paired_test_holds_its_level_for_equally_good_markers():
    rng = np.random.default_rng(5)
    p_values = []
    for _ in range(300):
        time, event, marker, _ = _cohort(250, rng)
        a = time_dependent_auc(time, event, marker + rng.normal(size=len(time)), horizon=HORIZON)
        b = time_dependent_auc(time, event, marker + rng.normal(size=len(time)), horizon=HORIZON)
        p_values.append(compare_auc(a, b)["p_value"])
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.09


def test_influence_is_in_input_order():
    time, event, marker, _ = _cohort(200, np.random.default_rng(6))
    order = np.random.default_rng(7).permutation(len(time))
    first = time_dependent_auc(time, event, marker, horizon=HORIZON)
    shuffled = time_dependent_auc(time[order], event[order], marker[order], horizon=HORIZON)
    assert shuffled.auc == pytest.approx(first.auc, abs=1e-12)
    np.testing.assert_allclose(shuffled.influence, first.influence[order], atol=1e-12)


@pytest.mark.parametrize(
    ("change", "reason"),
    [("no_events", "no event before 36"), ("short", "nobody event-free beyond 36")],
)
def test_no_case_or_no_control_gives_nan_with_the_reason(change, reason):
    time, event, marker, _ = _cohort(100, np.random.default_rng(8))
    if change == "no_events":
        event = np.where(time < HORIZON, 0, event)
    else:
        time = np.minimum(time, HORIZON)
    result = time_dependent_auc(time, event, marker, horizon=HORIZON)
    assert np.isnan(result.auc) and np.isnan(result.se)
    assert result.reason.startswith(reason)
    other = time_dependent_auc(time, event, -marker, horizon=HORIZON)
    assert np.isnan(compare_auc(result, other)["p_value"])


def test_identical_markers_differ_by_nothing():
    time, event, marker, _ = _cohort(100, np.random.default_rng(9))
    a = time_dependent_auc(time, event, marker, horizon=HORIZON)
    test = compare_auc(a, a)
    assert test["difference"] == 0 and test["se"] == 0 and np.isnan(test["p_value"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([1.0, 2.0], [1, 0], [0.1]), "lengths 2, 2 and 1"),
        (([1.0, np.nan], [1, 0], [0.1, 0.2]), "1 time values are missing or not finite"),
        (([1.0, 2.0], [1, 0], [0.1, np.inf]), "1 marker values are missing"),
        (([0.0, 2.0], [1, 0], [0.1, 0.2]), "follow-up times must be positive"),
        (([1.0, 2.0], [1, 2], [0.1, 0.2]), "event indicator must be 0 or 1"),
    ],
)
def test_bad_input_is_named(arguments, message):
    with pytest.raises(InputError, match=message):
        time_dependent_auc(*arguments, horizon=1.5)


def test_aucs_from_different_subjects_are_not_compared():
    time, event, marker, _ = _cohort(100, np.random.default_rng(10))
    a = time_dependent_auc(time, event, marker, horizon=HORIZON)
    b = time_dependent_auc(time[:50], event[:50], marker[:50], horizon=HORIZON)
    with pytest.raises(ValueError, match="same subjects"):
        compare_auc(a, b)
