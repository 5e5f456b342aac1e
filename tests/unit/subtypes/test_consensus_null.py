"""rdls.subtypes.structure: the null reference, RCSI and p-values per k, the rcsi rule and
structure.json."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.datasets import make_blobs
from statsmodels.stats.multitest import multipletests

from rdls.errors import InputError
from rdls.subtypes.consensus import choose_k, consensus_cluster, pac_by_k
from rdls.subtypes.stability import bootstrap_stability
from rdls.subtypes.structure import (
    COMPARISON_COLUMNS,
    NullReference,
    beta_p_value,
    compare_with_null,
    holm,
    monte_carlo_p_value,
    null_model,
    null_reference,
    pac_floor,
    simulate_null,
    structure_report,
)

# Small but faithful: the pipeline's algorithms and PAC interval, fewer items and draws.
OPTIONS = {
    "ks": [2, 3, 4, 5],
    "item_fraction": 0.8,
    "feature_fraction": 1.0,
    "algorithms": ["kmeans", "hierarchical"],
    "pac_interval": (0.1, 0.9),
}
REPS = 20
NULL_REPS = 10


def _tested(X, *, seed, **extra):
    """Consensus summary of X joined with its comparison against the null, and the null."""
    result = consensus_cluster(X, reps=REPS, seed=seed, **OPTIONS)
    null = null_reference(X, reps=REPS, null_reps=NULL_REPS, seed=seed, **OPTIONS, **extra)
    return result, null, result.summary.merge(compare_with_null(result.summary, null), on="k")


def _correlated_gaussian(seed: int, n: int = 60, p: int = 20) -> np.ndarray:
    """One multivariate normal (no clusters) with strongly correlated features, standardised."""
    rng = np.random.default_rng([99, seed])
    loadings = rng.normal(size=(p, 4))
    X = rng.multivariate_normal(np.zeros(p), loadings @ loadings.T + 0.5 * np.eye(p), size=n)
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _three_blobs(seed: int = 0, n: int = 60, p: int = 10):
    centres = np.zeros((3, p))
    centres[1, 0] = 10.0
    centres[2, :2] = 5.0, 10.0 * np.sqrt(3) / 2
    return make_blobs(n_samples=n, centers=centres, cluster_std=1.0, random_state=seed)


# --- planted structure and its absence --------------------------------------------------------


def test_three_separated_clusters_are_found_significant_and_stable():
    X, _ = _three_blobs()

    result, _, summary = _tested(X, seed=1)
    k = choose_k(summary, min_cluster_size=6)
    stability = bootstrap_stability(X, result.labels[3], reps=30, seed=1)

    assert k == 3
    at3 = summary.set_index("k").loc[3]
    assert at3["p_value"] < 0.01
    assert at3["p_adjusted"] < 0.01
    # one null dataset's PAC and more are above the real one: the Monte Carlo p is its floor
    assert at3["p_monte_carlo"] == pytest.approx(1 / (NULL_REPS + 1))
    assert at3["rcsi"] > 3  # real PAC 0 (floored at one pair), null PAC well above 0.05
    assert (stability["jaccard_mean"] > 0.85).all()
    assert set(stability["verdict"]) == {"highly stable"}


def test_a_single_correlated_gaussian_shows_no_structure_in_most_seeds():
    # Null data with the covariance of a 4-factor model: PAC falls with k exactly as in the
    # null datasets, so no k should beat them. Measured: no structure in 5 of 5 seeds.
    found = []
    for seed in range(5):
        _, _, summary = _tested(_correlated_gaussian(seed), seed=seed)
        found.append(choose_k(summary, min_cluster_size=6))
    assert sum(k is None for k in found) >= 4, found


def test_pac_by_k_is_the_consensus_pac_of_the_same_draws():
    X, _ = _three_blobs(seed=2, n=40)
    options = {**OPTIONS, "algorithms": ["kmeans", "gmm"]}

    pac = pac_by_k(X, reps=6, seed=3, **options)
    result = consensus_cluster(X, reps=6, seed=3, **options)

    np.testing.assert_array_equal(pac, result.summary["pac"].to_numpy())


# --- the null datasets ------------------------------------------------------------------------


@pytest.mark.parametrize("covariance", ["sample", "shrunk"])
def test_null_data_have_the_model_mean_and_covariance(covariance):
    X = _correlated_gaussian(0, n=60, p=8) * 2.0 + 5.0
    model = null_model(X, covariance=covariance)

    draws = simulate_null(model, 40_000, rng=np.random.default_rng(0))

    if covariance == "sample":
        expected = np.cov(X, rowvar=False)
        assert model.shrinkage == 0.0
    else:
        # the sample eigenvalues pulled towards their mean mu by rho, (1 - rho)^2 = 1 - delta
        delta = ledoit_wolf_shrinkage(X - X.mean(axis=0), assume_centered=True)
        rho = 1 - np.sqrt(1 - delta)
        sample = np.cov(X, rowvar=False)
        expected = (1 - rho) * sample + rho * np.trace(sample) / 8 * np.eye(8)
        assert model.shrinkage == pytest.approx(rho)
        assert 0 < rho < delta < 1
    np.testing.assert_allclose(draws.mean(axis=0), X.mean(axis=0), atol=0.05)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), expected, atol=0.1)
    # total variance is kept either way (Ledoit-Wolf shrinks towards the mean eigenvalue)
    assert np.trace(expected) == pytest.approx(np.trace(np.cov(X, rowvar=False)))


def _eigenvalue_spread(X) -> float:
    values = np.linalg.eigvalsh(np.cov(X, rowvar=False))
    return values.var() / values.mean() ** 2


def test_shrunk_null_data_are_as_elongated_as_the_real_data():
    # Sample eigenvalues are more spread than the population's; data drawn from them are
    # more spread again, hence look more clustered than the real data. The shrunk null keeps
    # the real data's spread. Measured here (variance / squared mean of the eigenvalues):
    # real 1.61, sample null 2.34 on average, shrunk null 1.60.
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(40, 10))
    X = rng.multivariate_normal(np.zeros(40), loadings @ loadings.T / 40 + 0.3 * np.eye(40), 60)
    real = _eigenvalue_spread(X)

    spread = {
        covariance: np.mean(
            [
                _eigenvalue_spread(simulate_null(model, 60, rng=np.random.default_rng(b)))
                for b in range(20)
            ]
        )
        for covariance in ("sample", "shrunk")
        for model in [null_model(X, covariance=covariance)]
    }

    assert spread["sample"] > 1.3 * real
    assert spread["shrunk"] == pytest.approx(real, rel=0.1)


def test_null_reference_is_seeded_and_independent_of_threads():
    X = _correlated_gaussian(2, n=30, p=6)
    options = {**OPTIONS, "ks": [2, 3], "reps": 4, "null_reps": 3, "seed": 5}

    one = null_reference(X, threads=1, **options)
    two = null_reference(X, threads=2, **options)
    other = null_reference(X, threads=1, **{**options, "seed": 6})

    assert one.pac.shape == (3, 2)
    np.testing.assert_array_equal(one.pac, two.pac)
    assert not np.array_equal(one.pac, other.pac)
    assert one.settings["null_reps"] == 3 and one.settings["covariance"] == "shrunk"


def test_null_datasets_are_drawn_with_one_blas_thread(monkeypatch):
    """Multithreaded BLAS rounds by thread count; a SLURM node and a laptop must agree."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import rdls.subtypes.structure as structure

    seen = []

    def recording(model, n_items, *, rng):
        seen.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return simulate_null(model, n_items, rng=rng)

    monkeypatch.setattr(structure, "simulate_null", recording)
    X = _correlated_gaussian(2, n=30, p=6)
    with threadpool_limits(limits=2):
        null_reference(X, **{**OPTIONS, "ks": [2], "reps": 2, "null_reps": 2, "seed": 5})

    assert seen and set(seen) == {1}


