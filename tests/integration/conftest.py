"""Running the workflow in a working directory of its own, and the tiny demo run that the
integration tests share (once per session: it takes minutes)."""

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.integration import slurm

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
# two shards per cohort, a short encoder training, a small stability sample; its centres
# absent from training (14 and 12 subjects) are harmonised from their own images.
TINY_IMAGING = """\
imaging:
  shards_per_cohort: 2
  encoder:
    epochs: 4
    batch_size: 12
  stability:
    subjects: 10
  harmonisation:
    min_subjects_per_centre: 10
"""
# 24 training subjects are too few for the null test of consensus clustering to call the
# planted subtypes (only k = 5, with a two-subject cluster, beats the null): the tiny run
# keeps the PAC rule so that the steps after it have subtypes to work on. The rcsi rule and
# the no-structure path are tested on the default demo and in test_no_structure.py.
TINY_ANALYSIS = TINY_IMAGING + "subtypes:\n  consensus:\n    k_rule: pac\n"
TINY = "demo:\n  scale: tiny\n" + TINY_ANALYSIS


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
    # k is fixed at the planted 3: with the whole-tumour encoder the rcsi rule chooses k = 2 on
    # the default demo (issue 16's target k = 3 is not met yet; test_subtypes_default.py keeps
    # that as an expected failure), and the downstream acceptance tests check what each
    # branch recovers given the three subtypes. The null's p-value of every k is still computed.
    workdir = deploy(
        tmp_path_factory.mktemp("default"),
        "demo:\n  scale: default\nsubtypes:\n  consensus:\n    k: 3\n",
    )
    # About 14 minutes on 2 cores (imaging 6.5, slides 7, the rest 1): room to spare.
    snakemake(workdir, *DEFAULT_TARGETS, "--cores", "2", "--configfile", "override.yaml",
              timeout=2400)  # fmt: skip
    return workdir


# The tiny demo's cohort as a user's own: the sheets the demo wrote, analysed with the demo off.
TINY_OWN = """\
demo:
  activate: false
sheets:
{sheets}  bulk_counts: results/demo/tiny/bulk/counts.tsv
"""
TINY_SHEETS = "".join(
    f"  {name}: results/demo/tiny/sheets/{name}.tsv\n"
    for name in ("subjects", "mri", "slides", "scrna", "bulk")
)


# Columns that hold wall-clock time, which no two runs share: left out where runs are compared.
WALL_CLOCK_COLUMNS = {"training_curve.tsv": ("seconds",)}


def read_result(path: Path) -> pd.DataFrame:
    """A result table as written (.tsv or .parquet), without its wall-clock columns."""
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        table = pd.read_csv(path, sep="\t", keep_default_na=False)
    return table.drop(columns=list(WALL_CLOCK_COLUMNS.get(path.name, ())))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root with its size, modification time and mode."""
    return {
        str(path.relative_to(root)): (path.stat().st_size if path.is_file() else None,
                                      path.stat().st_mtime_ns, path.stat().st_mode)
        for path in sorted(root.rglob("*"))
    }  # fmt: skip


@dataclass
class SecondRun:
    """A second clean run of the tiny demo's cohort, from a read-only input tree."""

    workdir: Path
    inputs: Path
    inputs_before: dict[str, tuple]
    executor: str  # "slurm" where this machine can run a SLURM cluster, else "local"
    output: str
    seconds: float
    queue: str = ""  # squeue's lines for the run's jobs, taken before the cluster stopped
    exit_code: int = 0
    cluster: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="session")
def second_run(tiny_run, tmp_path_factory) -> SecondRun:
    """The tiny demo's cohort run again in a fresh working directory, with the inputs the
    demo made (copied, then made read-only) as the user's sheets and files; through
    profiles/slurm on a one-node SLURM cluster where this machine can start one (root, as
    in CI), otherwise locally. Its tables must equal those of `tiny_run` (determinism), it
    must leave its inputs as they were, and its jobs are checked in test_slurm.py."""
    workdir = deploy(tmp_path_factory.mktemp("second"), TINY_OWN.format(sheets=TINY_SHEETS)
                     + TINY_ANALYSIS)  # fmt: skip
    inputs = workdir / "results/demo/tiny"
    shutil.copytree(tiny_run / "results/demo/tiny", inputs, symlinks=True)
    for path in [inputs, *inputs.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = snapshot(inputs)
    run = None
    if reason := slurm.skip_reason():
        print(f"\nsecond run: local ({reason})")
        start = time.monotonic()
        done = snakemake(workdir, "--cores", "2", "--configfile", "override.yaml", check=False,
                         timeout=slurm.RUN_LIMIT)  # fmt: skip
        run = SecondRun(workdir, inputs, before, "local", done.stdout + done.stderr,
                        time.monotonic() - start, exit_code=done.returncode)  # fmt: skip
    else:
        with slurm.cluster() as timing:
            output, seconds, exit_code = slurm.run_profile(workdir)
            listed = slurm.queue(output)
            run = SecondRun(workdir, inputs, before, "slurm", output, seconds, queue=listed,
                            exit_code=exit_code, cluster=timing)  # fmt: skip
    print(f"\nsecond tiny run ({run.executor}): {run.seconds:.0f} s")
    if run.exit_code != 0:
        pytest.fail(f"the second run ({run.executor}) failed:\n{run.output[-20000:]}")
    return run
