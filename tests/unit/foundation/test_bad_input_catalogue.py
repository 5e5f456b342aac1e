"""The bad-input catalogue: what every branch does with each kind of bad input.

Each case in ``CATALOGUE`` feeds one bad input to the entry point that reads it in the
workflow, and expects one of four outcomes:

error
    Refused with :class:`rdls.errors.InputError`, whose message names the file, row or
    column and says what to do. Sheets and config are refused at parse time, before any job.
excluded
    A QC exclusion (``qc.allow_exclusions`` true) with its reason, while the good item that
    goes through the same call (a second subject, slide or sample) is still processed.
filtered
    The bad part (cells, genes, a subject's missing covariate) is left out, counted and
    logged, and the rest is processed.
accepted
    Handled as documented (a fallback, a renaming), and the item is processed.

``docs/bad_inputs.md`` lists the same cases; its excerpts are checked against the messages
the cases give, so the table cannot drift from the code.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import SimpleITK as sitk
import tifffile
from PIL import Image

from rdls.bulk.counts import filter_low_counts
from rdls.bulk.counts import read_counts as read_bulk_counts
from rdls.config import validate_config
from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import item_rng
from rdls.demo._slides import write_slide
from rdls.errors import InputError
from rdls.imaging.steps import ingest_shard
from rdls.predict.sheet import read_predict_sheet
from rdls.scrna.integrate import normalise, pool_samples
from rdls.scrna.steps import qc_step, read_qc_samples
from rdls.sheets import SHEET_NAMES, load_cohort, read_sheet
from rdls.survival.cox import fit_cox, make_design
from rdls.wsi.steps import quantify_step, summary_step, tissue_step
from tests.unit.foundation.test_sheets import BULK, FILES, FOLDERS, MRI, SCRNA, SLIDES, SUBJECTS
from tests.unit.imaging.test_ingest import IDENTITY, _box, _demo, _image, _pair, _t2

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs" / "bad_inputs.md"
OUTCOMES = ("error", "excluded", "filtered", "accepted")


@dataclass(frozen=True)
class Outcome:
    """What one call made of the bad input.

    ``kind`` is "error", "excluded" or "processed"; ``message`` the error, the exclusion
    reason, or what was logged; ``kept`` the items of the same call that went through.
    """

    kind: str
    message: str
    kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """One bad input: ``expected`` fragments must all be in the message ({tmp}: tmp_path)."""

    id: str
    branch: str
    input: str
    outcome: str
    run: Callable[[Context], Outcome]
    expected: tuple[str, ...]
    kept: tuple[str, ...] = ()


class Shared:
    """Good items that several cases process beside their bad one, built once on first use."""

    def __init__(self, folder: Path):
        self.folder = folder

    @cached_property
    def wsi_settings(self) -> dict:
        return validate_config({})["wsi"]

    @cached_property
    def good_slide(self) -> dict[str, Path]:
        """Slide H01 (the tiny demo's size), through tissue and quantification."""
        folder = self.folder / "wsi"
        folder.mkdir()
        path = folder / "H01.tiff"
        write_slide(out_path=path, subtype="RDLS2", mpp=0.5, size_px=(2048, 1536),
                    rng=np.random.default_rng(0))  # fmt: skip
        return {"path": path, **_slide_steps(folder, "H01", path, None, self.wsi_settings)}

    @cached_property
    def good_sample(self) -> Path:
        """scRNA sample SC01 after QC: 80 cells that all pass."""
        folder = self.folder / "scrna"
        folder.mkdir()
        path = _write_h5ad(folder / "SC01.h5ad", _counts())
        return _qc(folder, "SC01", path, "h5ad")["h5ad"]


@dataclass
class Context:
    """What a case runs in: its own folder, the shared good items, pytest's helpers."""

    tmp: Path
    shared: Shared
    monkeypatch: pytest.MonkeyPatch
    caplog: pytest.LogCaptureFixture

    def logged(self) -> str:
        return "\n".join(self.caplog.messages)


# --- imaging: subject P02 is bad, P01 goes through the same ingest_shard call ---------------


def _ingest_beside_a_good_subject(ctx: Context, bad: Callable[[Path], tuple]) -> Outcome:
    good_image, good_mask = _pair(_folder(ctx.tmp / "good"))
    image, mask = bad(_folder(ctx.tmp / "bad"))
    subjects = [
        {"subject_id": "P01", "image": str(good_image), "mask": str(good_mask), "mask_label": 1},
        {"subject_id": "P02", "image": str(image), "mask": str(mask), "mask_label": 1},
    ]
    table = ingest_shard(subjects=subjects, out_dir=ctx.tmp / "ingested",
                         out_table=ctx.tmp / "ingested.tsv", settings={},
                         allow_exclusions=True)  # fmt: skip
    status = table.set_index("subject_id")
    kept = tuple(
        sid
        for sid in status.index[status["status"] == "ok"]
        if (ctx.tmp / "ingested" / f"{sid}_image.nii.gz").is_file()
    )
    bad = status.loc["P02"]
    kind = "processed" if bad["status"] == "ok" else bad["status"]
    return Outcome(kind, str(bad["reason"]), kept)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mri(**changes) -> Callable[[Path], tuple]:
    """A bad pair: a good image and mask with ``image`` or ``mask`` replaced.

    A replacement is a path name (the file is not written: missing), a name and bytes, or
    a name and a SimpleITK image.
    """

    def build(folder: Path) -> tuple[Path, Path]:
        paths = dict(zip(("image", "mask"), _pair(folder, image_name="t2.nrrd",
                                                  mask_name="mask.nrrd"), strict=True))  # fmt: skip
        for role, change in changes.items():
            if isinstance(change, str):
                paths[role] = folder / change
                continue
            name, content = change
            paths[role] = folder / name
            if isinstance(content, bytes):
                paths[role].write_bytes(content)
            else:
                sitk.WriteImage(content, str(paths[role]))
        return paths["image"], paths["mask"]

    return build


def _garbage(n_bytes: int = 4000) -> bytes:
    return np.random.default_rng(0).bytes(n_bytes)


def _truncated_nifti(folder: Path) -> tuple[Path, Path]:
    image, mask = _pair(folder, image_name="t2.nii")
    data = image.read_bytes()
    image.write_bytes(data[: int(len(data) * 0.9)])
    return image, mask


def _nan_image() -> sitk.Image:
    array = _t2().astype(np.float32)
    array[0, 0, :5] = np.nan
    return _image(array)


def _mask_with_extra_labels() -> sitk.Image:
    labels = _box()
    labels[0:2, 0:4, 0:4] = 2
    return _image(labels)


def _probability_mask() -> sitk.Image:
    probabilities = _box().astype(np.float32) * 0.9
    probabilities[4, 8, 8] = 0.37
    return _image(probabilities)


def _tiny_roi_mask() -> sitk.Image:
    labels = np.zeros((12, 24, 24), np.uint8)
    labels[5, 10:12, 10:12] = 1  # 4 voxels, 5.9 mm3
    return _image(labels)


def _dicom_folder_without_series(folder: Path) -> tuple[Path, Path]:
    _, mask = _pair(folder)
    series = _folder(folder / "P02_dicom")
    (series / "notes.txt").write_text("not an image")
    return series, mask


def _dicom_folder_with_two_series(folder: Path) -> tuple[Path, Path]:
    first, mask, _ = _demo(folder, dicom_identity=IDENTITY, name="a")
    second = folder / "b"
    write_subject_mri(subtype="RDLS2", centre="B", image_path=second,
                      mask_path=folder / "b_mask.nii.gz", shape=(48, 48, 12),
                      rng=item_rng(42, "mri", 1), dicom_identity=IDENTITY)  # fmt: skip
    mixed = folder / "P02_dicom"
    shutil.copytree(first, mixed)
    for path in second.iterdir():
        shutil.copy(path, mixed / f"other_{path.name}")
    return mixed, mask


def _dicom_series_missing_a_slice(folder: Path) -> tuple[Path, Path]:
    series, mask, _ = _demo(folder, dicom_identity=IDENTITY, name="P02")
    (series / "IM0006.dcm").unlink()
    return series, mask


def _imaging(bad: Callable[[Path], tuple]) -> Callable[[Context], Outcome]:
    return partial(_ingest_beside_a_good_subject, bad=bad)


_P01_GOES_ON = ("P01",)
_GRID_FIX = "resample it onto the image (nearest neighbour)"

IMAGING = [
    Case("mri_image_missing", "imaging", "the image file named in the mri sheet does not exist",
         "excluded", _imaging(_mri(image="P02.nii.gz")),
         ("subject P02: image '{tmp}/bad/P02.nii.gz' does not exist.",
          "Fix the path in the 'image' column of the mri sheet."), _P01_GOES_ON),
    Case("mri_mask_missing", "imaging", "the mask file named in the mri sheet does not exist",
         "excluded", _imaging(_mri(mask="P02_mask.nii.gz")),
         ("subject P02: mask '{tmp}/bad/P02_mask.nii.gz' does not exist.",
          "Fix the path in the 'mask' column of the mri sheet."), _P01_GOES_ON),
    Case("mri_image_corrupt_gzip", "imaging", "a .nii.gz image holding random bytes",
         "excluded", _imaging(_mri(image=("t2.nii.gz", _garbage()))),
         ("image file '{tmp}/bad/t2.nii.gz' is not a complete gzip file (truncated or corrupt).",
          "Copy or export it again."), _P01_GOES_ON),
    Case("mri_image_corrupt_nrrd", "imaging", "a .nrrd image holding random bytes",
         "excluded", _imaging(_mri(image=("noise.nrrd", _garbage()))),
         ("image file '{tmp}/bad/noise.nrrd' could not be read as NRRD: it is truncated, "
          "corrupt or not a NRRD file. Check its suffix, or copy or export it again.",),
         _P01_GOES_ON),
    Case("mri_image_truncated_nifti", "imaging", "an uncompressed .nii image cut short",
         "excluded", _imaging(_truncated_nifti),
         ("image file '{tmp}/bad/t2.nii' is truncated: it holds",
          "where its header announces", "Copy or export it again."), _P01_GOES_ON),
    Case("mri_image_unsupported_format", "imaging", "the image is a PNG file",
         "excluded", _imaging(_mri(image=("t2.png", _garbage()))),
         ("image file '{tmp}/bad/t2.png': unsupported format (suffix '.png'). Convert it to "
          "NIfTI (.nii, .nii.gz), NRRD (.nrrd) or MetaImage (.mha, .mhd), or a folder "
          "holding one DICOM series.",), _P01_GOES_ON),
    Case("mri_image_2d", "imaging", "the image is a single 2D slice",
         "excluded", _imaging(_mri(image=("flat.nrrd", sitk.Image(24, 24, sitk.sitkInt16)))),
         ("image file '{tmp}/bad/flat.nrrd' is a 2D image (size 24 x 24 voxels); a 3D volume "
          "is needed.", "Provide the whole T2-weighted volume"), _P01_GOES_ON),
    Case("mri_image_nan_voxels", "imaging", "a float image with NaN voxels",
         "excluded", _imaging(_mri(image=("nan.nrrd", _nan_image()))),
         ("subject P02: image '{tmp}/bad/nan.nrrd' holds 5 NaN or infinite voxels.",
          "Provide an image with finite values"), _P01_GOES_ON),
    Case("mri_mask_size_mismatch", "imaging", "the mask has one voxel fewer along x",
         "excluded", _imaging(_mri(mask=("m.nrrd", _image(_box()[:, :, :23])))),
         ("subject P02: mask '{tmp}/bad/m.nrrd' is not on the grid of image "
          "'{tmp}/bad/t2.nrrd': size 24 x 24 x 12 voxels in the image, 23 x 24 x 12 in the "
          "mask", _GRID_FIX), _P01_GOES_ON),
    Case("mri_mask_spacing_mismatch", "imaging", "the mask's slice spacing is 3.3 mm, the "
         "image's 3 mm", "excluded",
         _imaging(_mri(mask=("m.nrrd", _image(_box(), spacing=(0.7, 0.7, 3.3))))),
         ("mask '{tmp}/bad/m.nrrd' is not on the grid",
          "spacing (0.7, 0.7, 3) mm in the image, (0.7, 0.7, 3.3) mm in the mask",
          _GRID_FIX), _P01_GOES_ON),
    Case("mri_mask_origin_mismatch", "imaging", "the mask's origin is 3 mm off the image's",
         "excluded",
         _imaging(_mri(mask=("m.nrrd", _image(_box(), origin=(-17.08, -18.72, -97.92))))),
         ("mask '{tmp}/bad/m.nrrd' is not on the grid",
          "origin (-17.08, -18.72, -100.92) mm in the image, (-17.08, -18.72, -97.92) mm in "
          "the mask (3 mm apart", _GRID_FIX), _P01_GOES_ON),
    Case("mri_mask_empty", "imaging", "every voxel of the mask is 0",
         "excluded", _imaging(_mri(mask=("empty.nrrd", _image(np.zeros((12, 24, 24), np.uint8))))),
         ("subject P02: mask '{tmp}/bad/empty.nrrd' has no voxel with the tumour label 1; labels "
          "found: none (every voxel is 0).", "Set the mask_label column of the mri sheet"),
         _P01_GOES_ON),
    Case("mri_mask_extra_labels", "imaging", "the mask holds label 2 besides the tumour's 1",
         "excluded", _imaging(_mri(mask=("labels.nrrd", _mask_with_extra_labels()))),
         ("subject P02: mask '{tmp}/bad/labels.nrrd' holds label 2 besides the tumour label 1",
          "Remove the other structures from the mask"), _P01_GOES_ON),
    Case("mri_mask_probabilities", "imaging", "the mask is a probability map (0.37, 0.9)",
         "excluded", _imaging(_mri(mask=("prob.nrrd", _probability_mask()))),
         ("mask '{tmp}/bad/prob.nrrd' is not a label image: it holds non-integer values",
          "threshold the probabilities and save the result as integers"), _P01_GOES_ON),
    Case("mri_roi_too_small", "imaging", "the tumour ROI is 4 voxels (5.9 mm3)",
         "excluded", _imaging(_mri(mask=("tiny.nrrd", _tiny_roi_mask()))),
         ("the tumour ROI in mask '{tmp}/bad/tiny.nrrd' is 5.9 mm3", "below min_roi_mm3 = 100",
          "Check that the mask outlines the tumour"), _P01_GOES_ON),
    Case("mri_dicom_no_series", "imaging", "the image folder holds no DICOM file",
         "excluded", _imaging(_dicom_folder_without_series),
         ("subject P02: image folder '{tmp}/bad/P02_dicom' holds no DICOM series",
          "Point the 'image' column of the mri sheet at the folder that holds the series' "
          "files."), _P01_GOES_ON),
    Case("mri_dicom_two_series", "imaging", "the image folder mixes two DICOM series",
         "excluded", _imaging(_dicom_folder_with_two_series),
         ("image folder '{tmp}/bad/P02_dicom' holds 2 DICOM series (", "12 files from "
          "IM0001.dcm", "12 files from other_IM0001.dcm", "Put one series per folder"),
         _P01_GOES_ON),
    Case("mri_dicom_missing_slice", "imaging", "one slice of the DICOM series is missing",
         "excluded", _imaging(_dicom_series_missing_a_slice),
         ("image folder '{tmp}/bad/P02_dicom': the 11 slices are not evenly spaced",
          "from 3.000 to 6.000 mm", "Export the complete series, alone in its folder."),
         _P01_GOES_ON),
]  # fmt: skip


# --- sheets: refused at parse time by rdls.sheets.load_cohort --------------------------------


def _cohort_with(ctx: Context, *, edits=(), remove: str = "") -> Outcome:
    """The small valid cohort of test_sheets, with ``(sheet, old, new)`` text edits."""
    ctx.monkeypatch.chdir(ctx.tmp)
    data = _folder(ctx.tmp / "data")
    for name in FILES:
        (data / name).write_text("x")
    for name in FOLDERS:
        _folder(data / name)
    texts = dict(zip(SHEET_NAMES, [SUBJECTS, MRI, SLIDES, SCRNA, BULK], strict=True))
    for sheet, old, new in edits:
        assert old in texts[sheet], f"{old!r} not in {sheet}.tsv"
        texts[sheet] = texts[sheet].replace(old, new, 1)
    for name, text in texts.items():
        (ctx.tmp / f"{name}.tsv").write_text(text)
    if remove:
        (ctx.tmp / remove).unlink()
    load_cohort({name: f"{name}.tsv" for name in SHEET_NAMES}, covariates=["age", "t_stage"],
                bulk_counts="data/counts.tsv")  # fmt: skip
    return Outcome("processed", "")


def _sheets(*edits: tuple[str, str, str], remove: str = "") -> Callable[[Context], Outcome]:
    return partial(_cohort_with, edits=edits, remove=remove)


def _read_sheet_file(ctx: Context, name: str, text: str) -> Outcome:
    path = ctx.tmp / name
    path.write_text(text)
    read_sheet(path, name="subjects")
    return Outcome("processed", "")


SHEETS = [
    Case("sheet_missing_required_column", "sheets", "subjects.tsv lacks the rfs_event column",
         "error", _sheets(("subjects", "\trfs_event\n", "\trecurrence\n")),
         ("subjects.tsv: required column(s) 'rfs_event' missing",
          "Add them to the header line; config/README.md describes each column.")),
    Case("sheet_misspelt_column", "sheets", "subjects.tsv has a column 't_satge'",
         "error", _sheets(("subjects", "\tt_stage\t", "\tt_satge\t")),
         ("subjects.tsv: unknown column(s) 't_satge'", "Fix the spelling, or remove the column, "
          "or name it under the config key clinical.covariates")),
    Case("sheet_duplicate_subject_id", "sheets", "subject P1 has two rows in subjects.tsv",
         "error", _sheets(("subjects", "P2\ttraining", "P1\ttraining")),
         ("subjects.tsv, row 2 (subject_id P1), column 'subject_id': duplicate subject_id "
          "'P1', first in row 1. Give each subject one row, or rename one of them.",)),
    Case("sheet_unknown_cohort", "sheets", "cohort 'validation' in subjects.tsv",
         "error", _sheets(("subjects", "P3\texternal_validation", "P3\tvalidation")),
         ("subjects.tsv, row 3 (subject_id P3), column 'cohort': 'validation' is not one of "
          "training, internal_validation, external_validation, biological.", "Expected:")),
    Case("sheet_negative_rfs_months", "sheets", "rfs_months is -3",
         "error", _sheets(("subjects", "40.5\t1", "-3\t1")),
         ("subjects.tsv, row 1 (subject_id P1), column 'rfs_months': -3.0 is out of range; it "
          "must be at least 0.", "Expected: Recurrence-free survival time in months")),
    Case("sheet_nan_rfs_months", "sheets", "rfs_months is 'NaN'",
         "error", _sheets(("subjects", "40.5\t1", "NaN\t1")),
         ("subjects.tsv, row 1 (subject_id P1), column 'rfs_months': 'NaN' is not a number.",
          "Expected: Recurrence-free survival time in months")),
    Case("sheet_missing_follow_up", "sheets", "rfs_months and rfs_event empty in the training "
         "cohort", "error", _sheets(("subjects", "80\t0", "\t")),
         ("subjects.tsv, row 2 (subject_id P2), column 'rfs_months': missing follow-up in the "
          "training cohort, which is analysed for survival.",
          "or move the subject to the biological cohort.")),
    Case("sheet_bad_event", "sheets", "rfs_event is 2",
         "error", _sheets(("subjects", "40.5\t1", "40.5\t2")),
         ("subjects.tsv, row 1 (subject_id P1), column 'rfs_event': '2' is not one of 0, 1.",
          "Expected: 1 when recurrence or death ended the follow-up, 0 when the subject was "
          "censored.")),
    Case("sheet_nan_covariate", "sheets", "the covariate age is 'NaN'",
         "error", _sheets(("subjects", "P2\ttraining\tA\t70", "P2\ttraining\tA\tNaN")),
         ("subjects.tsv, row 2 (subject_id P2), column 'age': 'NaN' is not a number. "
          "Expected: Age at diagnosis in years.",)),
    Case("sheet_mri_unknown_subject", "sheets", "mri.tsv names subject P9, absent from "
         "subjects.tsv", "error", _sheets(("mri", "P2\tdata/P2_dicom", "P9\tdata/P2_dicom")),
         ("mri.tsv, row 2, column 'subject_id': subject 'P9' is not in subjects.tsv. Add the "
          "subject there, or correct the ID.",)),
    Case("sheet_slides_unknown_subject", "sheets", "slides.tsv names subject P9, absent from "
         "subjects.tsv", "error", _sheets(("slides", "H2\tP4", "H2\tP9")),
         ("slides.tsv, row 2 (slide_id H2), column 'subject_id': subject 'P9' is not in "
          "subjects.tsv. Add the subject there, or correct the ID.",)),
    Case("sheet_path_missing", "sheets", "slides.tsv names a slide file that does not exist",
         "error", _sheets(remove="data/H2.svs"),
         ("slides.tsv, row 2 (slide_id H2), column 'path': file 'data/H2.svs' does not exist. "
          "Fix the path, or remove the row to leave this slide out.",)),
    Case("sheet_gz_not_gzip", "sheets", "subjects.tsv.gz is plain text, not gzip",
         "error", lambda ctx: _read_sheet_file(ctx, "subjects.tsv.gz", SUBJECTS),
         ("{tmp}/subjects.tsv.gz: not a readable tab-separated sheet (Not a gzipped file",
          "Save it as TSV with one header line and one row per item.")),
    Case("sheet_file_missing", "sheets", "the bulk sheet file does not exist",
         "error", _sheets(remove="bulk.tsv"),
         ("bulk sheet 'bulk.tsv' does not exist.", "Create it (config/README.md lists its "
          "columns) or set the config key sheets.bulk to its path.")),
]  # fmt: skip


# --- survival and predict ------------------------------------------------------------------

SURVIVAL_IDS = tuple(f"S{i:02d}" for i in range(1, 61))


def _cox_with_a_missing_covariate(ctx: Context) -> Outcome:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"subtype": np.tile(["RDLS1", "RDLS2", "RDLS3"], 20),
         "age": rng.normal(62, 9, 60).round(),
         "rfs_months": rng.exponential(40, 60).round(1) + 0.5,
         "rfs_event": rng.integers(0, 2, 60)},
        index=pd.Index(SURVIVAL_IDS, name="subject_id"),
    )  # fmt: skip
    frame.loc["S07", "age"] = np.nan  # an empty age cell of the subjects sheet
    design = make_design(frame, covariates=["subtype", "age"], reference={"subtype": "RDLS1"})
    result = fit_cox(frame, time="rfs_months", event="rfs_event", design=design)
    complete = frame.index[frame["age"].notna()]
    assert result.n == len(complete)
    return Outcome("processed", ctx.logged() + f"\nn={result.n}", tuple(complete))


