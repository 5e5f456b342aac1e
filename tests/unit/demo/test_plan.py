"""The demo's plan: sizes per scale, valid sheets, and survival with the planted hazards."""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy.stats import chi2_contingency

from rdls.demo import SCALES, plan_cohort, sheet_frames
from rdls.demo._plan import COHORT_CENTRES, HAZARD_COEFFICIENTS
from rdls.sheets import SHEET_NAMES, validate_cohort


@pytest.fixture(scope="module")
def paper():
    return plan_cohort(scale="paper", seed=42)


def cox_design(plan) -> pd.DataFrame:
    """The planted model's covariates, from the sheets plus the true subtypes (complete
    cases: the demo leaves a few values blank, completely at random)."""
    subjects = plan.subjects.merge(plan.truth_subjects[["subject_id", "subtype"]])
    subjects = subjects.dropna(subset=["cea_ng_ml", "n_stage"])
    return pd.DataFrame(
        {
            "months": subjects["rfs_months"],
            "event": subjects["rfs_event"],
            "subtype_RDLS2": (subjects["subtype"] == "RDLS2").astype(float),
            "subtype_RDLS3": (subjects["subtype"] == "RDLS3").astype(float),
            "t_stage_T3": (subjects["t_stage"] == "T3").astype(float),
            "t_stage_T4": (subjects["t_stage"] == "T4").astype(float),
            "n_stage_N1": (subjects["n_stage"] == "N1").astype(float),
            "n_stage_N2": (subjects["n_stage"] == "N2").astype(float),
            "log2_cea": np.log2(subjects["cea_ng_ml"]),
        }
    )


def test_paper_scale_matches_the_study(paper):
    counts = paper.subjects["cohort"].value_counts().to_dict()
    assert counts == {"training": 931, "internal_validation": 365,
                      "external_validation": 492, "biological": 272}  # fmt: skip
    assert len(paper.slides) == 409
    assert len(paper.bulk) == 83
    assert len(paper.scrna) == 7


@pytest.mark.parametrize(("scale", "low", "high"), [("tiny", 50, 70), ("default", 250, 350)])
def test_scale_sizes(scale, low, high):
    plan = plan_cohort(scale=scale, seed=42)
    assert low <= len(plan.subjects) <= high
    assert plan.scrna.merge(plan.truth_subjects)["subtype"].nunique() == 3


def test_plan_is_deterministic_and_depends_on_the_seed():
    first, again, other = (plan_cohort(scale="tiny", seed=s) for s in (7, 7, 8))
    for name in SHEET_NAMES:
        pd.testing.assert_frame_equal(first.sheets[name], again.sheets[name])
    assert not first.subjects["rfs_months"].equals(other.subjects["rfs_months"])


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="unknown demo scale 'huge'; choose one of tiny"):
        plan_cohort(scale="huge")


@pytest.mark.parametrize("scale", list(SCALES))
def test_demo_sheets_pass_the_sheet_checks(scale):
    plan = plan_cohort(scale=scale, seed=42)
    cohort = validate_cohort(
        sheet_frames(plan, root="results/demo"),
        sources={name: f"{name}.tsv" for name in SHEET_NAMES},
        covariates=["age", "sex", "t_stage", "n_stage", "cea_ng_ml"],
        check_files=False,
    )
    assert cohort.mri["image"].str.startswith("results/demo/mri/").all()
    assert len(cohort.subjects) == SCALES[scale].n_subjects


def test_centres_follow_the_cohort_design(paper):
    for cohort, centres in COHORT_CENTRES.items():
        seen = set(paper.subjects.loc[paper.subjects["cohort"] == cohort, "centre"])
        assert seen == set(centres)


def test_cox_recovers_every_planted_hazard_ratio_within_its_95_ci(paper):
    fitted = CoxPHFitter().fit(cox_design(paper), "months", "event")
    intervals = fitted.confidence_intervals_
    for term, log_hr in HAZARD_COEFFICIENTS.items():
        low, high = intervals.loc[term]
        assert low <= log_hr <= high, f"{term}: planted {np.exp(log_hr):.2f} outside CI"
    assert np.exp(fitted.params_["subtype_RDLS2"]) == pytest.approx(0.5, abs=0.1)


def test_subtype_hazard_ratios_at_the_default_scale():
    fitted = CoxPHFitter().fit(cox_design(plan_cohort(scale="default", seed=42)), "months", "event")
    intervals = np.exp(fitted.confidence_intervals_)
    assert intervals.loc["subtype_RDLS2"].iloc[1] < 1.0  # RDLS2 protective, significantly
    for term in ("subtype_RDLS2", "subtype_RDLS3"):
        low, high = intervals.loc[term]
        assert low <= np.exp(HAZARD_COEFFICIENTS[term]) <= high


def test_censoring_is_realistic(paper):
    subjects = paper.subjects
    assert 0.3 <= subjects["rfs_event"].mean() <= 0.55
    censored = subjects.loc[subjects["rfs_event"] == 0, "rfs_months"]
    assert 48 <= censored.median() <= 108  # administrative follow-up of 4-9 years dominates
    assert (censored < 48).mean() > 0.02  # and some are lost to follow-up early


def test_clinical_data_associate_weakly_with_subtype(paper):
    subjects = paper.subjects.merge(paper.truth_subjects[["subject_id", "subtype"]])
    advanced = subjects["t_stage"].isin(["T3", "T4"])
    rate = advanced.groupby(subjects["subtype"]).mean()
    assert rate["RDLS1"] > rate["RDLS2"]
    table = pd.crosstab(subjects["subtype"], subjects["t_stage"])
    chi2 = chi2_contingency(table).statistic
    cramers_v = np.sqrt(chi2 / (table.to_numpy().sum() * (min(table.shape) - 1)))
    assert 0.05 < cramers_v < 0.3
