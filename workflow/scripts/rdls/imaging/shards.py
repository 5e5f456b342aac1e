"""Shards: small, stable groups of subjects that share one job of each per-subject step.

A job that imports torch and SimpleITK spends seconds starting; one job per subject would
spend most of a run starting jobs. Subjects are therefore grouped into a fixed number of
shards per cohort by a hash of their subject_id. The hash never changes, so adding a subject
changes exactly one shard of its own cohort: Snakemake reruns that shard's jobs and the
aggregates, and never touches the training cohort's shards or the encoder trained on them.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def shard_index(subject_id: str, shards: int) -> int:
    """Stable shard number of a subject: a hash of its ID, the same in every run and Python."""
    digest = hashlib.sha256(str(subject_id).encode()).digest()
    return int.from_bytes(digest[:8], "little") % int(shards)


def assign_shards(subjects: pd.DataFrame, *, shards_per_cohort: int) -> pd.Series:
    """Shard name (``<cohort>-<nn>``) of every subject, indexed by subject_id.

    Parameters
    ----------
    subjects : pandas.DataFrame
        With columns ``subject_id`` and ``cohort``.
    shards_per_cohort : int
        Shards of each cohort; a cohort smaller than this gets fewer (empty shards are
        never made).
    """
    if shards_per_cohort < 1:
        raise ValueError("shards_per_cohort must be at least 1")
    names = [
        f"{cohort}-{shard_index(sid, shards_per_cohort):02d}"
        for sid, cohort in zip(subjects["subject_id"], subjects["cohort"], strict=True)
    ]
    return pd.Series(names, index=pd.Index(subjects["subject_id"], name="subject_id"), name="shard")


def shard_cohort(shard: str) -> str:
    """The cohort a shard name belongs to."""
    return shard.rsplit("-", 1)[0]