def _predict_with_an_empty_covariate(ctx: Context) -> Outcome:
    for name in ("a.nii.gz", "a_mask.nii.gz", "b.nii.gz", "b_mask.nii.gz"):
        (ctx.tmp / name).write_bytes(b"")
    (ctx.tmp / "new.tsv").write_text(
        "subject_id\tcentre\timage\tmask\tage\tsex\n"
        "N1\tA\ta.nii.gz\ta_mask.nii.gz\t61\tmale\n"
        "N2\tB\tb.nii.gz\tb_mask.nii.gz\t\tfemale\n"
    )
    ctx.monkeypatch.chdir(ctx.tmp)
    read_predict_sheet("new.tsv", covariates=["age", "sex"])
    return Outcome("processed", "")


OTHER = [
    Case("survival_empty_covariate", "survival", "one subject's age is empty in the subjects "
         "sheet", "filtered", _cox_with_a_missing_covariate,
         ("Cox model: 1 of 60 rows left out for a missing time, event or covariate", "n=59"),
         tuple(s for s in SURVIVAL_IDS if s != "S07")),
    Case("predict_empty_covariate", "predict", "a new subject's age is empty in the predict "
         "sheet", "error", _predict_with_an_empty_covariate,
         ("1 problem(s) in the predict sheet (config key predict.subjects)",
          "new.tsv, row 2 (subject_id N2), column 'age': empty, but required.",
          "The locked clinical model uses it (config key clinical.covariates)",
          "fill it in for every subject, or leave the subject out of this sheet.")),
]  # fmt: skip


