"""``python -m rdls.demo`` writes a complete cohort whose sheets pass the strict checks."""

import subprocess
import sys

import pandas as pd
import pytest

from rdls.sheets import SHEET_NAMES, load_cohort
from tests.conftest import REPO


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli")
    run = subprocess.run(
        [sys.executable, "-m", "rdls.demo", "--scale", "tiny", "--seed", "3", "--out", "demo",
         "--threads", "2"],
        cwd=workdir,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return workdir, run.stderr


def test_sheets_name_only_files_that_exist(tiny_cohort, monkeypatch):
    workdir, _ = tiny_cohort
    monkeypatch.chdir(workdir)
    cohort = load_cohort(
        {name: f"demo/sheets/{name}.tsv" for name in SHEET_NAMES},
        bulk_counts="demo/bulk/counts.tsv",
        covariates=["age", "sex", "t_stage", "n_stage", "cea_ng_ml"],
    )  # check_files is on: every image, mask, slide and matrix must be there
    assert len(cohort.subjects) == 60
    assert cohort.mri["image"].str.endswith("_dicom").sum() == 2


def test_truth_tables_cover_every_item(tiny_cohort):
    workdir, _ = tiny_cohort
    truth = workdir / "demo" / "truth"
    assert len(pd.read_csv(truth / "subjects.tsv", sep="\t")) == 60
    assert len(pd.read_csv(truth / "mri.tsv", sep="\t")) == 60
    assert len(pd.read_csv(truth / "slides.tsv", sep="\t")) == 12
    genes = pd.read_csv(truth / "bulk_genes.tsv", sep="\t")
    assert set(genes["module"]) == {"immune", "stromal", "tgfb_exclusion", "cell_type_marker",
                                    "none"}  # fmt: skip
    composition = pd.read_csv(truth / "bulk_composition.tsv", sep="\t", index_col="sample_id")
    assert composition.sum(axis=1).to_numpy() == pytest.approx(1.0)
    cells = pd.read_csv(truth / "scrna_cells.tsv", sep="\t")
    assert cells["sample_id"].nunique() == 3
    hazards = pd.read_csv(truth / "hazard_coefficients.tsv", sep="\t", index_col="term")
    assert hazards.loc["subtype_RDLS2", "hazard_ratio"] == pytest.approx(0.5)


def test_progress_is_logged(tiny_cohort):
    _, log = tiny_cohort
    assert "MRI subjects: 60 of 60 done" in log
    assert "wrote the tiny demo cohort (60 subjects, MRI signal mixed)" in log


def test_unknown_scale_is_refused_by_the_command_line():
    run = subprocess.run(
        [sys.executable, "-m", "rdls.demo", "--scale", "huge", "--out", "x"],
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "invalid choice: 'huge'" in run.stderr
