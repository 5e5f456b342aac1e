"""Bootstrap stability of each subtype (clusterboot, Hennig 2007).

Each of ``reps`` bootstrap samples draws the subjects with replacement and clusters them
(duplicates included) into k clusters. Every original cluster C is compared with each cluster
D of the bootstrap clustering on the distinct subjects drawn: the Jaccard similarity
``|C* & D| / |C* | D|``, with C* the members of C that were drawn, and its maximum over D is
C's similarity in that sample. A cluster's stability is the mean over samples (samples that
drew none of its members do not count).

Reclustering: consensus clustering inside each bootstrap sample would cost ``reps`` times the
whole consensus, so each sample is clustered by the base algorithms the consensus pools (its
``algorithms``) at the chosen k: k-means (here the best of ``KMEANS_N_INIT`` starts, as one
partition per sample is wanted rather than the spread of starts that the consensus counts),
Ward hierarchical clustering, the Gaussian mixture or spectral clustering; with several
algorithms, every (sample, algorithm) pair is one similarity.

Hennig's reading of the mean Jaccard similarity (fpc's clusterboot documentation): at least
0.85 highly stable, 0.75 stable, 0.6 to 0.75 a pattern whose exact members are doubtful,
below 0.6 not to be trusted; a similarity of 0.5 or less in a sample means the cluster
dissolved there (``dissolved`` is the share of such samples).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rdls.errors import InputError
from rdls.subtypes.consensus import ALGORITHMS, base_labels, check_algorithms

log = logging.getLogger(__name__)

STABILITY_COLUMNS = ["cluster", "n", "jaccard_mean", "jaccard_sd", "dissolved", "verdict"]
# Hennig's thresholds of the mean Jaccard similarity, highest first, and their verdicts.
VERDICTS = ((0.85, "highly stable"), (0.75, "stable"), (0.6, "pattern"), (0.0, "unstable"))
DISSOLVED = 0.5
KMEANS_N_INIT = 10


def bootstrap_stability(
    X: np.ndarray | pd.DataFrame,
    labels: Sequence[int],
    *,
    algorithms: Sequence[str] = ("kmeans", "hierarchical"),
    reps: int = 100,
    seed: int,
) -> pd.DataFrame:
    """Mean Jaccard similarity of each cluster with its best match over bootstrap samples.

    Parameters
    ----------
    X : numpy.ndarray or pandas.DataFrame
        Items x features as they were clustered (finite).
    labels : sequence of int
        The clusters to judge, one label per row of ``X`` (k is their number).
    algorithms : sequence of str
        Base algorithms that recluster each bootstrap sample (see the module docstring).
    reps : int
        Bootstrap samples, at least 1 (Hennig's default is 100).
    seed : int
        Sample b draws from ``np.random.default_rng([seed, b])``.

    Returns
    -------
    pandas.DataFrame
        One row per cluster in label order: ``cluster``, ``n`` (members), ``jaccard_mean``,
        ``jaccard_sd`` (over samples and algorithms), ``dissolved`` (share with a similarity
        of 0.5 or less) and ``verdict`` (Hennig's reading, see ``VERDICTS``).
    """
    data = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    labels = np.asarray(labels)
    algorithms = check_algorithms(algorithms)
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise InputError(
            f"stability_reps must be a whole number >= 1 (bootstrap samples), got {reps!r}: "
            "e.g. 100, as clusterboot"
        )
    if data.ndim != 2 or len(data) != len(labels) or not np.isfinite(data).all():
        raise InputError(
            f"X must be a finite items x features matrix with one row per label; got shape "
            f"{data.shape} for {len(labels)} labels"
        )
    clusters, codes = np.unique(labels, return_inverse=True)
    k = len(clusters)
    if k < 2:
        raise InputError(f"stability needs at least 2 clusters, got {k}")
    n = len(data)
    members = np.eye(k, dtype=bool)[codes]  # n x k membership of the original clusters
    similarities: list[np.ndarray] = []  # one row of k per (sample, algorithm)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        for b in range(reps):
            rng = np.random.default_rng([seed, b])
            drawn = rng.integers(0, n, n)
            # one seed per known algorithm, so an algorithm's labels do not depend on the list
            seeds = dict(zip(ALGORITHMS, rng.integers(0, 2**31 - 1, len(ALGORITHMS)), strict=True))
            distinct, first = np.unique(drawn, return_index=True)
            for name in algorithms:
                found = _cluster(data[drawn], k, name, int(seeds[name]))[first]
                similarities.append(_best_jaccard(members[distinct], found))
    values = np.vstack(similarities)
    log.info(
        "bootstrap stability: %d samples x %s at k = %d in %.1f s",
        reps, "+".join(algorithms), k, time.perf_counter() - started,
    )  # fmt: skip
    rows = []
    for j, cluster in enumerate(clusters):
        column = values[:, j][~np.isnan(values[:, j])]
        mean = float(column.mean()) if len(column) else float("nan")
        rows.append(
            {
                "cluster": cluster.item() if isinstance(cluster, np.generic) else cluster,
                "n": int(members[:, j].sum()),
                "jaccard_mean": mean,
                "jaccard_sd": float(column.std(ddof=1)) if len(column) > 1 else float("nan"),
                "dissolved": float(np.mean(column <= DISSOLVED)) if len(column) else float("nan"),
                "verdict": verdict(mean),
            }
        )
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def verdict(jaccard_mean: float) -> str:
    """Hennig's reading of a mean Jaccard similarity."""
    if np.isnan(jaccard_mean):
        return "not estimated"
    return next(text for threshold, text in VERDICTS if jaccard_mean >= threshold)


def _cluster(x: np.ndarray, k: int, name: str, seed: int) -> np.ndarray:
    if name == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(k, n_init=KMEANS_N_INIT, random_state=seed).fit(x).labels_
    return np.asarray(base_labels(x, ks=[k], algorithm=name, seed=seed)[k])


def _best_jaccard(original: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per original cluster (columns of ``original``), its largest Jaccard with a found one.

    ``original`` is the drawn items' membership (items x k); NaN where a cluster had no
    member drawn.
    """
    _, codes = np.unique(found, return_inverse=True)
    new = np.eye(codes.max() + 1, dtype=bool)[codes]  # items x found clusters
    both = original.T.astype(np.int64) @ new.astype(np.int64)
    either = original.sum(axis=0)[:, None] + new.sum(axis=0)[None, :] - both
    best = (both / np.maximum(either, 1)).max(axis=1)
    return np.where(original.sum(axis=0) > 0, best, np.nan)
