"""Provenance of a report: what produced it, when, with which software and which config.

A reader who finds a number in the report, or a reviewer who reruns it, needs the rdls version
and commit, the date, the Python and package versions, and a digest of the config (two runs
with the same digest were configured identically).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pandas as pd

from rdls.report._html import Section, paragraph, table

PACKAGES = (
    "snakemake", "numpy", "pandas", "scipy", "scikit-learn", "scikit-survival", "lifelines",
    "torch", "monai", "torchio", "pyradiomics-bhklab", "pyradiomics", "inmoose", "scanpy",
    "anndata", "pydeseq2", "gseapy", "openslide-python", "matplotlib",
)  # fmt: skip


def provenance(config: Mapping, *, repository: str | Path | None = None) -> dict:
    """The facts of the provenance section, as a JSON-ready dict."""
    from rdls import __version__

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "rdls": __version__,
        "commit": _commit(repository),
        "written": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "config_sha256": config_digest(config),
    }


def config_digest(config: Mapping) -> str:
    """SHA-256 of the config as canonical JSON (sorted keys): equal configs, equal digests."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def provenance_section(config: Mapping, *, repository: str | Path | None = None) -> Section:
    """The report's last section: the run's provenance and the packages' versions."""
    facts = provenance(config, repository=repository)
    text = (
        f"Written {facts['written']} by rdls {facts['rdls']} (commit {facts['commit']}) with "
        f"Python {facts['python']} on {facts['platform']}. Config SHA-256 "
        f"{facts['config_sha256'][:16]}\u2026: two reports with the same digest come from the "
        "same settings."
    )
    packages = pd.DataFrame(
        {"package": list(facts["packages"]), "version": list(facts["packages"].values())}
    )
    body = paragraph(text) + table(
        packages, caption="Versions of the packages the analysis used.", max_rows=None,
        index_header=False,
    )  # fmt: skip
    return Section("provenance", "Provenance", body)


def _commit(repository: str | Path | None) -> str:
    if repository is None:
        return "unknown"
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    if done.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = subprocess.run(
        ["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, timeout=10, check=False,
    ).stdout.strip()  # fmt: skip
    return done.stdout.strip() + (" with local changes" if dirty else "")
