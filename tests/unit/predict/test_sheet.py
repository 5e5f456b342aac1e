"""The predict sheet: checked like the cohort's sheets, every problem named at once."""

from __future__ import annotations

import pytest

from rdls.errors import InputError
from rdls.predict.sheet import ingest_rows, predict_schema, read_predict_sheet

COVARIATES = ["age", "sex", "cea_ng_ml", "grade_score"]
HEADER = "subject_id\tcentre\timage\tmask\tage\tsex\tcea_ng_ml\tgrade_score\n"


@pytest.fixture
def files(tmp_path):
    for name in ("a.nii.gz", "a_mask.nii.gz", "b.nii.gz", "b_mask.nii.gz"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def _sheet(folder, text):
    path = folder / "new.tsv"
    path.write_text(text)
    return path


def test_a_good_sheet_is_typed_with_defaults(files):
    rows = "N1\tA\ta.nii.gz\ta_mask.nii.gz\t61\tmale\t4.2\t2\n"
    rows += "N2\tB\tb.nii.gz\tb_mask.nii.gz\t70\tfemale\t12\t3\n"
    sheet = _sheet(files, HEADER + rows)
    table = read_predict_sheet(sheet, covariates=COVARIATES, base_dir=files)
    assert table["subject_id"].tolist() == ["N1", "N2"]
    assert table["age"].tolist() == [61.0, 70.0] and table["sex"].tolist() == ["male", "female"]
    assert table["grade_score"].tolist() == [2, 3]  # unknown to the schema: numbers when all are
    assert ingest_rows(table)[1] == {"subject_id": "N2", "image": "b.nii.gz",
                                     "mask": "b_mask.nii.gz", "mask_label": 1}  # fmt: skip


def test_every_problem_is_named_by_row_and_column_at_once(files):
    sheet = _sheet(
        files,
        "subject_id\tcentre\timage\tmask\tage\tsex\tcolour\n"
        "N1\tA\ta.nii.gz\tmissing_mask.nii.gz\t\tmale\tred\n"
        "N2\tB\tb.nii.gz\tb_mask.nii.gz\t70\tother\tblue\n",
    )
    with pytest.raises(InputError) as error:
        read_predict_sheet(sheet, covariates=COVARIATES, base_dir=files)
    message = str(error.value)
    assert message.startswith("5 problem(s) in the predict sheet (config key predict.subjects)")
    assert "new.tsv: covariate column(s) 'cea_ng_ml', 'grade_score' missing." in message
    assert "locked clinical model uses them" in message
    assert "new.tsv: unknown column(s) 'colour'" in message
    assert "new.tsv, row 1 (subject_id N1), column 'age': empty, but required." in message
    assert "new.tsv, row 2 (subject_id N2), column 'sex': 'other' is not one of male, female" in (
        message
    )
    assert "row 1 (subject_id N1), column 'mask': file 'missing_mask.nii.gz' does not exist" in (
        message
    )


def test_covariates_become_required_columns_described_for_the_model():
    schema = predict_schema(["age", "grade_score"])
    assert schema["required"] == ["subject_id", "centre", "image", "mask", "age", "grade_score"]
    assert schema["properties"]["age"]["maximum"] == 120  # as in the subjects sheet
    assert "locked clinical model" in schema["properties"]["grade_score"]["description"]


def test_a_missing_sheet_names_the_config_key(tmp_path):
    with pytest.raises(
        InputError, match=r"predict sheet 'nope.tsv' \(config key predict.subjects\)"
    ):
        read_predict_sheet("nope.tsv", covariates=[], base_dir=tmp_path)