# --- whole-slide images: slide H02 is bad, H01 goes through the same summary_step ------------


def _slide_steps(folder: Path, slide_id: str, path: Path, mpp, settings) -> dict[str, Path]:
    """tissue_step and quantify_step of one slide, exclusions allowed."""
    out = {"status": folder / f"{slide_id}_status.tsv", "metrics": folder / f"{slide_id}.tsv"}
    tissue_step(slide_id=slide_id, path=path, mpp=mpp, settings=settings, allow_exclusions=True,
                out_tiles=folder / f"{slide_id}_tiles.parquet", out_status=out["status"],
                out_thumbnail=folder / f"{slide_id}.png")  # fmt: skip
    quantify_step(slide_id=slide_id, path=path, mpp=mpp, tiles=folder / f"{slide_id}_tiles.parquet",
                  status=out["status"], settings=settings, threads=1,
                  out_tiles=folder / f"{slide_id}_quantified.parquet", out_metrics=out["metrics"],
                  out_nuclei=folder / f"{slide_id}_nuclei.parquet",
                  out_heatmap=folder / f"{slide_id}_heatmap.png",
                  allow_exclusions=True)  # fmt: skip
    return out


def _slide_beside_a_good_one(
    ctx: Context, bad: Callable[[Context], Path], *, mpp=None, mpp_fallback=None
) -> Outcome:
    good = ctx.shared.good_slide
    settings = {**ctx.shared.wsi_settings, "mpp_fallback": mpp_fallback}
    steps = _slide_steps(ctx.tmp, "H02", bad(ctx), mpp, settings)
    sheet = ctx.tmp / "slides.tsv"
    sheet.write_text("slide_id\tsubject_id\tpath\nH01\tP1\tH01.tiff\nH02\tP2\tH02.svs\n")
    summary_step(metrics=[good["metrics"], steps["metrics"]],
                 status=[good["status"], steps["status"]], slides_sheet=sheet,
                 out_metrics=ctx.tmp / "slide_metrics.tsv",
                 out_exclusions=ctx.tmp / "exclusions.tsv")  # fmt: skip
    metrics = pd.read_csv(ctx.tmp / "slide_metrics.tsv", sep="\t")
    kept = tuple(metrics.loc[metrics["lymphocyte_density_mm2"].notna(), "slide_id"])
    exclusions = pd.read_csv(ctx.tmp / "exclusions.tsv", sep="\t").set_index("item_id")
    if "H02" in exclusions.index:
        assert exclusions.loc["H02", "kind"] == "slide"
        return Outcome("excluded", exclusions.loc["H02", "reason"], kept)
    status = pd.read_csv(steps["status"], sep="\t").iloc[0]
    return Outcome("processed", f"{ctx.logged()}\nmpp_source {status['mpp_source']}", kept)


