"""A one-node SLURM cluster for the tests (scripts/slurm_cluster.sh) and a run through
profiles/slurm on it.

The script installs munge and SLURM from Debian's packages where they are missing and starts
them; that needs root (as in CI). The cluster is up only while `cluster()` is entered.
"""

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
PROFILE = REPO / "profiles" / "slurm"
# The tiny run through SLURM took about 15 minutes on the 2-core machine (docs/cluster.md).
# A plugin that loses track of its jobs waits forever, so the run is killed after this long.
RUN_LIMIT = 2700
QUEUE_FIELDS = "JobID:20,State:20,NumCPUs:8,MinMemory:12,TimeLimit:14,tres-per-job:30"


def skip_reason() -> str | None:
    """Why this machine cannot run the test cluster, or None."""
    if os.geteuid() != 0:
        return "needs root: scripts/slurm_cluster.sh installs and starts SLURM"
    installed = all(shutil.which(tool) for tool in ("munged", "slurmctld", "slurmd", "sinfo"))
    if not installed and not (shutil.which("apt-get") and shutil.which("dpkg")):
        return "SLURM is not installed and apt-get/dpkg are not there to install it"
    return None


def _script(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER), command], capture_output=True, text=True, timeout=900
    )


@contextlib.contextmanager
def cluster() -> Iterator[dict[str, float]]:
    """Start the cluster, and stop it on the way out whatever happened inside."""
    timing = {}
    start = time.monotonic()
    try:
        started = _script("start")
        if started.returncode != 0:
            raise RuntimeError(f"scripts/slurm_cluster.sh start failed:\n{started.stderr}")
        timing["start_seconds"] = time.monotonic() - start
        yield timing
    finally:
        stopped = _script("stop")
        if stopped.returncode != 0:
            raise RuntimeError(f"scripts/slurm_cluster.sh stop failed:\n{stopped.stderr}")


def run_profile(workdir: Path) -> tuple[str, float, int]:
    """Snakemake through profiles/slurm in workdir: its output, seconds and exit code."""
    from tests.integration.conftest import SNAKEMAKE

    # Status checks every 5 s instead of 40 (docs/cluster.md, "Polling"); the SLURM logs of
    # successful jobs are kept for the checks in test_slurm.py.
    command = ["timeout", "-s", "KILL", str(RUN_LIMIT), *SNAKEMAKE, "--profile", str(PROFILE),
               "--configfile", "override.yaml", "--slurm-init-seconds-before-status-checks",
               "5", "--slurm-keep-successful-logs"]  # fmt: skip
    start = time.monotonic()
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    return run.stdout + run.stderr, time.monotonic() - start, run.returncode


def queue(output: str) -> str:
    """squeue's lines for the run's jobs (without accounting, squeue is what knows them)."""
    found = re.search(r"SLURM run ID: (\S+)", output)
    if not found:
        return ""
    listed = subprocess.run(["squeue", "--states=all", "--noheader", "--name", found[1],
                             "-O", QUEUE_FIELDS], capture_output=True, text=True)  # fmt: skip
    return listed.stdout
