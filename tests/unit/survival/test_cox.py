"""rdls.survival.cox: design encoding, planted hazard ratios, PH tests and every error."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.survival.cox import CoxDesign, design_matrix, fit_cox, make_design

SUBTYPE_HR = {"RDLS1": 1.0, "RDLS2": 2.0, "RDLS3": 0.5}
AGE_HR_PER_YEAR = 1.03
CEA_HR_PER_DOUBLING = 1.25


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """2000 subjects with exponential recurrence times and planted hazard ratios."""
    rng = np.random.default_rng(20240611)
    n = 2000
    subtype = rng.choice(list(SUBTYPE_HR), size=n, p=[0.4, 0.3, 0.3])
    age = rng.normal(65, 10, size=n)
    cea = np.exp(rng.normal(1.0, 1.0, size=n))  # ng/ml, skewed and positive
    linear = (
        np.log([SUBTYPE_HR[s] for s in subtype])
        + np.log(AGE_HR_PER_YEAR) * (age - 65)
        + np.log(CEA_HR_PER_DOUBLING) * np.log2(cea)
    )
    event_months = rng.exponential(1 / (0.01 * np.exp(linear)))
    censor_months = rng.uniform(12, 120, size=n)
    return pd.DataFrame(
        {
            "subject_id": [f"S{i:04d}" for i in range(n)],
            "subtype": subtype,
            "age": age,
            "cea": cea,
            "rfs_months": np.minimum(event_months, censor_months),
            "rfs_event": (event_months <= censor_months).astype(int),
        }
    )


def _design(frame: pd.DataFrame) -> CoxDesign:
    return make_design(
        frame, covariates=["subtype", "age", "cea"], log2=["cea"], reference={"subtype": "RDLS1"}
    )


# --- make_design, design_matrix -----------------------------------------------------------


def test_design_encodes_categorical_numeric_and_log2(cohort):
    design = _design(cohort)

    assert design.terms == ["subtype[RDLS2]", "subtype[RDLS3]", "age", "log2(cea)"]
    assert design.categorical_levels == {"subtype": ["RDLS1", "RDLS2", "RDLS3"]}
    assert design.reference == {"subtype": "RDLS1"}
    assert design.log2 == ["cea"]
    matrix = design_matrix(design, cohort.iloc[:50])
    assert matrix.columns.tolist() == design.terms
    assert matrix.index.equals(cohort.index[:50])
    is_reference = cohort["subtype"].iloc[:50] == "RDLS1"
    assert (matrix.loc[is_reference, ["subtype[RDLS2]", "subtype[RDLS3]"]] == 0).all().all()
    assert (matrix["subtype[RDLS3]"] == (cohort["subtype"].iloc[:50] == "RDLS3")).all()
    assert matrix["log2(cea)"].to_numpy() == pytest.approx(np.log2(cohort["cea"].iloc[:50]))
    assert matrix["age"].to_numpy() == pytest.approx(cohort["age"].iloc[:50])


def test_design_reference_defaults_to_the_first_level_in_natural_order():
    frame = pd.DataFrame({"subtype": ["RDLS10", "RDLS2", "RDLS1"], "stage": [3, 1, 2]})

    design = make_design(frame, covariates=["subtype", "stage"], categorical=["subtype", "stage"])

    assert design.categorical_levels == {
        "subtype": ["RDLS1", "RDLS2", "RDLS10"],
        "stage": ["1", "2", "3"],
    }
    assert design.reference == {"subtype": "RDLS1", "stage": "1"}
    assert design.terms == ["subtype[RDLS2]", "subtype[RDLS10]", "stage[2]", "stage[3]"]


def test_integer_codes_match_whether_or_not_a_column_has_gaps():
    training = pd.DataFrame({"stage": [1, 2, 3, 2]})
    other = pd.DataFrame({"stage": [3.0, np.nan, 1.0]})  # float after a missing value

    design = make_design(training, covariates=["stage"], categorical=["stage"])

    assert design.terms == ["stage[2]", "stage[3]"]
    assert design_matrix(design, other).fillna(-1).to_numpy().tolist() == [
        [0.0, 1.0],
        [-1.0, -1.0],
        [0.0, 0.0],
    ]


def test_design_takes_the_order_of_a_pandas_categorical():
    grade = pd.Categorical(["high", "low", "mid"], categories=["low", "mid", "high"])

    design = make_design(pd.DataFrame({"grade": grade}), covariates=["grade"])

    assert design.terms == ["grade[mid]", "grade[high]"]


def test_design_is_applied_unchanged_to_another_cohort(cohort):
    design = _design(cohort)
    other = pd.DataFrame(
        {"subtype": ["RDLS2", None], "age": [70.0, 60.0], "cea": [4.0, np.nan]},
        index=["x", "y"],
    )

    matrix = design_matrix(CoxDesign.from_dict(design.to_dict()), other)

    assert matrix.loc["x"].tolist() == [1.0, 0.0, 70.0, 2.0]  # RDLS3 absent here: column of 0
    assert matrix.loc["y"].isna().tolist() == [True, True, False, True]


def test_design_matrix_refuses_an_unseen_level(cohort):
    other = cohort.iloc[:3].assign(subtype=["RDLS1", "RDLS4", "RDLS4"])

    with pytest.raises(
        InputError,
        match=r"covariate 'subtype': level 'RDLS4' \(2 rows, e.g. S0001\) did not occur in the "
        r"training cohort \(known levels: \['RDLS1', 'RDLS2', 'RDLS3'\]\)",
    ):
        design_matrix(_design(cohort), other)


def test_design_matrix_refuses_non_positive_log2_values(cohort):
    other = cohort.iloc[:3].assign(cea=[1.0, 0.0, -2.0])

    with pytest.raises(
        InputError,
        match=r"'cea' is entered as log2 but 2 values are zero or negative "
        r"\(subjects S0001, S0002; smallest -2\)",
    ):
        design_matrix(_design(cohort), other)


def test_design_matrix_refuses_a_missing_column(cohort):
    with pytest.raises(InputError, match=r"covariates \['cea'\] of the Cox design are not"):
        design_matrix(_design(cohort), cohort.drop(columns="cea"))


def test_design_matrix_refuses_text_in_a_numeric_covariate(cohort):
    other = cohort.iloc[:2].assign(age=["70", "old"])

    with pytest.raises(InputError, match=r"'age' is numeric but 1 values are not numbers .*S0001"):
        design_matrix(_design(cohort), other)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"covariates": ["subtype", "bmi"]}, r"covariates \['bmi'\] are not columns"),
        (
            {"covariates": ["age"], "categorical": ["subtype"]},
            r"categorical covariates \['subtype'\] are not in covariates \['age'\]",
        ),
        ({"covariates": ["age"], "log2": ["cea"]}, r"log2 covariates \['cea'\] are not in"),
        (
            {"covariates": ["age"], "reference": {"age": "60"}},
            r"reference levels are given for \['age'\], which are not categorical",
        ),
        (
            {"covariates": ["cea"], "categorical": ["cea"], "log2": ["cea"]},
            r"\['cea'\] cannot be both categorical and log2",
        ),
        (
            {"covariates": ["subtype"], "reference": {"subtype": "RDLS9"}},
            r"reference level 'RDLS9' of covariate 'subtype' does not occur .*RDLS1",
        ),
        ({"covariates": ["centre"]}, r"'centre' has 1 level\(s\) \(\['A'\]\)"),
        ({"covariates": ["constant"]}, r"'constant' takes 1 distinct value\(s\)"),
        ({"covariates": ["age"], "log2": ["age"]}, r"'age' is entered as log2 but 1 values"),
        ({"covariates": ["dose"]}, r"'dose' is numeric but 1 values are not numbers"),
    ],
)
def test_make_design_errors(options, message):
    frame = pd.DataFrame(
        {
            "subject_id": ["a", "b", "c"],
            "subtype": ["RDLS1", "RDLS2", "RDLS1"],
            "age": [60.0, -1.0, 70.0],
            "cea": [1.0, 2.0, 3.0],
            "centre": ["A", "A", None],
            "constant": [1.0, 1.0, 1.0],
            "dose": pd.Series([1, "x", 2], dtype=object),
        }
    )
    options = {**options}
    if options.get("covariates") == ["dose"]:
        options["categorical"] = []
    with pytest.raises(InputError, match=message):
        make_design(frame, **options)


# --- fit_cox -------------------------------------------------------------------------------


def test_fit_cox_recovers_planted_hazard_ratios(cohort):
    result = fit_cox(cohort, time="rfs_months", event="rfs_event", design=_design(cohort))

    table = result.table.set_index("term")
    assert table.columns.tolist() == [
        "coef",
        "se",
        "hazard_ratio",
        "ci_lower",
        "ci_upper",
        "p_value",
    ]
    truth = {
        "subtype[RDLS2]": SUBTYPE_HR["RDLS2"],
        "subtype[RDLS3]": SUBTYPE_HR["RDLS3"],
        "age": AGE_HR_PER_YEAR,
        "log2(cea)": CEA_HR_PER_DOUBLING,
    }
    for term, hr in truth.items():
        assert table.loc[term, "ci_lower"] < hr < table.loc[term, "ci_upper"], term
        assert table.loc[term, "p_value"] < 1e-6, term
    assert table["hazard_ratio"].to_numpy() == pytest.approx(np.exp(table["coef"]))
    assert result.n == 2000
    assert result.events == int(cohort["rfs_event"].sum())
    assert result.dropped_missing == 0
    assert 0.6 < result.concordance < 0.8


def test_fit_cox_counts_and_logs_incomplete_rows(cohort, caplog):
    frame = cohort.iloc[:400].copy()
    frame.loc[frame.index[:3], "cea"] = np.nan
    frame.loc[frame.index[3], "subtype"] = None
    frame.loc[frame.index[4:6], ["rfs_months", "rfs_event"]] = np.nan

    with caplog.at_level(logging.INFO, logger="rdls.survival.cox"):
        result = fit_cox(frame, time="rfs_months", event="rfs_event", design=_design(cohort))

    assert result.dropped_missing == 6
    assert result.n == 394
    assert "Cox model: 6 of 400 rows left out" in caplog.text


def test_ph_test_flags_crossing_hazards():
    # Weibull shapes 0.5 and 2 with the same median: hazards cross, the hazard ratio of B
    # to A rises with time.
    rng = np.random.default_rng(7)
    n = 600
    median = 24.0
    times_a = median * (rng.exponential(size=n) / np.log(2)) ** (1 / 0.5)
    times_b = median * (rng.exponential(size=n) / np.log(2)) ** (1 / 2.0)
    event_months = np.concatenate([times_a, times_b])
    censor = rng.uniform(6, 96, size=2 * n)
    frame = pd.DataFrame(
        {
            "arm": np.repeat(["A", "B"], n),
            "noise": rng.normal(size=2 * n),
            "t": np.minimum(event_months, censor),
            "e": (event_months <= censor).astype(int),
        }
    )

    result = fit_cox(frame, time="t", event="e", design=make_design(frame, covariates=["arm"]))

    test = result.ph_test.set_index("term")
    assert test.columns.tolist() == ["statistic", "df", "p_value"]
    assert test.loc["arm", "p_value"] < 0.01
    assert test.loc["GLOBAL", "p_value"] < 0.01
    # One term: the global test is the term's test.
    assert test.loc["GLOBAL", "statistic"] == pytest.approx(test.loc["arm", "statistic"])


def test_ph_test_passes_proportional_hazards(cohort):
    result = fit_cox(cohort, time="rfs_months", event="rfs_event", design=_design(cohort))

    test = result.ph_test.set_index("term")
    # One row per covariate, the subtype's two columns pooled (cox.zph's terms = TRUE).
    assert test.index.tolist() == ["subtype", "age", "log2(cea)", "GLOBAL"]
    assert (test["p_value"] > 0.01).all()
    assert test.loc["GLOBAL", "df"] == 4
    assert test.loc["subtype", "df"] == 2
    assert test.loc["age", "df"] == 1


def test_fit_cox_names_a_level_without_events(cohort):
    frame = cohort.copy()
    frame.loc[frame["subtype"] == "RDLS3", "rfs_event"] = 0

    with pytest.raises(
        InputError,
        match=r"level 'RDLS3' of covariate 'subtype' has no events among its \d+ subjects",
    ):
        fit_cox(frame, time="rfs_months", event="rfs_event", design=_design(cohort))

    penalised = fit_cox(
        frame, time="rfs_months", event="rfs_event", design=_design(cohort), penalizer=0.05
    )
    assert penalised.table.set_index("term").loc["subtype[RDLS3]", "hazard_ratio"] < 0.5


def test_fit_cox_names_a_level_without_complete_subjects(cohort):
    frame = cohort.copy()
    frame.loc[frame["subtype"] == "RDLS2", "cea"] = np.nan

    with pytest.raises(
        InputError, match=r"level 'RDLS2' of covariate 'subtype' has no subjects with complete"
    ):
        fit_cox(frame, time="rfs_months", event="rfs_event", design=_design(cohort))


def test_fit_cox_needs_events(cohort):
    frame = cohort.iloc[:100].assign(rfs_event=0)

    with pytest.raises(InputError, match="none of the 100 complete cases has an event"):
        fit_cox(frame, time="rfs_months", event="rfs_event", design=_design(cohort))


def test_fit_cox_explains_a_failed_convergence():
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    frame = pd.DataFrame({"t": rng.exponential(size=80), "e": 1, "x": x, "twice_x": 2 * x})

    with pytest.raises(
        InputError,
        match=r"did not converge on 80 subjects with 80 events \(terms \['x', 'twice_x'\]\).*"
        r"collinear",
    ):
        fit_cox(frame, time="t", event="e", design=make_design(frame, covariates=["x", "twice_x"]))


def test_fit_cox_checks_follow_up(cohort):
    frame = cohort.iloc[:10].copy()
    frame.loc[frame.index[2], "rfs_months"] = -3

    with pytest.raises(InputError, match=r"negative follow-up time for 1 subjects \(S0002\)"):
        fit_cox(frame, time="rfs_months", event="rfs_event", design=_design(cohort))