def _missing_slide(ctx: Context) -> Path:
    return ctx.tmp / "H02.svs"


def _slide_folder(ctx: Context) -> Path:
    return _folder(ctx.tmp / "H02.svs")


def _garbage_slide(ctx: Context) -> Path:
    path = ctx.tmp / "H02.svs"
    path.write_bytes(_garbage(5000))
    return path


def _truncated_slide(ctx: Context) -> Path:
    data = ctx.shared.good_slide["path"].read_bytes()
    path = ctx.tmp / "H02.tiff"
    path.write_bytes(data[: len(data) // 2])
    return path


def _slide_with_undecodable_tiles(ctx: Context) -> Path:
    """The good slide with the tiles of its smallest level overwritten by zeros."""
    source = ctx.shared.good_slide["path"]
    data = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tiff:
        page = tiff.pages[-1]
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            data[offset : offset + count] = bytes(count)
    path = ctx.tmp / "H02.tiff"
    path.write_bytes(bytes(data))
    return path


def _slide_with_undecodable_full_resolution(ctx: Context) -> Path:
    """The good slide with the tiles of its full-resolution level overwritten by zeros: the
    thumbnails read fine, the tiles' pixels do not."""
    source = ctx.shared.good_slide["path"]
    data = bytearray(source.read_bytes())
    with tifffile.TiffFile(source) as tiff:
        page = tiff.pages[0]
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            data[offset : offset + count] = bytes(count)
    path = ctx.tmp / "H02.tiff"
    path.write_bytes(bytes(data))
    return path


def _blank_slide(ctx: Context) -> Path:
    path = ctx.tmp / "H02.tiff"
    white = np.full((1024, 1024, 3), 255, np.uint8)
    tifffile.imwrite(path, white, tile=(256, 256), photometric="rgb", compression="zlib",
                     resolution=(2e4, 2e4), resolutionunit="CENTIMETER",
                     metadata=None)  # fmt: skip
    return path


def _slide_without_mpp(ctx: Context) -> Path:
    """The good slide's pixels in a tiled TIFF that records no resolution."""
    with tifffile.TiffFile(ctx.shared.good_slide["path"]) as tiff:
        rgb = tiff.pages[0].asarray()
    path = ctx.tmp / "H02.tiff"
    tifffile.imwrite(path, rgb, tile=(256, 256), photometric="rgb", compression="zlib",
                     metadata=None)  # fmt: skip
    return path


def _png_slide(ctx: Context) -> Path:
    path = ctx.tmp / "H02.png"
    Image.fromarray(np.full((256, 256, 3), 200, np.uint8)).save(path)
    return path


def _untiled_tiff(ctx: Context) -> Path:
    path = ctx.tmp / "H02.tif"
    tifffile.imwrite(path, np.full((512, 512, 3), 200, np.uint8), photometric="rgb",
                     resolution=(2e4, 2e4), resolutionunit="CENTIMETER")  # fmt: skip
    return path


def _wsi(bad: Callable[[Context], Path], **kwargs) -> Callable[[Context], Outcome]:
    return partial(_slide_beside_a_good_one, bad=bad, **kwargs)


_UNREADABLE = ("cannot be read by OpenSlide (Unsupported or missing image file): it is corrupt, "
               "truncated or not a whole-slide image. Formats read: Aperio (.svs), Hamamatsu "
               "(.ndpi), MIRAX (.mrxs), Leica (.scn) or a tiled, pyramidal TIFF")  # fmt: skip
_LEAVE_OUT = "or remove the row to leave this slide out."
_H01_GOES_ON = ("H01",)

WSI = [
    Case("wsi_slide_missing", "wsi", "the slide file does not exist",
         "excluded", _wsi(_missing_slide),
         ("slide file '{tmp}/H02.svs' does not exist. Fix the path in the slides sheet (column "
          "'path'), " + _LEAVE_OUT,), _H01_GOES_ON),
    Case("wsi_path_is_folder", "wsi", "the slide path is a folder",
         "excluded", _wsi(_slide_folder),
         ("slide file '{tmp}/H02.svs' is a folder, not a slide file.", _LEAVE_OUT),
         _H01_GOES_ON),
    Case("wsi_slide_corrupt", "wsi", "a .svs file holding random bytes",
         "excluded", _wsi(_garbage_slide),
         ("slide file '{tmp}/H02.svs' " + _UNREADABLE, "Copy the file again from the scanner or "
          "archive, " + _LEAVE_OUT), _H01_GOES_ON),
    Case("wsi_slide_truncated", "wsi", "a pyramidal TIFF cut to half its length",
         "excluded", _wsi(_truncated_slide),
         ("slide file '{tmp}/H02.tiff' " + _UNREADABLE, _LEAVE_OUT), _H01_GOES_ON),
    Case("wsi_tiles_undecodable", "wsi", "the compressed tiles of the smallest level are zeros",
         "excluded", _wsi(_slide_with_undecodable_tiles),
         ("slide file '{tmp}/H02.tiff': OpenSlide cannot decode its pixels at level 2",
          "the file is corrupt or truncated. Copy it again from the scanner or archive, "
          + _LEAVE_OUT), _H01_GOES_ON),
    Case("wsi_full_resolution_undecodable", "wsi", "the compressed tiles of the full-resolution "
         "level are zeros (found while quantifying)", "excluded",
         _wsi(_slide_with_undecodable_full_resolution),
         ("slide file '{tmp}/H02.tiff': OpenSlide cannot decode its pixels at level 0",
          "the file is corrupt or truncated. Copy it again from the scanner or archive, "
          + _LEAVE_OUT), _H01_GOES_ON),
    Case("wsi_unsupported_format", "wsi", "the slide is a PNG image",
         "excluded", _wsi(_png_slide),
         ("slide file '{tmp}/H02.png' " + _UNREADABLE,
          "other formats: convert them to a tiled TIFF first"), _H01_GOES_ON),
    Case("wsi_untiled_tiff", "wsi", "the slide is a plain (striped, one-level) TIFF",
         "excluded", _wsi(_untiled_tiff),
         ("slide file '{tmp}/H02.tif' " + _UNREADABLE,
          "convert them to a tiled TIFF first (for example with vips tiffsave --tile "
          "--pyramid)"), _H01_GOES_ON),
    Case("wsi_no_tissue", "wsi", "a white slide without tissue",
         "excluded", _wsi(_blank_slide),
         ("{tmp}/H02.tiff: 0.00 mm2 of tissue found, below wsi.tissue.min_tissue_mm2 = 0.01; "
          "check that the slide holds tissue, or lower the threshold.",), _H01_GOES_ON),
    Case("wsi_no_mpp", "wsi", "the slide records no microns per pixel; no mpp in the sheet "
         "and wsi.mpp_fallback null", "excluded", _wsi(_slide_without_mpp),
         ("slide file '{tmp}/H02.tiff' records no microns per pixel",
          "Fix: set the slide's 'mpp' column in the slides sheet (microns per pixel at full "
          "resolution, from the scanner's report), or the config key wsi.mpp_fallback for "
          "every slide."), _H01_GOES_ON),
    Case("wsi_no_mpp_sheet_value", "wsi", "the slide records no microns per pixel; the "
         "slides sheet gives mpp 0.5", "accepted", _wsi(_slide_without_mpp, mpp=0.5),
         ("slide {tmp}/H02.tiff records no microns per pixel; using 0.5",
          "mpp_source slides sheet"), ("H01", "H02")),
    Case("wsi_no_mpp_config_fallback", "wsi", "the slide records no microns per pixel; "
         "wsi.mpp_fallback is 0.5", "accepted", _wsi(_slide_without_mpp, mpp_fallback=0.5),
         ("slide {tmp}/H02.tiff records no microns per pixel; using 0.5",
          "mpp_source wsi.mpp_fallback"), ("H01", "H02")),
]  # fmt: skip


# --- scRNA: sample SC02 is bad, SC01 goes through the same read_qc_samples call --------------

# Two genes no cell expresses, as in every real matrix.
GENES = ["MT-CO1", "MT-ND1", *(f"G{i:03d}" for i in range(296)), "UNSEEN1", "UNSEEN2"]
# Scrublet is left out: it needs more cells than these samples have, and adds seconds.
SCRNA_QC = {"doublets": False}


def _counts(n_cells: int = 80, seed: int = 0) -> np.ndarray:
    """Cells x genes Poisson counts: about 1200 UMIs and 290 genes per cell, all pass QC."""
    counts = np.random.default_rng(seed).poisson(4.0, (n_cells, len(GENES))).astype(np.float32)
    counts[:, -2:] = 0
    return counts


def _write_h5ad(path: Path, counts: np.ndarray, genes=GENES) -> Path:
    cells = pd.DataFrame(index=[f"C{i:03d}" for i in range(len(counts))])
    ad.AnnData(sp.csr_matrix(counts), obs=cells, var=pd.DataFrame(index=genes)).write_h5ad(path)
    return path


def _qc(folder: Path, sample_id: str, path: Path, fmt: str) -> dict[str, Path]:
    out = {"h5ad": folder / f"{sample_id}_qc.h5ad", "metrics": folder / f"{sample_id}_qc.tsv"}
    qc_step(sample_id=sample_id, subject_id="P2", path=path, fmt=fmt, settings=SCRNA_QC,
            seed=0, allow_exclusions=True, out_h5ad=out["h5ad"], out_metrics=out["metrics"],
            out_png=folder / f"{sample_id}_qc.png")  # fmt: skip
    return out


def _sample_beside_a_good_one(
    ctx: Context, bad: Callable[[Path], Path], *, fmt: str = "h5ad", after=None
) -> Outcome:
    qc = _qc(ctx.tmp, "SC02", bad(ctx.tmp), fmt)
    adatas, excluded = read_qc_samples({"SC01": ctx.shared.good_sample, "SC02": qc["h5ad"]})
    if excluded:
        assert excluded == ["SC02"]
        row = pd.read_csv(qc["metrics"], sep="\t", keep_default_na=False).iloc[0]
        return Outcome("excluded", row["reason"], tuple(adatas))
    if after is not None:
        after(adatas)
    return Outcome("processed", ctx.logged(), tuple(adatas))


def _scrna(bad: Callable[[Path], Path], **kwargs) -> Callable[[Context], Outcome]:
    return partial(_sample_beside_a_good_one, bad=bad, **kwargs)


def _h5ad(counts: np.ndarray | None = None, genes=GENES, name="SC02.h5ad"):
    def build(folder: Path) -> Path:
        return _write_h5ad(folder / name, _counts(seed=1) if counts is None else counts, genes)

    return build


def _text_file(folder: Path) -> Path:
    path = folder / "SC02.h5"
    path.write_text("barcode,count\nAAAC,12\n")
    return path


def _mtx_folder_without_files(folder: Path) -> Path:
    path = _folder(folder / "SC02_mtx")
    (path / "barcodes.tsv.gz").write_bytes(b"")
    return path


def _duplicate_barcodes(folder: Path) -> Path:
    path = _write_h5ad(folder / "SC02.h5ad", _counts(seed=1))
    adata = ad.read_h5ad(path)
    adata.obs_names = ["C000", *adata.obs_names[:-1]]  # C000 twice
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "obs_names are not unique")  # anndata's, expected
        adata.write_h5ad(path)
    return path


def _zero_umi_cells() -> np.ndarray:
    counts = _counts(seed=1)
    counts[:10] = 0
    return counts


def _normalised() -> np.ndarray:
    return np.log1p(_counts(seed=1))


def _pooled_and_normalised(adatas: dict) -> None:
    """What integrate_step does first with the QC'd samples."""
    normalise(pool_samples(adatas), min_cells_per_gene=3)


def _names_made_unique(ctx: Context) -> Outcome:
    genes = ["CD3E", "CD3E", *GENES[2:]]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Variable names are not unique")  # anndata's, expected
        outcome = _sample_beside_a_good_one(ctx, _h5ad(genes=genes))
    names = ad.read_h5ad(ctx.tmp / "SC02_qc.h5ad").var_names[:2].tolist()
    return Outcome(outcome.kind, f"var_names {', '.join(names)}", outcome.kept)


_SC02 = "scrna sheet, sample SC02, column 'path': {tmp}/"

SCRNA_CASES = [
    Case("scrna_file_missing", "scrna", "the count matrix named in the scrna sheet does not "
         "exist", "error", _scrna(lambda folder: folder / "SC02.h5", fmt="10x_h5"),
         (_SC02 + "SC02.h5 does not exist. Fix the path, or remove the row.",)),
    Case("scrna_h5ad_as_10x_h5", "scrna", "an AnnData file under format 10x_h5",
         "error", _scrna(_h5ad(name="SC02.h5"), fmt="10x_h5"),
         (_SC02 + "SC02.h5 is an AnnData (.h5ad) file, not a 10x HDF5 matrix; set the format "
          "column to 'h5ad'.",)),
    Case("scrna_not_hdf5", "scrna", "a text file under format 10x_h5",
         "error", _scrna(_text_file, fmt="10x_h5"),
         (_SC02 + "SC02.h5 is not an HDF5 file (format '10x_h5'). Point the path at Cell "
          "Ranger's filtered_feature_bc_matrix.h5, or fix the format column.",)),
    Case("scrna_mtx_folder_incomplete", "scrna", "a 10x_mtx folder without matrix.mtx.gz and "
         "features.tsv.gz", "error", _scrna(_mtx_folder_without_files, fmt="10x_mtx"),
         (_SC02 + "SC02_mtx: the folder lacks the matrix files; expected barcodes.tsv.gz, "
          "features.tsv.gz, matrix.mtx.gz (Cell Ranger v3)",)),
    Case("scrna_all_zero_matrix", "scrna", "every count of the sample is 0",
         "error", _scrna(_h5ad(np.zeros((80, len(GENES)), np.float32))),
         (_SC02 + "SC02.h5ad: the count matrix is empty (80 cells x 300 genes, 0 UMIs). Point "
          "the sheet at Cell Ranger's filtered matrix of this sample, or remove the row.",)),
    Case("scrna_normalised_values", "scrna", "log-normalised values instead of counts",
         "error", _scrna(_h5ad(_normalised())),
         (_SC02 + "SC02.h5ad: the matrix holds normalised values", "not raw UMI counts; store "
          "the counts in X or in layers['counts'].")),
    Case("scrna_gene_ids_only", "scrna", "Ensembl IDs and no gene symbols",
         "error", _scrna(_h5ad(genes=[f"ENSG{i:011d}" for i in range(len(GENES))])),
         (_SC02 + "SC02.h5ad: the genes have no symbols (names like 'ENSG00000000000')",
          "Write them as var_names or a var column 'gene_symbols'.")),
    Case("scrna_all_cells_fail_qc", "scrna", "every cell has 3 UMIs",
         "excluded", _scrna(_h5ad(np.eye(80, len(GENES), dtype=np.float32) * 3)),
         ("{tmp}/SC02.h5ad: 0 of 80 cells pass QC (80 with too few UMIs, 80 too few genes",
          "fewer than scrna.qc.min_cells_after_qc = 50; check the sample's library, or relax "
          "the thresholds."), ("SC01",)),
    Case("scrna_zero_umi_cells", "scrna", "10 of 80 cells have no UMI",
         "filtered", _scrna(_h5ad(_zero_umi_cells())),
         ("SC02: 80 cells in, 10 low quality, 0 doublets, 70 kept",), ("SC01", "SC02")),
    Case("scrna_all_zero_genes", "scrna", "2 genes have no UMI in any cell of any sample",
         "filtered", _scrna(_h5ad(), after=_pooled_and_normalised),
         ("298 of 300 genes detected in at least 3 cells",), ("SC01", "SC02")),
    Case("scrna_duplicate_barcodes", "scrna", "barcode C000 on two cells of one sample",
         "error", _scrna(_duplicate_barcodes),
         (_SC02 + "SC02.h5ad: 1 barcode(s) appear more than once (first: 'C000'). Export one "
          "row per cell (Cell Ranger's filtered matrix), or remove the row.",)),
    Case("scrna_duplicate_genes", "scrna", "gene symbol CD3E on two columns",
         "accepted", _names_made_unique, ("var_names CD3E, CD3E-1",), ("SC01", "SC02")),
]  # fmt: skip


# --- bulk: rdls.bulk.counts, as bulk_deseq2 reads the matrix ---------------------------------

BULK_SHEET = pd.DataFrame({"sample_id": ["B1", "B2", "B3"], "subject_id": ["P1", "P2", "P3"]})
BULK_GOOD = "gene\tB1\tB2\tB3\nTP53\t31\t25\t40\nKRAS\t12\t18\t15\nCD3E\t0\t55\t23\n"


def _bulk(
    text: str | bytes | None, *, old: str = "", new: str = "", name: str = "counts.tsv"
) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        path = ctx.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        elif text is not None:
            assert old in text
            path.write_text(text.replace(old, new, 1))
        counts = read_bulk_counts(path, sheet=BULK_SHEET)
        kept = filter_low_counts(counts, min_count=10, min_samples=3)
        return Outcome("processed", ctx.logged(), tuple(kept.index))

    return run


_MATRIX = "problem(s) in the count matrix '{tmp}/counts.tsv':"

BULK_CASES = [
    Case("bulk_counts_missing", "bulk", "the count matrix (sheets.bulk_counts) does not exist",
         "error", _bulk(None),
         ("count matrix '{tmp}/counts.tsv' does not exist. Set the config key "
          "sheets.bulk_counts to the matrix's path, or empty the bulk sheet to leave bulk "
          "RNA-seq out.",)),
    Case("bulk_non_integer_counts", "bulk", "a count of 12.5 (normalised values)",
         "error", _bulk(BULK_GOOD, old="\t12\t", new="\t12.5\t"),
         (_MATRIX, "1 cell(s) not a whole number: row 2 (gene 'KRAS'), column 'B1': '12.5'.",
          "Fix: DESeq2 models raw read counts")),
    Case("bulk_negative_counts", "bulk", "a count of -4",
         "error", _bulk(BULK_GOOD, old="\t25\t", new="\t-4\t"),
         (_MATRIX, "1 cell(s) negative: row 1 (gene 'TP53'), column 'B2': '-4'. Fix: counts "
          "cannot be negative; check how the matrix was made.")),
    Case("bulk_nan_counts", "bulk", "a count written NA",
         "error", _bulk(BULK_GOOD, old="\t40\n", new="\tNA\n"),
         (_MATRIX, "1 cell(s) empty or NA: row 1 (gene 'TP53'), column 'B3': ''. Fix: write 0 "
          "where a gene has no reads in a sample.")),
    Case("bulk_text_counts", "bulk", "a count written 'many'",
         "error", _bulk(BULK_GOOD, old="\t55\t", new="\tmany\t"),
         (_MATRIX, "1 cell(s) not a number: row 3 (gene 'CD3E'), column 'B2': 'many'. Fix: "
          "write the number of reads.")),
    Case("bulk_duplicate_genes", "bulk", "gene TP53 on two rows",
         "error", _bulk(BULK_GOOD, old="KRAS", new="TP53"),
         (_MATRIX, "1 gene(s) are named on more than one row: 'TP53' (rows 1, 2). Make the "
          "names unique (for example use Ensembl gene IDs) or sum the rows of each gene.")),
    Case("bulk_sheet_sample_not_in_counts", "bulk", "sample B3 of the bulk sheet has no column",
         "error", _bulk(BULK_GOOD.replace("\tB3", "").replace("\t40\n", "\n").replace(
             "\t15\n", "\n").replace("\t23\n", "\n")),
         (_MATRIX, "1 sample(s) of the bulk sheet have no column: 'B3'. Add their counts to the "
          "matrix, or remove their rows from the bulk sheet.")),
    Case("bulk_column_not_in_sheet", "bulk", "a column B4 that the bulk sheet does not list",
         "error", _bulk(BULK_GOOD.replace("B3\n", "B3\tB4\n").replace("40\n", "40\t1\n").replace(
             "15\n", "15\t2\n").replace("23\n", "23\t3\n")),
         (_MATRIX, "1 column(s) are not samples of the bulk sheet: 'B4'. Add a row (sample_id, "
          "subject_id) per sample to the bulk sheet, or remove the column(s) from the matrix")),
    Case("bulk_duplicate_sample_column", "bulk", "column B2 twice in the header",
         "error", _bulk(BULK_GOOD, old="B3", new="B2"),
         ("{tmp}/counts.tsv: column(s) 'B2' appear more than once in the header. Give each "
          "sample one column, named by its sample_id.",)),
    Case("bulk_counts_excel", "bulk", "the count matrix is an Excel workbook",
         "error", _bulk(b"PK\x03\x04" + _garbage(), name="counts.xlsx"),
         ("{tmp}/counts.xlsx: not a readable tab- or comma-separated table (",
          "Save it as UTF-8 text with one header line, the gene in the first column and one "
          "column per sample.")),
    Case("bulk_counts_not_gzip", "bulk", "counts.tsv.gz is plain text, not gzip",
         "error", _bulk(BULK_GOOD, name="counts.tsv.gz"),
         ("{tmp}/counts.tsv.gz: not a readable tab- or comma-separated table (Not a gzipped "
          "file", "Save it as UTF-8 text")),
    Case("bulk_sample_without_reads", "bulk", "every count of sample B2 is 0",
         "error", _bulk("gene\tB1\tB2\tB3\nTP53\t31\t0\t40\nKRAS\t12\t0\t15\n"),
         ("count matrix '{tmp}/counts.tsv': sample(s) B2 have no reads (every count is 0). "
          "Check that the right column was exported, or remove the sample from the bulk "
          "sheet.",)),
    Case("bulk_all_zero_genes", "bulk", "gene ZERO has no read in any sample",
         "filtered", _bulk(BULK_GOOD + "ZERO\t0\t0\t0\n"),
         ("2 of 4 genes have >= 10 reads in >= 3 samples",), ("TP53", "KRAS")),
]  # fmt: skip


# --- config: refused by rdls.config.validate_config, as common.smk does at parse time -------


def _config(config: dict) -> Callable[[Context], Outcome]:
    def run(ctx: Context) -> Outcome:
        validate_config(config, source="override.yaml")
        return Outcome("processed", "")

    return run


def _dry_run_with(ctx: Context, override: str) -> Outcome:
    """``snakemake -n`` in a working directory with the shipped config and an override."""
    shutil.copytree(REPO / "config", ctx.tmp / "config")
    (ctx.tmp / "override.yaml").write_text(override)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
               "--configfile", "override.yaml"]  # fmt: skip
    run = subprocess.run(command, cwd=ctx.tmp, capture_output=True, text=True, timeout=300)
    assert not (ctx.tmp / "results").exists()
    return Outcome("error" if run.returncode else "processed", run.stdout + run.stderr)


