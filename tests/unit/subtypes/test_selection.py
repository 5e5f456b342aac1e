"""rdls.subtypes.selection: near-constant, prognostic and redundancy filters, scaling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from rdls.errors import InputError
from rdls.subtypes.selection import (
    FeatureSelection,
    apply_selection,
    select_features,
    univariable_cox,
)


def _frame(values: np.ndarray, names=None) -> pd.DataFrame:
    names = names or [f"f{j}" for j in range(values.shape[1])]
    index = pd.Index([f"S{i:03d}" for i in range(values.shape[0])], name="subject_id")
    return pd.DataFrame(values, index=index, columns=names)


def _orthonormal(n: int, k: int, *, seed: int) -> np.ndarray:
    """k centred, uncorrelated columns with unit standard deviation: exact correlations."""
    raw = np.random.default_rng(seed).normal(size=(n, k))
    q, _ = np.linalg.qr(raw - raw.mean(axis=0))
    return q * np.sqrt(n - 1)


def _survival(n: int, risk: np.ndarray, *, seed: int) -> tuple[pd.Series, pd.Series]:
    """Exponential recurrence times with hazard exp(risk), uniform censoring, rounded to months."""
    rng = np.random.default_rng(seed)
    recurrence = rng.exponential(24 * np.exp(-risk))
    censor = rng.uniform(6, 72, n)
    index = pd.Index([f"S{i:03d}" for i in range(n)], name="subject_id")
    time = pd.Series(np.ceil(np.minimum(recurrence, censor)), index=index)  # many ties
    event = pd.Series((recurrence <= censor).astype(int), index=index)
    return time, event


# --- the filters ----------------------------------------------------------------------------


def test_near_constant_features_are_dropped_and_reported():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(100, 4))
    values[:, 1] = 3.0  # constant
    values[:, 2] = 0.0
    values[:3, 2] = [1.0, 2.0, 5.0]  # 97% zeros: near-constant at 0.95
    values[:, 3] = 0.0
    values[:10, 3] = 1.0  # 90% zeros: kept at 0.95

    selection = select_features(_frame(values))

    report = selection.report.set_index("feature")
    assert selection.columns == ["f0", "f3"]
    assert report.loc["f1", "reason"] == "near-constant"
    assert report.loc["f2", "reason"] == "near-constant"
    assert report["kept"].tolist() == [True, False, False, True]
    assert report.loc[["f0", "f3"], "reason"].tolist() == ["kept", "kept"]


def test_near_constant_fraction_is_the_share_of_the_most_frequent_value():
    values = np.zeros((20, 3))
    values[:, 0] = np.arange(20)
    values[:, 1] = np.arange(20) % 7
    values[:2, 2] = [1, 2]  # 18 of 20 (90%) share the value 0

    assert "f2" in select_features(_frame(values), near_constant_fraction=0.95).columns
    assert "f2" not in select_features(_frame(values), near_constant_fraction=0.9).columns


def test_correlated_feature_later_in_column_order_goes_and_names_the_kept_one():
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 200))
    values = np.column_stack([a, b, a + 0.05 * rng.normal(size=200), -b, c])
    values[:, 3] += 0.01 * rng.normal(size=200)  # perfectly anti-correlated counts too

    selection = select_features(_frame(values, ["a", "b", "a_copy", "minus_b", "c"]))

    report = selection.report.set_index("feature")["reason"]
    assert selection.columns == ["a", "b", "c"]
    assert report["a_copy"] == "correlated with a"
    assert report["minus_b"] == "correlated with b"


def test_correlation_threshold_is_strict_and_one_switches_it_off():
    rng = np.random.default_rng(2)
    a, noise = rng.normal(size=(2, 500))
    b = 0.8 * a + 0.6 * noise
    r = np.corrcoef(a, b)[0, 1]
    frame = _frame(np.column_stack([a, b, noise]), ["a", "b", "noise"])

    assert select_features(frame, max_abs_correlation=r + 1e-9).columns == ["a", "b", "noise"]
    assert "b" not in select_features(frame, max_abs_correlation=r - 1e-9).columns
    copies = _frame(np.column_stack([a, a, noise]), ["a", "a2", "noise"])
    assert select_features(copies, max_abs_correlation=1.0).columns == ["a", "a2", "noise"]


def test_greedy_filter_compares_only_with_kept_features():
    # r(a, b) = 0.95: b goes. r(c, b) = 0.88 but r(c, a) = 0.70: c stays at 0.8, because it
    # is compared with kept features only.
    u1, u2, u3 = _orthonormal(200, 3, seed=3).T
    a = u1
    b = 0.95 * u1 + np.sqrt(1 - 0.95**2) * u2
    c = 0.7 * u1 + 0.7 * u2 + np.sqrt(1 - 0.98) * u3
    assert np.corrcoef(b, c)[0, 1] == pytest.approx(0.883, abs=1e-3)

    selection = select_features(
        _frame(np.column_stack([a, b, c]), ["a", "b", "c"]), max_abs_correlation=0.8
    )

    assert selection.columns == ["a", "c"]
    assert selection.report.set_index("feature").loc["b", "reason"] == "correlated with a"


def test_scaling_uses_training_mean_and_sd_and_is_applied_unchanged():
    rng = np.random.default_rng(4)
    train = _frame(rng.normal([10, -5, 0], [2, 0.5, 30], size=(150, 3)))
    other = _frame(rng.normal([12, -5, 0], [2, 0.5, 30], size=(40, 3)))

    selection = select_features(train)
    scaled_train = apply_selection(selection, train)
    scaled_other = apply_selection(selection, other[["f2", "f0", "f1"]].assign(extra=1.0))

    assert list(scaled_train.columns) == selection.columns == ["f0", "f1", "f2"]
    np.testing.assert_allclose(scaled_train.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(scaled_train.std(ddof=1), 1, atol=1e-12)
    np.testing.assert_allclose(selection.scale, train.std(ddof=1), rtol=1e-12)
    expected = (other - train.mean()) / train.std(ddof=1)
    np.testing.assert_allclose(scaled_other.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert scaled_other.index.equals(other.index)
    assert scaled_other["f0"].mean() == pytest.approx(1.0, abs=0.5)  # shift kept, not re-centred


def test_selection_is_fast_and_correct_at_study_size():
    # 931 x 1100 with 100 blocks of 11 near-copies: exactly one feature per block survives.
    rng = np.random.default_rng(5)
    base = rng.normal(size=(931, 100))
    values = np.repeat(base, 11, axis=1) + 0.05 * rng.normal(size=(931, 1100))

    selection = select_features(_frame(values))

    assert selection.columns == [f"f{11 * j}" for j in range(100)]
    assert selection.report["reason"].str.startswith("correlated with").sum() == 1000


def test_round_trip_through_json():
    rng = np.random.default_rng(6)
    selection = select_features(_frame(rng.normal(size=(30, 4))))

    again = FeatureSelection.from_dict(json.loads(json.dumps(selection.to_dict())))

    assert again.columns == selection.columns
    pd.testing.assert_series_equal(again.mean, selection.mean)
    pd.testing.assert_series_equal(again.scale, selection.scale)
    pd.testing.assert_frame_equal(again.report, selection.report)


# --- prognostic filter -------------------------------------------------------------------------


def test_univariable_cox_matches_lifelines_with_tied_times():
    rng = np.random.default_rng(7)
    n = 150
    values = np.column_stack(
        [
            rng.normal(size=n),
            rng.normal(10, 5, size=n),
            rng.integers(0, 3, size=n).astype(float),
            rng.lognormal(size=n),
        ]
    )
    time, event = _survival(n, 0.8 * values[:, 0] - 0.1 * values[:, 1], seed=8)
    assert time.duplicated().sum() > 20  # Efron's tie handling is exercised

    coef, se, p = univariable_cox(values, time.to_numpy(), event.to_numpy())

    for j in range(values.shape[1]):
        data = pd.DataFrame({"x": values[:, j], "T": time.to_numpy(), "E": event.to_numpy()})
        fit = CoxPHFitter().fit(data, "T", "E", fit_options={"precision": 1e-12})
        row = fit.summary.loc["x"]
        assert coef[j] == pytest.approx(row["coef"], abs=1e-4)
        assert se[j] == pytest.approx(row["se(coef)"], abs=1e-4)
        assert p[j] == pytest.approx(row["p"], abs=1e-4)


def test_prognostic_filter_keeps_planted_prognostic_features():
    rng = np.random.default_rng(9)
    n = 150  # the study's training cohort size, with 1100 candidate features
    values = rng.normal(size=(n, 1100))
    time, event = _survival(n, 1.0 * values[:, 0] - 1.0 * values[:, 5], seed=10)
    time.iloc[:5] = np.nan  # subjects without follow-up are left out of the Cox fits
    event.iloc[:5] = np.nan

    selection = select_features(
        _frame(values), prognostic={"time": time, "event": event, "p_threshold": 0.001}
    )

    assert {"f0", "f5"} <= set(selection.columns)
    assert len(selection.columns) <= 8  # about 1 false positive expected at p < 0.001
    dropped = selection.report[~selection.report["kept"]]
    assert dropped["reason"].str.match(r"not prognostic \(p=").all()
    assert selection.report["p_value"].notna().all()


def test_prognostic_filter_runs_before_the_correlation_filter():
    # "early" comes first and is correlated (r = 0.6) with "prognostic", but does not predict
    # recurrence itself. Filtering by correlation first would keep "early" and drop
    # "prognostic"; the prognostic filter goes first, so "early" goes and "prognostic" stays.
    n = 300
    u1, u2, u3 = _orthonormal(n, 3, seed=12).T
    early, prognostic, other = u1, 0.6 * u1 + 0.8 * u2, u3
    time, event = _survival(n, 1.5 * u2 + 1.0 * u3, seed=13)
    frame = _frame(np.column_stack([early, prognostic, other]), ["early", "prognostic", "other"])

    unsupervised = select_features(frame, max_abs_correlation=0.5)
    supervised = select_features(
        frame,
        max_abs_correlation=0.5,
        prognostic={"time": time, "event": event, "p_threshold": 0.01},
    )

    assert unsupervised.columns == ["early", "other"]
    assert supervised.columns == ["prognostic", "other"]
    reasons = supervised.report.set_index("feature")["reason"]
    assert reasons["early"].startswith("not prognostic (p=")
    p_early = supervised.report.set_index("feature").loc["early", "p_value"]
    assert reasons["early"] == f"not prognostic (p={p_early:.3g})"


def test_no_prognostic_feature_is_an_error_that_says_what_to_do():
    rng = np.random.default_rng(15)
    values = rng.normal(size=(100, 5))
    time, event = _survival(100, np.zeros(100), seed=16)

    with pytest.raises(InputError, match=r"none of the 5 candidate.*prognostic_filter: false"):
        select_features(
            _frame(values), prognostic={"time": time, "event": event, "p_threshold": 1e-6}
        )


def test_prognostic_filter_without_events_is_an_error():
    rng = np.random.default_rng(17)
    time, event = _survival(50, np.zeros(50), seed=18)
    with pytest.raises(InputError, match="no recurrence"):
        select_features(
            _frame(rng.normal(size=(50, 3))), prognostic={"time": time, "event": 0 * event}
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, e: (t.iloc[3:], e), r"time is missing for 3 training subject\(s\): 'S000'"),
        (lambda t, e: (t, e.replace({1: 2})), "event must be 0 or 1"),
        (lambda t, e: (-t, e), "negative follow-up time"),
    ],
)
def test_prognostic_follow_up_errors(change, message):
    rng = np.random.default_rng(19)
    time, event = _survival(40, np.zeros(40), seed=20)
    time, event = change(time, event)
    with pytest.raises(InputError, match=message):
        select_features(_frame(rng.normal(size=(40, 3))), prognostic={"time": time, "event": event})


def test_prognostic_dict_with_unknown_keys_is_an_error():
    rng = np.random.default_rng(21)
    time, event = _survival(40, np.zeros(40), seed=22)
    with pytest.raises(InputError, match="prognostic must be"):
        select_features(
            _frame(rng.normal(size=(40, 3))), prognostic={"time": time, "events": event}
        )


# --- errors -------------------------------------------------------------------------------


def test_missing_values_name_columns_and_subject_count():
    rng = np.random.default_rng(23)
    frame = _frame(rng.normal(size=(20, 4)))
    frame.iloc[[2, 5, 7], 1] = np.nan
    frame.iloc[5, 3] = np.nan

    with pytest.raises(InputError, match=r"2 column\(s\) \('f1', 'f3'\) for 3 subject\(s\)"):
        select_features(frame)


def test_non_numeric_columns_are_an_error():
    rng = np.random.default_rng(24)
    frame = _frame(rng.normal(size=(20, 3))).assign(site=["a"] * 20)
    with pytest.raises(InputError, match=r"column\(s\) 'site' are not numeric"):
        select_features(frame)


def test_fewer_than_two_features_left_is_an_error():
    rng = np.random.default_rng(25)
    a = rng.normal(size=50)
    frame = _frame(np.column_stack([a, 2 * a, np.ones(50)]))
    with pytest.raises(
        InputError, match=r"1 of 3 feature\(s\) left.*1 correlated, 1 near-constant"
    ):
        select_features(frame)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_abs_correlation": 0}, "max_abs_correlation must be in"),
        ({"max_abs_correlation": 1.5}, "max_abs_correlation must be in"),
        ({"near_constant_fraction": 0}, "near_constant_fraction must be in"),
    ],
)
def test_bad_options_are_errors(options, message):
    rng = np.random.default_rng(26)
    with pytest.raises(InputError, match=message):
        select_features(_frame(rng.normal(size=(20, 3))), **options)


def test_too_few_subjects_is_an_error():
    with pytest.raises(InputError, match="at least 3"):
        select_features(_frame(np.array([[1.0, 2.0], [3.0, 5.0]])))


def test_apply_selection_names_missing_columns():
    rng = np.random.default_rng(27)
    selection = select_features(_frame(rng.normal(size=(30, 4))))
    with pytest.raises(InputError, match=r"2 selected feature column\(s\) missing: 'f1', 'f3'"):
        apply_selection(selection, _frame(rng.normal(size=(5, 4))).drop(columns=["f1", "f3"]))


def test_apply_selection_rejects_missing_values():
    rng = np.random.default_rng(28)
    selection = select_features(_frame(rng.normal(size=(30, 3))))
    other = _frame(rng.normal(size=(5, 3)))
    other.iloc[4, 0] = np.nan
    with pytest.raises(InputError, match=r"column\(s\) \('f0'\) for 1 subject\(s\) \('S004'\)"):
        apply_selection(selection, other)
