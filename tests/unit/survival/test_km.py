"""rdls.survival.km and the Kaplan-Meier plot: estimates, numbers at risk, log-rank, checks."""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test
from scipy.stats import chi2, norm
from statsmodels.stats.multitest import multipletests

from rdls.errors import InputError
from rdls.survival._plots import COLOURS, group_palette, plot_forest, plot_km
from rdls.survival.km import (
    at_risk_table,
    check_survival,
    km_estimates,
    logrank,
    natural_key,
    survival_at,
)

# A hand example: six subjects, events at 1, 2, 3 and 5, censored at 2 and 4.
TIMES = [1, 2, 2, 3, 4, 5]
EVENTS = [1, 1, 0, 1, 0, 1]


def _groups(seed: int, hazards: dict[str, float], n: int = 150, censor_months: float = 60):
    """Exponential event times per group, censored uniformly up to ``censor_months``."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(list(hazards), n)
    event_times = rng.exponential(1 / np.array([hazards[g] for g in groups]))
    censor = rng.uniform(0, censor_months, size=len(groups))
    time = np.minimum(event_times, censor)
    return time, (event_times <= censor).astype(int), groups


def _logrank_by_hand(time, event, group, a, b) -> float:
    """Two-group log-rank chi-squared written out over the distinct event times."""
    time, event, group = map(np.asarray, (time, event, group))
    observed_minus_expected, variance = 0.0, 0.0
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        n = at_risk.sum()
        n_a = (at_risk & (group == a)).sum()
        d = ((time == t) & (event == 1)).sum()
        d_a = ((time == t) & (event == 1) & (group == a)).sum()
        observed_minus_expected += d_a - d * n_a / n
        if n > 1:
            variance += n_a * (n - n_a) * d * (n - d) / (n**2 * (n - 1))
    assert b in set(group)
    return observed_minus_expected**2 / variance


# --- check_survival ------------------------------------------------------------------------


def _sheet(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"subject_id": [f"S{i:03d}" for i in range(n)], **columns})


def test_check_survival_keeps_followed_rows_and_types_them(caplog):
    sheet = _sheet(
        rfs_months=[12.0, np.nan, "30", 0], rfs_event=[1, np.nan, "0", 1.0], age=[1, 2, 3, 4]
    )

    with caplog.at_level(logging.INFO, logger="rdls.survival.km"):
        out = check_survival(sheet)

    assert out["subject_id"].tolist() == ["S000", "S002", "S003"]
    assert out["rfs_months"].tolist() == [12.0, 30.0, 0.0]
    assert out["rfs_event"].tolist() == [1, 0, 1]
    assert out["rfs_event"].dtype.kind == "i"
    assert "1 of 4 rows have no follow-up" in caplog.text


@pytest.mark.parametrize(
    ("time", "event", "message"),
    [
        ([5, "soon"], [1, 0], r"column 'rfs_months': not a number for 1 subjects \(S001\)"),
        ([5, 6], [1, "yes"], r"column 'rfs_event': not a number for 1 subjects \(S001\)"),
        ([5, 6], [1, np.nan], r"'rfs_months' is given but 'rfs_event' is missing .*\(S001\)"),
        ([np.nan, 6], [1, 0], r"'rfs_event' is given but 'rfs_months' is missing .*\(S000\)"),
        ([-1, 6], [1, 0], r"negative follow-up time for 1 subjects \(S000\).*check the dates"),
        ([np.inf, 6], [1, 0], r"infinite follow-up time for 1 subjects \(S000\)"),
        ([5, 6], [2, 0], r"event is not 0 or 1 for 1 subjects \(S000\).*Write 1 for an event"),
    ],
)
def test_check_survival_names_the_subjects_and_the_fix(time, event, message):
    with pytest.raises(InputError, match=message):
        check_survival(_sheet(rfs_months=time, rfs_event=event), where="subjects.tsv")


def test_check_survival_missing_column():
    with pytest.raises(InputError, match=r"subjects.tsv: column 'rfs_event' is missing"):
        check_survival(_sheet(rfs_months=[1, 2]), where="subjects.tsv")


def test_check_survival_shows_five_ids_and_counts_the_rest():
    sheet = _sheet(rfs_months=[-1] * 8, rfs_event=[1] * 8)

    with pytest.raises(InputError, match=r"\(S000, S001, S002, S003, S004 and 3 more\)"):
        check_survival(sheet)


def test_check_survival_uses_the_index_without_subject_ids():
    frame = pd.DataFrame({"t": [1, -2], "e": [0, 1]}, index=["a", "b"])

    with pytest.raises(InputError, match=r"column 't': negative follow-up time .*\(b\)"):
        check_survival(frame, time="t", event="e")


# --- km_estimates, at_risk_table, survival_at ---------------------------------------------


def test_km_estimates_reproduce_the_hand_example():
    curve = km_estimates(TIMES, EVENTS)

    assert curve["group"].unique().tolist() == ["all"]
    assert curve["time"].tolist() == [0, 1, 2, 3, 4, 5]
    # S(1) = 5/6, S(2) = 5/6 * 4/5, S(3) = 4/6 * 2/3 (two left the risk set at 2), S(5) = 0.
    expected = [1, 5 / 6, 4 / 6, 4 / 9, 4 / 9, 0]
    assert curve["survival"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert curve["at_risk"].tolist() == [6, 6, 5, 3, 2, 1]


def test_km_confidence_interval_is_log_log_greenwood():
    curve = km_estimates(TIMES, EVENTS).set_index("time")
    # At t = 3: Greenwood sum d / (n (n - d)) over t = 1, 2, 3; log-log interval.
    s = 4 / 9
    variance = 1 / (6 * 5) + 1 / (5 * 4) + 1 / (3 * 2)
    half = norm.ppf(0.975) * np.sqrt(variance) / abs(np.log(s))
    lower = np.exp(-np.exp(np.log(-np.log(s)) + half))
    upper = np.exp(-np.exp(np.log(-np.log(s)) - half))

    assert curve.loc[3, "ci_lower"] == pytest.approx(lower, rel=1e-9)
    assert curve.loc[3, "ci_upper"] == pytest.approx(upper, rel=1e-9)


def test_km_groups_come_in_natural_order():
    curve = km_estimates([1, 2, 3, 4], [1, 0, 1, 1], ["RDLS10", "RDLS2", "RDLS1", "RDLS2"])

    assert curve["group"].unique().tolist() == ["RDLS1", "RDLS2", "RDLS10"]
    assert sorted(["RDLS10", "RDLS2", "RDLS1"], key=natural_key) == ["RDLS1", "RDLS2", "RDLS10"]


def test_at_risk_counts_subjects_followed_at_least_that_long():
    groups = ["A", "A", "A", "B", "B", "B"]

    table = at_risk_table(TIMES, EVENTS, groups, times=[0, 2, 2.5, 5, 6])

    assert table.index.tolist() == ["A", "B"]
    assert table.loc["A"].tolist() == [3, 2, 0, 0, 0]  # A: 1, 2, 2
    assert table.loc["B"].tolist() == [3, 3, 3, 1, 0]  # B: 3, 4, 5


def test_survival_at_horizon_with_median():
    table = survival_at(TIMES, EVENTS, horizon=3.5).iloc[0]

    assert table["n"] == 6
    assert table["events"] == 4
    assert table["survival"] == pytest.approx(4 / 9)
    curve = km_estimates(TIMES, EVENTS).set_index("time")
    assert table["ci_lower"] == pytest.approx(curve.loc[3, "ci_lower"])
    assert table["ci_upper"] == pytest.approx(curve.loc[3, "ci_upper"])
    assert table["median_survival"] == 3  # first time survival falls to one half or below


def test_survival_at_is_nan_beyond_follow_up():
    table = survival_at([1, 2, 10, 20], [1, 0, 0, 0], ["A", "A", "B", "B"], horizon=12)

    assert np.isnan(table.loc[0, "survival"])
    assert table.loc[1, "survival"] == pytest.approx(1.0)
    assert np.isinf(table.loc[1, "median_survival"])


@pytest.mark.parametrize(
    ("time", "event", "group", "message"),
    [
        ([1, np.nan], [1, 0], None, "1 follow-up times are missing.*check_survival"),
        ([1, -2], [1, 0], None, "1 follow-up times are negative"),
        ([1, 2], [1, 3], None, "1 events are not 0 or 1"),
        ([1, 2], [1, 0], ["A", None], "1 subjects have no group"),
        ([], [], None, "no subjects with follow-up"),
    ],
)
def test_arrays_refuse_unusable_data(time, event, group, message):
    with pytest.raises(InputError, match=message):
        km_estimates(time, event, group)


def test_arrays_must_be_aligned():
    with pytest.raises(ValueError, match="same length, got 3, 2 and 3"):
        at_risk_table([1, 2, 3], [1, 0], ["a", "b", "c"], times=[0])


# --- logrank -------------------------------------------------------------------------------


def test_logrank_two_groups_equals_the_hand_computation():
    time, event, group = _groups(3, {"A": 0.02, "B": 0.04}, n=60)

    overall, pairwise = logrank(time, event, group)

    by_hand = _logrank_by_hand(time, event, group, "A", "B")
    assert overall["statistic"] == pytest.approx(by_hand, rel=1e-9)
    assert overall["p_value"] == pytest.approx(chi2.sf(by_hand, 1), rel=1e-9)
    assert overall["df"] == 1
    assert overall["n"] == 120
    assert overall["events"] == int(event.sum())
    assert overall["test"] == "log-rank"
    assert pairwise.loc[0, "statistic"] == pytest.approx(by_hand, rel=1e-9)


def test_logrank_pairs_are_benjamini_hochberg_adjusted():
    time, event, group = _groups(5, {"RDLS1": 0.01, "RDLS2": 0.015, "RDLS3": 0.03, "RDLS4": 0.02})

    overall, pairwise = logrank(time, event, group)

    assert overall["df"] == 3
    assert overall["statistic"] == pytest.approx(
        multivariate_logrank_test(time, group, event).test_statistic
    )
    assert list(zip(pairwise["group_a"], pairwise["group_b"], strict=True)) == list(
        combinations(["RDLS1", "RDLS2", "RDLS3", "RDLS4"], 2)
    )
    expected = multipletests(pairwise["p_value"], method="fdr_bh")[1]
    assert pairwise["p_adjusted"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert (pairwise["p_adjusted"] >= pairwise["p_value"]).all()
    bonferroni = logrank(time, event, group, adjust="bonferroni")[1]["p_adjusted"]
    assert bonferroni.to_numpy() == pytest.approx(np.minimum(pairwise["p_value"] * 6, 1))
    for row in pairwise.itertuples():
        keep = np.isin(group, [row.group_a, row.group_b])
        assert row.statistic == pytest.approx(
            _logrank_by_hand(time[keep], event[keep], group[keep], row.group_a, row.group_b)
        )


def test_logrank_detects_a_planted_difference_and_not_a_null_one():
    time, event, group = _groups(11, {"A": 0.01, "B": 0.03})
    assert logrank(time, event, group)[0]["p_value"] < 1e-4
    time, event, group = _groups(11, {"A": 0.02, "B": 0.02})
    assert logrank(time, event, group)[0]["p_value"] > 0.05


def test_logrank_needs_two_groups():
    with pytest.raises(InputError, match=r"at least two groups, got 1 \(\['A'\]\)"):
        logrank([1, 2], [1, 0], ["A", "A"])


# --- plots ---------------------------------------------------------------------------------


def test_palette_is_fixed_by_sorted_name_and_passes_through():
    colours = group_palette(["RDLS3", "RDLS1", "RDLS2"])

    assert colours == {"RDLS1": COLOURS[0], "RDLS2": COLOURS[1], "RDLS3": COLOURS[2]}
    assert group_palette(["RDLS2", "RDLS1"], {"RDLS2": "red"}) == {
        "RDLS1": COLOURS[0],
        "RDLS2": "red",
    }


def test_plot_km_writes_png_and_svg(tmp_path):
    time, event, group = _groups(2, {"RDLS1": 0.01, "RDLS2": 0.03}, n=40)

    figure = plot_km(
        time,
        event,
        group,
        title="Recurrence-free survival by subtype",
        png=tmp_path / "km.png",
        svg=tmp_path / "km.svg",
        at_risk_times=[0, 12, 24, 36, 48, 60],
        palette={"RDLS2": "#ff0000"},
        annotation="log-rank p = 0.003",
    )

    assert (tmp_path / "km.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "km.svg").read_text()
    assert "<svg" in svg and len(svg) > 10_000
    main, table = figure.axes
    assert [line.get_color() for line in main.get_lines()][::2] == [COLOURS[0], "#ff0000"]
    counts = at_risk_table(time, event, group, times=[0, 12, 24, 36, 48, 60])
    shown = [text.get_text() for text in table.texts]
    assert shown == [str(v) for v in counts.to_numpy().ravel()]
    assert any(text.get_text() == "log-rank p = 0.003" for text in main.texts)


def test_plot_km_single_curve_png_only(tmp_path):
    plot_km(TIMES, EVENTS, title="All", png=tmp_path / "sub" / "km.png")

    assert (tmp_path / "sub" / "km.png").stat().st_size > 5_000
    assert not list(tmp_path.glob("**/*.svg"))


def test_plot_forest_writes_png_and_svg(tmp_path):
    table = pd.DataFrame(
        {
            "term": ["subtype[RDLS2]", "subtype[RDLS3]", "log2(cea)"],
            "hazard_ratio": [2.1, 0.6, 1.2],
            "ci_lower": [1.4, 0.3, 0.0],
            "ci_upper": [3.2, 1.1, np.inf],
            "p_value": [0.0004, 0.09, np.nan],
        }
    )

    figure = plot_forest(
        {"training": table, "external_validation": table.iloc[:2]},
        png=tmp_path / "forest.png",
        svg=tmp_path / "forest.svg",
        title="Cox models",
    )

    assert (tmp_path / "forest.png").stat().st_size > 5_000
    assert "<svg" in (tmp_path / "forest.svg").read_text()
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "2.10 (1.40-3.20)  p < 0.001" in texts
    assert "0.60 (0.30-1.10)  p = 0.090" in texts
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels[0] == "training" and labels[4] == "external_validation"
