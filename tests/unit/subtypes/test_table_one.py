"""rdls.subtypes.table_one: summaries, the choice of test, missing values, HTML."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rdls.errors import InputError
from rdls.subtypes.table_one import format_p, format_statistic, render_table_one, table_one


def _subjects(counts: dict[str, dict[str, int]], *, cohort: str = "training") -> pd.DataFrame:
    """One row per subject from ``{subtype: {level: count}}`` of a categorical ``stage``."""
    rows = [
        {"subtype": subtype, "stage": level, "cohort": cohort}
        for subtype, levels in counts.items()
        for level, n in levels.items()
        for _ in range(n)
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "subject_id", [f"{cohort[:2]}{i:03d}" for i in range(len(frame))])
    return frame


def _rows(table: pd.DataFrame, variable: str, cohort: str = "training") -> pd.DataFrame:
    return table[(table["cohort"] == cohort) & (table["variable"] == variable)].set_index("level")


# --- continuous -----------------------------------------------------------------------------


def test_continuous_median_quartiles_and_kruskal_wallis_against_scipy():
    rng = np.random.default_rng(0)
    age = {
        "RDLS1": rng.normal(70, 5, 30),
        "RDLS2": rng.normal(60, 5, 25),
        "RDLS3": rng.normal(62, 5, 20),
    }
    frame = pd.DataFrame(
        [
            {"subtype": g, "age": a, "cohort": "training"}
            for g, values in age.items()
            for a in values
        ]
    )

    table = table_one(frame, continuous=["age"], categorical=[])

    row = _rows(table, "age").loc[""]
    expected = stats.kruskal(*age.values())
    assert row["test"] == "Kruskal-Wallis"
    assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    q1, median, q3 = np.quantile(age["RDLS2"], [0.25, 0.5, 0.75])
    assert row["RDLS2"] == f"{median:.1f} [{q1:.1f}, {q3:.1f}]"
    q1, median, q3 = np.quantile(np.concatenate(list(age.values())), [0.25, 0.5, 0.75])
    assert row["overall"] == f"{median:.1f} [{q1:.1f}, {q3:.1f}]"


def test_continuous_missing_values_get_a_row_and_stay_out_of_the_test():
    frame = pd.DataFrame(
        {
            "subtype": ["A"] * 5 + ["B"] * 5,
            "cohort": "training",
            "cea": [1.0, 2.0, np.nan, 4.0, 5.0, 10.0, 11.0, 12.0, np.nan, np.nan],
        }
    )

    table = table_one(frame, group="subtype", continuous=["cea"], categorical=[])

    rows = _rows(table, "cea")
    assert rows.loc["missing", ["overall", "A", "B"]].tolist() == ["3", "1", "2"]
    assert rows.loc["", "A"] == "3.0 [1.8, 4.2]"
    expected = stats.kruskal([1, 2, 4, 5], [10, 11, 12])
    assert rows.loc["", "p_value"] == pytest.approx(expected.pvalue)
    assert rows.loc["missing", "p_value"] == pytest.approx(expected.pvalue)  # repeated per row


def test_no_missing_row_when_nothing_is_missing():
    frame = pd.DataFrame({"subtype": ["A", "B"] * 5, "cohort": "t", "age": np.arange(10.0)})
    table = table_one(frame, continuous=["age"], categorical=[])
    assert _rows(table, "age", "t").index.tolist() == [""]


# --- categorical: the test choice --------------------------------------------------------------


def test_chi_square_when_every_expected_count_is_at_least_5():
    counts = {
        "RDLS1": {"T2": 20, "T3": 10},
        "RDLS2": {"T2": 10, "T3": 20},
        "RDLS3": {"T2": 15, "T3": 15},
    }
    table = table_one(_subjects(counts), continuous=[], categorical=["stage"])

    rows = _rows(table, "stage")
    observed = np.array([[20, 10], [10, 20], [15, 15]])
    assert (stats.contingency.expected_freq(observed) >= 5).all()
    expected = stats.chi2_contingency(observed, correction=False)
    assert rows.loc["T2", "test"] == "chi-square"
    assert rows.loc["T2", "statistic"] == pytest.approx(expected.statistic)
    assert rows.loc["T2", "p_value"] == pytest.approx(expected.pvalue)
    assert rows.loc["T2", "RDLS1"] == "20 (66.7%)"
    assert rows.loc["T3", "overall"] == "45 (50.0%)"


def test_fisher_exact_for_a_small_2x2_table():
    counts = {"RDLS1": {"yes": 8, "no": 2}, "RDLS2": {"yes": 1, "no": 5}}
    table = table_one(_subjects(counts), continuous=[], categorical=["stage"])

    rows = _rows(table, "stage")
    # levels sorted: no, yes; groups sorted: RDLS1, RDLS2
    expected = stats.fisher_exact([[2, 8], [5, 1]])
    assert rows.loc["yes", "test"] == "Fisher's exact"
    assert rows.loc["yes", "p_value"] == pytest.approx(expected.pvalue)
    assert rows.loc["yes", "p_value"] == pytest.approx(0.034965034965034975)  # scipy's example


def test_fisher_monte_carlo_for_a_small_larger_table_is_seeded():
    counts = {
        "RDLS1": {"T2": 8, "T3": 1, "T4": 1},
        "RDLS2": {"T2": 1, "T3": 6, "T4": 2},
        "RDLS3": {"T2": 2, "T3": 2, "T4": 6},
    }
    frame = _subjects(counts)

    first = _rows(table_one(frame, continuous=[], categorical=["stage"]), "stage")
    again = _rows(table_one(frame, continuous=[], categorical=["stage"]), "stage")
    other_seed = _rows(table_one(frame, continuous=[], categorical=["stage"], seed=5), "stage")

    assert first.loc["T2", "test"] == "Fisher's exact (Monte Carlo, 10000 tables)"
    assert first.loc["T2", "p_value"] == again.loc["T2", "p_value"]
    # 400,000 random tables give p = 0.0033; 10,000 stay close whatever the seed
    assert first.loc["T2", "p_value"] == pytest.approx(other_seed.loc["T2", "p_value"], abs=0.003)
    assert first.loc["T2", "p_value"] < 0.01
    direct = stats.fisher_exact(
        [[8, 1, 1], [1, 6, 2], [2, 2, 6]],
        method=stats.MonteCarloMethod(n_resamples=10000, rng=np.random.default_rng(0)),
    )
    assert first.loc["T2", "p_value"] == direct.pvalue


def test_categorical_missing_values_percentages_over_known_values():
    frame = _subjects({"A": {"x": 3, "y": 1}, "B": {"x": 1, "y": 1}})
    frame.loc[[0, 4], "stage"] = np.nan  # one A (x) and one B (x) missing

    rows = _rows(table_one(frame, continuous=[], categorical=["stage"]), "stage")

    assert rows.index.tolist() == ["x", "y", "missing"]
    assert rows.loc["x", "A"] == "2 (66.7%)"  # of the 3 A subjects with a known stage
    assert rows.loc["y", "B"] == "1 (100.0%)"
    assert rows.loc["missing", ["overall", "A", "B"]].tolist() == ["2", "1", "1"]
    assert rows.loc["x", "test"] == "Fisher's exact"
    assert rows.loc["x", "p_value"] == pytest.approx(stats.fisher_exact([[2, 1], [0, 1]]).pvalue)


def test_numeric_codes_are_levels_without_decimals():
    frame = pd.DataFrame(
        {"subtype": ["A", "A", "B", "B"], "cohort": "t", "n_stage": [0.0, 1.0, 2.0, np.nan]}
    )
    rows = _rows(table_one(frame, continuous=[], categorical=["n_stage"]), "n_stage", "t")
    assert rows.index.tolist() == ["0", "1", "2", "missing"]


# --- not tested -----------------------------------------------------------------------------


def test_one_level_and_one_group_are_not_tested_without_crashing():
    frame = pd.concat(
        [
            _subjects({"A": {"x": 5}, "B": {"x": 4}}, cohort="training"),
            _subjects({"A": {"x": 3, "y": 2}}, cohort="external"),
        ],
        ignore_index=True,
    )
    frame["age"] = np.arange(len(frame), dtype=float)

    table = table_one(frame, continuous=["age"], categorical=["stage"])

    assert _rows(table, "stage", "training").loc["x", "test"] == "not tested: one level"
    assert _rows(table, "stage", "external")["test"].unique().tolist() == [
        "not tested: one group in this cohort"
    ]
    assert _rows(table, "age", "external").loc["", "test"] == "not tested: one group in this cohort"
    assert table.loc[table["test"].str.startswith("not tested"), "p_value"].isna().all()
    # group B is absent from the external cohort: empty cells, not zeros
    assert (table.loc[table["cohort"] == "external", "B"] == "").all()


def test_all_values_equal_or_missing_are_not_tested():
    frame = pd.DataFrame(
        {"subtype": ["A", "A", "B", "B"], "cohort": "t", "age": 5.0, "stage": np.nan}
    )
    table = table_one(frame, continuous=["age"], categorical=["stage"])
    assert _rows(table, "age", "t").loc["", "test"] == "not tested: all values equal"
    stage = _rows(table, "stage", "t")
    assert stage.index.tolist() == ["missing"]
    assert stage.loc["missing", "test"] == "not tested: no known values"


# --- layout ---------------------------------------------------------------------------------


def test_layout_columns_cohort_order_and_counts():
    frame = pd.concat(
        [
            _subjects({"RDLS10": {"x": 2}, "RDLS2": {"x": 1, "y": 2}}, cohort="training"),
            _subjects({"RDLS1": {"y": 3}, "RDLS2": {"x": 1}}, cohort="external"),
        ],
        ignore_index=True,
    )
    table = table_one(frame, continuous=[], categorical=["stage"])

    assert list(table.columns) == [
        "cohort",
        "variable",
        "level",
        "overall",
        "RDLS1",
        "RDLS2",
        "RDLS10",
        "test",
        "statistic",
        "p_value",
    ]
    assert table["cohort"].unique().tolist() == ["training", "external"]  # as they appear
    n = table[table["variable"] == "n"].set_index("cohort")
    assert n.loc["training", ["overall", "RDLS1", "RDLS2", "RDLS10"]].tolist() == [
        "5",
        "",
        "3",
        "2",
    ]
    assert n.loc["external", ["overall", "RDLS1", "RDLS2", "RDLS10"]].tolist() == [
        "4",
        "3",
        "1",
        "",
    ]


# --- rendering ------------------------------------------------------------------------------


def test_rendering_contains_every_value():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "subtype": rng.choice(["RDLS1", "RDLS2", "RDLS3"], 90),
            "cohort": np.repeat(["training", "external_validation"], [60, 30]),
            "age": rng.normal(60, 10, 90),
            "sex": rng.choice(["female", "male"], 90),
            "t_stage": rng.choice(["T2", "T3", "T4", None], 90),
        }
    )
    table = table_one(frame, continuous=["age"], categorical=["sex", "t_stage"])

    text = render_table_one(table)

    assert text.count("<table>") == 2
    assert text.count("<caption>") == 2
    assert "Table 1: training (n = 60)" in text
    for column in ["variable", "level", "overall", "RDLS1", "RDLS2", "RDLS3", "test"]:
        for value in table[column].astype(str).unique():
            assert html.escape(value) in text, (column, value)
    for value in table["p_value"].dropna():
        assert html.escape(format_p(value)) in text
    for value in table["statistic"].dropna():
        assert format_statistic(value) in text
    assert "Kruskal-Wallis" in text and "Fisher&#x27;s exact" in text


def test_rendering_escapes_html_and_hides_absent_groups():
    frame = pd.concat(
        [
            _subjects({"A<1>": {"x": 2, "y": 2}, "B": {"x": 2, "y": 1}}, cohort="training"),
            _subjects({"A<1>": {"x": 2, "y": 2}}, cohort="external"),
        ],
        ignore_index=True,
    )
    text = render_table_one(table_one(frame, continuous=[], categorical=["stage"]))

    assert "A&lt;1&gt;" in text and "A<1>" not in text
    training, external = text.split("<table>")[1:]
    assert "<th>B</th>" in training
    assert "<th>B</th>" not in external


def test_format_p():
    assert format_p(0.0004) == "<0.001"
    assert format_p(0.04321) == "0.043"
    assert format_p(np.nan) == ""


# --- errors -------------------------------------------------------------------------------


def test_missing_columns_are_named():
    frame = pd.DataFrame({"subtype": ["A"], "cohort": ["t"]})
    with pytest.raises(InputError, match=r"column\(s\) 'cea_ng_ml' not in the subjects table"):
        table_one(frame, continuous=["cea_ng_ml"], categorical=[])


def test_non_numeric_continuous_values_are_named():
    frame = pd.DataFrame(
        {
            "subject_id": ["P1", "P2", "P3"],
            "subtype": "A",
            "cohort": "t",
            "age": ["61", "old", None],
        }
    )
    with pytest.raises(
        InputError, match=r"'age' has non-numeric values \('old'\) for subject\(s\) 'P2'"
    ):
        table_one(frame, continuous=["age"], categorical=[])


def test_subjects_without_a_subtype_are_named():
    frame = pd.DataFrame(
        {"subtype": ["A", None], "cohort": "t", "age": [1.0, 2.0]}, index=["P1", "P2"]
    )
    with pytest.raises(InputError, match=r"subject\(s\) 'P2' have no group"):
        table_one(frame, continuous=["age"], categorical=[])


def test_variable_in_both_lists_is_an_error():
    frame = pd.DataFrame({"subtype": ["A"], "cohort": ["t"], "age": [1.0]})
    with pytest.raises(InputError, match="both continuous and categorical"):
        table_one(frame, continuous=["age"], categorical=["age"])


def test_group_named_like_a_fixed_column_is_an_error():
    frame = pd.DataFrame({"subtype": ["overall", "B"], "cohort": "t", "age": [1.0, 2.0]})
    with pytest.raises(InputError, match=r"group name\(s\) 'overall'.*clash"):
        table_one(frame, continuous=["age"], categorical=[])


def test_render_needs_the_table_one_columns():
    with pytest.raises(InputError, match=r"column\(s\) 'p_value' missing"):
        render_table_one(
            pd.DataFrame(columns=["cohort", "variable", "level", "overall", "test", "statistic"])
        )
