"""Is there cluster structure? Consensus PAC against a Monte Carlo null (M3C, John et al. 2020).

PAC falls with k even on data without clusters, so a low PAC alone does not show subtypes.
M3C (John et al., Sci Rep 2020) compares it with its distribution on data that have the same
covariance as the real data but no clusters:

1. **Null datasets**: multivariate normal, with the training features' mean and principal axes
   and so unimodal. M3C ("reverse PCA") gives each axis its sample standard deviation. With
   about as many features as subjects, sample eigenvalues are far more spread than the
   population's and data drawn from them more spread again, so such a null looks more
   clustered than unclustered real data do and the test turns conservative. ``"shrunk"``
   (the default, :func:`null_model`) pulls the eigenvalues towards their mean just enough to
   keep the spread that Ledoit and Wolf estimate for the population. On four 150 x 100
   normal datasets (25-factor covariance, 30 resamplings, 15 null datasets), the real PAC of
   k = 2..6 lay +0.6 to +3.6 null SDs from the sample-covariance null (conservative), -1.5 to
   -8.9 from a null with Ledoit-Wolf's own covariance (liberal), and -4.1 to +0.9 from the
   shrunk one, as from a null with the true covariance (-3.4 to +1.2).
2. **The same procedure** on each of ``null_reps`` such datasets: the same ks, algorithms,
   item and feature fractions and PAC interval, and by default the same number of
   resamplings and the same seed, so that every null dataset is resampled with the very draws
   the real data were. Fewer resamplings bias PAC: on a 150 x 100 correlated normal dataset
   the mean null PAC at k = 4 was 0.846 with 25 resamplings, 0.868 with 50, 0.882 with 100
   and 0.889 with 200 (null SD about 0.024).
3. **Per k**, with PAC values floored at one ambiguous pair in all pairs (a PAC of 0 has no
   logarithm; M3C floors at 1e-4, about one pair in 150 subjects):

   - ``rcsi``, the relative cluster stability index, is the mean over the null datasets of
     ``log(null PAC) - log(real PAC)`` (as M3C computes it; the log of the mean null PAC,
     its older form, was at most 0.013 larger on the data measured);
     ``rcsi_se`` is its Monte Carlo standard error, ``sd / sqrt(null_reps)``.
   - ``p_value``: the lower tail of a beta distribution fitted to the null PACs by their
     mean and variance (M3C's p-value for PAC), evaluated at the real PAC. It can be smaller
     than the Monte Carlo p-value's floor of ``1 / (null_reps + 1)``.
   - ``p_monte_carlo``: ``(1 + #{null PAC <= real PAC}) / (1 + null_reps)``. It replaces the
     beta p-value where no beta fits (null PACs all equal, or more spread than a beta allows).
   - ``p_adjusted``: Holm's step-down adjustment of ``p_value`` over the ks tried, so that
     the chance of declaring structure in data without any stays below alpha however many k
     are tried (the same decision as Bonferroni on whether any k is significant, and never
     fewer significant k).

Measured with 25 null datasets of 50 resamplings on 150 x 100 data: normal data without
clusters showed no structure in 5 of 5 datasets (Holm-adjusted p = 1 at every k). The null
is normal, and features without clusters that are not normal can beat it. Skewed
features (exp of 0.7 x a standardised correlated normal) beat the narrow null of k = 2
significantly in 4 of 12 datasets, by an RCSI of 0.008-0.029 (PAC 0.97 against 0.99):
``choose_k``'s ``min_rcsi`` (0.05 in the config) ignores such gains. Heavier tails (exp of
1.0 x) split off a few outlying subjects in every resampling (RCSI up to 0.35 at k = 2), in
clusters smaller than ``min_cluster_fraction`` allows (1-14 of 150 subjects in 7 of 7
datasets). Planted structure that k-means recovers with ARI 0.57-0.87 had RCSI 0.08-0.88 at
the k chosen, found in 5 of 5 datasets (3 of 5 with the sample-covariance null).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from rdls.errors import InputError
from rdls.subtypes.consensus import pac_by_k

log = logging.getLogger(__name__)

COMPARISON_COLUMNS = [
    "k", "null_pac_mean", "null_pac_sd", "rcsi", "rcsi_se", "p_value", "p_monte_carlo",
    "p_adjusted",
]  # fmt: skip
# Where the null datasets' random streams start: the resampling streams are [seed, r] for
# r < reps, so this third entry keeps the simulation's draws apart from them.
_NULL_STREAM = 7919


@dataclass
class NullReference:
    """PAC of the same consensus clustering on ``null_reps`` datasets without clusters.

    Attributes
    ----------
    ks : list of int
        The numbers of clusters, ascending.
    pac : numpy.ndarray
        ``null_reps x len(ks)``: PAC of each null dataset at each k.
    n_items : int
        Items per dataset (the real data's).
    settings : dict
        The arguments the null was computed with.
    """

    ks: list[int]
    pac: np.ndarray
    n_items: int
    settings: dict = field(default_factory=dict)


NULL_COVARIANCES = ("shrunk", "sample")


@dataclass
class NullModel:
    """A multivariate normal without clusters: ``mean + scores * sd @ axes``.

    Attributes
    ----------
    mean : numpy.ndarray
        Feature means.
    sd : numpy.ndarray
        Standard deviation of each principal component.
    axes : numpy.ndarray
        Principal axes, one per row (components x features).
    shrinkage : float
        Weight of the mean eigenvalue in the covariance (0 for the sample covariance).
    """

    mean: np.ndarray
    sd: np.ndarray
    axes: np.ndarray
    shrinkage: float = 0.0


def null_model(data: np.ndarray, *, covariance: str = "shrunk") -> NullModel:
    """The normal distribution that null datasets are drawn from, fitted to ``data``.

    Parameters
    ----------
    data : numpy.ndarray
        Items x features, finite, at least two rows.
    covariance : {"shrunk", "sample"}
        ``"sample"``: M3C's reverse PCA, the principal components of the data with their
        sample standard deviations. ``"shrunk"``: the same axes, with the sample eigenvalues
        pulled towards their mean just enough that their spread is the one Ledoit and Wolf
        (2004) estimate for the population: ``(1 - rho) S + rho mu I`` with
        ``(1 - rho)**2 = 1 - delta``, delta Ledoit-Wolf's shrinkage intensity (sklearn) and
        mu the mean eigenvalue. With as many features as a hundred-odd subjects, sample
        eigenvalues are far more spread than the population's, data drawn from them look
        clustered and the test turns conservative; Ledoit-Wolf's own estimate (rho = delta)
        shrinks the spread below the population's and turns it liberal (numbers in the
        module docstring).
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    if covariance not in NULL_COVARIANCES:
        raise InputError(
            f"null_covariance must be one of {', '.join(NULL_COVARIANCES)}, got {covariance!r}"
        )
    data = np.asarray(data, dtype=float)
    mean = data.mean(axis=0)
    centred = data - mean
    if covariance == "sample":
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)
        return NullModel(mean=mean, sd=singular / math.sqrt(len(data) - 1), axes=axes)
    delta = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
    rho = 1.0 - math.sqrt(1.0 - delta)
    sample = np.atleast_2d(np.cov(centred, rowvar=False))
    target = np.trace(sample) / len(sample)
    values, vectors = np.linalg.eigh((1 - rho) * sample + rho * target * np.eye(len(sample)))
    return NullModel(
        mean=mean,
        sd=np.sqrt(np.clip(values, 0.0, None)),
        axes=np.ascontiguousarray(vectors.T),
        shrinkage=rho,
    )