# --- comparison with the null -----------------------------------------------------------------


def test_comparison_follows_its_definitions():
    null = NullReference(
        ks=[2, 3, 4],
        pac=np.array(
            [[0.90, 0.80, 0.60], [0.95, 0.70, 0.50], [0.92, 0.75, 0.55], [0.94, 0.72, 0.65]]
        ),
        n_items=50,
    )
    summary = pd.DataFrame({"k": [4, 2, 3], "pac": [0.6, 0.91, 0.0]})

    table = compare_with_null(summary, null).set_index("k")

    assert list(table.reset_index().columns) == COMPARISON_COLUMNS
    floor = pac_floor(50)
    assert floor == pytest.approx(1 / 1225)
    for j, k in enumerate(null.ks):
        values = null.pac[:, j]
        real = summary.set_index("k").loc[k, "pac"]
        logs = np.log(values) - np.log(max(real, floor))
        assert table.loc[k, "null_pac_mean"] == pytest.approx(values.mean())
        assert table.loc[k, "null_pac_sd"] == pytest.approx(values.std(ddof=1))
        assert table.loc[k, "rcsi"] == pytest.approx(logs.mean())
        assert table.loc[k, "rcsi_se"] == pytest.approx(logs.std(ddof=1) / 2)
        # beta by the method of moments, evaluated at the (floored) real PAC
        m, v = values.mean(), values.var(ddof=1)
        a, b = m * (m * (1 - m) / v - 1), (1 - m) * (m * (1 - m) / v - 1)
        assert table.loc[k, "p_value"] == pytest.approx(stats.beta.cdf(max(real, floor), a, b))
    # Monte Carlo: (1 + null PACs at or below the real one) / (1 + 4)
    assert table["p_monte_carlo"].to_dict() == pytest.approx({2: 0.4, 3: 0.2, 4: 0.8})
    expected = multipletests(table["p_value"], method="holm")[1]
    np.testing.assert_allclose(table["p_adjusted"], expected)


