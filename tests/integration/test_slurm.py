"""The tiny demo's cohort through the cluster profile (profiles/slurm) on a one-node SLURM
cluster: `second_run` (conftest) runs it there where this machine can start one (root, as in
CI; tests/integration/slurm.py), from the inputs the local tiny run made. The run is checked
to have gone through SLURM job by job; test_reliability.py checks that its tables equal the
local run's. Times are printed (pytest -s) and recorded in docs/cluster.md.
"""

import re
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import TINY, deploy, snakemake
from tests.integration.slurm import PROFILE

pytestmark = pytest.mark.integration

SUBMITTED = re.compile(
    r"Job (\S+) has been submitted with SLURM jobid (\d+) "
    r"\(log: (\S+/((?:rule|group)_\w+)/\S*\.log)\)"
)
# A job in Snakemake's output: `rule x:` (or `checkpoint x:`) where it was submitted,
# `localrule x:` where it ran in the Snakemake process itself; indented inside a group job.
JOB = re.compile(r"^\s*(local)?(?:rule|checkpoint) (\w+):", re.MULTILINE)


@pytest.fixture(scope="module")
def slurm_run(second_run):
    if second_run.executor != "slurm":
        pytest.skip("the second tiny run ran locally: this machine cannot start SLURM")
    return second_run


def submissions(run) -> dict[str, tuple[str, Path, str]]:
    """SLURM job id -> (Snakemake job id, SLURM log, rule_<rule> or group_<group>_...)."""
    return {m[2]: (m[1], run.workdir / m[3], m[4]) for m in SUBMITTED.finditer(run.output)}


def test_the_profile_sets_resources_for_every_rule(tmp_path):
    """A rule added without an entry would run with its own resources, not scaled up on a
    retry: keep profiles/slurm in step with the rules. (Entries for rules that only some
    configs define may be there too.)"""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    listed = snakemake(deploy(tmp_path, TINY), "--list-rules", "--configfile", "override.yaml")
    # A rule's line starts with its name; a long docstring continues on indented lines.
    rules = {line.split()[0] for line in listed.stdout.splitlines() if line[:1].isalnum()}
    rules -= {"all"}
    assert rules - set(profile["set-resources"]) == set()
    assert set(profile["groups"]) <= rules
    assert profile["slurm-status-command"] == "squeue"


@pytest.mark.slurm
def test_every_job_ran_as_a_slurm_job(slurm_run):
    jobs = JOB.findall(slurm_run.output)
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", slurm_run.output)
    assert steps, "the run did not report all its steps done"
    assert len(jobs) == int(steps[-1][1])
    # All jobs but the target `all` went to SLURM, a group of jobs as one SLURM job.
    assert [rule for local, rule in jobs if local] == ["all"]
    remote = sorted(rule for local, rule in jobs if not local)
    submitted = submissions(slurm_run)
    assert len({job for job, _, _ in submitted.values()}) == len(submitted), "a retry"
    names = {name for _, _, name in submitted.values()}
    assert {"rule_mri_train_encoder", "rule_mri_embed", "rule_wsi_summary"} <= names
    for group in ("mri_prepare", "wsi_slide", "subtypes", "risk_score"):
        assert any(name.startswith(f"group_{group}_") for name in names), group
    # Each SLURM log holds the job's rules twice: the batch script's Snakemake and the job
    # step's (srun) each print them.
    in_logs = []
    for _, log, _ in submitted.values():
        in_logs += [rule for _, rule in JOB.findall(log.read_text())]
    assert sorted(in_logs) == sorted(remote * 2)


@pytest.mark.slurm
def test_slurm_finished_every_job_with_the_requested_resources(slurm_run):
    """squeue (no sacct: no accounting) still knew the run's jobs when it ended (MinJobAge is
    an hour)."""
    jobs = {line.split()[0]: line.split()[1:] for line in slurm_run.queue.splitlines()}
    submitted = submissions(slurm_run)
    assert set(jobs) == set(submitted)
    assert {state for state, *_ in jobs.values()} == {"COMPLETED"}
    for slurm_id, (_, _, name) in submitted.items():
        _, cpus, memory, limit, gpus = jobs[slurm_id]
        if name in ("rule_mri_train_encoder", "rule_mri_embed"):
            assert gpus == "gres:gpu:1", (name, gpus)
        elif name == "rule_mri_radiomics":
            assert (cpus, memory, limit, gpus) == ("1", "2000M", "1:00:00", "N/A")
        elif name.startswith("group_wsi_slide"):
            # The largest job's CPUs and memory (wsi_quantify), the sum of the runtimes.
            assert (cpus, memory, limit) == ("2", "3000M", "1:20:00"), name