def simulate_null(model: NullModel, n_items: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n_items`` rows drawn from ``model``: independent normal scores on its axes, rotated back.

    The rows have no cluster structure; their expected covariance is the model's.
    """
    scores = rng.standard_normal((n_items, len(model.sd))) * model.sd
    return scores @ model.axes + model.mean


def null_reference(
    X: np.ndarray | pd.DataFrame,
    *,
    ks: Sequence[int],
    reps: int,
    item_fraction: float,
    feature_fraction: float,
    algorithms: Sequence[str],
    pac_interval: tuple[float, float],
    null_reps: int,
    seed: int,
    covariance: str = "shrunk",
    threads: int = 1,
) -> NullReference:
    """PAC of consensus clustering on ``null_reps`` simulated datasets without clusters.

    Parameters
    ----------
    X : numpy.ndarray or pandas.DataFrame
        The real items x features, as :func:`rdls.subtypes.consensus.consensus_cluster`
        clustered them (finite; at least ``2 * max(ks)`` rows).
    ks, item_fraction, feature_fraction, algorithms, pac_interval : see consensus_cluster
        The real clustering's settings; the null must use the same.
    reps : int
        Resamplings per null dataset. The real data's ``reps`` makes the null and the real
        PAC exchangeable when there are no clusters (see the module docstring).
    null_reps : int
        Null datasets, at least 1 (M3C uses 25 in its quick mode, 100 by default).
    seed : int
        The real clustering's seed: null dataset b is simulated from
        ``default_rng([seed, 7919, b])`` and resampled with ``seed``, i.e. with the real
        data's draws. Results do not depend on ``threads``.
    covariance : {"shrunk", "sample"}
        The null's covariance: see :func:`null_model`.
    threads : int
        Null datasets clustered in parallel (joblib processes); 1 runs them here.

    Returns
    -------
    NullReference
    """
    if not isinstance(null_reps, int | np.integer) or isinstance(null_reps, bool) or null_reps < 1:
        raise InputError(
            f"null_reps must be a whole number >= 1 (null datasets), got {null_reps!r}: "
            "e.g. 25, as M3C's quick mode"
        )
    if not isinstance(threads, int | np.integer) or threads < 1:
        raise InputError(f"threads must be a whole number >= 1, got {threads!r}")
    data = X.to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    if data.ndim != 2 or len(data) < 2 or not np.isfinite(data).all():
        raise InputError(
            "X must be a finite items x features matrix with at least 2 items, as clustered"
        )
    ks = sorted({int(k) for k in ks})
    # Multithreaded BLAS sums in an order that depends on the thread count, and one ulp in
    # the null model or a simulated dataset can move a borderline item between k-means
    # clusters: one thread makes the reference the same on a laptop and on a SLURM node.
    with threadpool_limits(limits=1):
        model = null_model(data, covariance=covariance)
    options = {
        "ks": ks,
        "reps": reps,
        "item_fraction": item_fraction,
        "feature_fraction": feature_fraction,
        "algorithms": list(algorithms),
        "seed": seed,
        "pac_interval": tuple(pac_interval),
    }
    started = time.perf_counter()
    if threads == 1 or null_reps == 1:
        rows = [_null_pac(model, len(data), b, options) for b in range(null_reps)]
    else:
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=min(int(threads), int(null_reps)))(
            delayed(_null_pac)(model, len(data), b, options) for b in range(null_reps)
        )
    log.info(
        "null reference: %d datasets x %d reps in %.1f s on %d thread(s)",
        null_reps, reps, time.perf_counter() - started, threads,
    )  # fmt: skip
    return NullReference(
        ks=ks,
        pac=np.vstack(rows),
        n_items=len(data),
        settings={
            **options,
            "null_reps": int(null_reps),
            "covariance": covariance,
            "shrinkage": model.shrinkage,
        },
    )


def _null_pac(model: NullModel, n_items: int, b: int, options: dict) -> np.ndarray:
    rng = np.random.default_rng([options["seed"], _NULL_STREAM, b])
    with threadpool_limits(limits=1):  # see null_reference
        null = simulate_null(model, n_items, rng=rng)
    return pac_by_k(null, **options)


def pac_floor(n_items: int) -> float:
    """The smallest PAC counted: one ambiguous pair among all ``n (n - 1) / 2`` pairs."""
    return 2.0 / (n_items * (n_items - 1))


def compare_with_null(summary: pd.DataFrame, null: NullReference) -> pd.DataFrame:
    """Real PAC against the null per k: RCSI, its standard error and p-values.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``ConsensusResult.summary`` of the real data (columns ``k`` and ``pac``), with the
        same ks as ``null``.
    null : NullReference

    Returns
    -------
    pandas.DataFrame
        One row per k, columns ``COMPARISON_COLUMNS`` (see the module docstring).
    """
    real = summary.set_index("k")["pac"]
    tried = sorted(int(k) for k in real.index)
    if tried != list(null.ks):
        raise InputError(
            f"the real summary has k = {tried} but the null reference k = {list(null.ks)}: "
            "compute both with the same ks"
        )
    floor = pac_floor(null.n_items)
    rows = []
    for j, k in enumerate(null.ks):
        observed = float(real.loc[k])
        values = null.pac[:, j]
        logs = np.log(np.maximum(values, floor)) - math.log(max(observed, floor))
        reps = len(values)
        rows.append(
            {
                "k": k,
                "null_pac_mean": float(values.mean()),
                "null_pac_sd": float(values.std(ddof=1)) if reps > 1 else math.nan,
                "rcsi": float(logs.mean()),
                "rcsi_se": float(logs.std(ddof=1) / math.sqrt(reps)) if reps > 1 else math.nan,
                "p_value": beta_p_value(max(observed, floor), values),
                "p_monte_carlo": monte_carlo_p_value(observed, values),
            }
        )
    table = pd.DataFrame(rows)
    p = table["p_value"].to_numpy(float)
    table["p_adjusted"] = holm(np.where(np.isnan(p), table["p_monte_carlo"], p))
    return table[COMPARISON_COLUMNS]


def monte_carlo_p_value(observed: float, null: np.ndarray) -> float:
    """``(1 + #{null <= observed}) / (1 + len(null))``: the share of PACs as low or lower."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.count_nonzero(null <= observed + 1e-12)) / (1 + len(null)))


def beta_p_value(observed: float, null: np.ndarray) -> float:
    """Lower tail at ``observed`` of a beta fitted to ``null`` by mean and variance.

    The method of moments: with mean m and variance v, ``a = m (m (1 - m) / v - 1)`` and
    ``b = (1 - m) (m (1 - m) / v - 1)``. Where no beta fits (fewer than two values, no
    spread, or ``v >= m (1 - m)``), the Monte Carlo p-value is returned instead.
    """
    from scipy.stats import beta

    null = np.asarray(null, dtype=float)
    mean = float(null.mean())
    variance = float(null.var(ddof=1)) if len(null) > 1 else 0.0
    if not (0 < mean < 1) or variance <= 0 or variance >= mean * (1 - mean):
        return monte_carlo_p_value(observed, null)
    common = mean * (1 - mean) / variance - 1
    return float(beta.cdf(observed, mean * common, (1 - mean) * common))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (capped at 1, monotone in the sorted order)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def structure_report(
    summary: pd.DataFrame,
    *,
    k: int | None,
    k_rule: str,
    alpha: float,
    null_reps: int,
    fixed: bool = False,
    min_cluster_size: int = 1,
    min_rcsi: float = 0.0,
    separated_only: bool = False,
) -> dict:
    """``structure.json``: whether there are subtypes, k, the numbers per k and a sentence.

    Parameters
    ----------
    summary : pandas.DataFrame
        The consensus summary joined with :func:`compare_with_null` (columns ``k``, ``pac``,
        ``min_cluster_size`` and ``COMPARISON_COLUMNS``).
    k : int or None
        The chosen k (None: no structure).
    k_rule, alpha, null_reps, fixed, min_cluster_size, min_rcsi, separated_only
        How k was chosen: the rule, the significance level, the null datasets, whether k was
        fixed in the config, the smallest cluster a k needed to be eligible, the smallest
        RCSI that counted and whether every pair of clusters had to be separated (then
        ``summary`` has ``separation_p`` and ``least_separated``).

    Returns
    -------
    dict
        ``structure`` (bool), ``k`` (int or None), ``k_rule``, ``k_fixed``, ``alpha``,
        ``min_rcsi``, ``p_adjust`` ("holm"), ``null_reps``, per k (keys are k as text): ``pac``,
        ``null_pac_mean``, ``rcsi``, ``p_values``, ``p_adjusted``, ``p_monte_carlo``; and
        ``message``, a sentence with the numbers for the report.
    """
    table = summary.sort_values("k").reset_index(drop=True)
    ks = [int(v) for v in table["k"]]
    span = _span(ks)
    by_k = table.set_index("k")
    significant = table[table["p_adjusted"] < alpha]
    against = f"against {null_reps} null datasets"
    if k is None:
        if significant.empty:
            best = by_k.loc[int(table.loc[table["p_value"].idxmin(), "k"])]
            message = (
                f"No significant subtypes: the lowest p-value over {span} was "
                f"{_p(best['p_value'])} (k = {best.name}, RCSI {best['rcsi']:.2f}; "
                f"Holm-adjusted over the {len(ks)} k: {_p(best['p_adjusted'])}, alpha {alpha:g}) "
                f"{against}."
            )
        else:
            reasons = []
            for row in significant.itertuples():
                why = []
                if row.min_cluster_size < min_cluster_size:
                    why.append(
                        f"its smallest cluster has {int(row.min_cluster_size)} subjects "
                        f"(min_cluster_fraction requires {min_cluster_size})"
                    )
                if row.rcsi < min_rcsi:
                    why.append(f"its RCSI {row.rcsi:.3f} is below min_rcsi {min_rcsi:g}")
                if separated_only and not row.separation_p < alpha:
                    first, second = row.least_separated.split("-")
                    why.append(
                        f"its clusters {first} and {second} are not separated (the training "
                        f"subjects projected on the line between them are unimodal, dip test "
                        f"p = {_p(row.separation_p)}): bins of a continuum, not subtypes"
                    )
                reasons.append(
                    f"k = {row.k} (adjusted p {_p(row.p_adjusted)}): " + " and ".join(why)
                )
            message = (
                f"No significant subtypes: the k that beat the null {against} (alpha "
                f"{alpha:g}) do not qualify: " + "; ".join(reasons) + "."
            )
    else:
        row = by_k.loc[k]
        numbers = (
            f"PAC {row['pac']:.3f} against {row['null_pac_mean']:.3f} (sd "
            f"{row['null_pac_sd']:.3f}) in {null_reps} null datasets, RCSI {row['rcsi']:.2f}, "
            f"p = {_p(row['p_value'])} (Holm-adjusted over {span}: {_p(row['p_adjusted'])})"
        )
        if "separation_p" in by_k.columns:
            numbers += f"; the least separated pair's dip test p = {_p(row['separation_p'])}"
        if k_rule == "rcsi" and not fixed:
            message = (
                f"{k} subtypes: k = {k} has the largest RCSI among the k whose PAC is "
                f"significantly lower than without clusters (alpha {alpha:g}): {numbers}."
            )
        else:
            how = "fixed by subtypes.consensus.k" if fixed else f"chosen by the {k_rule} rule"
            verdict = "significant" if row["p_adjusted"] < alpha else "NOT significant"
            message = f"{k} subtypes ({how}): {numbers}; {verdict} at alpha {alpha:g}."

    def per_k(column: str) -> dict:
        return {str(kk): _number(value) for kk, value in zip(ks, table[column], strict=True)}

    return {
        "structure": k is not None,
        "k": None if k is None else int(k),
        "k_rule": k_rule,
        "k_fixed": bool(fixed),
        "alpha": float(alpha),
        "min_rcsi": float(min_rcsi),
        "separated_only": bool(separated_only),
        "p_adjust": "holm",
        "null_reps": int(null_reps),
        "pac": per_k("pac"),
        "null_pac_mean": per_k("null_pac_mean"),
        "rcsi": per_k("rcsi"),
        "p_values": per_k("p_value"),
        "p_adjusted": per_k("p_adjusted"),
        "p_monte_carlo": per_k("p_monte_carlo"),
        **({"separation_p": per_k("separation_p")} if "separation_p" in table.columns else {}),
        "message": message,
    }


def _span(ks: list[int]) -> str:
    if len(ks) > 2 and ks == list(range(ks[0], ks[-1] + 1)):
        return f"k = {ks[0]}..{ks[-1]}"
    return "k = " + ", ".join(map(str, ks))


def _p(value: float) -> str:
    """A p-value with two significant digits (scientific below 0.001)."""
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _number(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
