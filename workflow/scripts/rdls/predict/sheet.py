"""The sheet of new subjects to score: read and checked like the cohort's sheets.

Light on purpose: the workflow calls :func:`read_predict_sheet` at parse time, so that a
missing covariate, a misspelt column or a missing image stops the run before any job starts,
with every problem named by sheet, row and column; the scoring job checks the sheet again as
it is when the job runs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from rdls.config import load_schema
from rdls.errors import InputError
from rdls.sheets import _SheetChecker, read_sheet, typed_covariates

CONFIG_KEY = "predict.subjects"
_NEEDED_FOR_MODEL = (
    "The locked clinical model uses it (config key clinical.covariates) for the recurrence "
    "probability; fill it in for every subject, or leave the subject out of this sheet."
)


def predict_schema(covariates) -> dict:
    """The predict sheet's schema with a required column per clinical covariate.

    A covariate that the subjects sheet's schema knows (age, sex, t_stage, ...) is checked as
    there (type, levels, range); any other is text, converted to numbers when every cell is
    one, as in the subjects sheet.
    """
    schema = copy.deepcopy(load_schema("sheets/predict"))
    known = load_schema("sheets/subjects")["properties"]
    for column in covariates:
        if column in schema["properties"]:
            continue
        spec = copy.deepcopy(known.get(column, {"type": "string"}))
        description = " ".join(str(spec.get("description", "A clinical covariate.")).split())
        spec["description"] = f"{description} {_NEEDED_FOR_MODEL}"
        schema["properties"][column] = spec
        schema["required"].append(column)
    return schema


def read_predict_sheet(
    path: str | Path,
    *,
    covariates=(),
    check_files: bool = True,
    base_dir: str | Path = ".",
) -> pd.DataFrame:
    """Read and check the sheet of new subjects; return it typed, one row per subject.

    Parameters
    ----------
    path : path
        The sheet (tab-separated): ``subject_id``, ``centre``, ``image``, ``mask``, optional
        ``mask_label``, and one column per covariate.
    covariates : sequence of str
        The clinical covariates of the locked clinical model; each must be a column, filled
        in every row.
    check_files : bool
        Check that every image and mask exists (relative to ``base_dir``).
    base_dir : path
        The folder relative paths are read from (Snakemake's working directory).

    Raises
    ------
    rdls.errors.InputError
        Listing every problem, each naming the sheet, the row (counted from 1 after the
        header line), the column and the fix.
    """
    path = Path(path)
    base_dir = Path(base_dir)
    if not (base_dir / path).is_file():
        raise InputError(
            f"predict sheet '{path}' (config key {CONFIG_KEY}) does not exist. Write one row "
            "per new subject (subject_id, centre, image, mask and the clinical covariates; "
            "workflow/schemas/sheets/predict.schema.yaml describes each column) or fix the "
            "path."
        )
    frame = read_sheet(base_dir / path, name="predict")
    problems: list[str] = []
    covariates = list(covariates)
    absent = [c for c in covariates if c not in frame.columns]
    if absent:
        problems.append(
            f"{path}: covariate column(s) {', '.join(repr(c) for c in absent)} missing. "
            "The locked clinical model uses them (config key clinical.covariates) to predict "
            "the recurrence probability, so it cannot score a subject without them. Add each "
            "column with every subject's value."
        )
    checker = _SheetChecker(
        "predict", str(path), predict_schema([c for c in covariates if c not in absent])
    )
    typed = checker.check(frame, problems)
    if check_files:
        checker.check_files(typed, base_dir, problems)
    if not problems and typed.empty:
        problems.append(f"{path}: no subjects. Add one row per new subject below the header.")
    if problems:
        raise InputError(
            f"{len(problems)} problem(s) in the predict sheet (config key {CONFIG_KEY}):\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return typed_covariates(typed, covariates)


def where(sheet: pd.DataFrame, subject_id: str, source: str | Path) -> str:
    """``"<sheet>, row N (subject_id S)"`` for messages, rows counted from 1 after the header."""
    rows = sheet.index[sheet["subject_id"] == subject_id]
    row = f", row {int(rows[0]) + 1}" if len(rows) else ""
    return f"{source}{row} (subject_id {subject_id})"


def ingest_rows(sheet: pd.DataFrame) -> list[dict]:
    """The sheet's rows as the imaging ingest step takes them."""
    return [
        {
            "subject_id": str(row.subject_id),
            "image": str(row.image),
            "mask": str(row.mask),
            "mask_label": int(row.mask_label),
        }
        for row in sheet.itertuples()
    ]


def image_files(sheet: pd.DataFrame) -> dict[str, list[str]]:
    """Images and masks of the sheet: inputs of the scoring job, so that a change reruns it."""
    return {"images": sheet["image"].tolist(), "masks": sheet["mask"].tolist()}
