"""No significant subtypes: every survival output is written, and says there is nothing to
compare by subtype (the whole cohort's curve, Cox without the subtype term, no RRS, the
clinical model alone)."""

import json

import pandas as pd
import pytest

from rdls.compare import NO_SUBTYPES_NOTE
from rdls.survival.steps import (
    compare_step,
    cox_step,
    km_step,
    no_rrs_reason,
    rrs_fit_step,
    rrs_km_step,
    rrs_score_step,
)
from tests.unit import no_structure as fixture

SURVIVAL = {
    "log2_covariates": ["cea_ng_ml"],
    "horizon_months": 60,
    "at_risk_every_months": 12,
    "ph_transform": "km",
    "rrs": {"fdr": 0.05, "max_features": 50, "l1_ratio": 1.0, "folds": 5, "penalty_rule": "1se",
            "when_empty": "empty", "stability_repeats": 3,
            "cutoff": "maxstat", "min_group_fraction": 0.2},
    "comparison": {"bootstrap": 20, "calibration_groups": 3, "max_threshold": 0.6,
                   "optimism_resamples": 20},
}  # fmt: skip
COHORTS = ["training", "internal_validation", "external_validation"]
NO_RRS = (f"no RRS ({NO_SUBTYPES_NOTE}): its features are screened RDLS1 against the other "
          "subtypes; the model comparison is the clinical model alone")  # fmt: skip


@pytest.fixture
def run(tmp_path):
    """The subjects sheet, features and all-"none" assignments of a cohort without subtypes."""
    return {
        "dir": tmp_path,
        "subjects": fixture.write_subjects(tmp_path / "subjects.tsv"),
        "assignments": fixture.write_assignments(tmp_path / "assignments.tsv"),
        "features": fixture.write_features(tmp_path / "selected.parquet"),
    }


def test_km_is_the_whole_cohort_and_the_log_rank_table_says_why(run):
    out = run["dir"]
    km_step(cohort="training", assignments=run["assignments"], subjects_sheet=run["subjects"],
            settings=SURVIVAL, out_figure=(out / "km.png", out / "km.svg"),
            out_curves=out / "curves.tsv", out_at_risk=out / "at_risk.tsv",
            out_logrank=out / "logrank.tsv", out_summary=out / "summary.tsv")  # fmt: skip
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary["subtype"].tolist() == ["all"] and summary["n"].item() == 60
    assert 0 < summary["survival"].item() < 1 and summary["horizon"].item() == 60
    logrank = pd.read_csv(out / "logrank.tsv", sep="\t")
    assert logrank["comparison"].tolist() == ["by subtype"]
    assert logrank["note"].item() == NO_SUBTYPES_NOTE and logrank["p_value"].isna().all()
    curves = pd.read_csv(out / "curves.tsv", sep="\t")
    assert set(curves["group"]) == {"all"}
    assert curves["at_risk"].max() == fixture.COHORTS["training"]
    svg = (out / "km.svg").read_text()
    assert "no subtypes" in svg and NO_SUBTYPES_NOTE in svg


def test_cox_has_no_subtype_term_and_every_row_says_why(run):
    out = run["dir"]
    cox_step(assignments=run["assignments"], subjects_sheet=run["subjects"],
             covariates=fixture.COVARIATES, cohorts=COHORTS, settings=SURVIVAL,
             out_table=out / "hr.tsv", out_ph_test=out / "ph.tsv",
             out_forest=(out / "forest.png", out / "forest.svg"))  # fmt: skip
    table = pd.read_csv(out / "hr.tsv", sep="\t")
    training = table[table["cohort"] == "training"]
    assert training["term"].tolist() == ["age", "sex[male]", "t_stage[T3]", "t_stage[T4]",
                                         "log2(cea_ng_ml)"]  # fmt: skip
    assert not table["term"].str.startswith("subtype").any()
    assert (table.dropna(subset=["n"])["missing"] == 0).all()  # the fixture misses nothing
    assert table["note"].str.startswith(f"{NO_SUBTYPES_NOTE}; the model has no subtype term").all()
    # the planted effect (T4 five times the hazard of T2) is still estimated
    assert training.set_index("term").loc["t_stage[T4]", "hazard_ratio"] > 2
    assert "clinical covariates only" in (out / "forest.svg").read_text()


