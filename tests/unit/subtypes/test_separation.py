"""Clusters or bins of a continuum: dip tests on pairwise projections (rdls.subtypes.separation)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from rdls.errors import InputError
from rdls.subtypes.consensus import choose_k
from rdls.subtypes.separation import (
    PAIR_COLUMNS,
    pair_separation,
    separation_by_k,
    separation_summary,
)
from rdls.subtypes.structure import structure_report


def _kmeans(data, k):
    return KMeans(k, n_init=10, random_state=0).fit(data).labels_


def test_separated_clusters_are_separated_and_bins_of_a_continuum_are_not():
    rng = np.random.default_rng(3)
    blobs, _ = make_blobs(150, n_features=20, centers=3, cluster_std=1.0, center_box=(-6, 6),
                          random_state=3)  # fmt: skip
    # One skewed, curved continuum (size and what grows with it) plus noise: no clusters,
    # and not normal, as the demo's null variant.
    size = rng.lognormal(0.0, 0.35, 150)
    continuum = np.column_stack([size, size**2, np.log(size), *rng.normal(0, 0.2, (17, 150))])

    separated = pair_separation(blobs, _kmeans(blobs, 3))
    binned = pair_separation(continuum, _kmeans(continuum, 3))

    assert list(separated.columns) == PAIR_COLUMNS[1:]
    assert len(separated) == 3 and separated["n_a"].sum() + separated["n_b"].sum() == 300
    assert separated["p_value"].max() < 1e-3
    assert binned["p_value"].min() > 0.05


def test_the_projection_keeps_the_clusters_in_between():
    """Bins at either end of a continuum, projected without the middle one, would look
    separated; all items are projected, so they do not."""
    line = np.linspace(-3, 3, 300)[:, None] + np.random.default_rng(0).normal(0, 0.05, (300, 2))
    labels = np.digitize(line[:, 0], [-1, 1])

    pairs = pair_separation(line, labels).set_index(["cluster_a", "cluster_b"])

    assert pairs.loc[(0, 2), "p_value"] > 0.05


def test_the_least_separated_pair_sets_the_p_value_of_k():
    pairs = pd.DataFrame({"k": [2, 3, 3, 3], "cluster_a": [0, 0, 0, 1], "cluster_b": [1, 1, 2, 2],
                          "n_a": 1, "n_b": 1, "dip": 0.1,
                          "p_value": [0.001, 0.002, 0.6, 0.01]})  # fmt: skip

    summary = separation_summary(pairs).set_index("k")

    assert summary.loc[2, "separation_p"] == 0.001
    assert summary.loc[3, "separation_p"] == 0.6
    assert summary.loc[3, "least_separated"] == "0-2"


def test_separation_by_k_covers_every_k():
    data, _ = make_blobs(60, n_features=4, centers=2, random_state=0)
    table = separation_by_k(data, {2: _kmeans(data, 2), 3: _kmeans(data, 3)})
    assert table.groupby("k").size().to_dict() == {2: 1, 3: 3}


@pytest.mark.parametrize(
    ("data", "labels", "message"),
    [(np.ones((4, 2)), np.zeros(4), "at least 2 clusters"),
     (np.full((4, 2), np.nan), np.array([0, 0, 1, 1]), "finite"),
     (np.ones((4, 2)), np.array([0, 1]), "one label per item")],
)  # fmt: skip
def test_bad_input_is_refused(data, labels, message):
    with pytest.raises(InputError, match=message):
        pair_separation(data, labels)


def _summary(separation_p):
    return pd.DataFrame({"k": [2, 3, 4], "pac": [0.1, 0.05, 0.2], "min_cluster_size": 20,
                         "rcsi": [0.8, 1.5, 0.3], "rcsi_se": 0.01, "p_value": 1e-6,
                         "p_adjusted": 1e-5, "p_monte_carlo": 0.04, "null_pac_mean": 0.5,
                         "null_pac_sd": 0.05, "separation_p": separation_p,
                         "least_separated": ["0-1", "1-2", "0-3"]})  # fmt: skip


def test_the_rcsi_rule_takes_only_separated_k_when_asked():
    summary = _summary([0.001, 0.4, 0.001])

    assert choose_k(summary, separated_only=False) == 3
    assert choose_k(summary, separated_only=True) == 2
    assert choose_k(_summary([0.3, 0.4, 0.5]), separated_only=True) is None
    with pytest.raises(InputError, match="separation_p"):
        choose_k(summary.drop(columns="separation_p"), separated_only=True)


def test_the_report_says_which_clusters_are_not_separated():
    report = structure_report(_summary([0.3, 0.4, 0.5]), k=None, k_rule="rcsi", alpha=0.05,
                              null_reps=25, separated_only=True)  # fmt: skip

    assert report["structure"] is False and report["separated_only"] is True
    assert report["separation_p"] == {"2": 0.3, "3": 0.4, "4": 0.5}
    message = report["message"]
    assert "k = 3 (adjusted p 1.0e-05): its clusters 1 and 2 are not separated" in message
    assert "bins of a continuum, not subtypes" in message
