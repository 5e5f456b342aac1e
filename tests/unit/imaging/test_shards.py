"""rdls.imaging.shards: stable hash shards, so that a new subject reruns one shard only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from rdls.imaging.shards import assign_shards, shard_cohort, shard_index

# Computed once (SHA-256 of the ID, first 8 bytes little-endian, modulo the shard count).
# A change here reshuffles every subject of every existing run: every per-subject job reruns
# and the encoder is retrained. Change these values only on purpose.
KNOWN = {
    ("S001", 8): 5,
    ("S001", 16): 5,
    ("S001", 100): 65,
    ("S002", 16): 8,
    ("S002", 100): 88,
    ("CMB-CRC-0001", 8): 1,
    ("CMB-CRC-0001", 16): 9,
    ("demo-17", 16): 13,
    ("demo-17", 100): 97,
}


@pytest.mark.parametrize(("subject_id", "shards"), sorted(KNOWN))
def test_shard_index_keeps_its_known_values(subject_id, shards):
    assert shard_index(subject_id, shards) == KNOWN[(subject_id, shards)]


def test_shard_index_is_in_range_and_takes_any_id_type():
    assert shard_index("S001", 1) == 0
    assert shard_index(17, 16) == shard_index("17", 16)
    assert all(0 <= shard_index(f"S{i}", 7) < 7 for i in range(200))


def test_shard_names_are_cohort_and_two_digits_indexed_by_subject():
    subjects = pd.DataFrame(
        {
            "subject_id": ["S001", "S002", "CMB-CRC-0001", "demo-17"],
            "cohort": ["training", "training", "external_validation", "training"],
        }
    )

    shards = assign_shards(subjects, shards_per_cohort=16)

    assert shards.name == "shard"
    assert shards.index.name == "subject_id"
    assert shards.to_dict() == {
        "S001": "training-05",
        "S002": "training-08",
        "CMB-CRC-0001": "external_validation-09",
        "demo-17": "training-13",
    }


def test_adding_a_subject_moves_no_other_subject():
    rng = np.random.default_rng(0)
    ids = [f"P{n:05d}" for n in rng.choice(100_000, size=60, replace=False)]
    subjects = pd.DataFrame({"subject_id": ids, "cohort": ["training", "biological"] * 30})
    before = assign_shards(subjects, shards_per_cohort=4)

    newcomer = pd.DataFrame({"subject_id": ["P-new"], "cohort": ["biological"]})
    after = assign_shards(pd.concat([newcomer, subjects]), shards_per_cohort=4)

    pd.testing.assert_series_equal(after.loc[before.index], before)
    assert after["P-new"].startswith("biological-")
    # Only the newcomer's shard of its own cohort changed membership.
    changed = {
        shard
        for shard in set(after)
        if set(after.index[after == shard]) != set(before.index[before == shard])
    }
    assert changed == {after["P-new"]}


def test_shard_cohort_inverts_the_name():
    subjects = pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(12)],
            "cohort": ["training", "internal_validation", "my-cohort", "x"] * 3,
        }
    )
    shards = assign_shards(subjects, shards_per_cohort=12)
    assert [shard_cohort(s) for s in shards] == list(subjects["cohort"])
    assert shard_cohort("my-cohort-03") == "my-cohort"


@pytest.mark.parametrize("shards_per_cohort", [0, -1])
def test_fewer_than_one_shard_is_refused(shards_per_cohort):
    subjects = pd.DataFrame({"subject_id": ["S1"], "cohort": ["training"]})
    with pytest.raises(ValueError, match="shards_per_cohort must be at least 1"):
        assign_shards(subjects, shards_per_cohort=shards_per_cohort)


def test_shards_fill_about_evenly():
    ids = [f"CRC-{i:04d}" for i in range(1000)]
    counts = np.bincount([shard_index(i, 8) for i in ids], minlength=8)

    assert counts.sum() == 1000
    assert counts.min() >= 95 and counts.max() <= 155  # 125 expected in each
    assert chisquare(counts).pvalue > 0.001
