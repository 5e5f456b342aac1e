"""The survival rules' glue: Cox fits that a small cohort cannot support become notes."""

import numpy as np
import pandas as pd

from rdls.survival.cox import make_design
from rdls.survival.steps import FIRTH_NOTE, at_risk_times, fit_cox_or_note


def cohort(n=200, seed=0):
    rng = np.random.default_rng(seed)
    subtype = rng.choice(["RDLS1", "RDLS2", "RDLS3"], size=n)
    hazard = np.where(subtype == "RDLS2", 0.5, 1.0) * 0.02
    time = rng.exponential(1 / hazard)
    censor = rng.uniform(20, 100, n)
    return pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(n)],
            "subtype": subtype,
            "age": rng.normal(60, 10, n),
            "rfs_months": np.minimum(time, censor),
            "rfs_event": (time <= censor).astype(int),
        }
    )


def design(frame):
    return make_design(frame, covariates=["subtype", "age"], reference={"subtype": "RDLS1"})


def test_a_cohort_with_enough_events_is_fitted_without_a_note():
    frame = cohort()
    result, note = fit_cox_or_note(frame, design=design(frame), what="test cohort")
    assert note == ""
    assert result.table["term"].tolist() == ["subtype[RDLS2]", "subtype[RDLS3]", "age"]


def test_too_few_events_for_the_terms_is_a_note_not_a_failure():
    frame = cohort()
    small = frame[frame["rfs_event"] == 0].head(20)
    small = pd.concat([small, frame[frame["rfs_event"] == 1].head(3)])
    result, note = fit_cox_or_note(small, design=design(frame), what="small cohort")
    assert result is None
    assert note == "not estimated: 3 events for 3 terms in the small cohort"


def test_a_level_without_events_is_fitted_by_firth_and_noted():
    frame = cohort()
    frame.loc[frame["subtype"] == "RDLS3", "rfs_event"] = 0
    result, note = fit_cox_or_note(frame, design=design(frame), what="test cohort")
    assert note.startswith(f"{FIRTH_NOTE} (Cox model: level 'RDLS3' of covariate 'subtype'")
    row = result.table.set_index("term").loc["subtype[RDLS3]"]
    # finite, below 1, and a profile interval that excludes 1 without running to 0
    assert 0 < row["ci_lower"] < row["hazard_ratio"] < row["ci_upper"] < 1
    assert result.ph_test.empty


def test_numbers_at_risk_are_shown_every_step_up_to_the_longest_follow_up():
    assert at_risk_times(pd.Series([3.0, 40.0, 61.5]), 12) == [0, 12, 24, 36, 48, 60]


def test_a_message_figure_stands_in_where_nothing_can_be_plotted(tmp_path):
    from rdls.survival._plots import plot_message

    plot_message("No cohort has enough events.", title="Cox", png=tmp_path / "f.png",
                 svg=tmp_path / "f.svg")  # fmt: skip
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert "No cohort has enough events." in (tmp_path / "f.svg").read_text()


def test_an_rrs_group_without_events_gets_a_firth_hazard_ratio_and_a_note():
    from rdls.survival.steps import group_hazard_ratio

    frame = cohort(n=40, seed=2)
    group = pd.Series(np.where(np.arange(40) < 5, "low", "high"), index=frame.index)
    frame.loc[group == "low", "rfs_event"] = 0  # the low group has no recurrence
    found = group_hazard_ratio(frame, group)
    assert found["note"].startswith(f"{FIRTH_NOTE} (Cox model: reference level 'low'")
    # five subjects without events: a finite ratio above 1 whose interval still spans 1
    assert 0 < found["ci_lower"] < 1 < found["hazard_ratio"] < found["ci_upper"] < np.inf
    frame["rfs_event"] = 0
    frame.iloc[0, frame.columns.get_loc("rfs_event")] = 1  # one event: fewer than needed
    assert group_hazard_ratio(frame, group) == {
        "note": "not estimated: 1 events for 1 terms in the RRS groups"
    }


