"""Running the workflow in a working directory of its own, and the tiny demo run that the
integration tests share (once per session: it takes minutes)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and run.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{run.stdout}\n{run.stderr}")
    return run


def deploy(workdir: Path, overrides: str = "") -> Path:
    """A working directory as a user has it: the config folder, plus overrides."""
    shutil.copytree(REPO / "config", workdir / "config")
    (workdir / "override.yaml").write_text(overrides)
    return workdir


# The tiny demo with the imaging branch cut down to what a 2-core CI machine runs in minutes:
# two shards per cohort, a short encoder training, a small stability sample.
TINY_IMAGING = """\
imaging:
  shards_per_cohort: 2
  encoder:
    epochs: 4
    batch_size: 12
  stability:
    subjects: 10
"""
TINY = "demo:\n  scale: tiny\n" + TINY_IMAGING


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    workdir = deploy(tmp_path_factory.mktemp("tiny"), TINY)
    snakemake(workdir, "--cores", "2", "--configfile", "override.yaml")
    return workdir


# What the default-demo acceptance tests read: the imaging features and harmonisation report,
# the subtypes, the survival analysis, the slide metrics, the transcriptomic branches and the
# subtype-biology report.
DEFAULT_TARGETS = (
    "results/imaging/features/deep.parquet",
    "results/imaging/harmonisation.tsv",
    "results/subtypes/assignments.tsv",
    "results/subtypes/agreement.tsv",
    "results/survival/cox/hazard_ratios.tsv",
    "results/survival/rrs/groups.tsv",
    "results/survival/comparison/auc.tsv",
    "results/wsi/slide_metrics.tsv",
    "results/wsi/by_subtype.tsv",
    "results/bulk/deseq2/summary.tsv",
    "results/bulk/scores/tests.tsv",
    "results/bulk/deconvolution/fractions.tsv",
    "results/scrna/by_subtype/composition.tsv",
    "results/report/subtype_biology.html",
)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    workdir = deploy(tmp_path_factory.mktemp("default"), "demo:\n  scale: default\n")
    # About 14 minutes on 2 cores (imaging 6.5, slides 7, the rest 1): room to spare.
    snakemake(workdir, *DEFAULT_TARGETS, "--cores", "2", "--configfile", "override.yaml",
              timeout=2400)  # fmt: skip
    return workdir
