"""A run killed with SIGKILL (power cut, OOM killer, a lost node) and started again.

The finished tiny run is copied and the encoder's training and one slide's quantification are
forgotten; the workflow is then started towards the deep features and the slide table and
killed, with all its processes, first while the encoder trains and then, after a restart,
while the slide is quantified. The user's way back is the README's: `snakemake --unlock`
(the killed run's lock stays) and the same command again (profiles/default sets
`rerun-incomplete`). Nothing the killed jobs left may be taken as a result, and the finished
tables must equal those of the uninterrupted run.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import SNAKEMAKE, read_result, snakemake

pytestmark = pytest.mark.integration

SLIDE = "H0003"
TARGETS = ("results/imaging/features/deep.parquet", "results/wsi/slide_metrics.tsv")
ENCODER = "results/imaging/encoder/encoder.pt"
QUANTIFIED = (f"results/wsi/quantified/{SLIDE}.parquet", f"results/wsi/quantified/{SLIDE}.tsv")
TRAINING_LOG = "logs/imaging/encoder/train.log"
SLIDE_LOG = f"logs/wsi/quantified/{SLIDE}.log"
# The tables of the two killed steps and what follows from them.
RESULTS = (
    "results/imaging/encoder/training_curve.tsv",
    "results/imaging/features/deep.parquet",
    "results/imaging/features/unharmonised/deep.parquet",
    f"results/wsi/quantified/{SLIDE}.parquet",
    f"results/wsi/quantified/{SLIDE}.tsv",
    "results/wsi/slide_metrics.tsv",
)


def _start(workdir: Path) -> subprocess.Popen:
    """The workflow in a session of its own, so that one killpg reaches every job."""
    return subprocess.Popen(
        [*SNAKEMAKE, *TARGETS, "--cores", "2", "--configfile", "override.yaml"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_when(run: subprocess.Popen, log: Path, line: str, *, limit: float = 600) -> None:
    """SIGKILL the whole run as soon as `log` holds `line`: the step is under way."""
    deadline = time.monotonic() + limit
    while line not in (log.read_text() if log.exists() else ""):
        if run.poll() is not None:
            pytest.fail(f"the run ended (exit {run.returncode}) before {log} showed {line!r}")
        if time.monotonic() > deadline:
            os.killpg(run.pid, signal.SIGKILL)
            pytest.fail(f"{log} did not show {line!r} within {limit} s")
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


def _planned(workdir: Path) -> str:
    run = snakemake(workdir, *TARGETS, "-n", "--configfile", "override.yaml")
    return run.stdout + run.stderr


def _forget(tiny_run: Path, workdir: Path) -> Path:
    """A copy of the finished run without the encoder and the slide's quantification, and
    without what they feed on the way to the targets (Snakemake does not rebuild a missing
    file whose consumers are up to date)."""
    shutil.copytree(tiny_run, workdir, symlinks=True)
    forgotten = [ENCODER, *QUANTIFIED, TRAINING_LOG, SLIDE_LOG, *TARGETS]
    forgotten += [str(p.relative_to(workdir))
                  for p in (workdir / "results/imaging/embeddings").glob("*.parquet")]  # fmt: skip
    for path in forgotten:
        (workdir / path).unlink()
    return workdir


@pytest.fixture(scope="module")
def crashes(tiny_run, tmp_path_factory):
    workdir = _forget(tiny_run, tmp_path_factory.mktemp("crash") / "run")
    seen = {}

    # 1. Killed while the encoder trains (its log has an epoch, its checkpoint is not final).
    _kill_when(_start(workdir), workdir / TRAINING_LOG, "epoch 1/")
    snakemake(workdir, "--unlock")
    seen["after_training_kill"] = _planned(workdir)

    # 2. Restarted, and killed again while the slide is being quantified (its log names the
    # slide when it is opened).
    _kill_when(_start(workdir), workdir / SLIDE_LOG, " um/px")
    snakemake(workdir, "--unlock")
    seen["after_slide_kill"] = _planned(workdir)
    seen["resumed"] = snakemake(workdir, *TARGETS, "--cores", "2", "--configfile",
                                "override.yaml").stderr  # fmt: skip
    return workdir, seen


def test_a_killed_run_leaves_its_lock_and_unlock_releases_it(tiny_run, tmp_path):
    """Without --unlock, the restart says what to do instead of running over a live run."""
    workdir = _forget(tiny_run, tmp_path / "run")
    _kill_when(_start(workdir), workdir / TRAINING_LOG, "epoch 1/")
    again = snakemake(workdir, *TARGETS, "--cores", "2", "--configfile", "override.yaml",
                      check=False)  # fmt: skip
    assert again.returncode != 0
    assert "--unlock" in again.stdout + again.stderr
    snakemake(workdir, "--unlock")
    assert "Nothing to be done" not in _planned(workdir)


def test_the_killed_steps_are_planned_again(crashes):
    _, seen = crashes
    assert "rule mri_train_encoder:" in seen["after_training_kill"]
    # The encoder finished in the second run, before the slide; the slide is still owed.
    assert "rule mri_train_encoder:" not in seen["after_slide_kill"]
    assert "rule wsi_quantify:" in seen["after_slide_kill"]
    assert f"slide={SLIDE}" in seen["after_slide_kill"]


def test_nothing_a_killed_job_wrote_is_kept(crashes):
    workdir, seen = crashes
    # The killed jobs were run again in full, and then nothing is owed.
    assert "rule wsi_quantify:" in seen["resumed"]
    assert "Nothing to be done" in _planned(workdir)
    for output in (ENCODER, *QUANTIFIED):
        assert (workdir / output).stat().st_size > 0, output


def test_resumed_results_equal_the_uninterrupted_run(tiny_run, crashes):
    workdir, _ = crashes
    for table in RESULTS:
        resumed, uninterrupted = read_result(workdir / table), read_result(tiny_run / table)
        pd.testing.assert_frame_equal(resumed, uninterrupted, check_exact=True, obj=table)