def rrs_fit(run):
    out = run["dir"]
    rrs_fit_step(features=run["features"], assignments=run["assignments"],
                 subjects_sheet=run["subjects"], settings=SURVIVAL["rrs"], seed=1,
                 out_model=out / "rrs.json", out_candidates=out / "candidates.tsv",
                 out_coefficients=out / "coefficients.tsv", out_cv=out / "cv.tsv",
                 out_cv_figure=(out / "cv.png", out / "cv.svg"),
                 out_cutoff_scan=out / "scan.tsv",
                 out_frequency=out / "frequency.tsv")  # fmt: skip
    rrs_score_step(features=run["features"], model=out / "rrs.json",
                   subjects_sheet=run["subjects"], cohorts=COHORTS,
                   out_scores=out / "scores.tsv", out_groups=out / "groups.tsv")  # fmt: skip


def test_the_rrs_is_empty_and_every_output_says_why(run):
    rrs_fit(run)
    out = run["dir"]
    model = json.loads((out / "rrs.json").read_text())
    assert model["features"] == [] and model["cutoff"] is None and model["notes"] == [NO_RRS]
    for name in ("candidates", "coefficients", "cv", "scan", "frequency"):
        table = pd.read_csv(out / f"{name}.tsv", sep="\t")
        assert len(table) == 1 and table["note"].item() == NO_RRS, name
    assert "no RRS" in (out / "cv.svg").read_text()
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert len(scores) == sum(fixture.COHORTS.values())
    assert scores["rrs"].isna().all() and scores["rrs_group"].isna().all()
    groups = pd.read_csv(out / "groups.tsv", sep="\t")
    assert groups["cohort"].tolist() == COHORTS and (groups["note"] == NO_RRS).all()
    assert groups["hazard_ratio"].isna().all() and groups["n"].tolist() == [60, 20, 30]
    rrs_km_step(cohort="external_validation", scores=out / "scores.tsv",
                groups=out / "groups.tsv", subjects_sheet=run["subjects"], settings=SURVIVAL,
                out_figure=(out / "rrs_km.png", out / "rrs_km.svg"))  # fmt: skip
    assert "no RRS" in (out / "rrs_km.svg").read_text()


def test_the_comparison_is_the_clinical_model_alone(run):
    rrs_fit(run)
    out = run["dir"]
    names = ("models", "auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc",
             "predictions", "optimism", "calibration_summary", "calibration_curve")  # fmt: skip
    figures = ("auc", "roc", "calibration", "decision_curve", "nomogram")
    compare_step(scores=out / "scores.tsv", rrs_model=out / "rrs.json",
                 subjects_sheet=run["subjects"], covariates=fixture.COVARIATES, cohorts=COHORTS,
                 settings=SURVIVAL, seed=1,
                 out_tables={n: out / f"cmp_{n}.tsv" for n in names},
                 out_locked=out / "locked.json",
                 out_figures={f: (out / f"{f}.png", out / f"{f}.svg")
                              for f in figures})  # fmt: skip
    auc = pd.read_csv(out / "cmp_auc.tsv", sep="\t")
    assert set(auc["model"]) == {"clinical"}
    assert (auc["missing_covariates"] >= 0).all()
    assert auc["cohort"].tolist() == COHORTS and auc["auc"].between(0.5, 1).all()
    difference = pd.read_csv(out / "cmp_auc_difference.tsv", sep="\t")
    assert difference["cohort"].tolist() == COHORTS and (difference["note"] == NO_RRS).all()
    assert difference["difference"].isna().all()
    locked = json.loads((out / "locked.json").read_text())
    assert list(locked["models"]) == ["clinical"]
    assert "rrs" not in locked["models"]["clinical"]["covariates"]
    assert "Nomogram of the locked clinical model" in (out / "nomogram.svg").read_text()
    optimism = pd.read_csv(out / "cmp_optimism.tsv", sep="\t").set_index("measure")
    assert set(optimism["model"]) == {"clinical"} and (optimism["resamples"] > 0).all()
    assert optimism.loc["C", "corrected"] < optimism.loc["C", "apparent"]
    assert optimism.loc["Slope", "apparent"] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("subtypes", "reason"),
    [
        (["RDLS1", "RDLS2", "RDLS1"], ""),
        (["RDLS2", "RDLS3"], "no training subject has the high-risk subtype RDLS1"),
        (["RDLS1", "RDLS1"], "one subtype only (RDLS1): nothing to compare by subtype"),
    ],
)
def test_the_rrs_needs_the_high_risk_subtype_and_another(subtypes, reason):
    found = no_rrs_reason(pd.Series(subtypes))
    assert found == (f"no RRS ({reason}): its features are screened RDLS1 against the other "
                     "subtypes; the model comparison is the clinical model alone" if reason
                     else "")  # fmt: skip


