"""Consensus clustering (Monti et al. 2003) with the PAC criterion (Senbabaoglu et al. 2014).

Each repetition draws a subsample of the items (and of the features when
``feature_fraction < 1``), clusters it with every listed algorithm at every k and counts, for
every pair of items, how often both were drawn and how often they landed in the same
cluster. The consensus of a pair is the share of the draws that had both in which they were
clustered together, pooled over algorithms ("combinable" consensus, as MOVICS pools its
algorithms): ``M_k[i, j] = together_k[i, j] / (drawn[i, j] * number of algorithms)``.

Choosing k: by default (``choose_k``'s ``"rcsi"`` rule) the PAC of each k is judged against
its distribution on data without clusters (:mod:`rdls.subtypes.structure`, as M3C does), and
no k at all is a possible answer. The statistics, as ConsensusClusterPlus (Wilkerson and
Hayes, Bioinformatics 2010) reports them:

- PAC, the proportion of ambiguous clustering (Senbabaoglu et al., Sci Rep 2014), is the share
  of item pairs whose consensus lies in ``(lower, upper]`` of ``pac_interval``, i.e.
  ``CDF(upper) - CDF(lower)``: low PAC means pairs are either always or never together.
- ``cdf_area`` is Monti's A(K) = sum of ``(x_i - x_{i-1}) * CDF(x_i)``, evaluated as
  ConsensusClusterPlus does on the grid x_i = 0, 0.01, ..., 1 (the right Riemann sum of the
  empirical CDF; over the distinct consensus values themselves the sum jumps to 1 for a
  perfect 0/1 consensus, which is why the grid is used). ``delta_area`` is A(K) for the
  first k and ``(A(K) - A(K')) / A(K')`` for the others, K' the k before it in ``ks`` (the
  relative increase that ConsensusClusterPlus plots).
- ``silhouette`` is sklearn's silhouette on the distance ``1 - M_k`` with the final labels.

The final labels at each k come from average-linkage hierarchical clustering of ``1 - M_k``
cut into k clusters (as ConsensusClusterPlus does), renumbered by cluster size, largest
first (ties: the cluster holding the smaller item index first), so label 0 is the largest.

Memory: one ``n x n`` float32 count matrix per k plus one for the draws, i.e.
``4 * n**2 * (len(ks) + 1)`` bytes (about 21 MB at n = 931 with five ks). Co-clustering is
accumulated as ``O @ O.T`` of one-hot label matrices batched over repetitions; no per-rep
``n x n`` indicator is ever held.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rdls.errors import InputError

log = logging.getLogger(__name__)

ALGORITHMS = ("kmeans", "hierarchical", "gmm", "spectral")
CHOOSE_RULES = ("rcsi", "pac", "silhouette", "delta_area")
# The summary columns each rule reads.
RULE_COLUMNS = {
    "rcsi": ("rcsi", "rcsi_se", "p_adjusted"),
    "pac": ("pac",),
    "silhouette": ("silhouette",),
    "delta_area": ("delta_area",),
}
# k-means restarts per fit: the resampling already repeats each clustering many times, so
# a partition that k-means finds only from some starts shows up as ambiguity, as it should.
KMEANS_N_INIT = 1
# The delta-area elbow: the largest k whose CDF area still grew by at least this share.
DELTA_AREA_THRESHOLD = 0.1
# Consensus values are ratios of counts held in float32; values this close to a bound of the
# PAC interval or a CDF grid point count as on it.
_TOLERANCE = 1e-6
# Columns of one-hot labels gathered before they are folded into the counts by one product.
_BATCH_COLUMNS = 512
# float32 holds whole numbers exactly up to 2**24: the most co-clusterings one pair can count.
_MAX_COUNT = 2**24
CDF_GRID = np.linspace(0.0, 1.0, 101)


@dataclass
class ConsensusResult:
    """Consensus matrices, final labels and the statistics to choose k from.

    Attributes
    ----------
    item_ids : list of str
        Items in the order of the matrices' rows and the labels.
    ks : list of int
        The numbers of clusters tried, ascending.
    consensus : dict of int to numpy.ndarray
        ``n x n`` float32 consensus matrix per k, symmetric, diagonal 1.
    labels : dict of int to numpy.ndarray
        Final labels ``0 .. k-1`` per k (0 the largest cluster). Fewer than k labels occur
        when the consensus cannot be cut into k (clusters that are always together).
    summary : pandas.DataFrame
        One row per k: ``k``, ``pac``, ``cdf_area``, ``delta_area``, ``silhouette``,
        ``min_cluster_size``, ``mean_cluster_consensus``.
    cdf : pandas.DataFrame
        Long table ``k``, ``consensus_index``, ``cdf``: the empirical CDF of the consensus
        values of all item pairs on a grid of 101 points from 0 to 1.
    order : dict of int to numpy.ndarray
        Per k, the item order for a heatmap: by final label, and within a cluster by the
        leaves of the average-linkage tree.
    settings : dict
        The arguments the result was computed with (reps, fractions, algorithms, seed).
    """

    item_ids: list[str]
    ks: list[int]
    consensus: dict[int, np.ndarray]
    labels: dict[int, np.ndarray]
    summary: pd.DataFrame
    cdf: pd.DataFrame
    order: dict[int, np.ndarray] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def consensus_cluster(
    X: np.ndarray | pd.DataFrame,
    *,
    ks: Sequence[int] = range(2, 7),
    reps: int = 200,
    item_fraction: float = 0.8,
    feature_fraction: float = 1.0,
    algorithms: Sequence[str] = ("kmeans", "hierarchical"),
    seed: int,
    pac_interval: tuple[float, float] = (0.1, 0.9),
    item_ids: Sequence | None = None,
) -> ConsensusResult:
    """Consensus clustering of the rows of ``X`` at every k in ``ks``.

    Parameters
    ----------
    X : numpy.ndarray or pandas.DataFrame
        Items x features, finite; scaled as the algorithms should see it (nothing is
        standardised here). A DataFrame's index gives the item ids.
    ks : sequence of int
        Numbers of clusters, each at least 2; ``X`` needs at least ``2 * max(ks)`` rows.
    reps : int
        Resampling repetitions.
    item_fraction, feature_fraction : float
        Share of items and of features drawn (without replacement) in each repetition,
        in ``(0, 1]``.
    algorithms : sequence of str
        Any of ``"kmeans"`` (k-means++, Lloyd), ``"hierarchical"`` (Ward on Euclidean
        distance; one tree per repetition cut at every k), ``"gmm"`` (Gaussian mixture with
        diagonal covariances) and ``"spectral"`` (Ng, Jordan and Weiss: the leading k
        eigenvectors of the normalised affinity of a symmetric 10-nearest-neighbour graph,
        rows scaled to unit length, then k-means).
        Every algorithm clusters the same subsample; their co-clusterings are pooled.
    seed : int
        Repetition r draws from ``np.random.default_rng([seed, r])``, so each repetition's
        subsample and algorithm seeds depend on nothing else (not on ``ks`` or on which
        algorithms are listed).
    pac_interval : tuple of float
        ``(lower, upper)``: PAC is the share of pairs with lower < consensus <= upper.
    item_ids : sequence, optional
        Ids of the rows (default: the DataFrame's index, else ``"0"``, ``"1"``, ...).

    Returns
    -------
    ConsensusResult

    Notes
    -----
    The resampling runs on one thread (OpenMP and BLAS limited to 1): on subsamples of a
    few hundred items, sklearn's threads cost more than they give. Pairs never drawn together
    (few ``reps``, small ``item_fraction``) get consensus 0 and a logged warning.
    """
    ks = _check_ks(ks)
    algorithms = check_algorithms(algorithms)
    data, item_ids = _check_matrix(X, item_ids=item_ids, min_items=2 * max(ks))
    _check_options(
        reps=reps,
        item_fraction=item_fraction,
        feature_fraction=feature_fraction,
        pac_interval=pac_interval,
        n_items=data.shape[0],
        n_algorithms=len(algorithms),
        max_k=max(ks),
    )
    consensus = _consensus_matrices(
        data,
        ks=ks,
        reps=reps,
        item_fraction=item_fraction,
        feature_fraction=feature_fraction,
        algorithms=algorithms,
        seed=seed,
    )
    labels, order, rows, cdf = {}, {}, [], []
    for k in ks:
        matrix = consensus[k]
        labels[k], order[k] = _final_labels(matrix, k)
        stats, grid_cdf = _statistics(matrix, labels[k], pac_interval=pac_interval)
        rows.append({"k": k, **stats})
        cdf.append(pd.DataFrame({"k": k, "consensus_index": CDF_GRID, "cdf": grid_cdf}))
    summary = pd.DataFrame(rows)
    areas = summary["cdf_area"].to_numpy()
    delta = areas.copy()
    delta[1:] = (areas[1:] - areas[:-1]) / areas[:-1]
    summary.insert(summary.columns.get_loc("cdf_area") + 1, "delta_area", delta)
    summary = summary[
        ["k", "pac", "cdf_area", "delta_area", "silhouette", "min_cluster_size",
         "mean_cluster_consensus"]
    ]  # fmt: skip
    settings = {
        "reps": reps,
        "item_fraction": item_fraction,
        "feature_fraction": feature_fraction,
        "algorithms": list(algorithms),
        "seed": seed,
        "pac_interval": tuple(pac_interval),
    }
    return ConsensusResult(
        item_ids=item_ids,
        ks=ks,
        consensus=consensus,
        labels=labels,
        summary=summary,
        cdf=pd.concat(cdf, ignore_index=True),
        order=order,
        settings=settings,
    )


def pac_by_k(
    X: np.ndarray,
    *,
    ks: Sequence[int],
    reps: int,
    item_fraction: float,
    feature_fraction: float,
    algorithms: Sequence[str],
    seed: int,
    pac_interval: tuple[float, float],
) -> np.ndarray:
    """PAC of each k in ``ks`` from the resampling that :func:`consensus_cluster` does.

    The same draws, algorithms and consensus matrices for the same arguments, without the
    final labels and other statistics: what a null reference needs of each simulated dataset.
    ``X`` is taken as checked (finite, at least ``2 * max(ks)`` rows).

    Returns
    -------
    numpy.ndarray
        PAC per k, in the order of ``ks`` (sorted ascending, as :func:`consensus_cluster`).
    """
    ks = _check_ks(ks)
    consensus = _consensus_matrices(
        np.ascontiguousarray(X, dtype=float),
        ks=ks,
        reps=reps,
        item_fraction=item_fraction,
        feature_fraction=feature_fraction,
        algorithms=check_algorithms(algorithms),
        seed=seed,
        warn=False,
    )
    return np.array([_pac(consensus[k], pac_interval=pac_interval) for k in ks])


def _consensus_matrices(
    data, *, ks, reps, item_fraction, feature_fraction, algorithms, seed, warn=True
) -> dict[int, np.ndarray]:
    """Resample, cluster and count: the consensus matrix of every k."""
    n, p = data.shape
    m = max(1, round(item_fraction * n))
    q = max(1, round(feature_fraction * p))
    started = time.perf_counter()
    accumulator = _CoClustering(n, ks)
    # OpenMP and BLAS threads cost more than they give on subsamples of a few hundred items
    # and spin badly on a busy machine: on two shared cores, one thread was 1-6x faster.
    with threadpool_limits(limits=1):
        _resample(data, accumulator, ks, algorithms, reps=reps, m=m, q=q, seed=seed)
    counts, drawn = accumulator.finish()
    if warn:
        log.info(
            "consensus clustering: %d items, %d features, %d reps x %s in %.1f s",
            n, p, reps, "+".join(algorithms), time.perf_counter() - started,
        )  # fmt: skip
        never = int(np.count_nonzero(np.triu(drawn == 0, 1)))
        if never:
            log.warning(
                "%d item pairs were never drawn together in %d repetitions; their consensus "
                "is taken as 0. Raise reps or item_fraction.", never, reps,
            )  # fmt: skip
    denominator = drawn * np.float32(len(algorithms))
    del drawn
    consensus = {}
    for k in ks:
        matrix = counts.pop(k)
        # a pair never drawn together has no co-clustering either: it stays 0
        np.divide(matrix, denominator, out=matrix, where=denominator > 0)
        np.fill_diagonal(matrix, 1.0)
        consensus[k] = matrix
    return consensus


def choose_k(
    summary: pd.DataFrame,
    *,
    rule: str = "rcsi",
    k: int | None = None,
    min_cluster_size: int = 1,
    alpha: float = 0.05,
    min_rcsi: float = 0.0,
    separated_only: bool = False,
) -> int | None:
    """The number of clusters that ``rule`` picks from a consensus summary, or None.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``ConsensusResult.summary``; the ``"rcsi"`` rule needs it joined with the comparison
        against a null reference (:func:`rdls.subtypes.structure.compare_with_null`: columns
        ``rcsi``, ``rcsi_se`` and ``p_adjusted``).
    rule : {"rcsi", "pac", "silhouette", "delta_area"}
        ``"rcsi"``: among the k whose PAC is significantly lower than on data without
        clusters (``p_adjusted < alpha``) by an RCSI of at least ``min_rcsi``, the one with
        the largest relative cluster stability index (M3C, John et al. 2020); a k whose RCSI
        is within one standard error
        (``rcsi_se``, the Monte Carlo error of the null mean) of the largest counts as a tie.
        None when no eligible k is significant: the data show no cluster structure.
        ``"pac"``: the lowest PAC; ``"silhouette"``: the highest silhouette.
        ``"delta_area"``: the elbow of the CDF area, the largest k whose area grew by at least
        ``DELTA_AREA_THRESHOLD`` (10 %) over the k before it, so that no larger k adds as
        much; the smallest k when none did. Ties go to the smaller k in every rule.
    k : int, optional
        A fixed choice (a config override): returned as it is once it is checked to be
        one of ``summary.k``.
    min_cluster_size : int
        Only a k whose smallest final cluster has at least this many items is eligible.
        PAC keeps falling with k on weakly structured data because tiny clusters of one or
        two items are "stable"; such splits are not subtypes.
    alpha : float
        Significance level of the ``"rcsi"`` rule, in (0, 1).
    min_rcsi : float
        The smallest RCSI the ``"rcsi"`` rule counts, at least 0: a k can beat a narrow null
        distribution significantly by a negligible margin (non-normal features without
        clusters, e.g. skewed ones, are slightly more stable than the normal null).
    separated_only : bool
        ``"rcsi"`` rule only: a k counts only when every pair of its clusters is separated
        (``separation_p < alpha``, :mod:`rdls.subtypes.separation`), so that bins cut out of
        a continuum, which can beat the normal null too, are not taken for subtypes.

    Returns
    -------
    int or None
        None only from the ``"rcsi"`` rule, when no eligible k is significant.
    """
    if rule not in CHOOSE_RULES:
        raise InputError(f"rule must be one of {', '.join(CHOOSE_RULES)}, got {rule!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}: e.g. 0.05")
    if not min_rcsi >= 0:
        raise InputError(f"min_rcsi must be at least 0, got {min_rcsi!r}: e.g. 0.05")
    if "k" not in summary.columns or summary.empty:
        raise InputError("summary has no rows with a 'k' column: pass ConsensusResult.summary")
    table = summary.sort_values("k")
    tried = [int(value) for value in table["k"]]
    if k is not None:
        if k not in tried:
            raise InputError(
                f"k = {k} was not tried: the consensus summary has k = "
                f"{', '.join(map(str, tried))}. Choose one of them or add it to ks."
            )
        return int(k)
    needed = RULE_COLUMNS[rule]
    absent = [column for column in needed if column not in table.columns]
    if absent:
        where = (
            "join it with rdls.subtypes.structure.compare_with_null"
            if rule == "rcsi"
            else "pass ConsensusResult.summary"
        )
        raise InputError(f"summary has no column {absent[0]!r}: {where}")
    if min_cluster_size > 1 and "min_cluster_size" not in table.columns:
        raise InputError("summary has no column 'min_cluster_size': pass ConsensusResult.summary")
    sizes = table.get("min_cluster_size", pd.Series(min_cluster_size, index=table.index))
    eligible = sizes.to_numpy() >= min_cluster_size
    if rule == "rcsi":
        significant = table["p_adjusted"].to_numpy(float) < alpha
        large = table["rcsi"].to_numpy(float) >= min_rcsi
        if separated_only:
            if "separation_p" not in table.columns:
                raise InputError(
                    "summary has no column 'separation_p': join it with "
                    "rdls.subtypes.separation.separation_summary"
                )
            large &= table["separation_p"].to_numpy(float) < alpha
        return _largest_rcsi(table[eligible & significant & large])
    if not eligible.any():
        raise InputError(
            f"no k has clusters of at least {min_cluster_size} items (smallest cluster by k: "
            + ", ".join(f"{kk}: {int(m)}" for kk, m in zip(tried, sizes, strict=True))
            + "). Lower subtypes.consensus.min_cluster_fraction, try fewer clusters "
            "(k_min), or fix k."
        )
    table = table[eligible]
    tried = [int(value) for value in table["k"]]
    values = table[rule].to_numpy(float)
    if rule == "delta_area":
        grew = [
            kk for kk, v in zip(tried[1:], values[1:], strict=True) if v >= DELTA_AREA_THRESHOLD
        ]
        return max(grew) if grew else tried[0]
    if rule == "pac":
        values = -values
    if np.isnan(values).all():
        raise InputError(f"every k has a missing {rule}: it cannot choose k; use another rule")
    best = np.nanmax(values)
    return tried[int(np.flatnonzero(values >= best - 1e-12)[0])]


def _largest_rcsi(candidates: pd.DataFrame) -> int | None:
    """The smallest k whose RCSI is within one standard error of the largest; None if none."""
    if candidates.empty:
        return None
    rcsi = candidates["rcsi"].to_numpy(float)
    best = int(np.argmax(rcsi))
    tolerance = float(np.nan_to_num(candidates["rcsi_se"].to_numpy(float)[best])) + 1e-12
    return int(candidates["k"].to_numpy()[np.flatnonzero(rcsi >= rcsi[best] - tolerance)[0]])


# --- input checks ---------------------------------------------------------------------------


def _check_ks(ks) -> list[int]:
    try:
        values = [int(k) for k in ks]
    except (TypeError, ValueError) as error:
        raise InputError(f"ks must be whole numbers of clusters, got {ks!r}") from error
    if not values:
        raise InputError("ks is empty: give at least one number of clusters, e.g. 2..6")
    if min(values) < 2:
        raise InputError(f"ks must all be at least 2 clusters, got {values}")
    return sorted(set(values))


def check_algorithms(algorithms) -> list[str]:
    """The algorithm names as a list, each known and listed once (else InputError)."""
    if isinstance(algorithms, str):
        algorithms = [algorithms]
    names = list(algorithms)
    unknown = [a for a in names if a not in ALGORITHMS]
    if unknown or not names:
        raise InputError(
            f"unknown clustering algorithm(s) {unknown or names}: valid are {', '.join(ALGORITHMS)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"algorithms lists one twice: {names}; list each once")
    return names


def _check_matrix(X, *, item_ids, min_items: int) -> tuple[np.ndarray, list[str]]:
    columns = None
    if isinstance(X, pd.DataFrame):
        columns = [str(c) for c in X.columns]
        if item_ids is None:
            item_ids = X.index
        try:
            data = X.to_numpy(dtype=float)
        except (TypeError, ValueError) as error:
            text = [
                c for c, t in zip(columns, X.dtypes, strict=True) if not np.issubdtype(t, np.number)
            ]
            raise InputError(
                f"X must be numeric; columns {', '.join(text)} are not. Drop or encode them."
            ) from error
    else:
        try:
            data = np.asarray(X, dtype=float)
        except (TypeError, ValueError) as error:
            raise InputError("X must be a numeric items x features matrix") from error
    if data.ndim != 2:
        raise InputError(f"X must be 2-D (items x features), got shape {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        where = np.flatnonzero(bad.any(axis=0))
        names = [columns[i] for i in where] if columns else [f"#{i}" for i in where]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise InputError(
            f"X has {int(bad.sum())} missing or infinite values in {len(where)} feature "
            f"column(s): {shown}. Impute them or drop those features before clustering."
        )
    n = data.shape[0]
    if n < min_items:
        raise InputError(
            f"X has {n} items; clustering into up to {min_items // 2} clusters needs at least "
            f"{min_items} (2 x max(ks)). Lower ks or add items."
        )
    if data.shape[1] < 1:
        raise InputError("X has no feature columns")
    ids = [str(i) for i in (range(n) if item_ids is None else item_ids)]
    if len(ids) != n:
        raise InputError(f"item_ids has {len(ids)} ids for {n} rows of X")
    if len(set(ids)) != n:
        counts = pd.Series(ids).value_counts()
        twice = sorted(counts.index[counts > 1])
        raise InputError(f"item_ids must be unique; repeated: {', '.join(twice[:10])}")
    return np.ascontiguousarray(data), ids


def _check_options(
    *, reps, item_fraction, feature_fraction, pac_interval, n_items, n_algorithms, max_k
) -> None:
    if not isinstance(reps, int | np.integer) or reps < 1:
        raise InputError(f"reps must be a whole number >= 1, got {reps!r}")
    if reps * n_algorithms >= _MAX_COUNT:
        raise InputError(
            f"reps x algorithms must stay below {_MAX_COUNT}, got {reps * n_algorithms}"
        )
    for name, value in (("item_fraction", item_fraction), ("feature_fraction", feature_fraction)):
        if not 0 < value <= 1:
            raise InputError(f"{name} must be in (0, 1], got {value!r}")
    drawn = max(1, round(item_fraction * n_items))
    if drawn < max_k:
        raise InputError(
            f"item_fraction {item_fraction} draws {drawn} of {n_items} items, fewer than "
            f"max(ks) = {max_k} clusters. Raise item_fraction."
        )
    lower, upper = pac_interval
    if not 0 <= lower < upper <= 1:
        raise InputError(
            "pac_interval must be (lower, upper) with 0 <= lower < upper <= 1, "
            f"got {pac_interval!r}"
        )


# --- clustering one subsample at every k --------------------------------------------------


def _resample(data, accumulator, ks, algorithms, *, reps, m, q, seed) -> None:
    """Draw, cluster and count ``reps`` times."""
    n, p = data.shape
    for r in range(reps):
        rng = np.random.default_rng([seed, r])
        items = np.sort(rng.choice(n, size=m, replace=False))
        features = np.sort(rng.choice(p, size=q, replace=False)) if q < p else slice(None)
        # One seed per known algorithm, drawn whether it is used or not, so that an
        # algorithm's labels do not change with the list it is pooled with.
        algorithm_seeds = dict(
            zip(ALGORITHMS, rng.integers(0, 2**31 - 1, len(ALGORITHMS)), strict=True)
        )
        subsample = data[np.ix_(items, np.arange(p)[features])]
        accumulator.add_draw(items)
        for name in algorithms:
            labels = _CLUSTERERS[name](subsample, ks, int(algorithm_seeds[name]))
            for k in ks:
                accumulator.add_labels(k, items, labels[k])


def _kmeans(x: np.ndarray, ks: list[int], seed: int) -> dict[int, np.ndarray]:
    from sklearn.cluster import KMeans

    return {
        k: KMeans(k, n_init=KMEANS_N_INIT, algorithm="lloyd", random_state=seed).fit(x).labels_
        for k in ks
    }


def _hierarchical(x: np.ndarray, ks: list[int], seed: int) -> dict[int, np.ndarray]:
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(x, method="ward")
    return {k: fcluster(tree, t=k, criterion="maxclust") for k in ks}


def _gmm(x: np.ndarray, ks: list[int], seed: int) -> dict[int, np.ndarray]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    labels = {}
    with warnings.catch_warnings():
        # A mixture that has not converged in one subsample is one noisy vote among many.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in ks:
            model = GaussianMixture(k, covariance_type="diag", reg_covar=1e-4, random_state=seed)
            labels[k] = model.fit(x).predict(x)
    return labels


def _spectral(x: np.ndarray, ks: list[int], seed: int) -> dict[int, np.ndarray]:
    """Ng, Jordan and Weiss (2001) on a symmetric 10-nearest-neighbour graph."""
    from scipy.linalg import eigh
    from sklearn.cluster import KMeans
    from sklearn.neighbors import kneighbors_graph

    m = len(x)
    graph = kneighbors_graph(x, n_neighbors=min(10, m - 1), include_self=False).toarray()
    graph = np.maximum(graph, graph.T)
    scale = 1.0 / np.sqrt(graph.sum(axis=1))  # every item has at least one neighbour
    normalised = graph * scale[:, None] * scale[None, :]
    # eigenvectors of the largest eigenvalues of D^-1/2 A D^-1/2, largest first
    _, vectors = eigh(normalised, subset_by_index=[m - max(ks), m - 1])
    vectors = vectors[:, ::-1]
    labels = {}
    for k in ks:
        coords = vectors[:, :k]
        coords = coords / np.maximum(np.linalg.norm(coords, axis=1, keepdims=True), 1e-12)
        labels[k] = KMeans(k, n_init=KMEANS_N_INIT, random_state=seed).fit(coords).labels_
    return labels


_CLUSTERERS = {
    "kmeans": _kmeans,
    "hierarchical": _hierarchical,
    "gmm": _gmm,
    "spectral": _spectral,
}


def base_labels(x: np.ndarray, *, ks: Sequence[int], algorithm: str, seed: int) -> dict:
    """Labels of one base algorithm (as the consensus runs it) on ``x`` at every k in ``ks``."""
    return _CLUSTERERS[algorithm](x, list(ks), seed)


class _CoClustering:
    """Pair counts, accumulated as products of batched one-hot matrices.

    A repetition's labels become one-hot columns (rows of undrawn items stay 0); once a batch
    of columns is full, ``B @ B.T`` adds to the counts how often each pair shared a cluster.
    """

    def __init__(self, n: int, ks: list[int]):
        self.n = n
        self.counts = {k: np.zeros((n, n), np.float32) for k in ks}
        self.drawn = np.zeros((n, n), np.float32)
        width = max(_BATCH_COLUMNS, max(ks))
        self._batch = {k: np.zeros((n, width), np.float32) for k in [*ks, 0]}
        self._used = dict.fromkeys([*ks, 0], 0)

    def add_draw(self, items: np.ndarray) -> None:
        self._add(0, items, np.zeros(len(items), np.intp), 1)

    def add_labels(self, k: int, items: np.ndarray, labels: np.ndarray) -> None:
        _, codes = np.unique(labels, return_inverse=True)
        self._add(k, items, codes, int(codes.max()) + 1)

    def _add(self, key: int, items: np.ndarray, codes: np.ndarray, width: int) -> None:
        batch = self._batch[key]
        if self._used[key] + width > batch.shape[1]:
            self._flush(key)
        batch[items, self._used[key] + codes] = 1.0
        self._used[key] += width

    def _flush(self, key: int) -> None:
        used = self._used[key]
        if used:
            block = self._batch[key][:, :used]
            target = self.drawn if key == 0 else self.counts[key]
            target += block @ block.T
            block[:] = 0.0
            self._used[key] = 0

    def finish(self) -> tuple[dict[int, np.ndarray], np.ndarray]:
        for key in list(self._batch):
            self._flush(key)
        self._batch.clear()
        return self.counts, self.drawn


# --- final labels and statistics ----------------------------------------------------------


def _upper_triangle(matrix: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import squareform

    return squareform(matrix, checks=False, force="tovector")


def _final_labels(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Average linkage of ``1 - consensus`` cut into k clusters, renumbered by size."""
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage

    distance = 1.0 - _upper_triangle(matrix).astype(np.float64)
    tree = linkage(np.clip(distance, 0.0, 1.0), method="average")
    raw = fcluster(tree, t=k, criterion="maxclust")
    labels = relabel_by_size(raw)
    leaves = leaves_list(tree)
    order = leaves[np.argsort(labels[leaves], kind="stable")]
    return labels, order


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0, 1, ... by size, largest first; ties by their smallest item index."""
    labels = np.asarray(labels)
    values, first, codes, sizes = np.unique(
        labels, return_index=True, return_inverse=True, return_counts=True
    )
    ranking = np.lexsort((first, -sizes))  # by size descending, then first appearance
    new = np.empty(len(values), dtype=np.int64)
    new[ranking] = np.arange(len(values))
    return new[codes.ravel()]


def _sorted_pairs(matrix: np.ndarray) -> np.ndarray:
    return np.sort(_upper_triangle(matrix).astype(np.float64))


def _cdf_at(values: np.ndarray, x) -> np.ndarray:
    """Empirical CDF of the sorted pair consensus ``values`` at ``x``."""
    return np.searchsorted(values, np.asarray(x) + _TOLERANCE, side="right") / len(values)


def _pac_of(values: np.ndarray, *, pac_interval: tuple[float, float]) -> float:
    lower, upper = pac_interval
    return float(_cdf_at(values, upper) - _cdf_at(values, lower))


def _pac(matrix: np.ndarray, *, pac_interval: tuple[float, float]) -> float:
    return _pac_of(_sorted_pairs(matrix), pac_interval=pac_interval)


def _statistics(
    matrix: np.ndarray, labels: np.ndarray, *, pac_interval: tuple[float, float]
) -> tuple[dict, np.ndarray]:
    from sklearn.metrics import silhouette_score

    values = _sorted_pairs(matrix)
    pac = _pac_of(values, pac_interval=pac_interval)
    grid_cdf = _cdf_at(values, CDF_GRID)
    # Monti's A(K) on the grid, as ConsensusClusterPlus: sum of (x_i - x_(i-1)) * CDF(x_i)
    area = float(np.sum(np.diff(CDF_GRID) * grid_cdf[1:]))
    sizes = np.bincount(labels)
    n_clusters = int(np.count_nonzero(sizes))
    if 2 <= n_clusters <= len(labels) - 1:
        silhouette = float(silhouette_score(1.0 - matrix, labels, metric="precomputed"))
    else:
        silhouette = float("nan")
    within = []
    for c in np.flatnonzero(sizes >= 2):
        members = np.flatnonzero(labels == c)
        block = matrix[np.ix_(members, members)]
        within.append(
            (block.sum(dtype=np.float64) - len(members)) / (len(members) * (len(members) - 1))
        )
    stats = {
        "pac": pac,
        "cdf_area": area,
        "silhouette": silhouette,
        "min_cluster_size": int(sizes[sizes > 0].min()),
        "mean_cluster_consensus": float(np.mean(within)) if within else float("nan"),
    }
    return stats, grid_cdf