def test_holm_matches_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])

    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


def test_beta_p_value_falls_back_to_monte_carlo_where_no_beta_fits():
    flat = np.full(5, 0.4)
    assert beta_p_value(0.3, flat) == monte_carlo_p_value(0.3, flat) == pytest.approx(1 / 6)
    assert beta_p_value(0.5, flat) == pytest.approx(1.0)
    # more spread than any beta on (0, 1) allows: variance >= m (1 - m)
    wide = np.array([0.0, 1.0, 0.0, 1.0])
    assert beta_p_value(0.5, wide) == monte_carlo_p_value(0.5, wide) == pytest.approx(3 / 5)


def test_comparison_needs_the_same_ks():
    null = NullReference(ks=[2, 3], pac=np.full((2, 2), 0.5), n_items=20)
    with pytest.raises(InputError, match=r"k = \[2, 3, 4\] but the null reference k = \[2, 3\]"):
        compare_with_null(pd.DataFrame({"k": [2, 3, 4], "pac": [0.1] * 3}), null)


# --- the rcsi rule ----------------------------------------------------------------------------


def _compared(**columns) -> pd.DataFrame:
    base = {
        "k": [2, 3, 4, 5],
        "pac": [0.3, 0.05, 0.2, 0.25],
        "min_cluster_size": [40, 25, 20, 3],
        "rcsi": [0.1, 2.0, 1.0, 3.0],
        "rcsi_se": [0.01] * 4,
        "p_adjusted": [0.2, 0.001, 0.01, 0.001],
        "silhouette": [0.3, 0.6, 0.4, 0.5],
        "delta_area": [0.5, 0.3, 0.05, 0.02],
    }
    return pd.DataFrame({**base, **columns})


