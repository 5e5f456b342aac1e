"""Scoring new subjects reproduces what the run gave its own, and refuses what it cannot take.

The new subjects are the miniature run's external cohort, sent again through
:func:`rdls.predict.steps.predict_step` from their image files: subtype, confidence, RRS, group
and the clinical + RRS probability must be those the run's locked models gave them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError, QCFailure
from rdls.predict.steps import PREDICTION_COLUMNS, predict_step
from rdls.subtypes.classifier import assign
from rdls.survival.compare import risk_at

from .conftest import COVARIATES, HARMONISATION, HORIZON, IMAGING


def _predict(run, sheet, tmp_path, *, allow_exclusions=False, unseen_centre="error",
             min_subjects=HARMONISATION["min_subjects_per_centre"]):  # fmt: skip
    return predict_step(
        sheet=sheet,
        covariates=COVARIATES,
        **run.paths,
        imaging=IMAGING,
        allow_exclusions=allow_exclusions,
        unseen_centre=unseen_centre,
        min_subjects_per_centre=min_subjects,
        out_predictions=tmp_path / "predictions.tsv",
        out_harmonisation=tmp_path / "maps.tsv",
        out_work=tmp_path / "work",
    )


@pytest.fixture(scope="module")
def scored(mini_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored")
    sheet = mini_run.write_sheet(mini_run.sheet_rows(mini_run.external()), "external.tsv")
    table = _predict(mini_run, sheet, out)
    return table.set_index("subject_id"), out


def test_new_subjects_get_the_subtypes_scores_and_risks_the_run_gave_them(mini_run, scored):
    table, out = scored
    ids = mini_run.external()["subject_id"].tolist()
    assert table.index.tolist() == ids and (table["status"] == "ok").all()
    expected = assign(mini_run.classifier, mini_run.selected.loc[ids])
    assert table["subtype"].tolist() == expected["subtype"].tolist()
    np.testing.assert_allclose(table["confidence"], expected["confidence"], atol=1e-9)
    rrs = mini_run.rrs.score(mini_run.selected.loc[ids])
    np.testing.assert_allclose(table["rrs"], rrs, rtol=0, atol=1e-9)
    assert table["rrs_group"].tolist() == mini_run.rrs.group(rrs).tolist()
    matrix = mini_run.design_matrix.loc[ids]
    for column, model in (("recurrence_probability", "clinical + RRS"),
                          ("recurrence_probability_clinical", "clinical")):  # fmt: skip
        fit = mini_run.fits[model]
        risk = risk_at(fit, matrix[list(fit.params_.index)], horizon=HORIZON)
        np.testing.assert_allclose(table[column], risk, rtol=1e-9)
    assert (table["horizon_months"] == HORIZON).all()
    saved = pd.read_csv(out / "predictions.tsv", sep="\t")
    probabilities = [f"prob_{s}" for s in mini_run.classifier.classes]
    columns = [c for c in PREDICTION_COLUMNS]
    columns[columns.index("confidence") + 1 : columns.index("confidence") + 1] = probabilities
    assert saved.columns.tolist() == columns
    np.testing.assert_allclose(saved[probabilities].sum(axis=1), 1.0)


def test_predict_reads_the_saved_models_and_harmonises_as_the_run_did(mini_run, scored):
    """The new subjects' harmonised features are the run's, from the saved files alone."""
    from rdls.imaging.harmonise import ComBatModel
    from rdls.predict.harmonise import harmonise_new_subjects

    _, out = scored
    ids = mini_run.external()["subject_id"].tolist()
    centre = mini_run.subjects.set_index("subject_id")["centre"]
    plan = pd.read_csv(out / "maps.tsv", sep="\t")
    assert set(plan["family"]) == {"radiomics", "deep"} and set(plan["centre"]) == set("AB") | {"C"}
    assert set(plan["harmonisation"]) == {"reference", "training"}
    for family, path in mini_run.paths["harmonisation"].items():
        # What predict extracted from the images, harmonised with the saved model ...
        extracted = pd.read_parquet(out / "work" / f"{family}.parquet").set_index("subject_id")
        again, notes = harmonise_new_subjects(
            ComBatModel.load(path), extracted, centre, min_subjects=3
        )
        # ... is what the run's table holds for them, feature for feature.
        run = pd.read_parquet(mini_run.root / "run" / "features" / f"{family}.parquet")
        run = run.set_index("subject_id").loc[ids].drop(columns=["cohort", "centre"])
        np.testing.assert_allclose(again.loc[ids, run.columns], run, rtol=0, atol=1e-9)
        assert (notes == "").all()


def test_a_missing_covariate_column_is_refused_naming_it(mini_run, tmp_path):
    rows = mini_run.sheet_rows(mini_run.external()).drop(columns="cea_ng_ml")
    sheet = mini_run.write_sheet(rows)
    with pytest.raises(InputError, match=r"covariate column\(s\) 'cea_ng_ml' missing\. The "
                       r"locked clinical model uses them"):  # fmt: skip
        _predict(mini_run, sheet, tmp_path)
    assert not (tmp_path / "work").exists()  # refused before any image was read


def test_an_empty_covariate_is_refused_naming_row_subject_and_column(mini_run, tmp_path):
    rows = mini_run.sheet_rows(mini_run.external()).reset_index(drop=True)
    rows["age"] = rows["age"].astype(object)
    rows.loc[1, "age"] = ""
    sid = rows.loc[1, "subject_id"]
    with pytest.raises(InputError, match=rf"new.tsv, row 2 \(subject_id {sid}\), column 'age': "
                       r"empty, but required\..*locked clinical model uses it"):  # fmt: skip
        _predict(mini_run, mini_run.write_sheet(rows), tmp_path)


def test_a_level_unknown_to_training_is_refused(mini_run, tmp_path):
    rows = mini_run.sheet_rows(mini_run.external()).reset_index(drop=True)
    rows.loc[0, "t_stage"] = "T4"
    with pytest.raises(InputError, match=r"row 1 .*column 't_stage': level 'T4' did not occur "
                       r"in the training cohort.*known levels: T2, T3"):  # fmt: skip
        _predict(mini_run, mini_run.write_sheet(rows), tmp_path)


def test_a_small_unseen_centre_is_refused_or_left_unharmonised_when_asked(mini_run, tmp_path):
    rows = mini_run.sheet_rows(mini_run.external()).reset_index(drop=True).iloc[:2]
    rows.loc[1, "centre"] = "Z"
    sheet = mini_run.write_sheet(rows)
    with pytest.raises(InputError, match=r"row 2 .*column 'centre': centre 'Z' is not in the run's "
                       r"saved harmonisation \(centres A, B, C\) and has 1 subject\(s\) in the "
                       r"sheet, fewer than imaging.harmonisation.min_subjects_per_centre \(3\).*"
                       r"predict.unseen_centre: unharmonised"):  # fmt: skip
        _predict(mini_run, sheet, tmp_path)
    assert not (tmp_path / "work").exists()  # refused before any image was read
    for option in ("unharmonised", "reference"):  # reference: the option's earlier name
        table = _predict(mini_run, sheet, tmp_path, unseen_centre=option).set_index("subject_id")
        assert (table["status"] == "ok").all() and table["subtype"].notna().all()
        assert table["note"].iloc[0] == ""  # nothing unusual at a known centre
        assert "left unharmonised, as if at the reference centre A" in table["note"].iloc[1]
    plan = pd.read_csv(tmp_path / "maps.tsv", sep="\t").set_index(["family", "centre"])
    assert plan.loc[("radiomics", "Z"), "harmonisation"] == "unharmonised"


def test_a_large_enough_unseen_centre_is_estimated_from_the_sheets_subjects(mini_run, tmp_path):
    from rdls.imaging.harmonise import ComBatModel, estimate_centre

    rows = mini_run.sheet_rows(mini_run.external()).reset_index(drop=True)
    rows.loc[:2, "centre"] = "Z"  # three subjects: min_subjects_per_centre
    sheet = mini_run.write_sheet(rows)
    table = _predict(mini_run, sheet, tmp_path).set_index("subject_id")
    assert (table["status"] == "ok").all() and table["subtype"].notna().all()
    z = rows.loc[:2, "subject_id"].tolist()
    assert table.loc[z, "note"].str.contains("estimated from the predict sheet's 3 subjects").all()
    plan = pd.read_csv(tmp_path / "maps.tsv", sep="\t").set_index(["family", "centre"])
    assert plan.loc[("deep", "Z"), ["harmonisation", "estimated_from"]].tolist() == [
        "predict_sheet", 3]  # fmt: skip
    # The estimate is the one a run would make from these subjects' own features.
    model = ComBatModel.load(mini_run.paths["harmonisation"]["deep"])
    extracted = pd.read_parquet(tmp_path / "work" / "deep.parquet").set_index("subject_id")
    fit = estimate_centre(model, extracted.loc[z])
    assert fit.subjects == 3 and np.all(np.isfinite(fit.gamma)) and np.all(fit.delta > 0)


def test_an_unreadable_image_stops_naming_row_and_file_or_is_excluded(mini_run, tmp_path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"this is not an image")
    rows = mini_run.sheet_rows(mini_run.external()).reset_index(drop=True).iloc[:3]
    rows.loc[2, "image"] = str(broken)
    sid = rows.loc[2, "subject_id"]
    sheet = mini_run.write_sheet(rows)
    with pytest.raises(QCFailure, match=rf"new.tsv, row 3 \(subject_id {sid}\): .*broken.nii.gz"
                       r"(.|\n)*allow_exclusions is false"):  # fmt: skip
        _predict(mini_run, sheet, tmp_path)
    table = _predict(mini_run, sheet, tmp_path, allow_exclusions=True).set_index("subject_id")
    assert table["status"].tolist() == ["ok", "ok", "excluded"]
    assert table.loc[sid, "step"] == "ingest" and "broken.nii.gz" in table.loc[sid, "reason"]
    assert table.loc[sid, ["subtype", "rrs", "recurrence_probability"]].isna().all()
    assert table.drop(index=sid)["subtype"].notna().all()
