"""A cohort whose low-risk group has no recurrence (issue 18): on a second independently drawn
cohort this once stopped the run at `rrs_score`, without risk scores, model comparison or
report. The finished tiny run is switched to its sheets as a user's own cohort, the external
cohort's low-RRS subjects are all censored, and the workflow is brought up to date: every rule
that reads the outcome is rerun (the steps before it do not read the events and stay as they
are), the run reaches the report, and the table says how the group's hazard ratio was fitted.
(With the screen inside the cross-validation, the tiny run's own training low-risk group has no
recurrence either: the tiny run itself goes through the Firth fit in training.)"""

import html
import os
import shutil

import pandas as pd
import pytest

from tests.integration.conftest import TINY_ANALYSIS, TINY_OWN, TINY_SHEETS, snakemake

pytestmark = pytest.mark.integration

COHORT = "external_validation"
# Every rule whose outputs depend on the outcome, and what follows them.
OUTCOME_RULES = ("survival_km", "survival_cox", "rrs_fit")


@pytest.fixture(scope="module")
def censored_low_group(tiny_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sparse") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    (workdir / "override.yaml").write_text(TINY_OWN.format(sheets=TINY_SHEETS) + TINY_ANALYSIS)
    sheet = workdir / "results/demo/tiny/sheets/subjects.tsv"
    stat = sheet.stat()
    subjects = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    scores = pd.read_csv(workdir / "results/survival/risk_scores.tsv", sep="\t")
    low = scores.loc[(scores["cohort"] == COHORT) & (scores["rrs_group"] == "low"), "subject_id"]
    censored = subjects["subject_id"].isin(low)
    assert censored.sum() >= 5 and (subjects.loc[censored, "rfs_event"] == "1").any()
    subjects.loc[censored, "rfs_event"] = "0"
    subjects.to_csv(sheet, sep="\t", index=False)
    # The images, slides and counts are the tiny run's: keep the sheet's time so that only the
    # rules that read the outcome are rerun (forced below), not the imaging branch.
    os.utime(sheet, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    done = snakemake(workdir, "--cores", "2", "--configfile", "override.yaml",
                     "--rerun-triggers", "mtime", "--forcerun", *OUTCOME_RULES)  # fmt: skip
    return workdir, done.stdout + done.stderr


def read(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def test_the_run_reaches_the_report_and_leaves_nothing_to_do(censored_low_group):
    workdir, output = censored_low_group
    assert "rdls: finished" in output
    assert (workdir / "results/report/subtype_biology.html").stat().st_size > 10_000
    plan = snakemake(workdir, "-n", "--configfile", "override.yaml", "--rerun-triggers", "mtime")
    assert "Nothing to be done" in plan.stdout + plan.stderr


def test_the_group_without_events_gets_a_firth_hazard_ratio_that_says_so(
    censored_low_group, tiny_run
):
    workdir, _ = censored_low_group
    groups = read(workdir / "results/survival/rrs/groups.tsv").set_index("cohort")
    row = groups.loc[COHORT]
    assert row["note"].startswith("Firth's penalised likelihood")
    assert "reference level 'low' of covariate 'rrs_group' has no events" in row["note"]
    assert 0 < float(row["ci_lower"]) < float(row["hazard_ratio"]) < float(row["ci_upper"])
    assert float(row["ci_upper"]) < 1e4  # a profile bound, not a Wald interval run off
    # the RRS is fitted in training, so every other cohort's row is the tiny run's own
    before = read(tiny_run / "results/survival/rrs/groups.tsv").set_index("cohort")
    pd.testing.assert_frame_equal(groups.drop(index=COHORT), before.drop(index=COHORT))
    report = html.unescape((workdir / "results/report/subtype_biology.html").read_text())
    assert "Firth's penalised likelihood" in report


def test_the_model_comparison_still_covers_the_cohort(censored_low_group):
    workdir, _ = censored_low_group
    auc = read(workdir / "results/survival/comparison/auc.tsv")
    assert COHORT in set(auc["cohort"])
    scores = read(workdir / "results/survival/risk_scores.tsv")
    assert (scores["cohort"] == COHORT).sum() == 14