def test_rcsi_rule_takes_the_largest_significant_eligible_rcsi():
    summary = _compared()

    # k = 5 has the largest RCSI but a cluster of 3: not eligible at 10
    assert choose_k(summary, rule="rcsi", min_cluster_size=10) == 3
    assert choose_k(summary, rule="rcsi") == 5
    # k = 3 loses its significance at alpha 0.001 (p must be below alpha)
    assert choose_k(summary, rule="rcsi", min_cluster_size=10, alpha=0.001) is None
    assert choose_k(summary, rule="rcsi", min_cluster_size=10, alpha=0.02) == 3
    # the default rule is rcsi
    assert choose_k(summary, min_cluster_size=10) == 3


def test_rcsi_within_one_standard_error_of_the_best_goes_to_the_smaller_k():
    near = _compared(rcsi=[0.1, 1.99, 2.0, 0.5], rcsi_se=[0.01, 0.02, 0.02, 0.01])
    apart = _compared(rcsi=[0.1, 1.9, 2.0, 0.5], rcsi_se=[0.01, 0.02, 0.02, 0.01])

    assert choose_k(near, min_cluster_size=10) == 3
    assert choose_k(apart, min_cluster_size=10) == 4


def test_rcsi_rule_says_none_without_a_significant_k():
    summary = _compared(p_adjusted=[0.3, 0.06, 0.5, 1.0])

    assert choose_k(summary, rule="rcsi") is None
    # the other rules still choose; a fixed k stands
    assert choose_k(summary, rule="pac") == 3
    assert choose_k(summary, rule="silhouette") == 3
    assert choose_k(summary, rule="delta_area") == 3
    assert choose_k(summary, rule="rcsi", k=4) == 4


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
def test_alpha_must_lie_inside_the_unit_interval(alpha):
    with pytest.raises(InputError, match=r"alpha must be in \(0, 1\)"):
        choose_k(_compared(), alpha=alpha)


def test_min_rcsi_must_not_be_negative():
    with pytest.raises(InputError, match=r"min_rcsi must be at least 0, got -0\.1"):
        choose_k(_compared(), min_rcsi=-0.1)


def test_rcsi_rule_needs_the_comparison_with_the_null():
    with pytest.raises(InputError, match=r"no column 'rcsi': join it with .*compare_with_null"):
        choose_k(pd.DataFrame({"k": [2, 3], "pac": [0.2, 0.1]}))


@pytest.mark.parametrize("null_reps", [0, -3, 2.5, True])
def test_null_reps_must_be_a_whole_number_of_at_least_one(null_reps):
    with pytest.raises(InputError, match=r"null_reps must be a whole number >= 1 .* e\.g\. 25"):
        null_reference(np.zeros((10, 2)), reps=5, null_reps=null_reps, seed=0, **OPTIONS)


def test_unknown_null_covariance_is_refused():
    with pytest.raises(InputError, match="null_covariance must be one of shrunk, sample"):
        null_reference(
            np.random.default_rng(0).normal(size=(12, 3)),
            reps=2, null_reps=1, seed=0, covariance="diagonal", **OPTIONS,
        )  # fmt: skip


# --- structure.json ---------------------------------------------------------------------------


def test_structure_report_without_a_significant_k_says_so_with_the_numbers():
    summary = _compared(
        p_value=[0.12, 0.31, 0.05, 0.4], p_adjusted=[0.36, 0.62, 0.2, 0.62],
        p_monte_carlo=[0.2, 0.3, 0.1, 0.5], null_pac_mean=[0.9, 0.8, 0.7, 0.6],
        rcsi=[0.01, -0.02, 0.04, -0.1],
    )  # fmt: skip

    report = structure_report(
        summary, k=None, k_rule="rcsi", alpha=0.05, null_reps=25, min_cluster_size=10
    )

    assert report["structure"] is False and report["k"] is None
    assert report["k_rule"] == "rcsi" and report["alpha"] == 0.05 and report["null_reps"] == 25
    assert report["p_values"] == {"2": 0.12, "3": 0.31, "4": 0.05, "5": 0.4}
    assert report["p_adjusted"]["4"] == 0.2
    assert report["rcsi"] == {"2": 0.01, "3": -0.02, "4": 0.04, "5": -0.1}
    assert report["message"] == (
        "No significant subtypes: the lowest p-value over k = 2..5 was 0.05 (k = 4, RCSI 0.04; "
        "Holm-adjusted over the 4 k: 0.2, alpha 0.05) against 25 null datasets."
    )