def test_training_optimism_corrects_the_clinical_model_and_says_why_not_the_rrs():
    from rdls.survival.steps import RRS_NOT_CORRECTED, training_optimism

    rng = np.random.default_rng(3)
    n = 120
    X = pd.DataFrame({"age": rng.normal(60, 10, n), "rrs": rng.normal(size=n)})
    events = rng.exponential(1 / (0.02 * np.exp(0.8 * X["rrs"])))
    censoring = rng.uniform(20, 100, n)
    train = {"X": X, "time": pd.Series(np.minimum(events, censoring)),
             "event": pd.Series((events <= censoring).astype(int))}  # fmt: skip
    table = training_optimism(
        train, models={"clinical": ["age"], "clinical + RRS": ["age", "rrs"]}, n_boot=40,
        seed=2, horizon=36,
    )  # fmt: skip
    clinical = table[table["model"] == "clinical"].set_index("measure")
    assert (clinical["resamples"] == 40).all() and (clinical["note"].fillna("") == "").all()
    assert clinical.loc["C", "corrected"] < clinical.loc["C", "apparent"]
    with_rrs = table[table["model"] == "clinical + RRS"].set_index("measure")
    assert with_rrs["corrected"].isna().all() and (with_rrs["note"] == RRS_NOT_CORRECTED).all()
    assert with_rrs.loc["C", "apparent"] > clinical.loc["C", "apparent"]
    assert list(table["measure"].unique()) == ["Dxy", "C", "R2", "Slope", "D", "AUC"]


def test_the_clinical_design_merges_a_stage_without_events_but_never_a_subtype():
    from rdls.survival.steps import EVENT, clinical_design

    rng = np.random.default_rng(4)
    n = 90
    frame = pd.DataFrame({
        "t_stage": np.repeat(["T1", "T2", "T3"], 30),
        "subtype": np.tile(["RDLS1", "RDLS2", "RDLS3"], 30),
        "age": rng.normal(60, 8, n),
        EVENT: rng.integers(0, 2, n),
    })  # fmt: skip
    frame.loc[frame["t_stage"] == "T3", EVENT] = 0
    frame.loc[frame["subtype"] == "RDLS3", EVENT] = 0
    design = clinical_design(frame, covariates=["subtype", "age", "t_stage"], log2=[])
    assert design.merged == {"t_stage": {"T2": "T2+T3", "T3": "T2+T3"}}
    assert design.categorical_levels["subtype"] == ["RDLS1", "RDLS2", "RDLS3"]
    assert design.terms == ["subtype[RDLS2]", "subtype[RDLS3]", "age", "t_stage[T2+T3]"]


def test_the_users_level_map_comes_first_and_is_noted_as_theirs():
    import pytest

    from rdls.errors import InputError
    from rdls.survival.cox import design_matrix
    from rdls.survival.steps import EVENT, clinical_design

    rng = np.random.default_rng(5)
    n = 120
    frame = pd.DataFrame({
        "t_stage": np.repeat(["T1", "T2", "T3", "T4"], 30),
        "subtype": np.tile(["RDLS1", "RDLS2", "RDLS3"], 40),
        EVENT: rng.integers(0, 2, n),
    })  # fmt: skip
    frame.loc[frame["t_stage"] == "T4", EVENT] = 0  # then merged with T3 as well
    level_map = {"t_stage": {"T1": "T1-2", "T2": "T1-2"}}
    design = clinical_design(frame, covariates=["subtype", "t_stage"], log2=[],
                             level_map=level_map)  # fmt: skip
    assert design.categorical_levels["t_stage"] == ["T1-2", "T3+T4"]
    assert design.reference["t_stage"] == "T1-2"
    assert design.merge_notes() == [
        "t_stage: T1 and T2 merged into T1-2 (as set in survival.merge_levels)",
        "t_stage: T3 and T4 merged into T3+T4 (too few training events)",
    ]
    coded = design_matrix(design, pd.DataFrame({"subtype": ["RDLS2"] * 4,
                                                "t_stage": ["T1", "T2", "T3", "T4"]}))  # fmt: skip
    assert coded["t_stage[T3+T4]"].tolist() == [0.0, 0.0, 1.0, 1.0]
    for bad, message in [
        ({"subtype": {"RDLS2": "RDLS1"}}, "never merged"),
        ({"stage": {"T1": "T1-2"}}, "'stage' is not a categorical covariate"),
        ({"t_stage": {"T0": "T0-1"}}, r"no level\(s\) \['T0'\]"),
        ({"t_stage": dict.fromkeys(["T1", "T2", "T3", "T4"], "any")}, "every level"),
    ]:
        with pytest.raises(InputError, match=message):
            clinical_design(frame, covariates=["subtype", "t_stage"], log2=[], level_map=bad)


