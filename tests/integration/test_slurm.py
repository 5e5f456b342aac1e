"""The tiny demo through the cluster profile (profiles/slurm) on a one-node SLURM cluster.

scripts/slurm_cluster.sh installs munge and SLURM from Debian's packages where they are
missing, starts them for this module and stops them after it; that needs root (as in CI).
The run is checked to have gone through SLURM job by job, and its tables against the local
tiny run's. Times are printed (pytest -s) and recorded in docs/cluster.md.
"""

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import SNAKEMAKE, TINY, deploy, snakemake

pytestmark = pytest.mark.integration

CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
PROFILE = REPO / "profiles" / "slurm"
# The SLURM run took about 15 minutes on the 2-core machine (docs/cluster.md). A plugin
# that loses track of its jobs waits forever, so the run is killed after this many seconds.
RUN_LIMIT = 2700
# The tables each branch hands on (DESIGN.md's contracts), as the local run writes them.
TABLES = (
    "results/cohort/overview.tsv",
    "results/imaging/features/radiomics.parquet",
    "results/imaging/features/deep.parquet",
    "results/subtypes/assignments.tsv",
    "results/survival/risk_scores.tsv",
    "results/survival/cox/hazard_ratios.tsv",
    "results/wsi/slide_metrics.tsv",
)
SUBMITTED = re.compile(
    r"Job (\S+) has been submitted with SLURM jobid (\d+) "
    r"\(log: (\S+/((?:rule|group)_\w+)/\S*\.log)\)"
)
# A job in Snakemake's output: `rule x:` (or `checkpoint x:`) where it was submitted,
# `localrule x:` where it ran in the Snakemake process itself; indented inside a group job.
JOB = re.compile(r"^\s*(local)?(?:rule|checkpoint) (\w+):", re.MULTILINE)


@dataclass
class SlurmRun:
    workdir: Path
    output: str
    seconds: float

    def submissions(self) -> dict[str, tuple[str, Path, str]]:
        """SLURM job id -> (Snakemake job id, SLURM log, rule_<rule> or group_<group>_...)."""
        return {m[2]: (m[1], Path(m[3]), m[4]) for m in SUBMITTED.finditer(self.output)}


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: scripts/slurm_cluster.sh installs and starts SLURM"
    installed = all(shutil.which(tool) for tool in ("munged", "slurmctld", "slurmd", "sinfo"))
    if not installed and not (shutil.which("apt-get") and shutil.which("dpkg")):
        return "SLURM is not installed and apt-get/dpkg are not there to install it"
    return None


def _cluster(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER), command], capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    if reason := _skip_reason():
        pytest.skip(reason)
    start = time.monotonic()
    try:
        started = _cluster("start")
        if started.returncode != 0:
            pytest.fail(f"scripts/slurm_cluster.sh start failed:\n{started.stdout}{started.stderr}")
        print(f"\nSLURM cluster up in {time.monotonic() - start:.0f} s")
        yield
    finally:
        stopped = _cluster("stop")
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="module")
def local_run(request) -> Path:
    """The local tiny run (conftest's `tiny_run`), timed where this module makes it."""
    if reason := _skip_reason():  # before the minutes of the local run
        pytest.skip(reason)
    start = time.monotonic()
    workdir = request.getfixturevalue("tiny_run")
    print(f"\nlocal tiny run: {time.monotonic() - start:.0f} s (0 when made earlier)")
    return workdir


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory) -> SlurmRun:
    workdir = deploy(tmp_path_factory.mktemp("tiny_slurm"), TINY)
    # Status checks every 10 s instead of 40 (docs/cluster.md, "Polling"); successful jobs'
    # SLURM logs kept for the checks below.
    command = ["timeout", "-s", "KILL", str(RUN_LIMIT), *SNAKEMAKE, "--profile", str(PROFILE),
               "--configfile", "override.yaml", "--slurm-init-seconds-before-status-checks",
               "10", "--slurm-keep-successful-logs"]  # fmt: skip
    start = time.monotonic()
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.monotonic() - start
    output = run.stdout + run.stderr
    if run.returncode != 0:
        why = f"killed after {RUN_LIMIT} s" if run.returncode in (-9, 137) else "failed"
        pytest.fail(f"snakemake --profile profiles/slurm {why}:\n{output[-20000:]}")
    print(f"\nSLURM tiny run: {seconds:.0f} s")
    return SlurmRun(workdir, output, seconds)