def test_structure_report_when_only_too_small_clusters_beat_the_null():
    summary = _compared(
        p_value=[0.1, 0.3, 0.2, 1e-5], p_adjusted=[0.3, 0.6, 0.4, 4e-5],
        p_monte_carlo=[0.1] * 4, null_pac_mean=[0.9] * 4,
    )  # fmt: skip

    report = structure_report(
        summary, k=None, k_rule="rcsi", alpha=0.05, null_reps=25, min_cluster_size=10
    )

    assert report["message"] == (
        "No significant subtypes: the k that beat the null against 25 null datasets (alpha "
        "0.05) do not qualify: k = 5 (adjusted p 4.0e-05): its smallest cluster has 3 subjects "
        "(min_cluster_fraction requires 10)."
    )


def test_structure_report_when_the_gain_over_the_null_is_negligible():
    summary = _compared(
        p_value=[1e-9, 0.3, 0.2, 0.4], p_adjusted=[4e-9, 0.6, 0.4, 0.6], rcsi=[0.03, 0, 0, 0],
        p_monte_carlo=[0.04] * 4, null_pac_mean=[0.99] * 4,
    )  # fmt: skip

    assert choose_k(summary, min_rcsi=0.05) is None
    assert choose_k(summary, min_rcsi=0.0) == 2
    report = structure_report(
        summary, k=None, k_rule="rcsi", alpha=0.05, null_reps=25, min_rcsi=0.05
    )
    assert report["min_rcsi"] == 0.05
    assert report["message"].endswith(
        "do not qualify: k = 2 (adjusted p 4.0e-09): its RCSI 0.030 is below min_rcsi 0.05."
    )


def test_structure_report_with_subtypes_gives_the_chosen_k_numbers():
    summary = _compared(
        p_value=[0.1, 2e-9, 0.003, 2e-4], p_adjusted=[0.1, 8e-9, 0.006, 6e-4],
        p_monte_carlo=[0.1] * 4, null_pac_mean=[0.9, 0.8, 0.7, 0.6],
        null_pac_sd=[0.02, 0.03, 0.04, 0.05],
    )  # fmt: skip

    chosen = structure_report(summary, k=3, k_rule="rcsi", alpha=0.05, null_reps=25)
    fixed = structure_report(summary, k=2, k_rule="rcsi", alpha=0.05, null_reps=25, fixed=True)
    by_pac = structure_report(summary, k=3, k_rule="pac", alpha=0.05, null_reps=25)

    assert chosen["structure"] is True and chosen["k"] == 3 and chosen["k_fixed"] is False
    assert chosen["message"] == (
        "3 subtypes: k = 3 has the largest RCSI among the k whose PAC is significantly lower "
        "than without clusters (alpha 0.05): PAC 0.050 against 0.800 (sd 0.030) in 25 null "
        "datasets, RCSI 2.00, p = 2.0e-09 (Holm-adjusted over k = 2..5: 8.0e-09)."
    )
    assert fixed["k_fixed"] is True
    assert fixed["message"].startswith("2 subtypes (fixed by subtypes.consensus.k): PAC 0.300")
    assert fixed["message"].endswith("NOT significant at alpha 0.05.")
    assert by_pac["message"].startswith("3 subtypes (chosen by the pac rule)")
    assert by_pac["message"].endswith("; significant at alpha 0.05.")
    assert math.isclose(by_pac["p_monte_carlo"]["3"], 0.1)