def test_the_rrs_chain_in_the_bootstrap_takes_back_what_selecting_noise_gained():
    """Noise features, screened and LASSO-selected on the outcome, look predictive in training
    only: corrected inside the resamples, clinical + RRS gains nothing over clinical."""
    from rdls.survival.rrs import rrs_chain
    from rdls.survival.steps import RRS_CORRECTED, training_optimism

    rng = np.random.default_rng(6)
    n = 120
    features = pd.DataFrame(rng.normal(size=(n, 20)), columns=[f"f{i}" for i in range(20)])
    age = rng.normal(60, 10, n)
    events = rng.exponential(1 / (0.02 * np.exp(0.04 * (age - 60))))
    censoring = rng.uniform(20, 100, n)
    time, event = np.minimum(events, censoring), (events <= censoring).astype(int)
    high = pd.Series(rng.random(n) < 0.4)
    options = {"fdr": 1.0, "max_features": 20, "seed": 1, "l1_ratio": 1.0, "folds": 5,
               "rule": "min", "when_empty": "largest_nonzero"}  # fmt: skip
    apparent_rrs = rrs_chain(["age"], list(features.columns), high_risk="hr", **options)
    lp = apparent_rrs(features.assign(age=age, hr=high), time, event)
    train = {"X": pd.DataFrame({"age": age, "rrs": 0.0}), "time": pd.Series(time),
             "event": pd.Series(event)}  # fmt: skip
    train["X"]["rrs"] = lp(features.assign(age=age, hr=high)) - 0.04 * age  # any RRS column
    table = training_optimism(
        train, models={"clinical": ["age"], "clinical + RRS": ["age", "rrs"]}, n_boot=30,
        seed=2, horizon=36, rrs_procedure=apparent_rrs, rrs_inputs=features.assign(hr=high),
    ).set_index(["model", "measure"])  # fmt: skip
    gain_apparent = (table.loc[("clinical + RRS", "C"), "apparent"]
                     - table.loc[("clinical", "C"), "apparent"])  # fmt: skip
    gain_corrected = (table.loc[("clinical + RRS", "C"), "corrected"]
                      - table.loc[("clinical", "C"), "corrected"])  # fmt: skip
    assert gain_apparent > 0.03
    assert gain_corrected < gain_apparent / 3
    # explained variation corrected below the clinical model's; predictions shrink
    assert (table.loc[("clinical + RRS", "R2"), "corrected"]
            < table.loc[("clinical", "R2"), "corrected"])  # fmt: skip
    assert table.loc[("clinical + RRS", "Slope"), "corrected"] < 0.8
    assert table.loc[("clinical + RRS", "C"), "note"] == RRS_CORRECTED
    assert table.loc[("clinical + RRS", "C"), "resamples"] >= 25


def test_an_rrs_most_splits_leave_empty_is_called_unstable():
    from rdls.survival.steps import unstable_rrs_note

    def frequency(empty):
        return pd.DataFrame({"feature": ["(none)", "f1"], "selected": [empty, 100 - empty],
                             "frequency": [empty / 100, (100 - empty) / 100]})  # fmt: skip

    assert unstable_rrs_note(frequency(63)).startswith(
        "unstable: 63 of 100 repeated cross-validation splits keep no feature"
    )
    assert unstable_rrs_note(frequency(49)) == ""