@pytest.mark.parametrize(
    ("fdr", "reason"),
    [
        (0.05, "empty RRS: no imaging feature sets RDLS1 apart from the other subtypes"),
        (1.0, "empty RRS: the cross-validated penalty (1se"),
    ],
)
def test_noise_features_give_an_empty_rrs_and_the_clinical_model_alone(run, fdr, reason):
    """Subtypes drawn at random and noise features: nothing earns a place in the RRS."""
    import numpy as np

    out = run["dir"]
    assignments = fixture.assignments()
    assignments["subtype"] = np.random.default_rng(2).choice(["RDLS1", "RDLS2"], len(assignments))
    assignments["source"] = "consensus"
    assignments.to_csv(out / "assignments.tsv", sep="\t", index=False)
    settings = {**SURVIVAL["rrs"], "fdr": fdr}
    rrs_fit_step(features=run["features"], assignments=out / "assignments.tsv",
                 subjects_sheet=run["subjects"], settings=settings, seed=1,
                 out_model=out / "rrs.json", out_candidates=out / "candidates.tsv",
                 out_coefficients=out / "coefficients.tsv", out_cv=out / "cv.tsv",
                 out_cv_figure=(out / "cv.png", out / "cv.svg"),
                 out_cutoff_scan=out / "scan.tsv",
                 out_frequency=out / "frequency.tsv")  # fmt: skip
    model = json.loads((out / "rrs.json").read_text())
    assert model["features"] == [] and model["notes"][0].startswith(reason)
    assert pd.read_csv(out / "coefficients.tsv", sep="\t")["note"].str.startswith(reason).all()
    rrs_score_step(features=run["features"], model=out / "rrs.json",
                   subjects_sheet=run["subjects"], cohorts=COHORTS,
                   out_scores=out / "scores.tsv", out_groups=out / "groups.tsv")  # fmt: skip
    assert pd.read_csv(out / "scores.tsv", sep="\t")["rrs"].isna().all()


def test_comparators_tumour_volume_and_lasso_on_all_features(run):
    """Volume from the unharmonised radiomics; the all-feature LASSO only where it keeps one."""
    import numpy as np

    rrs_fit(run)
    out = run["dir"]
    subjects = fixture.subjects()
    rng = np.random.default_rng(4)
    pd.DataFrame(
        {"subject_id": subjects["subject_id"], "cohort": subjects["cohort"],
         "original_shape_VoxelVolume": rng.lognormal(9, 0.5, len(subjects))}
    ).to_parquet(out / "radiomics.parquet", index=False)  # fmt: skip
    names = ("models", "auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc",
             "predictions", "optimism", "calibration_summary", "calibration_curve")  # fmt: skip
    figures = ("auc", "roc", "calibration", "decision_curve", "nomogram")
    compare_step(scores=out / "scores.tsv", rrs_model=out / "rrs.json",
                 subjects_sheet=run["subjects"], covariates=fixture.COVARIATES, cohorts=COHORTS,
                 settings=SURVIVAL, seed=1, features=run["features"],
                 assignments=run["assignments"], radiomics=out / "radiomics.parquet",
                 out_tables={n: out / f"cmp_{n}.tsv" for n in names},
                 out_locked=out / "locked.json",
                 out_figures={f: (out / f"{f}.png", out / f"{f}.svg")
                              for f in figures})  # fmt: skip
    auc = pd.read_csv(out / "cmp_auc.tsv", sep="\t")
    assert list(dict.fromkeys(auc["model"]))[:2] == ["clinical", "tumour volume"]
    models = pd.read_csv(out / "cmp_models.tsv", sep="\t")
    assert "log2_tumour_volume" in set(models["covariate"])
    optimism = pd.read_csv(out / "cmp_optimism.tsv", sep="\t")
    assert (optimism.loc[optimism["model"] == "tumour volume", "resamples"] > 0).all()
