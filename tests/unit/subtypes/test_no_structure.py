"""No significant subtypes: no classifier is fitted, every subject is "none", and the tables that
compare subtypes say why instead of giving numbers."""

import joblib
import numpy as np
import pandas as pd

from rdls.subtypes.no_structure import is_no_structure
from rdls.subtypes.steps import assign_step, classifier_step, table_one_step
from tests.unit import no_structure as fixture

SETTINGS = {"candidates": ["nearest_centroid", "logistic"], "folds": 3}
CONSENSUS = {"item_fraction": 0.8, "feature_fraction": 1.0, "algorithms": ["kmeans"],
             "pac_interval": [0.1, 0.9]}  # fmt: skip


def run_classifier(tmp_path, *, structure=True):
    features = fixture.write_features(tmp_path / "selected.parquet")
    training = fixture.write_training(tmp_path / "training.tsv")
    classifier_step(
        features=features,
        training_subtypes=training,
        settings=SETTINGS,
        seed=1,
        out_model=tmp_path / "model.joblib",
        out_cv=tmp_path / "cv.tsv",
        structure=fixture.write_structure(tmp_path / "structure.json") if structure else None,
    )
    return features, training


def test_no_classifier_is_fitted_and_the_model_file_says_why(tmp_path):
    run_classifier(tmp_path)
    model = joblib.load(tmp_path / "model.joblib")
    assert is_no_structure(model)
    assert model["message"] == fixture.MESSAGE and model["classes"] == []
    cv = pd.read_csv(tmp_path / "cv.tsv", sep="\t")
    assert cv["classifier"].tolist() == ["none"] and cv["balanced_accuracy"].isna().all()
    assert cv["note"].item() == f"no classifier fitted: {fixture.MESSAGE}"


def test_without_structure_json_the_reason_comes_from_the_subtypes(tmp_path):
    run_classifier(tmp_path, structure=False)
    model = joblib.load(tmp_path / "model.joblib")
    assert model["message"] == "no significant subtypes: nothing to compare by subtype"


def test_every_subject_is_none_with_notes_for_agreement_and_igp(tmp_path):
    features, training = run_classifier(tmp_path)
    assign_step(
        features=features,
        training_subtypes=training,
        model=tmp_path / "model.joblib",
        consensus_settings=CONSENSUS,
        reps=5,
        seed=1,
        out_assignments=tmp_path / "assignments.tsv",
        out_agreement=tmp_path / "agreement.tsv",
        out_igp=tmp_path / "igp.tsv",
    )
    table = pd.read_csv(tmp_path / "assignments.tsv", sep="\t", keep_default_na=False)
    assert len(table) == sum(fixture.COHORTS.values())
    assert set(table["subtype"]) == {"none"} and set(table["source"]) == {"no_structure"}
    assert (table["confidence"] == "").all()  # NaN: no subtype, no confidence
    assert table["cohort"].drop_duplicates().tolist() == list(fixture.COHORTS)
    agreement = pd.read_csv(tmp_path / "agreement.tsv", sep="\t")
    assert agreement["cohort"].tolist() == list(fixture.COHORTS)[1:]
    assert agreement["n"].tolist() == [20, 30, 8]
    assert agreement[["k", "ari", "kappa"]].isna().all().all()
    assert (agreement["note"] == f"not computed: {fixture.MESSAGE}").all()
    igp = pd.read_csv(tmp_path / "igp.tsv", sep="\t", keep_default_na=False)
    assert igp["cohort"].tolist() == list(fixture.COHORTS) and set(igp["subtype"]) == {"none"}
    assert (igp["igp"] == "").all() and igp["note"].str.contains("p = 0.41").all()


def test_table_one_has_the_overall_column_only_and_says_why(tmp_path):
    subjects = fixture.write_subjects(tmp_path / "subjects.tsv")
    assignments = fixture.write_assignments(tmp_path / "assignments.tsv")
    table_one_step(assignments=assignments, subjects_sheet=subjects, covariates=fixture.COVARIATES,
                   out_table=tmp_path / "t1.tsv", out_html=tmp_path / "t1.html")  # fmt: skip
    table = pd.read_csv(tmp_path / "t1.tsv", sep="\t")
    assert list(table.columns) == ["cohort", "variable", "level", "overall", "test", "statistic",
                                   "p_value"]  # fmt: skip
    tested = table[table["variable"] != "n"]
    expected = "not tested: no significant subtypes: nothing to compare by subtype"
    assert (tested["test"] == expected).all() and tested["p_value"].isna().all()
    n = table[table["variable"] == "n"].set_index("cohort")["overall"].astype(int)
    assert n.to_dict() == fixture.COHORTS
    html = (tmp_path / "t1.html").read_text()
    assert "no significant subtypes" in html and ">none<" not in html
    assert np.isfinite(table["statistic"]).sum() == 0
