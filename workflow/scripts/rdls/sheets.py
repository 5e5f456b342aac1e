"""The sample sheets: read, checked against their schemas and against each other.

Every problem is reported at once, each naming the sheet, the row, the column and the fix,
so that a user mends a sheet in one pass. Rows are counted from 1 after the header line
(row 1 is the file's second line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd

from rdls.config import load_schema
from rdls.errors import InputError

SHEET_NAMES = ("subjects", "mri", "slides", "scrna", "bulk")
MODALITY_SHEETS = SHEET_NAMES[1:]
COHORTS_WITHOUT_FOLLOW_UP = ("biological",)
_NUMERIC = ("number", "integer")
_WHAT = {"mri": "series", "slides": "slide", "scrna": "sample", "bulk": "sample"}


@dataclass(frozen=True)
class Cohort:
    """The validated sheets of one cohort, typed, with their sources."""

    subjects: pd.DataFrame
    mri: pd.DataFrame
    slides: pd.DataFrame
    scrna: pd.DataFrame
    bulk: pd.DataFrame
    sources: Mapping[str, str]
    # What was read in a common coding and recoded (e.g. sex 'M' as 'male'), for the console.
    notes: tuple[str, ...] = ()

    def sheet(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def subject_ids(self, cohort: str | None = None) -> list[str]:
        subjects = self.subjects
        if cohort is not None:
            subjects = subjects[subjects["cohort"] == cohort]
        return subjects["subject_id"].tolist()


def read_sheet(path: str | Path, *, name: str) -> pd.DataFrame:
    """Read one tab-separated sheet as text, so that every check sees what the user wrote."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{name} sheet '{path}' does not exist. Create it (config/README.md lists its "
            f"columns) or set the config key sheets.{name} to its path."
        )
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, comment=None, skip_blank_lines=True
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as error:
        # OSError: a .gz (or .zip, .bz2) name on a file that is not compressed that way.
        raise InputError(
            f"{path}: not a readable tab-separated sheet ({error}). Save it as TSV with one "
            "header line and one row per item."
        ) from None
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path}: the file is empty; it needs at least the header line "
            "(config/README.md lists the columns)."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def read_subjects(path: str | Path, *, covariates: list[str] = ()) -> pd.DataFrame:
    """The subjects sheet alone, checked and typed as at start (numbers as numbers).

    For rules that need the clinical data: the sheet was validated at parse time, but it is
    checked again here because a rule reads the file as it is when the job runs. Covariates
    the schema does not know become numbers when every filled cell is one, and text
    otherwise; empty cells become missing values.
    """
    problems: list[str] = []
    sheet = _SheetChecker("subjects", str(path), load_schema("sheets/subjects"), covariates)
    typed = sheet.check(read_sheet(path, name="subjects"), problems)
    _check_follow_up(typed, str(path), problems)
    _check_covariates(typed, str(path), covariates, problems)
    if problems:
        raise InputError(
            f"{len(problems)} problem(s) in the subjects sheet:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return typed_covariates(typed, covariates)


def typed_covariates(typed: pd.DataFrame, covariates) -> pd.DataFrame:
    """Empty cells as missing values; a covariate whose filled cells are all numbers, numeric."""
    typed = typed.replace("", None).infer_objects()
    for column in covariates:
        if column in typed and typed[column].dtype == object:
            numbers = pd.to_numeric(typed[column], errors="coerce")
            if numbers.notna().sum() == typed[column].notna().sum():
                typed[column] = numbers
    return typed


def load_cohort(
    paths: Mapping[str, str],
    *,
    covariates: list[str] = (),
    bulk_counts: str | None = None,
    check_files: bool = True,
    base_dir: str | Path = ".",
) -> Cohort:
    """Read and check the five sheets named in ``paths`` (sheet name -> TSV path)."""
    frames = {name: read_sheet(paths[name], name=name) for name in SHEET_NAMES}
    return validate_cohort(
        frames,
        sources={name: str(paths[name]) for name in SHEET_NAMES},
        covariates=covariates,
        bulk_counts=bulk_counts,
        check_files=check_files,
        base_dir=base_dir,
    )


def validate_cohort(
    frames: Mapping[str, pd.DataFrame],
    *,
    sources: Mapping[str, str],
    covariates: list[str] = (),
    bulk_counts: str | None = None,
    check_files: bool = True,
    base_dir: str | Path = ".",
) -> Cohort:
    """Check the sheets one by one and against each other; return them typed.

    Parameters
    ----------
    frames
        Sheet name -> the sheet as read by :func:`read_sheet` (all text).
    sources
        Sheet name -> the file it came from, used in messages.
    covariates
        Columns of the subjects sheet that the config names as clinical covariates.
    bulk_counts
        The bulk RNA-seq count matrix (config key sheets.bulk_counts), needed when the bulk
        sheet has rows.
    check_files
        Check that every path in the sheets exists. Off for the demo cohort, whose files
        the workflow itself generates.
    base_dir
        Folder that relative paths are read from (Snakemake's working directory).

    Raises
    ------
    InputError
        Listing every problem found, each naming sheet, row, column and fix.
    """
    problems: list[str] = []
    notes: list[str] = []
    typed = {}
    for name in SHEET_NAMES:
        extra = covariates if name == "subjects" else ()
        sheet = _SheetChecker(name, sources[name], load_schema(f"sheets/{name}"), extra)
        typed[name] = sheet.check(frames[name].copy(), problems)
        notes += sheet.notes
        if check_files:
            sheet.check_files(typed[name], Path(base_dir), problems)

    subjects = typed["subjects"]
    if "subject_id" in subjects and not problems and subjects.empty:
        problems.append(
            f"{sources['subjects']}: no subjects. Add one row per subject below the header."
        )
    _check_follow_up(subjects, sources["subjects"], problems)
    _check_covariates(subjects, sources["subjects"], covariates, problems)
    known = set(subjects.get("subject_id", []))
    for name in MODALITY_SHEETS:
        _check_known_subjects(typed[name], name, sources, known, problems)
    _check_scrna_formats(typed["scrna"], sources["scrna"], Path(base_dir), check_files, problems)
    counts_needed = check_files and len(typed["bulk"]) and bulk_counts is not None
    if counts_needed and not (Path(base_dir) / bulk_counts).is_file():
        problems.append(
            f"config key sheets.bulk_counts: count matrix '{bulk_counts}' does not exist, "
            f"but {sources['bulk']} lists {len(typed['bulk'])} sample(s). Set the key to "
            "the matrix's path, or empty the bulk sheet to leave bulk RNA-seq out."
        )

    if problems:
        raise InputError(
            f"{len(problems)} problem(s) in the sample sheets:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return Cohort(**typed, sources=dict(sources), notes=tuple(notes))


class _SheetChecker:
    """Schema checks of one sheet, row by row.

    ``extra_columns`` are columns the config allows beyond the schema's (the clinical
    covariates of the subjects sheet); they are kept as text.
    """

    def __init__(self, name: str, source: str, schema: dict, extra_columns=()) -> None:
        self.name = name
        self.source = source
        self.key = schema["x-key"]
        self.columns = dict(schema["properties"])
        for column in extra_columns:
            self.columns.setdefault(
                column, {"type": "string", "description": "A covariate named in the config."}
            )
        self.schema = {**schema, "properties": self.columns}
        self.validator = jsonschema.Draft7Validator(self.schema)
        self.notes: list[str] = []

    def where(self, frame: pd.DataFrame, row: int) -> str:
        label = f"{self.source}, row {row + 1}"
        if self.key in frame.columns and frame[self.key].iloc[row]:
            label += f" ({self.key} {frame[self.key].iloc[row]})"
        return label

    def check(self, frame: pd.DataFrame, problems: list[str]) -> pd.DataFrame:
        needed = self.schema["required"] + self.schema.get("x-required-columns", [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            problems.append(
                f"{self.source}: required column(s) {', '.join(repr(c) for c in missing)} "
                f"missing (found: {', '.join(frame.columns) or 'none'}). Add them to the "
                "header line; config/README.md describes each column."
            )
            return frame
        unknown = [c for c in frame.columns if c not in self.columns]
        if unknown:
            hint = (
                ", or name it under the config key clinical.covariates to use it as a covariate"
                if self.name == "subjects"
                else ""
            )
            problems.append(
                f"{self.source}: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
                f"known columns: {', '.join(self.columns)}. Fix the spelling, or remove the "
                f"column{hint}."
            )
            frame = frame.drop(columns=unknown)
        frame = frame.reset_index(drop=True)
        for column, spec in self.columns.items():
            if column not in frame.columns and "default" in spec:
                frame[column] = str(spec["default"])
        frame = self._recode(frame)
        # The same problem in many rows (a coding the schema does not know, say) is one line.
        found: dict[tuple[str, str], list[int]] = {}
        for row in range(len(frame)):
            record = self._typed_record(frame, row, found)
            for error in self.validator.iter_errors(record):
                found.setdefault(self._describe(error), []).append(row)
        problems += [self._grouped(frame, rows, *problem) for problem, rows in found.items()]
        self._check_duplicates(frame, problems)
        return self._typed_frame(frame)

    def _recode(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Read an enum column's common codings as its values, and note it.

        A value that differs from an allowed one only in case, or that the schema lists under
        ``x-codings`` (sex 'M' and 'F', say), is replaced by the allowed value.
        """
        for column, spec in self.columns.items():
            if column not in frame.columns or "enum" not in spec or spec.get("type") != "string":
                continue
            codings = {str(v).lower(): str(v) for v in spec["enum"]}
            codings.update({str(k).lower(): str(v) for k, v in spec.get("x-codings", {}).items()})
            original = frame[column]
            recoded = original.str.strip().str.lower().map(codings).fillna(original)
            changed = recoded != original
            if changed.any():
                pairs = (
                    pd.DataFrame({"from": original[changed], "to": recoded[changed]})
                    .value_counts(sort=False)
                    .items()
                )
                read = ", ".join(f"'{a}' as '{b}' ({n} row{'s' * (n > 1)})" for (a, b), n in pairs)
                self.notes.append(f"{self.source}, column '{column}': read {read}.")
                frame[column] = recoded
        return frame

    def _grouped(self, frame: pd.DataFrame, rows: list[int], column: str, text: str) -> str:
        if len(rows) == 1:
            return f"{self.where(frame, rows[0])}, column '{column}': {text}"
        first = "; ".join(
            self.where(frame, row).removeprefix(f"{self.source}, ") for row in rows[:3]
        )
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return f"{self.source}, {len(rows)} rows ({first}{more}), column '{column}': {text}"

    def _typed_record(self, frame: pd.DataFrame, row: int, found: dict) -> dict:
        record = {}
        for column in frame.columns:
            text = frame[column].iloc[row]
            if text == "":
                continue  # empty means missing: "required" reports it where it matters
            kind = self.columns.get(column, {}).get("type")
            if kind in _NUMERIC:
                value = _parse_number(text, integer=kind == "integer")
                if value is None:
                    what = "an integer" if kind == "integer" else "a number"
                    problem = (column, f"'{text}' is not {what}. {self._fix(column)}")
                    found.setdefault(problem, []).append(row)
                    continue
                record[column] = value
            else:
                record[column] = text
        return record

    def _describe(self, error) -> tuple[str, str]:
        """The column and the problem with its fix, without the row."""
        if error.validator == "required":
            column = error.message.split("'")[1]
            return column, f"empty, but required. {self._fix(column)}"
        column = error.path[0] if error.path else "?"
        value = error.instance
        if error.validator == "enum":
            allowed = ", ".join(str(v) for v in error.validator_value)
            what = f"'{value}' is not one of {allowed}"
        elif error.validator in ("minimum", "exclusiveMinimum"):
            bound = "at least" if error.validator == "minimum" else "above"
            what = f"{value} is out of range; it must be {bound} {error.validator_value}"
        elif error.validator == "maximum":
            what = f"{value} is out of range; it must be at most {error.validator_value}"
        elif error.validator == "pattern":
            what = (
                f"'{value}' may hold only letters, digits, '_', '.' and '-', and must start "
                "with a letter or digit (it names files)"
            )
        else:
            what = error.message
        return column, f"{what}. {self._fix(column)}"

    def _fix(self, column: str) -> str:
        description = " ".join(self.columns.get(column, {}).get("description", "").split())
        return f"Expected: {description}" if description else "Correct the value."

    def _check_duplicates(self, frame: pd.DataFrame, problems: list[str]) -> None:
        keys = frame[self.key]
        first_row = {}
        for row, key in enumerate(keys):
            if key == "":
                continue
            if key in first_row:
                problems.append(
                    f"{self.where(frame, row)}, column '{self.key}': duplicate {self.key} "
                    f"'{key}', first in row {first_row[key] + 1}. Give each "
                    f"{self.key.removesuffix('_id')} one row, or rename one of them."
                )
            else:
                first_row[key] = row

    def _typed_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        for column, spec in self.columns.items():
            if column not in frame.columns or spec.get("type") not in _NUMERIC:
                continue
            numbers = pd.to_numeric(frame[column].replace("", None), errors="coerce")
            if spec["type"] == "integer":
                # Fractions were reported as problems already; here they only must not crash.
                numbers = numbers.where(numbers % 1 == 0).astype("Int64")
            frame[column] = numbers
        return frame

    def check_files(self, frame: pd.DataFrame, base_dir: Path, problems: list[str]) -> None:
        path_columns = [c for c, spec in self.columns.items() if spec.get("x-path")]
        what = _WHAT.get(self.name, "item")
        for column in path_columns:
            if column not in frame.columns:
                continue
            for row, value in enumerate(frame[column]):
                if value and not (base_dir / value).exists():
                    problems.append(
                        f"{self.where(frame, row)}, column '{column}': file '{value}' does not "
                        f"exist. Fix the path, or remove the row to leave this {what} out."
                    )


def _parse_number(text: str, *, integer: bool) -> float | int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return value


def _check_follow_up(subjects: pd.DataFrame, source: str, problems: list[str]) -> None:
    """Follow-up may be empty only in cohorts that are not analysed for survival."""
    needed = {"subject_id", "cohort", "rfs_months", "rfs_event"}
    if not needed <= set(subjects.columns):
        return
    for row, subject in subjects.iterrows():
        months_missing = pd.isna(subject["rfs_months"])
        event_missing = pd.isna(subject["rfs_event"])
        where = f"{source}, row {row + 1} (subject_id {subject['subject_id']})"
        if subject["cohort"] in COHORTS_WITHOUT_FOLLOW_UP:
            if months_missing != event_missing:
                column = "rfs_event" if event_missing else "rfs_months"
                problems.append(
                    f"{where}, column '{column}': empty while the other follow-up column is "
                    "filled. Give both rfs_months and rfs_event, or leave both empty."
                )
            continue
        for column, missing in (("rfs_months", months_missing), ("rfs_event", event_missing)):
            if missing and subject["cohort"] != "":
                problems.append(
                    f"{where}, column '{column}': missing follow-up in the "
                    f"{subject['cohort']} cohort, which is analysed for survival. Fill in "
                    "recurrence-free survival (months, and 1 for an event or 0 for "
                    "censored), or move the subject to the biological cohort."
                )


def _check_covariates(
    subjects: pd.DataFrame, source: str, covariates: list[str], problems: list[str]
) -> None:
    absent = [c for c in covariates if c not in subjects.columns]
    if absent:
        problems.append(
            f"{source}: the covariate column(s) {', '.join(repr(c) for c in absent)} named by "
            "the config key clinical.covariates are not in the sheet. Add the column(s) or "
            "remove them from clinical.covariates."
        )


def _check_known_subjects(
    frame: pd.DataFrame,
    name: str,
    sources: Mapping[str, str],
    known: set[str],
    problems: list[str],
) -> None:
    if "subject_id" not in frame.columns:
        return
    key = load_schema(f"sheets/{name}")["x-key"]
    for row, subject_id in enumerate(frame["subject_id"]):
        if subject_id and subject_id not in known:
            label = f"{sources[name]}, row {row + 1}"
            if key != "subject_id":
                label += f" ({key} {frame[key].iloc[row]})"
            problems.append(
                f"{label}, column 'subject_id': subject '{subject_id}' is not in "
                f"{sources['subjects']}. Add the subject there, or correct the ID."
            )


def _check_scrna_formats(
    scrna: pd.DataFrame, source: str, base_dir: Path, check_files: bool, problems: list[str]
) -> None:
    """A 10x mtx sample is a folder, the other formats are files."""
    if not check_files or not {"path", "format", "sample_id"} <= set(scrna.columns):
        return
    for row, sample in scrna.iterrows():
        path = base_dir / sample["path"]
        if not path.exists():
            continue  # reported as missing already
        wants_folder = sample["format"] == "10x_mtx"
        if wants_folder != path.is_dir():
            kind = "a folder" if wants_folder else "a file"
            problems.append(
                f"{source}, row {row + 1} (sample_id {sample['sample_id']}), column 'path': "
                f"format {sample['format']} needs {kind}, but '{sample['path']}' is not. "
                "Correct the format column or the path."
            )
