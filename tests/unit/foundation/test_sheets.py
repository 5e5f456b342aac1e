"""Sheets are checked at parse time; each bad case names sheet, row, column and fix."""

import re

import pandas as pd
import pytest

from rdls.config import load_schema
from rdls.errors import InputError
from rdls.sheets import SHEET_NAMES, load_cohort, read_sheet, read_subjects

SUBJECTS = """\
subject_id\tcohort\tcentre\tage\tsex\tt_stage\tn_stage\tcea_ng_ml\trfs_months\trfs_event
P1\ttraining\tA\t61\tmale\tT3\tN1\t3.2\t40.5\t1
P2\ttraining\tA\t70\tfemale\tT2\tN0\t1.1\t80\t0
P3\texternal_validation\tC\t55\tmale\tT4\tN2\t12\t12.25\t1
P4\tbiological\tD\t66\tfemale\tT3\tN0\t2.5\t\t
"""
MRI = """\
subject_id\timage\tmask
P1\tdata/P1.nii.gz\tdata/P1_mask.nii.gz
P2\tdata/P2_dicom\tdata/P2_mask.nii.gz
P3\tdata/P3.nrrd\tdata/P3_mask.nrrd
"""
SLIDES = """\
slide_id\tsubject_id\tpath\tmpp
H1\tP4\tdata/H1.svs\t
H2\tP4\tdata/H2.svs\t0.25
"""
SCRNA = """\
sample_id\tsubject_id\tpath\tformat
SC1\tP4\tdata/SC1.h5\t10x_h5
SC2\tP4\tdata/SC2_mtx\t10x_mtx
"""
BULK = """\
sample_id\tsubject_id\tbatch
B1\tP4\tb1
B2\tP3\tb1
"""
FILES = ["P1.nii.gz", "P1_mask.nii.gz", "P2_mask.nii.gz", "P3.nrrd", "P3_mask.nrrd",
         "H1.svs", "H2.svs", "SC1.h5", "counts.tsv"]  # fmt: skip
FOLDERS = ["P2_dicom", "SC2_mtx"]