_SCALE = ("key 'demo.scale': 'huge' is not allowed; use one of 'tiny', 'default', 'paper' "
          "(Size of the demo cohort")  # fmt: skip

CONFIG = [
    Case("config_unknown_key", "config", "demo.scal instead of demo.scale",
         "error", _config({"demo": {"scal": "tiny"}}),
         ("1 problem(s) in override.yaml:", "unknown key(s) 'demo.scal'; allowed here: "
          "activate, centre_case_mix, mri_signal, outdir, scale. Fix the spelling or remove "
          "the key (config/config.yaml "
          "lists every key with its meaning).")),
    Case("config_wrong_type", "config", "qc.allow_exclusions: 'yes' (a string)",
         "error", _config({"qc": {"allow_exclusions": "yes"}}),
         ("key 'qc.allow_exclusions': 'yes' is not of type 'boolean' (Exclude an item that "
          "cannot be processed",)),
    Case("config_out_of_range", "config", "imaging.shards_per_cohort: 0",
         "error", _config({"imaging": {"shards_per_cohort": 0}}),
         ("key 'imaging.shards_per_cohort': 0 is less than the minimum of 1 (Per-subject steps "
          "run in this many jobs per cohort",)),
    Case("config_bad_enum", "config", "demo.scale: huge",
         "error", _config({"demo": {"scale": "huge"}}), (_SCALE,)),
    Case("config_non_positive_mpp_fallback", "config", "wsi.mpp_fallback: -1",
         "error", _config({"wsi": {"mpp_fallback": -1}}),
         ("key 'wsi.mpp_fallback': -1 is less than or equal to the minimum of 0 (Microns per "
          "pixel for slides that record none",)),
    Case("config_k_min_above_k_max", "config", "subtypes.consensus k_min 5, k_max 3",
         "error", _config({"subtypes": {"consensus": {"k_min": 5, "k_max": 3}}}),
         ("subtypes.consensus.k_min (5) is larger than k_max (3); set k_min <= k_max.",)),
    Case("config_dry_run_bad_enum", "config", "snakemake -n with demo.scale: huge in "
         "--configfile", "error", partial(_dry_run_with, override="demo:\n  scale: huge\n"),
         ("1 problem(s) in the config (config/config.yaml, --configfile and --config):",
          _SCALE)),
]  # fmt: skip


