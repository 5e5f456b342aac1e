"""rdls.survival.rrs: feature selection, the cross-validated Coxnet RRS and its cut-off.

Synthetic cohorts plant the truth: three prognostic features among noise (exponential
survival, uniform censoring), a subtype that shifts two features, and a hazard that jumps at a
known score.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.survival._compare_plots import plot_cv_curve
from rdls.survival.rrs import (
    RRSModel,
    _cox_loglik,
    choose_cutoff,
    fit_rrs,
    high_risk_features,
)

TRUE_EFFECTS = {"f00": 0.8, "f01": -0.6, "f02": 0.5}  # log hazard ratio per standard deviation


def _planted(n: int = 400, p: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    columns = [f"f{j:02d}" for j in range(p)]
    index = pd.Index([f"S{i:03d}" for i in range(n)], name="subject_id")
    raw = rng.normal(size=(n, p))
    X = pd.DataFrame(raw * rng.uniform(0.5, 5, p) + rng.uniform(-10, 10, p), index, columns)
    lp = sum(beta * raw[:, columns.index(f)] for f, beta in TRUE_EFFECTS.items())
    survival = rng.exponential(30 * np.exp(-lp))
    censoring = rng.uniform(10, 90, n)
    time = pd.Series(np.minimum(survival, censoring), index, name="rfs_months")
    event = pd.Series((survival <= censoring).astype(int), index, name="rfs_event")
    return X, time, event


@pytest.fixture(scope="module")
def planted():
    return _planted()


@pytest.fixture(scope="module")
def fitted(planted):
    X, time, event = planted
    return fit_rrs(X, time, event, seed=7)


def _step_cohort(n=500, change=0.6, hazard_ratio=4.0, seed=3):
    """Scores uniform on (0, 1); the hazard is hazard_ratio times higher above ``change``."""
    rng = np.random.default_rng(seed)
    score = pd.Series(rng.uniform(size=n))
    rate = np.where(score > change, hazard_ratio, 1.0) / 40
    survival = rng.exponential(1 / rate)
    censoring = rng.uniform(20, 100, n)
    return score, np.minimum(survival, censoring), (survival <= censoring).astype(int)


# --- fit_rrs ---------------------------------------------------------------------------------


def test_planted_prognostic_features_are_kept_with_their_signs(fitted):
    model, _ = fitted
    for feature, beta in TRUE_EFFECTS.items():
        assert feature in model.features
        assert np.sign(model.coefficients[feature]) == np.sign(beta)
    noise_kept = [f for f in model.features if f not in TRUE_EFFECTS]
    assert len(noise_kept) <= 3  # of 27 noise features
    strongest = max(model.coefficients, key=lambda f: abs(model.coefficients[f]))
    assert strongest == "f00"


def test_one_se_alpha_is_at_least_the_minimum_alpha(fitted, planted):
    model, cv = fitted
    alpha_min = cv.loc[cv["is_min"], "alpha"].item()
    alpha_1se = cv.loc[cv["is_1se"], "alpha"].item()
    assert alpha_1se >= alpha_min
    assert model.alpha == alpha_1se == cv.loc[cv["chosen"], "alpha"].item()
    # the 1-SE alpha is the largest one within one SE of the minimum
    row_min = cv.loc[cv["is_min"]].iloc[0]
    within = cv["mean_deviance"] <= row_min["mean_deviance"] + row_min["se"]
    assert alpha_1se == cv.loc[within, "alpha"].max()
    X, time, event = planted
    model_min, cv_min = fit_rrs(X, time, event, seed=7, rule="min")
    assert model_min.alpha == alpha_min
    assert len(model_min.features) >= len(model.features)
    pd.testing.assert_frame_equal(cv.drop(columns="chosen"), cv_min.drop(columns="chosen"))


def test_cv_table_describes_the_path(fitted):
    _, cv = fitted
    assert list(cv.columns) == [
        "alpha",
        "mean_deviance",
        "se",
        "n_nonzero",
        "is_min",
        "is_1se",
        "chosen",
    ]
    assert cv["alpha"].is_monotonic_decreasing
    assert cv["n_nonzero"].iloc[0] == 0  # the path starts where nothing is kept
    assert (cv["se"] > 0).all()
    assert cv["alpha"].iloc[-1] == pytest.approx(0.01 * cv["alpha"].iloc[0], rel=0.5)
    # the planted signal: the CV deviance at the minimum is clearly below the null model's
    assert cv["mean_deviance"].min() < cv["mean_deviance"].iloc[0] - 3 * cv["se"].iloc[0]


def test_refit_with_the_same_seed_is_identical(planted, fitted):
    X, time, event = planted
    model, cv = fit_rrs(X, time, event, seed=7)
    pd.testing.assert_frame_equal(cv, fitted[1])
    assert model == fitted[0]


def test_noise_gives_an_empty_rrs_that_says_why(caplog):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 5)), columns=list("abcde"))
    time, event = rng.exponential(20, 120), (rng.random(120) < 0.6).astype(int)
    with caplog.at_level(logging.WARNING, logger="rdls.survival.rrs"):
        model, cv = fit_rrs(X, time, event, seed=0)
    assert cv.loc[cv["is_1se"], "n_nonzero"].item() == 0
    assert cv.loc[cv["is_1se"], "chosen"].item()
    assert model.empty and model.coefficients == {}
    assert model.notes[0].startswith("empty RRS: the cross-validated penalty (1se")
    assert "empty RRS" in caplog.text


def test_fallback_to_the_largest_alpha_that_keeps_a_feature_when_asked(caplog):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 5)), columns=list("abcde"))
    time, event = rng.exponential(20, 120), (rng.random(120) < 0.6).astype(int)
    with caplog.at_level(logging.WARNING, logger="rdls.survival.rrs"):
        model, cv = fit_rrs(X, time, event, seed=0, when_empty="largest_nonzero")
    first_kept = cv.index[cv["n_nonzero"] > 0][0]
    assert cv.loc[first_kept, "chosen"]
    assert len(model.features) == cv.loc[first_kept, "n_nonzero"] >= 1
    assert "keeps no feature" in caplog.text
    assert model.notes and "not the cross-validation's choice" in model.notes[0]


def test_selection_frequency_separates_a_real_feature_from_noise():
    from rdls.survival.rrs import selection_frequency

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(150, 6)), columns=list("abcdef"))
    events = rng.exponential(1 / (0.03 * np.exp(0.9 * X["a"])))
    censoring = rng.uniform(10, 80, 150)
    time, event = np.minimum(events, censoring), (events <= censoring).astype(int)
    table = selection_frequency(X, time, event, repeats=10, seed=3).set_index("feature")
    assert table.loc["a", "frequency"] == 1.0
    assert table.drop(index=["a", "(none)"])["frequency"].max() < 0.8
    assert table["selected"].max() <= 10


def test_breslow_partial_likelihood_with_tied_times():
    time = np.array([1.0, 2.0, 2.0, 3.0])
    event = np.array([True, True, True, False])
    eta = np.array([0.1, 0.2, -0.3, 0.5])
    tied_risk_set = np.log(np.exp(eta[1:]).sum())
    expected = (0.1 - np.log(np.exp(eta).sum())) + (0.2 - tied_risk_set) + (-0.3 - tied_risk_set)
    assert _cox_loglik(eta, time, event) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("nan_feature", r"subjects S005 in column\(s\) 'f03'"),
        ("constant", r"'f04' are constant"),
        ("nan_time", r"time or event missing for subjects S002"),
        ("bad_event", r"event must be 0 or 1; subjects S001"),
        ("too_many_folds", r"folds = 500 but the training cohort has"),
    ],
)
def test_fit_rrs_rejects_bad_input(planted, change, message):
    X, time, event = (v.copy() for v in planted)
    folds = 5
    if change == "nan_feature":
        X.loc["S005", "f03"] = np.nan
    elif change == "constant":
        X["f04"] = 1.0
    elif change == "nan_time":
        time.loc["S002"] = np.nan
    elif change == "bad_event":
        event.loc["S001"] = 2
    else:
        folds = 500
    with pytest.raises(InputError, match=message):
        fit_rrs(X, time, event, folds=folds, seed=0)


def test_fit_rrs_rejects_unknown_rule(planted):
    with pytest.raises(ValueError, match="rule must be one of 1se, min"):
        fit_rrs(*planted, rule="max", seed=0)


# --- RRSModel --------------------------------------------------------------------------------


def test_json_round_trip_gives_identical_scores_and_groups(fitted, planted):
    X = planted[0]
    model = fitted[0].with_cutoff(0.1, "median")
    again = RRSModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    np.testing.assert_array_equal(again.score(X).to_numpy(), model.score(X).to_numpy())
    pd.testing.assert_series_equal(again.group(again.score(X)), model.group(model.score(X)))


def test_score_needs_only_the_kept_features_and_groups_by_the_cutoff(fitted, planted):
    X = planted[0]
    model = fitted[0].with_cutoff(0.0, "median")
    scores = model.score(X[model.features])
    assert scores.name == "rrs"
    assert scores.index.equals(X.index)
    assert scores.mean() == pytest.approx(0.0, abs=1e-9)  # standardised with training means
    groups = model.group(scores)
    assert set(groups[scores > 0]) == {"high"}
    assert set(groups[scores <= 0]) == {"low"}


def test_score_errors_name_the_column_and_the_subject(fitted, planted):
    model = fitted[0]
    X = planted[0].copy()
    with pytest.raises(InputError, match=r"feature column\(s\) 'f01'"):
        model.score(X.drop(columns="f01"))
    X.loc["S010", "f00"] = np.nan
    with pytest.raises(InputError, match=r"cannot score subjects S010: .* 'f00'"):
        model.score(X)
    with pytest.raises(InputError, match="no cut-off yet"):
        model.group(pd.Series([0.1, 0.2]))


def test_from_dict_rejects_an_incomplete_model(fitted):
    data = fitted[0].to_dict()
    del data["coefficients"][data["features"][0]]
    with pytest.raises(InputError, match=r"'coefficients' lacks feature\(s\) f00"):
        RRSModel.from_dict(data)
    with pytest.raises(InputError, match=r"lacks key\(s\) scale"):
        RRSModel.from_dict({k: v for k, v in data.items() if k != "scale"})


# --- choose_cutoff ---------------------------------------------------------------------------


def test_maxstat_finds_the_planted_change_point():
    score, time, event = _step_cohort(change=0.6)
    cutoff, scan = choose_cutoff(score, time, event, method="maxstat")
    assert cutoff == pytest.approx(0.6, abs=0.05)
    assert list(scan.columns) == ["cutoff", "statistic", "low_n", "high_n"]
    assert scan["statistic"].max() > 5


def test_maxstat_statistic_is_the_standardised_log_rank_score_sum():
    """Lausen and Schumacher's statistic written out, and close to the log-rank test's z."""
    from lifelines.statistics import logrank_test

    score, time, event = _step_cohort(n=250, change=0.5, hazard_ratio=1.5, seed=8)
    cutoff, scan = choose_cutoff(score, time, event, method="median")
    low = score.to_numpy() <= cutoff
    n, m = len(time), low.sum()
    # log-rank scores: event minus the Nelson-Aalen cumulative hazard at the subject's time
    hazard = np.array(
        [
            sum(
                ((time == s) & (event == 1)).sum() / (time >= s).sum()
                for s in np.unique(time[(event == 1) & (time <= ti)])
            )
            for ti in time
        ]
    )
    a = event - hazard
    var = m * (n - m) / (n * (n - 1)) * ((a - a.mean()) ** 2).sum()
    by_hand = abs(a[low].sum() - m * a.mean()) / np.sqrt(var)
    assert scan["statistic"].item() == pytest.approx(by_hand, rel=1e-10)
    chi2 = logrank_test(time[~low], time[low], event[~low], event[low]).test_statistic
    assert by_hand == pytest.approx(np.sqrt(chi2), rel=0.05)


def test_cut_points_leave_the_minimum_share_in_each_group():
    score, time, event = _step_cohort(change=0.93)  # the true change leaves 7% above it
    cutoff, scan = choose_cutoff(score, time, event, min_group_fraction=0.2)
    n = len(score)
    assert (scan["low_n"] >= 0.2 * n).all()
    assert (scan["high_n"] >= 0.2 * n).all()
    assert (score > cutoff).mean() >= 0.2
    assert cutoff >= score.quantile(0.7)  # pushed towards the boundary


def test_median_cutoff():
    score, time, event = _step_cohort()
    cutoff, scan = choose_cutoff(score, time, event, method="median")
    assert cutoff == score.median()
    assert len(scan) == 1
    assert scan["low_n"].item() == (score <= cutoff).sum()


def test_cutoff_errors():
    score, time, event = _step_cohort(n=50)
    with pytest.raises(ValueError, match="method must be one of maxstat, median"):
        choose_cutoff(score, time, event, method="quartile")
    with pytest.raises(InputError, match="no cut point leaves 20% of the 50 subjects"):
        choose_cutoff(pd.Series(np.r_[np.zeros(45), np.ones(5)]), time, event)
    with pytest.raises(InputError, match="RRS missing"):
        choose_cutoff(pd.Series(np.r_[np.nan, score[1:]]), time, event)


# --- high_risk_features ----------------------------------------------------------------------


def _subtype_cohort(n=200, seed=5):
    rng = np.random.default_rng(seed)
    index = pd.Index([f"S{i:03d}" for i in range(n)])
    high = pd.Series(np.arange(n) % 3 == 0, index=index)
    X = pd.DataFrame(rng.normal(size=(n, 20)), index, [f"g{j:02d}" for j in range(20)])
    X.loc[high, "g00"] += 1.2
    X.loc[high, "g01"] -= 0.9
    X.loc[high, "g02"] += 0.5
    return X, high


def test_high_risk_features_finds_the_shifted_features_with_direction():
    X, high = _subtype_cohort()
    table = high_risk_features(X, high)
    assert list(table.columns) == ["feature", "effect", "p_value", "p_adjusted", "selected"]
    selected = table[table["selected"]].set_index("feature")
    assert {"g00", "g01"} <= set(selected.index)
    assert len(selected) <= 4
    assert selected.loc["g00", "effect"] > 0.3
    assert selected.loc["g01", "effect"] < -0.3
    assert table["p_value"].is_monotonic_increasing
    assert (table["p_adjusted"] >= table["p_value"]).all()


def test_max_features_keeps_the_largest_effects():
    X, high = _subtype_cohort()
    table = high_risk_features(X, high, max_features=1)
    assert table.loc[table["selected"], "feature"].tolist() == ["g00"]


def test_high_risk_features_errors():
    X, high = _subtype_cohort()
    rng = np.random.default_rng(1)
    noise = pd.DataFrame(rng.normal(size=X.shape), X.index, X.columns)
    assert not high_risk_features(noise, high)["selected"].any()  # a result, not an error
    with pytest.raises(InputError, match="both groups need at least 2"):
        high_risk_features(X, pd.Series(False, index=X.index))
    with pytest.raises(InputError, match="is_high_risk lacks subjects S000"):
        high_risk_features(X, high.drop("S000"))
    X.iloc[3, 2] = np.nan
    with pytest.raises(InputError, match=r"subjects S003 in column\(s\) 'g02'"):
        high_risk_features(X, high)


# --- figure ----------------------------------------------------------------------------------


def test_cv_curve_figure_is_written(fitted, tmp_path):
    figure = plot_cv_curve(fitted[1], png=tmp_path / "cv.png", svg=tmp_path / "cv.svg")
    assert (tmp_path / "cv.png").stat().st_size > 10_000
    assert (tmp_path / "cv.svg").read_text().startswith("<?xml")
    assert len(figure.axes[0].lines) >= 2  # the two alpha markers


def test_the_best_cut_of_noise_is_not_significant_once_the_search_is_counted():
    from scipy.stats import norm

    from rdls.survival.rrs import cutoff_permutation_p

    rng = np.random.default_rng(5)
    n = 150
    time, event = rng.exponential(30, n), (rng.random(n) < 0.5).astype(int)
    noise = pd.Series(rng.normal(size=n))
    _, scan = choose_cutoff(noise, time, event)
    naive = 2 * norm.sf(scan["statistic"].max())
    p = cutoff_permutation_p(noise, time, event, n_permutations=500, seed=1)
    assert p > 0.1 and p > 3 * naive  # the uncorrected p of the best cut is optimistic
    assert p == cutoff_permutation_p(noise, time, event, n_permutations=500, seed=1)
    signal = pd.Series(np.log(time) * -1 + rng.normal(scale=0.3, size=n))
    assert cutoff_permutation_p(signal, time, event, n_permutations=500, seed=1) < 0.01


def test_the_screen_inside_the_folds_stops_noise_from_looking_prognostic():
    """Noise features, screened against a high-risk group drawn from the outcome (as naming
    subtypes by training recurrence does): screened once outside the cross-validation they
    look prognostic and the LASSO keeps them; screened again inside every fold, the held-out
    subjects are unseen and the deviance says there is nothing."""
    from rdls.survival.rrs import candidate_screen, high_risk_features

    kept_outside, kept_inside, gain_outside, gain_inside = 0, 0, 0.0, 0.0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n, p = 150, 200
        X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{i}" for i in range(p)])
        t, c = rng.exponential(30, n), rng.uniform(10, 100, n)
        e, t = (t < c).astype(int), np.minimum(t, c)
        high = pd.Series((e == 1) & (t < np.quantile(t, 0.4)), index=X.index)
        table = high_risk_features(X, high, fdr=1.0, max_features=20)
        chosen = table.loc[table["selected"], "feature"].tolist()
        outside, cv_out = fit_rrs(X[chosen], t, e, seed=1, rule="min")
        screen = candidate_screen(X, high, fdr=1.0, max_features=20)
        inside, cv_in = fit_rrs(X, t, e, seed=1, rule="min", screen=screen)
        assert set(inside.features) <= set(chosen)
        kept_outside += len(outside.features)
        kept_inside += len(inside.features)
        gain_outside += cv_out["mean_deviance"].iloc[0] - cv_out["mean_deviance"].min()
        gain_inside += cv_in["mean_deviance"].iloc[0] - cv_in["mean_deviance"].min()
    assert kept_outside >= 30 and kept_inside <= kept_outside / 4
    assert gain_inside < gain_outside / 4


def test_a_fold_too_small_for_the_screen_keeps_nothing_and_an_empty_screen_is_refused():
    from rdls.survival.rrs import candidate_screen

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(30, 4)), columns=list("abcd"))
    high = pd.Series([True, True] + [False] * 28)
    screen = candidate_screen(X, high, fdr=1.0, max_features=2)
    assert len(screen(np.arange(30))) == 2
    assert screen(np.arange(1, 30)) == []  # one high-risk subject left: nothing to compare
    t, e = rng.exponential(10, 30), np.ones(30, int)
    with pytest.raises(InputError, match="the candidate screen keeps no feature"):
        fit_rrs(X, t, e, seed=0, screen=lambda rows: [])