def test_the_profile_sets_resources_for_every_rule(tmp_path):
    """A rule added without an entry would run with its own resources, not scaled up on a
    retry: keep profiles/slurm in step with the rules. (Entries for rules that only some
    configs define may be there too.)"""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    listed = snakemake(deploy(tmp_path, TINY), "--list-rules", "--configfile", "override.yaml")
    rules = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()} - {"all"}
    assert rules - set(profile["set-resources"]) == set()
    assert set(profile["groups"]) <= rules
    assert profile["slurm-status-command"] == "squeue"


@pytest.mark.slurm
def test_results_equal_the_local_run(local_run, slurm_run):
    for table in TABLES:
        if table.endswith(".parquet"):
            local = pd.read_parquet(local_run / table)
            cluster = pd.read_parquet(slurm_run.workdir / table)
        else:
            local = pd.read_csv(local_run / table, sep="\t")
            cluster = pd.read_csv(slurm_run.workdir / table, sep="\t")
        assert len(local) > 0, table
        pd.testing.assert_frame_equal(cluster, local, rtol=1e-6, atol=1e-9, obj=table)


@pytest.mark.slurm
def test_every_job_ran_as_a_slurm_job(slurm_run):
    jobs = JOB.findall(slurm_run.output)
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", slurm_run.output)
    assert steps, "the run did not report all its steps done"
    assert len(jobs) == int(steps[-1][1])
    # All jobs but the target `all` went to SLURM, a group of jobs as one SLURM job.
    assert [rule for local, rule in jobs if local] == ["all"]
    remote = sorted(rule for local, rule in jobs if not local)
    submissions = slurm_run.submissions()
    assert len({job for job, _, _ in submissions.values()}) == len(submissions), "a retry"
    names = {name for _, _, name in submissions.values()}
    assert {"rule_mri_train_encoder", "rule_mri_embed", "rule_wsi_summary"} <= names
    for group in ("mri_prepare", "wsi_slide", "subtypes", "risk_score"):
        assert any(name.startswith(f"group_{group}_") for name in names), group
    # Each SLURM log holds the job's rules twice: the batch script's Snakemake and the job
    # step's (srun) each print them.
    in_logs = []
    for _, log, _ in submissions.values():
        in_logs += [rule for _, rule in JOB.findall(log.read_text())]
    assert sorted(in_logs) == sorted(remote * 2)


@pytest.mark.slurm
def test_slurm_finished_every_job_with_the_requested_resources(slurm_run):
    """squeue (no sacct: no accounting) still knows the run's jobs (MinJobAge is an hour)."""
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_run.output)[1]
    fields = "JobID:20,State:20,NumCPUs:8,MinMemory:12,TimeLimit:14,tres-per-job:30"
    queue = subprocess.run(["squeue", "--states=all", "--noheader", "--name", run_id,
                            "-O", fields], capture_output=True, text=True, check=True)  # fmt: skip
    jobs = {line.split()[0]: line.split()[1:] for line in queue.stdout.splitlines()}
    submissions = slurm_run.submissions()
    assert set(jobs) == set(submissions)
    assert {state for state, *_ in jobs.values()} == {"COMPLETED"}
    for slurm_id, (_, _, name) in submissions.items():
        _, cpus, memory, limit, gpus = jobs[slurm_id]
        if name in ("rule_mri_train_encoder", "rule_mri_embed"):
            assert gpus == "gres:gpu:1", (name, gpus)
        elif name == "rule_mri_radiomics":
            assert (cpus, memory, limit, gpus) == ("1", "2000M", "1:00:00", "N/A")
        elif name.startswith("group_wsi_slide"):
            # The largest job's CPUs and memory (wsi_quantify), the sum of the runtimes.
            assert (cpus, memory, limit) == ("2", "3000M", "1:20:00"), name
