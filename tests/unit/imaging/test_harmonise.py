"""rdls.imaging.harmonise: ComBat onto a reference centre, and how predictable centres stay.

Synthetic features carry a planted biological group effect (two groups, balanced within each
centre) and planted centre shifts: additive and multiplicative, different per feature.
Harmonisation must remove the shifts, keep the biology and never touch the reference centre.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.imaging.harmonise import (
    MIN_SUBJECTS_PER_CENTRE,
    centre_predictability,
    combat,
    reference_centre,
)

FEATURES = [f"f{j}" for j in range(6)]
GROUP_EFFECT = np.array([1.5, -1.0, 0.0, 0.8, 0.0, 2.0])  # in units of the noise's sd
# Centre shifts: value = offset + scale * (true value), per feature.
SHIFTS = {
    "A": (np.zeros(6), np.ones(6)),
    "B": (np.array([3.0, -2.0, 1.0, 4.0, 0.5, -3.0]), np.array([1.8, 1.5, 2.0, 1.6, 1.4, 2.2])),
    "C": (np.array([-2.0, 1.5, -1.0, -3.0, 2.0, 1.0]), np.array([0.6, 0.7, 0.5, 0.65, 0.8, 0.6])),
}
SIZES = {"A": 40, "B": 30, "C": 30}


def _cohort(seed: int = 0, sizes=SIZES):
    """Features (subjects x 6) with centre shifts, the centres, the groups and the truth."""
    rng = np.random.default_rng(seed)
    rows, truth, centres, groups = [], [], [], []
    for centre, n in sizes.items():
        group = np.arange(n) % 2  # balanced within the centre
        true = 10 + group[:, None] * GROUP_EFFECT + rng.normal(size=(n, 6))
        offset, scale = SHIFTS[centre]
        rows.append(offset + scale * true)
        truth.append(true)
        centres += [centre] * n
        groups.append(group)
    index = pd.Index([f"S{i:03d}" for i in range(len(centres))], name="subject_id")
    return (
        pd.DataFrame(np.vstack(rows), index=index, columns=FEATURES),
        pd.Series(centres, index=index, name="centre"),
        pd.Series(np.concatenate(groups), index=index, name="group"),
        pd.DataFrame(np.vstack(truth), index=index, columns=FEATURES),
    )


def _t_statistic(values: pd.Series, group: pd.Series) -> float:
    a, b = values[group == 1], values[group == 0]
    return float((a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


@pytest.fixture(scope="module")
def cohort():
    return _cohort()


@pytest.fixture(scope="module")
def harmonised(cohort):
    features, centre, _, _ = cohort
    return combat(features, centre, reference="A")


def test_reference_centre_is_left_exactly_as_it_was(cohort, harmonised):
    features, centre, _, _ = cohort
    table, notes = harmonised

    assert notes == []
    assert table.shape == features.shape
    assert table.index.equals(features.index)
    assert list(table.columns) == FEATURES
    reference = centre == "A"
    pd.testing.assert_frame_equal(table[reference], features[reference], check_exact=True)
    # The others moved.
    assert (table[~reference] - features[~reference]).abs().to_numpy().min() > 0


def test_centre_means_and_spreads_come_to_the_reference(cohort, harmonised):
    features, centre, _, _ = cohort
    table, _ = harmonised
    reference_mean = features[centre == "A"].mean()
    reference_sd = features[centre == "A"].std()

    for name in ("B", "C"):
        before = (features[centre == name].mean() - reference_mean).abs() / reference_sd
        after = (table[centre == name].mean() - reference_mean).abs() / reference_sd
        assert before.max() > 3.0  # planted shifts of several reference sds
        assert after.max() < 0.05  # groups are balanced, so the means must meet
        ratio = table[centre == name].std() / reference_sd
        assert ratio.between(0.75, 1.33).all(), (name, ratio.round(2).to_dict())


def test_group_effect_survives_harmonisation(cohort, harmonised):
    features, _, group, truth = cohort
    table, _ = harmonised

    for j, feature in enumerate(FEATURES):
        t_truth = _t_statistic(truth[feature], group)
        t_before = _t_statistic(features[feature], group)
        t_after = _t_statistic(table[feature], group)
        if GROUP_EFFECT[j] == 0:
            assert abs(t_after) < 3
            continue
        # Pooled over centres, the shifts hide the biology; harmonised, it is back at the
        # strength it has in the unshifted truth.
        assert abs(t_before) < 0.8 * abs(t_truth)
        assert np.sign(t_after) == np.sign(GROUP_EFFECT[j])
        assert abs(t_after) > 0.85 * abs(t_truth), (feature, t_truth, t_after)


def test_centre_predictability_falls_to_chance(cohort, harmonised):
    features, centre, _, _ = cohort
    table, _ = harmonised

    before = centre_predictability(features, centre, seed=0)
    after = centre_predictability(table, centre, seed=0)

    assert before > 0.95
    assert after < 1 / 3 + 0.15
    # Seeded: the same folds give the same score.
    assert centre_predictability(table, centre, seed=0) == after


def test_adding_a_subject_changes_only_its_own_centre(cohort, harmonised):
    features, centre, _, _ = cohort
    table, _ = harmonised
    newcomer = pd.DataFrame([features[centre == "C"].iloc[0] * 1.1], columns=FEATURES)
    newcomer.index = pd.Index(["S999"], name="subject_id")
    more = pd.concat([features, newcomer])
    more_centre = pd.concat([centre, pd.Series(["C"], index=newcomer.index)])

    again, _ = combat(more, more_centre, reference="A")

    for name in ("A", "B"):
        rows = centre.index[centre == name]
        np.testing.assert_allclose(
            again.loc[rows].to_numpy(), table.loc[rows].to_numpy(), rtol=0, atol=1e-10
        )
    rows = centre.index[centre == "C"]
    assert not np.allclose(again.loc[rows].to_numpy(), table.loc[rows].to_numpy(), atol=1e-6)


def test_result_does_not_depend_on_row_order(cohort, harmonised):
    features, centre, _, _ = cohort
    table, _ = harmonised
    shuffled = features.sample(frac=1, random_state=3)

    again, _ = combat(shuffled, centre, reference="A")

    assert again.index.equals(shuffled.index)
    np.testing.assert_allclose(
        again.loc[table.index].to_numpy(), table.to_numpy(), rtol=0, atol=1e-10
    )


def test_centre_of_one_subject_is_left_unharmonised_with_a_note(cohort, harmonised):
    features, centre, _, _ = cohort
    table, _ = harmonised
    lonely = pd.DataFrame([features.iloc[0] + 50.0], columns=FEATURES)
    lonely.index = pd.Index(["S500"], name="subject_id")
    more = pd.concat([features, lonely])
    more_centre = pd.concat([centre, pd.Series(["D"], index=lonely.index)])

    again, notes = combat(more, more_centre, reference="A")

    assert MIN_SUBJECTS_PER_CENTRE == 2
    assert notes == [
        "centres D have fewer than 2 subjects and are left unharmonised",
    ]
    pd.testing.assert_series_equal(again.loc["S500"], more.loc["S500"], check_exact=True)
    np.testing.assert_allclose(
        again.loc[table.index].to_numpy(), table.to_numpy(), rtol=0, atol=1e-10
    )


def test_feature_constant_within_a_centre_is_left_unharmonised_with_a_note(cohort):
    features, centre, _, _ = cohort
    flat = features.copy()
    flat.loc[centre == "B", "f2"] = 7.0

    again, notes = combat(flat, centre, reference="A")

    assert notes == ["1 features constant within a centre are left unharmonised"]
    pd.testing.assert_series_equal(again["f2"], flat["f2"], check_exact=True)
    assert np.isfinite(again.to_numpy()).all()
    # The other features are still harmonised: centre B's means come to the reference.
    others = [f for f in FEATURES if f != "f2"]
    gap = (again.loc[centre == "B", others].mean() - flat.loc[centre == "A", others].mean()).abs()
    assert (gap / flat.loc[centre == "A", others].std()).max() < 0.05


def test_unknown_reference_is_refused(cohort):
    features, centre, _, _ = cohort
    with pytest.raises(ValueError, match="reference centre 'Z' has no subjects"):
        combat(features, centre, reference="Z")


def test_single_centre_is_returned_unchanged():
    features, centre, _, _ = _cohort(sizes={"A": 10})
    table, notes = combat(features, centre, reference="A")
    assert notes == []
    pd.testing.assert_frame_equal(table, features, check_exact=True)


# --- reference_centre -------------------------------------------------------------------------


def test_reference_is_the_training_cohorts_largest_centre():
    centre = pd.Series(["A", "B", "B", "C", "C", "C", "C", "A", "A"])
    cohort = pd.Series(["training"] * 5 + ["external_validation"] * 4)
    # Training: A 1, B 2, C 2 -> tie of B and C broken by name; overall C (4) is largest.
    assert centre[cohort == "training"].value_counts().to_dict() == {"B": 2, "C": 2, "A": 1}
    assert reference_centre(centre, cohort) == "B"


def test_reference_ties_are_broken_by_name_whatever_the_order():
    centre = pd.Series(["Z", "M", "Z", "M", "X"])
    cohort = pd.Series(["training"] * 5)
    assert reference_centre(centre, cohort) == "M"
    assert reference_centre(centre[::-1], cohort[::-1]) == "M"


def test_reference_follows_the_named_training_cohort():
    centre = pd.Series(["A", "B", "B"])
    cohort = pd.Series(["train", "train", "other"])
    assert reference_centre(centre, cohort, training="train") == "A"
    with pytest.raises(ValueError, match="no training-cohort subject"):
        reference_centre(centre, cohort)


# --- centre_predictability ----------------------------------------------------------------


def test_predictability_is_nan_with_fewer_than_two_usable_centres():
    features, centre, _, _ = _cohort(sizes={"A": 10})
    assert np.isnan(centre_predictability(features, centre, seed=0))
    # A second centre of one subject is left out: still one centre.
    centre = centre.copy()
    centre.iloc[0] = "B"
    assert np.isnan(centre_predictability(features, centre, seed=0))


def test_predictability_with_small_centres_uses_fewer_folds():
    features, centre, _, _ = _cohort(sizes={"A": 10, "B": 3})
    score = centre_predictability(features, centre, seed=0)
    assert score > 0.9  # B's planted shift is obvious even with 3-fold cross-validation
