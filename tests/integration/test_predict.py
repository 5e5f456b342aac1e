"""Scoring new subjects with the locked models (`snakemake predict`) on the tiny demo.

The tiny run's external-validation subjects are scored again from their image files, as new
subjects would be: the subtypes, RRS and recurrence probabilities must be the ones the full
run gave them, and scoring must run nothing but the scoring job.
"""

import pandas as pd
import pytest

from .conftest import snakemake

pytestmark = pytest.mark.integration

COVARIATES = ["age", "sex", "t_stage", "n_stage", "cea_ng_ml"]  # config clinical.covariates
SHEETS = "results/demo/tiny/sheets"


def read(workdir, path):
    return pd.read_csv(workdir / path, sep="\t", dtype={"subject_id": str})


def held_out_sheet(workdir, *, drop=()):
    """The external-validation subjects of the run, as a sheet of new subjects."""
    subjects = read(workdir, f"{SHEETS}/subjects.tsv")
    mri = read(workdir, f"{SHEETS}/mri.tsv")
    assigned = read(workdir, "results/subtypes/assignments.tsv")
    external = assigned.loc[assigned["cohort"] == "external_validation", "subject_id"]
    sheet = subjects.merge(mri, on="subject_id")
    sheet = sheet[sheet["subject_id"].isin(external)]
    columns = ["subject_id", "centre", "image", "mask", "mask_label", *COVARIATES]
    return sheet[[c for c in columns if c not in drop]]


def score(workdir, sheet, *args, name="predict", check=True):
    sheet.to_csv(workdir / f"{name}.tsv", sep="\t", index=False)
    (workdir / f"{name}.yaml").write_text(f"predict:\n  subjects: {name}.tsv\n")
    return snakemake(workdir, "predict", "--cores", "2", *args,
                     "--configfile", "override.yaml", f"{name}.yaml", check=check)  # fmt: skip


@pytest.fixture(scope="module")
def predicted(tiny_run):
    sheet = held_out_sheet(tiny_run)
    plan = score(tiny_run, sheet, "--dry-run", "--forcerun", "predict")
    run = score(tiny_run, sheet)
    table = read(tiny_run, "results/predict/predictions.tsv").set_index("subject_id")
    return sheet, plan, run, table


def test_scoring_runs_only_the_scoring_job(predicted):
    """The locked models are inputs, up to date after the run: nothing is refitted."""
    _, plan, _, _ = predicted
    jobs = (plan.stdout + plan.stderr).split("Job stats:")[1].split("total")[0]
    assert [line.split()[0] for line in jobs.splitlines()[3:] if line.strip()] == ["predict"]


def test_held_out_subjects_get_the_subtypes_the_full_run_gave_them(tiny_run, predicted):
    sheet, _, _, table = predicted
    ids = sheet["subject_id"].tolist()
    assert len(ids) >= 5 and (table.loc[ids, "status"] == "ok").all()
    assigned = read(tiny_run, "results/subtypes/assignments.tsv").set_index("subject_id")
    assert table.loc[ids, "subtype"].tolist() == assigned.loc[ids, "subtype"].tolist()
    # assignments.tsv rounds the confidence to 4 decimals.
    assert (table.loc[ids, "confidence"] - assigned.loc[ids, "confidence"]).abs().max() <= 6e-5


def test_held_out_subjects_get_the_rrs_and_group_the_full_run_gave_them(tiny_run, predicted):
    sheet, _, _, table = predicted
    ids = sheet["subject_id"].tolist()
    scores = read(tiny_run, "results/survival/risk_scores.tsv").set_index("subject_id")
    assert (table.loc[ids, "rrs"] - scores.loc[ids, "rrs"]).abs().max() < 1e-6
    assert table.loc[ids, "rrs_group"].tolist() == scores.loc[ids, "rrs_group"].tolist()


def test_held_out_subjects_get_the_recurrence_probability_of_the_locked_model(tiny_run, predicted):
    sheet, _, _, table = predicted
    assert (table["horizon_months"] == 60).all()
    assert table["recurrence_probability"].between(0, 1).all()
    predictions = read(tiny_run, "results/survival/comparison/predictions.tsv")
    compared = predictions[predictions["subject_id"].isin(sheet["subject_id"])]
    if compared.empty:
        pytest.skip("the tiny external cohort is not in the model comparison (too few events)")
    for model, column in (("clinical + RRS", "recurrence_probability"),
                          ("clinical", "recurrence_probability_clinical")):  # fmt: skip
        risk = compared[compared["model"] == model].set_index("subject_id")["risk"]
        assert (table.loc[risk.index, column] - risk).abs().max() < 1e-6


def test_a_missing_covariate_stops_before_any_job_naming_the_column(tiny_run):
    sheet = held_out_sheet(tiny_run, drop=["cea_ng_ml"])
    run = score(tiny_run, sheet, "--dry-run", name="no_cea", check=False)
    assert run.returncode != 0
    message = run.stdout + run.stderr
    assert "no_cea.tsv: covariate column(s) 'cea_ng_ml' missing" in message
    assert "locked clinical model uses them" in message
