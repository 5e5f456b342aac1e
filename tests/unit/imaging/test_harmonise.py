"""rdls.imaging.harmonise: ComBat fitted on training, saved, and applied to everyone else.

Synthetic features carry a planted biological group effect (two groups, balanced within each
centre) and planted centre shifts, additive and multiplicative, different per feature:
value = offset + scale * (true value). Training has centres A (the reference), B and C;
validation subjects come from A and B, and from centres D and E that training never saw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inmoose.pycombat import pycombat_norm

from rdls.errors import InputError
from rdls.imaging.features import harmonisation_report
from rdls.imaging.harmonise import (
    MIN_SUBJECTS_PER_CENTRE,
    ComBatModel,
    centre_predictability,
    check_unseen_centres,
    estimate_centre,
    fit_combat,
    harmonise_cohort,
    reference_centre,
)

FEATURES = [f"f{j}" for j in range(6)]
GROUP_EFFECT = np.array([1.5, -1.0, 0.0, 0.8, 0.0, 2.0])  # in units of the noise's sd
SHIFTS = {
    "A": (np.zeros(6), np.ones(6)),
    "B": (np.array([3.0, -2.0, 1.0, 4.0, 0.5, -3.0]), np.array([1.8, 1.5, 2.0, 1.6, 1.4, 2.2])),
    "C": (np.array([-2.0, 1.5, -1.0, -3.0, 2.0, 1.0]), np.array([0.6, 0.7, 0.5, 0.65, 0.8, 0.6])),
    "D": (np.array([6.0, -5.0, 4.0, 8.0, -6.0, 5.0]), np.array([2.0, 1.8, 2.2, 1.9, 2.1, 2.0])),
    "E": (np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), np.ones(6)),
}
TRAINING = {"A": 40, "B": 30, "C": 30}


def _draw(sizes, *, seed=0, cohort="training", start=0):
    """Features with centre shifts, their centres, cohorts, groups and unshifted truth."""
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
    index = pd.Index([f"{cohort[:2].upper()}{start + i:03d}" for i in range(len(centres))],
                     name="subject_id")  # fmt: skip
    features = pd.DataFrame(np.vstack(rows), index=index, columns=FEATURES)
    meta = pd.DataFrame({"cohort": cohort, "centre": centres}, index=index)
    return (features, meta, pd.Series(np.concatenate(groups), index=index, name="group"),
            pd.DataFrame(np.vstack(truth), index=index, columns=FEATURES))  # fmt: skip


def _t_statistic(values: pd.Series, group: pd.Series) -> float:
    a, b = values[group == 1], values[group == 0]
    return float((a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


@pytest.fixture(scope="module")
def training():
    return _draw(TRAINING)


@pytest.fixture(scope="module")
def model(training):
    features, meta, _, _ = training
    return fit_combat(features, meta["centre"], reference="A", family="radiomics")


@pytest.fixture(scope="module")
def harmonised(training, model):
    features, meta, _, _ = training
    return model.apply(features, meta["centre"])


# --- the training fit, saved --------------------------------------------------------------


def test_the_saved_model_reproduces_inmoose_on_training(tmp_path, training, model):
    features, meta, _, _ = training
    expected = np.asarray(pycombat_norm(features.T, meta["centre"].to_numpy(), ref_batch="A")).T
    # Saved, read back, applied: no refit, no inmoose.
    model.save(tmp_path / "radiomics.json")
    loaded = ComBatModel.load(tmp_path / "radiomics.json")
    applied = loaded.apply(features, meta["centre"])

    np.testing.assert_allclose(applied.to_numpy(), expected, rtol=0, atol=1e-8)
    assert model.inmoose_deviation < 1e-12  # checked at fit time, recorded in the file
    assert loaded.inmoose_deviation == model.inmoose_deviation
    assert {c: f.source for c, f in loaded.centres.items()} == {
        "A": "reference", "B": "training", "C": "training"}  # fmt: skip
    assert loaded.centres["B"].subjects == 30 and len(loaded.centres["B"].gamma) == 6
    assert loaded.reference == "A" and loaded.harmonised == FEATURES


def test_the_saved_file_holds_the_pooled_parameters_and_versions(tmp_path, training, model):
    import json

    features, meta, _, _ = training
    model.save(tmp_path / "deep.json")
    data = json.loads((tmp_path / "deep.json").read_text())
    at_a = features[meta["centre"] == "A"]
    np.testing.assert_allclose(data["grand_mean"], at_a.mean(), rtol=1e-12)
    np.testing.assert_allclose(data["var_pooled"], at_a.var(ddof=0), rtol=1e-12)
    assert set(data["centres"]["B"]) >= {"gamma_star", "delta_star", "subjects", "source"}
    assert set(data["versions"]) == {"rdls", "inmoose", "numpy"}
    assert data["features"] == FEATURES and data["reference_centre"] == "A"


def test_a_file_that_is_not_a_saved_model_is_refused(tmp_path):
    path = tmp_path / "radiomics.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(InputError, match=r"radiomics.json: not a saved rdls ComBat model.*"
                       r"rerun the rule imaging_features"):  # fmt: skip
        ComBatModel.load(path)
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"cannot read the saved harmonisation model"):
        ComBatModel.load(path)


def test_reference_centre_is_left_exactly_as_it_was(training, harmonised):
    features, meta, _, _ = training
    reference = meta["centre"] == "A"
    pd.testing.assert_frame_equal(
        harmonised[reference], features[reference], check_exact=True, check_names=False
    )
    assert (harmonised[~reference] - features[~reference]).abs().to_numpy().min() > 0


def test_centre_means_and_spreads_come_to_the_reference(training, harmonised):
    features, meta, _, _ = training
    centre = meta["centre"]
    reference_mean = features[centre == "A"].mean()
    reference_sd = features[centre == "A"].std()
    for name in ("B", "C"):
        before = (features[centre == name].mean() - reference_mean).abs() / reference_sd
        after = (harmonised[centre == name].mean() - reference_mean).abs() / reference_sd
        assert before.max() > 3.0  # planted shifts of several reference sds
        assert after.max() < 0.05  # groups are balanced, so the means must meet
        ratio = harmonised[centre == name].std() / reference_sd
        assert ratio.between(0.75, 1.33).all(), (name, ratio.round(2).to_dict())


def test_group_effect_survives_harmonisation(training, harmonised):
    features, _, group, truth = training
    for j, feature in enumerate(FEATURES):
        t_truth = _t_statistic(truth[feature], group)
        t_before = _t_statistic(features[feature], group)
        t_after = _t_statistic(harmonised[feature], group)
        if GROUP_EFFECT[j] == 0:
            assert abs(t_after) < 3
            continue
        # Pooled over centres, the shifts hide the biology; harmonised, it is back.
        assert abs(t_before) < 0.8 * abs(t_truth)
        assert np.sign(t_after) == np.sign(GROUP_EFFECT[j])
        assert abs(t_after) > 0.85 * abs(t_truth), (feature, t_truth, t_after)


def test_centre_predictability_falls_to_chance(training, harmonised):
    features, meta, _, _ = training
    before = centre_predictability(features, meta["centre"], seed=0)
    after = centre_predictability(harmonised, meta["centre"], seed=0)
    assert before > 0.95
    assert after < 1 / 3 + 0.15
    assert centre_predictability(harmonised, meta["centre"], seed=0) == after  # seeded


def test_result_does_not_depend_on_row_order(training, harmonised):
    features, meta, _, _ = training
    shuffled = features.sample(frac=1, random_state=3)
    again = fit_combat(shuffled, meta["centre"], reference="A").apply(shuffled, meta["centre"])
    assert again.index.equals(shuffled.index)
    np.testing.assert_allclose(again.loc[harmonised.index], harmonised, rtol=0, atol=1e-10)


def test_a_training_centre_of_one_subject_is_left_unharmonised_with_a_note(training, model):
    features, meta, _, _ = training
    lonely = pd.DataFrame([features.iloc[0] + 50.0], index=pd.Index(["S500"], name="subject_id"))
    more = pd.concat([features, lonely])
    centre = pd.concat([meta["centre"], pd.Series({"S500": "Z"})])

    again = fit_combat(more, centre, reference="A")

    assert MIN_SUBJECTS_PER_CENTRE == 2
    assert again.notes == ["training centre(s) Z have fewer than 2 subjects and are left "
                           "unharmonised"]  # fmt: skip
    assert again.centres["Z"].source == "unharmonised"
    out = again.apply(more, centre)
    pd.testing.assert_series_equal(out.loc["S500"], more.loc["S500"], check_exact=True)
    np.testing.assert_allclose(out.loc[features.index], model.apply(features, meta["centre"]),
                               rtol=0, atol=1e-10)  # fmt: skip


def test_feature_constant_within_a_centre_is_left_unharmonised_with_a_note(training):
    features, meta, _, _ = training
    centre = meta["centre"]
    flat = features.copy()
    flat.loc[centre == "B", "f2"] = 7.0

    again = fit_combat(flat, centre, reference="A")
    out = again.apply(flat, centre)

    assert again.notes == ["1 features constant within a training centre are left unharmonised"]
    assert again.harmonised == [f for f in FEATURES if f != "f2"]
    pd.testing.assert_series_equal(out["f2"], flat["f2"], check_exact=True)
    others = [f for f in FEATURES if f != "f2"]
    gap = (out.loc[centre == "B", others].mean() - flat.loc[centre == "A", others].mean()).abs()
    assert (gap / flat.loc[centre == "A", others].std()).max() < 0.05


def test_unknown_reference_is_refused(training):
    features, meta, _, _ = training
    with pytest.raises(ValueError, match="reference centre 'Z' has fewer than 2 training"):
        fit_combat(features, meta["centre"], reference="Z")
    with pytest.raises(InputError, match=r"reference_centre: 'Z' has 0 training subject\(s\) "
                       r".*training centres: A, B, C\). Name a larger one"):  # fmt: skip
        harmonise_cohort(features, meta, family="radiomics", reference="Z")
    # A reference of one training subject has no variance to standardise with.
    lonely = pd.DataFrame([features.iloc[0]], index=pd.Index(["S500"], name="subject_id"))
    more = pd.concat([features, lonely])
    more_meta = pd.concat([meta, pd.DataFrame({"cohort": ["training"], "centre": ["Z"]},
                                              index=lonely.index)])  # fmt: skip
    with pytest.raises(InputError, match=r"'Z' has 1 training subject\(s\) with features"):
        harmonise_cohort(more, more_meta, family="radiomics", reference="Z")


def test_single_centre_is_returned_unchanged():
    features, meta, _, _ = _draw({"A": 10})
    table, model = harmonise_cohort(features, meta, family="deep")
    assert model.notes == [] and model.reference == "A"
    pd.testing.assert_frame_equal(table, features, check_exact=True)


def test_method_none_keeps_every_value(training):
    features, meta, _, _ = training
    table, model = harmonise_cohort(features, meta, family="deep", method="none")
    pd.testing.assert_frame_equal(table, features, check_exact=True)
    assert model.method == "none" and model.centres == {}
    # Any centre, even one nobody saw.
    new = model.apply(features.iloc[:1], pd.Series({features.index[0]: "Q"}))
    pd.testing.assert_frame_equal(new, features.iloc[:1], check_exact=True)


# --- everyone else: mapped with the saved parameters ----------------------------------------


@pytest.fixture(scope="module")
def cohort(training):
    """Training, internal validation at A and B, external validation at D (unseen, 40)."""
    parts = [training,
             _draw({"A": 12, "B": 10}, seed=1, cohort="internal_validation"),
             _draw({"D": 40}, seed=2, cohort="external_validation")]  # fmt: skip
    return tuple(pd.concat([p[i] for p in parts]) for i in range(4))


def test_the_model_rests_on_training_only(cohort, model):
    features, meta, _, _ = cohort
    table, fitted = harmonise_cohort(features, meta, family="radiomics",
                                     min_subjects_per_centre=20)  # fmt: skip
    for name in ("B", "C"):
        np.testing.assert_array_equal(fitted.centres[name].gamma, model.centres[name].gamma)
        np.testing.assert_array_equal(fitted.centres[name].delta, model.centres[name].delta)
        assert fitted.centres[name].subjects == TRAINING[name]
    np.testing.assert_array_equal(fitted.grand_mean, model.grand_mean)
    training = meta.index[meta["cohort"] == "training"]
    np.testing.assert_array_equal(table.loc[training], model.apply(*_pair(cohort, training)))


def _pair(cohort, ids):
    features, meta, _, _ = cohort
    return features.loc[ids], meta.loc[ids, "centre"]


def test_a_validation_subject_at_a_training_centre_is_harmonised_alone(cohort):
    features, meta, _, _ = cohort
    table, model = harmonise_cohort(features, meta, family="radiomics")
    internal = meta.index[meta["cohort"] == "internal_validation"]
    for subject in internal[[0, 1, -1]]:
        alone = model.apply(*_pair(cohort, [subject]))
        np.testing.assert_array_equal(alone.loc[subject], table.loc[subject])
    # Adding a validation subject at B changes nobody else's features.
    newcomer = pd.DataFrame([features.loc[internal[-1]] * 1.1], index=["NEW"])
    more = pd.concat([features, newcomer])
    more_meta = pd.concat([meta, pd.DataFrame({"cohort": ["internal_validation"],
                                               "centre": ["B"]}, index=["NEW"])])  # fmt: skip
    again, _ = harmonise_cohort(more, more_meta, family="radiomics")
    pd.testing.assert_frame_equal(again.loc[table.index], table, check_exact=True)


def test_an_unseen_centre_is_estimated_from_its_own_images_as_combat_would(cohort):
    features, meta, _, _ = cohort
    table, model = harmonise_cohort(features, meta, family="radiomics")
    d = meta.index[meta["centre"] == "D"]
    assert model.centres["D"].source == "own_images" and model.centres["D"].subjects == 40
    # Exactly what inmoose gives D fitted together with the reference's training subjects:
    # with a reference centre, a centre's estimate rests on the reference and itself only.
    a = meta.index[(meta["centre"] == "A") & (meta["cohort"] == "training")]
    joint = features.loc[a.append(d)]
    expected = np.asarray(pycombat_norm(joint.T, meta.loc[joint.index, "centre"].to_numpy(),
                                        ref_batch="A")).T[len(a):]  # fmt: skip
    np.testing.assert_allclose(table.loc[d], expected, rtol=0, atol=1e-10)


def test_an_unseen_centre_estimated_from_its_own_images_recovers_the_planted_shift():
    """Large enough centres that sampling noise stays well below the 10% asked for."""
    parts = [_draw({"A": 300, "B": 100}, seed=4),
             _draw({"D": 200}, seed=5, cohort="external_validation")]  # fmt: skip
    features, meta, group, truth = (pd.concat([p[i] for p in parts]) for i in range(4))
    table, model = harmonise_cohort(features, meta, family="radiomics")
    # D's scanner multiplies every feature by its planted scale and shifts its mean: the map
    # divides by the scale and takes the shift off, each within 10%.
    _, scale = SHIFTS["D"]
    slope, _ = model.affine("D")
    np.testing.assert_allclose(1.0 / slope, scale, rtol=0.10)
    d = meta.index[meta["centre"] == "D"]
    planted = features.loc[d].mean() - truth.loc[d].mean()
    removed = features.loc[d].mean() - table.loc[d].mean()
    np.testing.assert_allclose(removed, planted, rtol=0.10)

    # D's subjects come to their unshifted values, and the group effect is kept.
    def error(values):  # mean absolute error in the truth's sd
        return (values - truth.loc[d]).abs().mean() / truth.loc[d].std()

    assert error(features.loc[d]).min() > 2
    assert error(table.loc[d]).max() < 0.25, error(table.loc[d]).round(3).to_dict()
    for j, feature in enumerate(FEATURES):
        if GROUP_EFFECT[j]:
            t = _t_statistic(table.loc[d, feature], group[d])
            assert abs(t) > 0.85 * abs(_t_statistic(truth.loc[d, feature], group[d]))


def test_estimating_an_unseen_centre_uses_nothing_but_its_own_subjects(cohort, model):
    features, meta, _, _ = cohort
    d = meta.index[meta["centre"] == "D"]
    _, fitted = harmonise_cohort(features, meta, family="radiomics")
    alone = estimate_centre(model, features.loc[d])
    np.testing.assert_array_equal(alone.gamma, fitted.centres["D"].gamma)
    np.testing.assert_array_equal(alone.delta, fitted.centres["D"].delta)


def test_a_small_unseen_centre_is_refused_naming_it_its_count_and_the_fix(cohort):
    features, meta, _, _ = cohort
    small, small_meta, _, _ = _draw({"E": 5}, seed=3, cohort="external_validation", start=500)
    features, meta = pd.concat([features, small]), pd.concat([meta, small_meta])
    with pytest.raises(InputError, match=(
        r"radiomics features after quality control: 1 centre\(s\) did not occur in the training "
        r"cohort \(centres A, B, C\) and have fewer subjects than "
        r"imaging.harmonisation.min_subjects_per_centre \(20\).*\n"
        r"- centre 'E' \(external_validation\): 5 subject\(s\)\n"
        r"Add subjects of that centre.*lower imaging.harmonisation.min_subjects_per_centre.*"
        r"set imaging.harmonisation.unseen_centre: unharmonised")):  # fmt: skip
        harmonise_cohort(features, meta, family="radiomics")
    # Lowering the minimum estimates it; D (40 subjects) is estimated either way.
    _, model = harmonise_cohort(features, meta, family="radiomics", min_subjects_per_centre=5)
    assert model.centres["E"].source == "own_images"


def test_a_small_unseen_centre_is_kept_unharmonised_when_asked(cohort):
    features, meta, _, _ = cohort
    small, small_meta, _, _ = _draw({"E": 5}, seed=3, cohort="external_validation", start=500)
    features, meta = pd.concat([features, small]), pd.concat([meta, small_meta])
    table, model = harmonise_cohort(features, meta, family="radiomics",
                                    unseen_centre="unharmonised")  # fmt: skip
    e = small.index
    pd.testing.assert_frame_equal(table.loc[e], small, check_exact=True)
    assert model.centres["E"].source == "unharmonised" and model.centres["E"].subjects == 5
    assert model.centres["D"].source == "own_images"  # large enough: still estimated
    assert "centre E (5 subjects, not in training) is left unharmonised" in model.notes[-1]


def test_the_sheet_is_checked_at_start_for_small_unseen_centres():
    subjects = pd.DataFrame({
        "subject_id": [f"S{i}" for i in range(30)],
        "cohort": ["training"] * 20 + ["external_validation"] * 10,
        "centre": ["A"] * 10 + ["B"] * 10 + ["C"] * 6 + ["D"] * 4,
    })  # fmt: skip
    settings = {"method": "combat", "min_subjects_per_centre": 5, "unseen_centre": "error"}
    imaged = subjects["subject_id"].drop(index=[26])  # D: 3 subjects with an MRI
    with pytest.raises(InputError, match=r"(?s)subjects.tsv, column 'centre': 1 centre\(s\).*"
                       r"centre 'D' \(external_validation\): 3 subject\(s\)"):  # fmt: skip
        check_unseen_centres(subjects, with_mri=imaged, settings=settings, source="subjects.tsv")
    for relaxed in ({"unseen_centre": "unharmonised"}, {"min_subjects_per_centre": 3},
                    {"method": "none"}):  # fmt: skip
        check_unseen_centres(subjects, with_mri=imaged, settings={**settings, **relaxed},
                             source="subjects.tsv")  # fmt: skip


def test_the_report_lists_centres_by_source_and_cohort(cohort):
    features, meta, _, _ = cohort
    small, small_meta, _, _ = _draw({"E": 5}, seed=3, cohort="biological", start=500)
    features, meta = pd.concat([features, small]), pd.concat([meta, small_meta])
    table, model = harmonise_cohort(features, meta, family="radiomics",
                                    unseen_centre="unharmonised")  # fmt: skip
    report = harmonisation_report(features, table, meta, model, seed=0).set_index("cohort")
    assert report.index.tolist() == ["all", "training", "internal_validation",
                                     "external_validation", "biological"]  # fmt: skip
    assert report.loc["all", "fitted_in_training"] == "A (reference, 40), B (30), C (30)"
    assert report.loc["internal_validation", "fitted_in_training"] == "A (reference, 40), B (30)"
    assert report.loc["external_validation", "estimated_from_own_images"] == "D (40)"
    assert report.loc["biological", "unharmonised"] == "E (5)"
    assert report.loc["external_validation", "subjects"] == 40
    assert report.loc["external_validation", "chance"] == pytest.approx(1 / 4)  # with training
    before, after = (
        report["centre_balanced_accuracy_before"],
        report["centre_balanced_accuracy_after"],
    )
    for scope in ("training", "internal_validation", "external_validation"):
        assert before[scope] > 0.9 and after[scope] < report.loc[scope, "chance"] + 0.1, scope
    # All cohorts: E's small shift (one sd, left unharmonised) is harder to see, but there.
    assert before["all"] > 0.7 and after["all"] < report.loc["all", "chance"] + 0.1


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
    features, meta, _, _ = _draw({"A": 10})
    centre = meta["centre"]
    assert np.isnan(centre_predictability(features, centre, seed=0))
    centre = centre.copy()
    centre.iloc[0] = "B"  # a second centre of one subject is left out: still one centre
    assert np.isnan(centre_predictability(features, centre, seed=0))


def test_predictability_with_small_centres_uses_fewer_folds():
    features, meta, _, _ = _draw({"A": 10, "B": 3})
    assert centre_predictability(features, meta["centre"], seed=0) > 0.9
