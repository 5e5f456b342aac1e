"""The workflow end to end on the tiny demo, and its refusal of bad config and sheets."""

import shutil
import zipfile
from pathlib import Path

import openslide
import pandas as pd
import pytest
import scanpy as sc
import SimpleITK as sitk

from tests.integration.conftest import deploy, snakemake

pytestmark = pytest.mark.integration


def test_overview_counts_the_tiny_cohort(tiny_run):
    overview = pd.read_csv(tiny_run / "results/cohort/overview.tsv", sep="\t", index_col=0)
    assert overview["subjects"].to_dict() == {"training": 24, "internal_validation": 10,
        "external_validation": 14, "biological": 12, "all": 60}  # fmt: skip
    assert overview.loc["all", "slides"] == 12
    assert overview.loc["biological", "bulk_samples"] == 12
    assert 0 < overview.loc["all", "events"] < 60
    assert (tiny_run / "results/cohort/overview.svg").stat().st_size > 10_000


def test_demo_files_open_in_the_libraries_users_use(tiny_run):
    root = tiny_run / "results/demo/tiny"
    mri = pd.read_csv(root / "sheets/mri.tsv", sep="\t")
    for image_path in mri["image"]:
        path = tiny_run / image_path
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path)))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
        assert image.GetSpacing()[2] > 2.5  # anisotropic, about 3 mm between slices
    for slide_path in pd.read_csv(root / "sheets/slides.tsv", sep="\t")["path"]:
        with openslide.OpenSlide(tiny_run / slide_path) as slide:
            assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(
                0.5, abs=0.01
            )
    for sample in pd.read_csv(root / "sheets/scrna.tsv", sep="\t").itertuples():
        path = tiny_run / sample.path
        adata = sc.read_10x_mtx(path) if sample.format == "10x_mtx" else sc.read_10x_h5(path)
        assert adata.n_obs == 400
    counts = pd.read_csv(root / "bulk/counts.tsv", sep="\t", index_col=0)
    assert counts.shape[1] == 12


def test_logs_and_benchmarks_mirror_the_outputs(tiny_run):
    for step in ("sheets", "mri", "slides", "bulk", "scrna"):
        assert (tiny_run / f"logs/demo/{step}.log").is_file()
    assert "MRI subjects: 60 of 60 done" in (tiny_run / "logs/demo/mri.log").read_text()
    assert (tiny_run / "benchmarks/demo/slides.tsv").is_file()


def test_a_second_run_has_nothing_to_do(tiny_run):
    run = snakemake(tiny_run, "-n", "--configfile", "override.yaml")
    assert "Nothing to be done" in run.stdout + run.stderr


def test_report_archive_holds_the_overview(tiny_run):
    snakemake(tiny_run, "--configfile", "override.yaml", "--report", "results/report.zip")
    with zipfile.ZipFile(tiny_run / "results/report.zip") as archive:
        names = archive.namelist()
    for figure in ("overview.png", "training_curve.png", "training.png", "harmonisation.tsv",
                   "exclusions.tsv", "k_selection.png", "heatmaps.png", "assignments.tsv",
                   "table_one.html", "forest.png", "external_validation.png",
                   "cross_validation.png", "km_external_validation.png", "risk_scores.tsv",
                   "auc.png", "roc.png", "calibration.png", "decision_curve.png", "nomogram.png",
                   "optimism.tsv", "calibration_summary.tsv", "selection_frequency.tsv",
                   "by_subtype.png", "umap.png", "dotplot.png", "composition.png",
                   "RDLS1_vs_RDLS2_volcano.png", "pca.png", "scores.png", "fractions.png",
                   "subtype_biology.html"):  # fmt: skip
        assert any(name.endswith(figure) for name in names), figure


def test_default_config_plans_the_demo_jobs(tmp_path):
    run = snakemake(deploy(tmp_path), "-n")
    plan = run.stdout + run.stderr
    for rule in ("demo_sheets", "demo_mri", "demo_slides", "demo_bulk", "demo_scrna",
                 "cohort_overview"):  # fmt: skip
        assert f"localrule {rule}:" in plan or f"rule {rule}:" in plan
    assert "results/demo/default/slides/H0060.tiff" in plan


def test_bad_config_stops_before_any_job(tmp_path):
    run = snakemake(deploy(tmp_path, "demo:\n  scal: tiny\n"), "-n", "--configfile",
                    "override.yaml", check=False)  # fmt: skip
    assert run.returncode != 0
    assert "unknown key(s) 'demo.scal'" in run.stdout + run.stderr
    assert not (tmp_path / "results").exists()


def test_bad_sheet_stops_before_any_job(tmp_path):
    workdir = deploy(tmp_path, "demo:\n  activate: false\n")
    (workdir / "config/subjects.tsv").write_text(
        "subject_id\tcohort\tcentre\trfs_months\trfs_event\n"
        "P1\ttraining\tA\t12\t1\n"
        "P1\tvalidation\tA\t-4\t2\n"
    )
    run = snakemake(workdir, "-n", "--configfile", "override.yaml", check=False)
    assert run.returncode != 0
    for expected in (
        "config/subjects.tsv, row 2 (subject_id P1), column 'subject_id': duplicate subject_id",
        "column 'cohort': 'validation' is not one of training",
        "column 'rfs_months': -4.0 is out of range",
        "column 'rfs_event': '2' is not one of 0, 1",
    ):
        assert expected in run.stdout + run.stderr


def test_own_cohort_runs_from_its_sheets(tiny_run, tmp_path):
    """With the demo off, the workflow analyses the sheets the config names (here the demo's)."""
    demo = tiny_run / "results/demo/tiny"
    shutil.copytree(demo, tmp_path / "cohort")
    sheets = "".join(f"  {n}: cohort/sheets/{n}.tsv\n" for n in ("subjects", "mri", "slides",
                                                                  "scrna", "bulk"))  # fmt: skip
    workdir = deploy(
        tmp_path,
        "demo:\n  activate: false\nsheets:\n" + sheets + "  bulk_counts: cohort/bulk/counts.tsv\n"
        "imaging:\n  activate: false\nwsi:\n  activate: false\n",  # each has its own test
    )
    for name in ("subjects", "mri", "slides", "scrna", "bulk"):  # paths relative to workdir
        sheet = workdir / "cohort/sheets" / f"{name}.tsv"
        sheet.write_text(sheet.read_text().replace(str(Path("results/demo/tiny")), "cohort"))
    run = snakemake(workdir, "--cores", "2", "--configfile", "override.yaml")
    assert "demo_" not in run.stdout + run.stderr
    overview = pd.read_csv(workdir / "results/cohort/overview.tsv", sep="\t", index_col=0)
    assert overview.loc["all", "subjects"] == 60


def test_a_cohort_without_mri_skips_the_imaging_branch(tmp_path):
    workdir = deploy(tmp_path, "demo:\n  activate: false\nclinical:\n  covariates: []\n")
    (workdir / "config/subjects.tsv").write_text(
        "subject_id\tcohort\tcentre\trfs_months\trfs_event\nP1\ttraining\tA\t12\t1\n"
    )
    run = snakemake(workdir, "-n", "--configfile", "override.yaml")
    assert "imaging branch: the mri sheet (config/mri.tsv) has no rows; skipped." in run.stderr
    assert "rule mri_" not in run.stdout + run.stderr
    assert "qc_exclusions" in run.stdout + run.stderr