CATALOGUE = [*IMAGING, *SHEETS, *OTHER, *WSI, *SCRNA_CASES, *BULK_CASES, *CONFIG]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    return Shared(tmp_path_factory.mktemp("good_items"))


@pytest.fixture
def ctx(tmp_path, shared, monkeypatch, caplog) -> Context:
    caplog.set_level(logging.INFO)
    return Context(tmp=tmp_path, shared=shared, monkeypatch=monkeypatch, caplog=caplog)


@pytest.fixture(scope="module")
def documented() -> dict[str, dict[str, str]]:
    """The rows of the table in docs/bad_inputs.md by case id."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`([a-z0-9_]+)`", cells[0]) if len(cells) == 4 else None
        if match:
            rows[match.group(1)] = dict(zip(("branch", "input", "outcome"), cells[1:], strict=True))
    return rows


def _run(case: Case, ctx: Context) -> Outcome:
    try:
        return case.run(ctx)
    except InputError as error:
        return Outcome("error", str(error))


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.id for case in CATALOGUE])
def test_bad_input_gives_a_message_a_user_can_act_on(case, ctx, documented):
    outcome = _run(case, ctx)
    expected_kind = "processed" if case.outcome in ("filtered", "accepted") else case.outcome
    assert outcome.kind == expected_kind, outcome.message
    for fragment in case.expected:
        assert fragment.format(tmp=ctx.tmp) in outcome.message
    assert outcome.kept == case.kept  # the good items of the same call went through
    # The table's excerpts quote this message; '…' stands for a path that differs per run.
    assert case.id in documented, f"{case.id} is not in the table of docs/bad_inputs.md"
    for excerpt in re.findall(r"`([^`]+)`", documented[case.id]["outcome"]):
        for piece in excerpt.split("…"):
            assert piece in outcome.message, f"docs/bad_inputs.md, {case.id}: {piece!r}"


def test_catalogue_covers_every_branch_with_unique_ids():
    ids = [case.id for case in CATALOGUE]
    assert len(ids) == len(set(ids)) >= 36
    assert {case.branch for case in CATALOGUE} >= {"imaging", "sheets", "wsi", "scrna", "bulk",
                                                   "config"}  # fmt: skip
    assert {case.outcome for case in CATALOGUE} <= set(OUTCOMES)


def test_docs_table_lists_exactly_the_catalogue(documented):
    cases = {case.id: case for case in CATALOGUE}
    assert sorted(documented) == sorted(cases), "docs/bad_inputs.md and CATALOGUE differ"
    for case_id, row in documented.items():
        assert row["branch"] == cases[case_id].branch, case_id
        assert row["outcome"].split(":")[0] == cases[case_id].outcome, case_id
