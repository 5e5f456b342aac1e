"""Subtypes and survival on the tiny demo: the contracts between branches and what each rule
promises (tables, locked models, figures)."""

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def read(workdir, path):
    return pd.read_csv(workdir / path, sep="\t", dtype={"subject_id": str})


def test_every_subject_with_features_gets_one_subtype(tiny_run):
    assignments = read(tiny_run, "results/subtypes/assignments.tsv")
    features = pd.read_parquet(tiny_run / "results/imaging/features/deep.parquet")
    k = assignments.loc[assignments["cohort"] == "training", "subtype"].nunique()
    probabilities = [f"prob_RDLS{i}" for i in range(1, k + 1)]
    assert list(assignments.columns) == [
        "subject_id", "cohort", "subtype", "confidence", "uncertain", "source", *probabilities
    ]  # fmt: skip
    assert (assignments["uncertain"] == (assignments["confidence"] < 0.6)).all()
    others = assignments[assignments["cohort"] != "training"]
    assert others[probabilities].min().min() >= 1e-4  # calibrated: no 1e-253 (4 decimals)
    assert sorted(assignments["subject_id"]) == sorted(features["subject_id"])
    training = assignments["cohort"] == "training"
    assert (assignments.loc[training, "source"] == "consensus").all()
    assert (assignments.loc[~training, "source"] == "classifier").all()
    assert assignments["confidence"].between(0, 1).all()
    assert set(assignments["subtype"]) <= {f"RDLS{i}" for i in range(1, k + 1)}


def test_consensus_summary_has_every_k_and_one_choice(tiny_run):
    summary = read(tiny_run, "results/subtypes/consensus/summary.tsv")
    assert summary["k"].tolist() == [2, 3, 4, 5, 6]
    assert summary["chosen"].sum() == 1
    assert summary["pac"].between(0, 1).all()
    rates = read(tiny_run, "results/subtypes/consensus/subtype_rates.tsv")
    ordered = rates.set_index("subtype")["rate_per_100_person_years"]
    # The naming rule: RDLS1 has the highest recurrence rate, RDLS2 the lowest.
    assert ordered["RDLS1"] == ordered.max() and ordered["RDLS2"] == ordered.min()


def test_agreement_and_in_group_proportion_cover_the_other_cohorts(tiny_run):
    agreement = read(tiny_run, "results/subtypes/agreement.tsv")
    assert set(agreement["cohort"]) == {"internal_validation", "external_validation", "biological"}
    igp = read(tiny_run, "results/subtypes/in_group_proportion.tsv")
    assert "training" in set(igp["cohort"]) and igp["igp"].dropna().between(0, 1).all()


def test_table_one_describes_each_cohort_with_tests(tiny_run):
    table = read(tiny_run, "results/subtypes/table_one.tsv")
    assert set(table["cohort"]) == {
        "training", "internal_validation", "external_validation", "biological"
    }  # fmt: skip
    assert {"age", "t_stage", "cea_ng_ml"} <= set(table["variable"])
    html = (tiny_run / "results/subtypes/table_one.html").read_text()
    assert "<table" in html and "Kruskal" in html


def test_risk_scores_follow_the_locked_model_and_cutoff(tiny_run):
    scores = read(tiny_run, "results/survival/risk_scores.tsv")
    assert list(scores.columns) == ["subject_id", "cohort", "rrs", "rrs_group"]
    model = json.loads((tiny_run / "results/survival/rrs/model.json").read_text())
    high = scores["rrs"] > model["cutoff"]
    assert (scores.loc[high, "rrs_group"] == "high").all()
    assert (scores.loc[~high, "rrs_group"] == "low").all()
    assert model["coefficients"], "the locked RRS has no feature"


def test_survival_tables_and_figures_for_each_cohort(tiny_run):
    cox = read(tiny_run, "results/survival/cox/hazard_ratios.tsv")
    training = cox[cox["cohort"] == "training"]
    assert training["term"].str.startswith("subtype[").any()
    for cohort in ("training", "internal_validation", "external_validation", "biological"):
        assert (tiny_run / f"results/survival/km/{cohort}.png").stat().st_size > 10_000
        assert (tiny_run / f"results/survival/rrs/km_{cohort}.svg").is_file()
        logrank = read(tiny_run, f"results/survival/km/{cohort}_logrank.tsv")
        assert logrank["p_value"].between(0, 1).all()
    auc = read(tiny_run, "results/survival/comparison/auc.tsv")
    # the two models, and the comparators whose inputs the run has (tumour volume; the
    # all-feature LASSO only where its penalty keeps a feature)
    assert {"clinical", "clinical + RRS", "tumour volume"} <= set(auc["model"])
    assert set(auc["model"]) <= {"clinical", "clinical + RRS", "tumour volume",
                                 "clinical + LASSO (all features)"}  # fmt: skip
    assert "external_validation" in set(auc["cohort"])


def test_locked_clinical_models_reproduce_the_predicted_risks(tiny_run):
    from rdls.sheets import read_subjects
    from rdls.survival.compare import risk_from_locked
    from rdls.survival.cox import CoxDesign, design_matrix

    locked = json.loads((tiny_run / "results/survival/comparison/locked_models.json").read_text())
    design = CoxDesign.from_dict(locked["design"])
    subjects = read_subjects(
        tiny_run / "results/demo/tiny/sheets/subjects.tsv", covariates=design.covariates
    ).set_index("subject_id")
    scores = read(tiny_run, "results/survival/risk_scores.tsv").set_index("subject_id")
    predicted = read(tiny_run, "results/survival/comparison/predictions.tsv")
    predicted = predicted[predicted["model"] == "clinical + RRS"].set_index("subject_id")
    matrix = design_matrix(design, subjects.loc[predicted.index])
    matrix["rrs"] = scores.loc[predicted.index, "rrs"]
    risk = risk_from_locked(locked["models"]["clinical + RRS"], matrix)
    assert risk.to_numpy() == pytest.approx(predicted["risk"].to_numpy(), rel=1e-6, abs=1e-12)
