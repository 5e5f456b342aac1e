"""rdls.subtypes.stability: each subtype's bootstrap stability (clusterboot's Jaccard)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

from rdls.errors import InputError
from rdls.subtypes.stability import (
    STABILITY_COLUMNS,
    _best_jaccard,
    bootstrap_stability,
    verdict,
)


def _blobs(std: float, seed: int = 0):
    return make_blobs(n_samples=60, centers=np.eye(3, 6) * 10, cluster_std=std, random_state=seed)


def test_separated_clusters_are_recovered_in_every_resample():
    X, truth = _blobs(1.0)

    table = bootstrap_stability(X, truth, reps=20, seed=0)

    assert list(table.columns) == STABILITY_COLUMNS
    assert table["cluster"].tolist() == [0, 1, 2]
    assert table["n"].tolist() == [20, 20, 20]
    np.testing.assert_allclose(table["jaccard_mean"], 1.0)
    np.testing.assert_allclose(table["jaccard_sd"], 0.0)
    assert (table["dissolved"] == 0).all()
    assert set(table["verdict"]) == {"highly stable"}


def test_an_arbitrary_split_of_noise_dissolves():
    X = np.random.default_rng(0).normal(size=(60, 8))
    labels = np.repeat([0, 1, 2], 20)  # three groups that nothing in X sets apart

    table = bootstrap_stability(X, labels, reps=20, seed=1)

    # a random third matches a k-means cluster of noise about as well as chance allows
    assert (table["jaccard_mean"] < 0.5).all()
    assert (table["dissolved"] > 0.8).all()
    assert set(table["verdict"]) == {"unstable"}


def test_a_planted_cluster_is_more_stable_than_an_arbitrary_split_of_another():
    # Cluster 2 is far away; clusters 0 and 1 split one Gaussian down the middle.
    rng = np.random.default_rng(3)
    near = rng.normal(size=(40, 4))
    far = rng.normal(size=(20, 4)) + np.array([12.0, 0.0, 0.0, 0.0])
    X = np.vstack([near, far])
    labels = np.r_[(X[:40, 1] > 0).astype(int), np.full(20, 2)]

    table = bootstrap_stability(X, labels, algorithms=["hierarchical"], reps=25, seed=2)

    by_cluster = table.set_index("cluster")["jaccard_mean"]
    assert by_cluster[2] == pytest.approx(1.0)
    assert by_cluster[0] < 0.85 and by_cluster[1] < 0.85


def test_best_jaccard_counts_only_the_drawn_members():
    # 6 items drawn: clusters A = {0, 1, 2}, B = {3, 4}; C had no member drawn
    original = np.array(
        [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=bool
    )
    found = np.array([7, 7, 5, 5, 5, 5])

    similarity = _best_jaccard(original[[0, 1, 2, 3, 4]], found[:5])

    # A vs {0, 1}: 2/3; A vs {2, 3, 4}: 1/5 -> 2/3. B vs {2, 3, 4}: 2/3. C: not drawn.
    np.testing.assert_allclose(similarity[:2], [2 / 3, 2 / 3])
    assert np.isnan(similarity[2])


def test_reruns_are_identical_and_the_seed_matters():
    X, truth = _blobs(4.0, seed=1)

    first = bootstrap_stability(X, truth, reps=8, seed=4)
    second = bootstrap_stability(X, truth, reps=8, seed=4)
    other = bootstrap_stability(X, truth, reps=8, seed=5)

    pd.testing.assert_frame_equal(first, second)
    assert not first["jaccard_mean"].equals(other["jaccard_mean"])


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.9, "highly stable"), (0.85, "highly stable"), (0.8, "stable"), (0.75, "stable"),
     (0.7, "pattern"), (0.6, "pattern"), (0.59, "unstable"), (float("nan"), "not estimated")],
)  # fmt: skip
def test_verdicts_follow_hennigs_thresholds(value, text):
    assert verdict(value) == text


@pytest.mark.parametrize(
    ("labels", "options", "message"),
    [
        (np.repeat([0, 1], 10), {"reps": 0}, r"stability_reps must be a whole number >= 1"),
        (np.repeat([0, 1], 10), {"reps": 2.5}, r"stability_reps must be a whole number >= 1"),
        (np.zeros(20, int), {}, "stability needs at least 2 clusters, got 1"),
        (np.repeat([0, 1], 5), {}, r"one row per label; got shape \(20, 3\) for 10 labels"),
        (np.repeat([0, 1], 10), {"algorithms": ["pam"]}, "valid are kmeans"),
    ],
)
def test_bad_arguments_are_refused(labels, options, message):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(InputError, match=message):
        bootstrap_stability(X, labels, seed=0, **{"reps": 2, **options})
