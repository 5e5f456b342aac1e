"""Are the clusters separated, or cut out of one continuum? Dip tests on pairwise projections.

Consensus clustering beats the normal null of :mod:`rdls.subtypes.structure` whenever the
features are not normal, with or without clusters: on the demo's null variant (no subtypes;
tumour size log-normal, one shared distribution) the training cohort's features split into
three tumour-size bins (diameters 15-23, 22-30 and 28-41 mm) whose PAC beat the null at
k = 3 with p = 2e-4. Bins of a continuum are not subtypes.

What separates clusters from bins is a gap between them. For each pair of clusters, every
training item (not only the pair's members) is projected onto the line through the two
clusters' centres, and Hartigan's dip test (Hartigan and Hartigan 1985, via the ``diptest``
package) asks whether that projection is unimodal. Between two separated clusters it is not;
between two bins of one continuum it is, since cutting a unimodal distribution into pieces
leaves it unimodal. Projecting all items keeps the clusters in between: two bins at either
end of a continuum, projected without the middle one, would show a gap the data do not have.
This is the split test of dip-means (Kalogeratos and Likas 2012) applied to each pair.

A k counts as separated when every pair of its clusters is: an intersection-union test, so
its p-value is the largest of the pairs' and needs no adjustment for the number of pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from rdls.errors import InputError

PAIR_COLUMNS = ["k", "cluster_a", "cluster_b", "n_a", "n_b", "dip", "p_value"]


def pair_separation(data: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Dip test of the projection of all items on the line through each pair's centres.

    Parameters
    ----------
    data : numpy.ndarray
        Items x features, finite, as clustered.
    labels : numpy.ndarray
        Cluster of each item; at least two clusters.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``cluster_a``, ``cluster_b``, ``n_a``, ``n_b``, ``dip`` (Hartigan's
        statistic) and ``p_value`` (against the uniform, the least favourable unimodal
        distribution, from the package's interpolated table).
    """
    import diptest

    data = np.asarray(data, dtype=float)
    labels = np.asarray(labels)
    if data.ndim != 2 or len(data) != len(labels):
        raise InputError(
            f"data ({data.shape}) must be items x features with one label per item "
            f"({len(labels)} labels)"
        )
    if not np.isfinite(data).all():
        raise InputError("data must be finite: impute or drop features with missing values")
    clusters = sorted(set(labels.tolist()))
    if len(clusters) < 2:
        raise InputError(f"separation needs at least 2 clusters, got {len(clusters)}")
    rows = []
    for a, b in combinations(clusters, 2):
        axis = data[labels == b].mean(axis=0) - data[labels == a].mean(axis=0)
        norm = float(np.linalg.norm(axis))
        if norm == 0.0:
            dip, p_value = 0.0, 1.0  # the same centre: nothing separates them
        else:
            dip, p_value = diptest.diptest(data @ (axis / norm))
        rows.append({"cluster_a": a, "cluster_b": b, "n_a": int((labels == a).sum()),
                     "n_b": int((labels == b).sum()), "dip": float(dip),
                     "p_value": float(p_value)})  # fmt: skip
    return pd.DataFrame(rows)


def separation_by_k(data: np.ndarray, labels: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """:func:`pair_separation` at every k, as one table (``PAIR_COLUMNS``)."""
    tables = [pair_separation(data, labels[k]).assign(k=int(k)) for k in sorted(labels)]
    return pd.concat(tables, ignore_index=True)[PAIR_COLUMNS]


def separation_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per k: ``separation_p``, the largest pair p-value (every pair must be separated), and
    the pair it belongs to (``least_separated``, e.g. ``"1-3"``)."""
    worst = pairs.loc[pairs.groupby("k")["p_value"].idxmax()]
    return pd.DataFrame(
        {
            "k": worst["k"].astype(int).to_numpy(),
            "separation_p": worst["p_value"].to_numpy(float),
            "least_separated": [
                f"{a}-{b}" for a, b in zip(worst["cluster_a"], worst["cluster_b"], strict=True)
            ],
        }
    )