@pytest.fixture
def cohort_dir(tmp_path, monkeypatch):
    """A small valid cohort: five sheets and the files they name, in the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for name in FILES:
        (tmp_path / "data" / name).write_text("x")
    for name in FOLDERS:
        (tmp_path / "data" / name).mkdir()
    for name, text in zip(SHEET_NAMES, [SUBJECTS, MRI, SLIDES, SCRNA, BULK], strict=True):
        (tmp_path / f"{name}.tsv").write_text(text)
    return tmp_path


def paths():
    return {name: f"{name}.tsv" for name in SHEET_NAMES}


def load(**kwargs):
    kwargs.setdefault("covariates", ["age", "t_stage"])
    kwargs.setdefault("bulk_counts", "data/counts.tsv")
    return load_cohort(paths(), **kwargs)


def read(sheet):
    with open(f"{sheet}.tsv") as handle:
        return handle.read()


def edit(sheet, old, new):
    """Replace text in one sheet of the cohort in the working directory."""
    text = read(sheet)
    assert old in text, f"{old!r} not in {sheet}.tsv"
    with open(f"{sheet}.tsv", "w") as handle:
        handle.write(text.replace(old, new, 1))


def problems_of(**kwargs) -> str:
    with pytest.raises(InputError) as error:
        load(**kwargs)
    return str(error.value)


def test_valid_cohort_loads_with_types(cohort_dir):
    cohort = load()
    assert cohort.subject_ids() == ["P1", "P2", "P3", "P4"]
    assert cohort.subject_ids("training") == ["P1", "P2"]
    assert cohort.subjects["rfs_months"].tolist()[:3] == [40.5, 80.0, 12.25]
    assert str(cohort.subjects["rfs_event"].dtype) == "Int64"
    assert pd.isna(cohort.subjects.loc[3, "rfs_months"])  # biological: no follow-up needed
    assert cohort.mri["mask_label"].tolist() == [1, 1, 1]  # default from the schema
    assert cohort.slides["mpp"].tolist()[1] == 0.25


def test_duplicate_subject_names_both_rows(cohort_dir):
    edit("subjects", "P2\ttraining", "P1\ttraining")
    assert (
        "subjects.tsv, row 2 (subject_id P1), column 'subject_id': duplicate subject_id 'P1', "
        "first in row 1. Give each subject one row, or rename one of them." in problems_of()
    )


def test_duplicate_slide_id(cohort_dir):
    edit("slides", "H2\tP4", "H1\tP4")
    assert "slides.tsv, row 2 (slide_id H1), column 'slide_id': duplicate slide_id 'H1'" in (
        problems_of()
    )


def test_two_mri_rows_for_one_subject(cohort_dir):
    edit("mri", "P2\tdata/P2_dicom", "P1\tdata/P2_dicom")
    assert "mri.tsv, row 2 (subject_id P1), column 'subject_id': duplicate subject_id" in (
        problems_of()
    )


def test_modality_row_of_an_unknown_subject(cohort_dir):
    edit("slides", "H2\tP4", "H2\tP9")
    assert (
        "slides.tsv, row 2 (slide_id H2), column 'subject_id': subject 'P9' is not in "
        "subjects.tsv. Add the subject there, or correct the ID." in problems_of()
    )


@pytest.mark.parametrize("sheet", ["mri", "scrna", "bulk"])
def test_unknown_subject_in_every_modality_sheet(cohort_dir, sheet):
    first_row = read(sheet).splitlines()[1].split("\t")
    subject = first_row[0] if sheet == "mri" else first_row[1]
    edit(sheet, f"{subject}\t", "NOBODY\t")
    assert f"{sheet}.tsv, row 1" in problems_of()
    assert "subject 'NOBODY' is not in subjects.tsv" in problems_of()


def test_missing_file_message_follows_the_style_guide(cohort_dir):
    (cohort_dir / "data" / "H2.svs").unlink()
    assert (
        "slides.tsv, row 2 (slide_id H2), column 'path': file 'data/H2.svs' does not exist. "
        "Fix the path, or remove the row to leave this slide out." in problems_of()
    )


def test_missing_mask_and_dicom_folder(cohort_dir):
    (cohort_dir / "data" / "P1_mask.nii.gz").unlink()
    (cohort_dir / "data" / "P2_dicom").rmdir()
    message = problems_of()
    assert "mri.tsv, row 1 (subject_id P1), column 'mask': file 'data/P1_mask.nii.gz'" in message
    assert "mri.tsv, row 2 (subject_id P2), column 'image': file 'data/P2_dicom'" in message
    assert "leave this series out" in message


def test_files_are_not_checked_when_the_workflow_makes_them(cohort_dir):
    (cohort_dir / "data" / "H2.svs").unlink()
    assert load(check_files=False).slides["slide_id"].tolist() == ["H1", "H2"]


def test_unknown_cohort_lists_the_allowed_ones(cohort_dir):
    edit("subjects", "P3\texternal_validation", "P3\tvalidation")
    assert (
        "subjects.tsv, row 3 (subject_id P3), column 'cohort': 'validation' is not one of "
        "training, internal_validation, external_validation, biological." in problems_of()
    )


def test_negative_follow_up(cohort_dir):
    edit("subjects", "40.5\t1", "-3\t1")
    assert (
        "subjects.tsv, row 1 (subject_id P1), column 'rfs_months': -3.0 is out of range; it "
        "must be at least 0. Expected: Recurrence-free survival time in months" in problems_of()
    )


def test_missing_follow_up_in_a_survival_cohort(cohort_dir):
    edit("subjects", "80\t0", "\t")
    message = problems_of()
    for column in ("rfs_months", "rfs_event"):
        assert (
            f"subjects.tsv, row 2 (subject_id P2), column '{column}': missing follow-up in the "
            "training cohort, which is analysed for survival." in message
        )
    assert "or move the subject to the biological cohort" in message


def test_half_filled_follow_up_in_the_biological_cohort(cohort_dir):
    edit("subjects", "2.5\t\t", "2.5\t33\t")
    assert (
        "row 4 (subject_id P4), column 'rfs_event': empty while the other follow-up column is "
        "filled" in problems_of()
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [("2", "'rfs_event': '2' is not one of 0, 1."),
     ("yes", "'rfs_event': 'yes' is not an integer."),
     ("0.5", "'rfs_event': '0.5' is not an integer.")],
)  # fmt: skip
def test_event_must_be_0_or_1(cohort_dir, event, expected):
    edit("subjects", "40.5\t1", f"40.5\t{event}")
    assert expected in problems_of()


def test_non_numeric_follow_up(cohort_dir):
    edit("subjects", "40.5\t1", "about 40\t1")
    assert "column 'rfs_months': 'about 40' is not a number." in problems_of()


def test_missing_required_column(cohort_dir):
    edit("subjects", "rfs_event", "recurrence")
    message = problems_of()
    assert "subjects.tsv: required column(s) 'rfs_event' missing" in message
    assert "Add them to the header line" in message


def test_missing_sheet_names_the_config_key(cohort_dir):
    (cohort_dir / "bulk.tsv").unlink()
    message = problems_of()
    assert "bulk sheet 'bulk.tsv' does not exist" in message
    assert "set the config key sheets.bulk to its path" in message


def test_empty_sheet_file(cohort_dir):
    (cohort_dir / "scrna.tsv").write_text("")
    assert "scrna.tsv: the file is empty; it needs at least the header line" in problems_of()


def test_header_only_modality_sheet_means_no_items(cohort_dir):
    (cohort_dir / "slides.tsv").write_text("slide_id\tsubject_id\tpath\n")
    assert load().slides.empty


def test_no_subjects(cohort_dir):
    (cohort_dir / "subjects.tsv").write_text(SUBJECTS.splitlines()[0] + "\n")
    for name in ("mri", "slides", "scrna", "bulk"):
        (cohort_dir / f"{name}.tsv").write_text(read(name).splitlines()[0])
    assert "subjects.tsv: no subjects. Add one row per subject below the header." in (problems_of())


def test_identifier_with_characters_that_break_file_names(cohort_dir):
    edit("slides", "H2\tP4", "H 2/x\tP4")
    assert re.search(r"row 2 \(slide_id H 2/x\), column 'slide_id': 'H 2/x' may hold only", (
        problems_of()))  # fmt: skip


def test_covariate_named_in_the_config_must_exist(cohort_dir):
    message = problems_of(covariates=["age", "msi_status"])
    assert "the covariate column(s) 'msi_status' named by the config key clinical.covariates" in (
        message
    )


def test_bulk_samples_need_the_count_matrix(cohort_dir):
    message = problems_of(bulk_counts="data/missing_counts.tsv")
    expected = "config key sheets.bulk_counts: count matrix 'data/missing_counts.tsv' does not"
    assert expected in message


def test_scrna_format_must_match_file_or_folder(cohort_dir):
    edit("scrna", "data/SC1.h5\t10x_h5", "data/SC1.h5\t10x_mtx")
    assert (
        "scrna.tsv, row 1 (sample_id SC1), column 'path': format 10x_mtx needs a folder, but "
        "'data/SC1.h5' is not." in problems_of()
    )


def test_unknown_scrna_format(cohort_dir):
    edit("scrna", "\t10x_h5", "\tloom")
    assert "column 'format': 'loom' is not one of 10x_h5, 10x_mtx, h5ad." in problems_of()


def test_every_problem_is_reported_in_one_message(cohort_dir):
    edit("subjects", "P3\texternal_validation", "P3\tvalidation")
    edit("slides", "H2\tP4", "H2\tP9")
    (cohort_dir / "data" / "SC1.h5").unlink()
    assert problems_of().startswith("3 problem(s) in the sample sheets:")


def test_extra_columns_are_kept(cohort_dir):
    text = read("subjects").splitlines()
    rows = [text[0] + "\tmsi_status"] + [line + "\tMSS" for line in text[1:]]
    (cohort_dir / "subjects.tsv").write_text("\n".join(rows) + "\n")
    assert load(covariates=["msi_status"]).subjects["msi_status"].tolist() == ["MSS"] * 4


def test_misspelt_optional_column_is_refused_not_ignored(cohort_dir):
    edit("subjects", "\tt_stage\t", "\tt_satge\t")
    message = problems_of(covariates=["age"])
    assert "subjects.tsv: unknown column(s) 't_satge'; known columns: subject_id, cohort" in (
        message
    )
    assert "or name it under the config key clinical.covariates" in message


def test_unknown_column_of_a_modality_sheet(cohort_dir):
    edit("slides", "\tmpp\n", "\tmicrons\n")
    message = problems_of()
    assert "slides.tsv: unknown column(s) 'microns'; known columns: slide_id, subject_id, path" in (
        message
    )
    assert "clinical.covariates" not in message


def test_every_sheet_schema_is_closed_and_described():
    for name in SHEET_NAMES:
        schema = load_schema(f"sheets/{name}")
        assert schema["additionalProperties"] is False
        assert schema["x-key"] in schema["required"]
        for column, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{column} has no description"


def test_read_sheet_keeps_text_as_written(cohort_dir):
    frame = read_sheet("subjects.tsv", name="subjects")
    assert frame.loc[0, "cea_ng_ml"] == "3.2"
    assert frame.loc[3, "rfs_months"] == ""


def test_read_subjects_types_numbers_and_numeric_covariates(cohort_dir):
    edit("subjects", "rfs_event\n", "rfs_event\tpsa\tgrade\n")
    for sid, extra in [("P1", "4.1\tG1"), ("P2", "\tG2"), ("P3", "7\t"), ("P4", "0.5\tG1")]:
        text = read("subjects").splitlines()
        text = [line + "\t" + extra if line.startswith(sid + "\t") else line for line in text]
        (cohort_dir / "subjects.tsv").write_text("\n".join(text) + "\n")
    subjects = read_subjects("subjects.tsv", covariates=["age", "psa", "grade"])
    assert subjects["psa"].tolist()[:1] == [4.1] and pd.isna(subjects["psa"].iloc[1])
    assert subjects["grade"].tolist() == ["G1", "G2", None, "G1"]
    assert subjects["age"].tolist() == [61, 70, 55, 66]
    assert pd.isna(subjects["rfs_months"].iloc[3])


def test_read_subjects_checks_the_sheet_again(cohort_dir):
    edit("subjects", "P2\ttraining\tA\t70", "P2\ttraining\tA\tseventy")
    with pytest.raises(InputError, match=r"subjects.tsv, row 2 \(subject_id P2\), column 'age'"):
        read_subjects("subjects.tsv")


def test_common_codings_of_sex_and_case_are_read_and_noted(cohort_dir):
    edit("subjects", "61\tmale", "61\tM")
    edit("subjects", "70\tfemale", "70\tFemale")
    edit("subjects", "55\tmale\tT4", "55\tm\tt4")

    cohort = load()

    assert cohort.subjects["sex"].tolist() == ["male", "female", "male", "female"]
    assert cohort.subjects["t_stage"].tolist() == ["T3", "T2", "T4", "T3"]
    assert (
        "subjects.tsv, column 'sex': read 'Female' as 'female' (1 row), 'M' as 'male' (1 row), "
        "'m' as 'male' (1 row)." in cohort.notes
    )
    assert "subjects.tsv, column 't_stage': read 't4' as 'T4' (1 row)." in cohort.notes
    # The rules that read the sheet again when they run see the same values.
    assert read_subjects("subjects.tsv")["sex"].tolist() == cohort.subjects["sex"].tolist()


def test_a_valid_sheet_has_no_notes(cohort_dir):
    assert load().notes == ()


def test_the_same_problem_in_many_rows_is_one_line_with_the_count_and_the_first_rows(cohort_dir):
    header, *rows = SUBJECTS.splitlines()
    row = rows[0].replace("\tmale\t", "\tX\t")
    many = [row.replace("P1\t", f"Q{i}\t", 1) for i in range(300)]
    (cohort_dir / "subjects.tsv").write_text("\n".join([header, *many, *rows[1:]]) + "\n")
    for sheet in ("mri", "slides", "scrna", "bulk"):
        header_only = read(sheet).splitlines()[0]
        (cohort_dir / f"{sheet}.tsv").write_text(header_only + "\n")

    message = problems_of()

    assert message.startswith("1 problem(s) in the sample sheets:")
    assert (
        "subjects.tsv, 300 rows (row 1 (subject_id Q0); row 2 (subject_id Q1); row 3 "
        "(subject_id Q2) and 297 more), column 'sex': 'X' is not one of male, female. "
        "Expected: Sex" in message
    )
