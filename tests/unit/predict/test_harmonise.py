"""rdls.predict.harmonise: new subjects harmonised with the run's saved ComBat model.

A cohort with planted centre shifts is harmonised as imaging_features does (fitted on
training, centre D estimated from its own images) and the model saved; new subjects read only
that file. At a centre the run had, a new subject must get exactly what the run gave a subject
with the same values; a centre the run never had is estimated from the new subjects at it, or
refused, or left unharmonised when asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.imaging.harmonise import ComBatModel, estimate_centre, harmonise_cohort
from rdls.predict.harmonise import (
    CENTRE_COLUMNS,
    centre_plan,
    harmonise_new_subjects,
    load_models,
)

FEATURES = [f"f{j}" for j in range(5)]
SHIFTS = {
    "A": (np.zeros(5), np.ones(5)),
    "B": (np.array([3.0, -2.0, 1.0, 4.0, 0.5]), np.array([1.8, 1.5, 2.0, 1.6, 1.4])),
    "C": (np.array([-2.0, 1.5, -1.0, -3.0, 2.0]), np.array([0.6, 0.7, 0.5, 0.65, 0.8])),
    "D": (np.array([5.0, -4.0, 3.0, 6.0, -5.0]), np.array([1.9, 1.7, 2.1, 2.0, 1.8])),
    "Z": (np.array([-3.0, 3.0, -2.0, 2.0, 1.0]), np.array([1.3, 1.2, 1.4, 1.3, 1.2])),
}


def _features(sizes, *, seed=0, cohort="training", prefix="S"):
    rng = np.random.default_rng(seed)
    rows, centres = [], []
    for centre, n in sizes.items():
        offset, scale = SHIFTS[centre]
        rows.append(offset + scale * (10 + rng.normal(size=(n, len(FEATURES)))))
        centres += [centre] * n
    index = pd.Index([f"{prefix}{i:03d}" for i in range(len(centres))], name="subject_id")
    return (
        pd.DataFrame(np.vstack(rows), index=index, columns=FEATURES),
        pd.DataFrame({"cohort": cohort, "centre": centres}, index=index),
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The run: training at A, B, C; external validation at D (estimated from its own)."""
    train, train_meta = _features({"A": 20, "B": 15, "C": 12})
    external, external_meta = _features({"D": 25}, seed=1, cohort="external_validation",
                                        prefix="E")  # fmt: skip
    features = pd.concat([train, external])
    meta = pd.concat([train_meta, external_meta])
    harmonised, model = harmonise_cohort(features, meta, family="radiomics")
    path = tmp_path_factory.mktemp("run") / "radiomics.json"
    model.save(path)
    return features, meta, harmonised, path


def test_new_subjects_at_the_runs_centres_get_what_the_run_gave(run):
    features, meta, harmonised, path = run
    model = ComBatModel.load(path)
    # The run's own subjects scored again, one centre at a time and all together.
    again, notes = harmonise_new_subjects(model, features, meta["centre"], min_subjects=20)
    np.testing.assert_allclose(again, harmonised, rtol=0, atol=1e-12)
    assert (notes == "").all()
    for subject in features.index[[0, 25, 40, 50]]:  # A, B, C and D (estimated by the run)
        alone, _ = harmonise_new_subjects(model, features.loc[[subject]], meta["centre"],
                                          min_subjects=20)  # fmt: skip
        np.testing.assert_allclose(alone.loc[subject], harmonised.loc[subject], atol=1e-12)
    plan = centre_plan(model, meta["centre"], min_subjects=20)
    assert list(plan.columns) == CENTRE_COLUMNS
    plan = plan.set_index("centre")
    assert plan["harmonisation"].to_dict() == {
        "A": "reference", "B": "training", "C": "training", "D": "own_images"}  # fmt: skip
    assert plan.loc["D", "estimated_from"] == 25 and plan.loc["B", "estimated_from"] == 15


def test_a_new_subject_gets_what_combat_gave_its_centre(run):
    """ComBat is affine per centre: a new value at B maps as B's own subjects' values did."""
    features, meta, harmonised, path = run
    b = meta.index[(meta["centre"] == "B")]
    new = pd.DataFrame([0.3 * features.loc[b[0]] + 0.7 * features.loc[b[1]]], index=["NEW"])
    expected = 0.3 * harmonised.loc[b[0]] + 0.7 * harmonised.loc[b[1]]
    out, _ = harmonise_new_subjects(ComBatModel.load(path), new, pd.Series({"NEW": "B"}),
                                    min_subjects=20)  # fmt: skip
    np.testing.assert_allclose(out.loc["NEW"], expected, atol=1e-9)


def test_a_large_enough_new_centre_is_estimated_from_its_subjects_alone(run):
    _, _, _, path = run
    model = ComBatModel.load(path)
    new, new_meta = _features({"Z": 20}, seed=2, prefix="N")
    out, notes = harmonise_new_subjects(model, new, new_meta["centre"], min_subjects=20)
    fit = estimate_centre(model, new)
    expected = ComBatModel(**{**model.__dict__, "centres": {**model.centres, "Z": fit}})
    np.testing.assert_allclose(out, expected.apply(new, new_meta["centre"]), rtol=0, atol=0)
    assert notes.str.contains("estimated from the predict sheet's 20 subjects at it").all()
    assert "Z" not in model.centres  # the saved model is left as the run wrote it
    # Its scanner shift is taken off: Z's means come to the reference's.
    reference = run[0].loc[run[1]["centre"] == "A"]
    gap = (out.mean() - reference.mean()).abs() / reference.std()
    assert gap.max() < 0.5 and ((new.mean() - reference.mean()).abs() / reference.std()).min() > 0.5


def test_a_small_new_centre_is_refused_or_left_unharmonised_when_asked(run):
    _, _, _, path = run
    model = ComBatModel.load(path)
    new, new_meta = _features({"Z": 3}, seed=2, prefix="N")
    with pytest.raises(InputError, match=(
        r"(?s)radiomics features of the predict sheet's subjects: 1 centre\(s\) did not occur "
        r"in the run's saved harmonisation \(centres A, B, C, D\).*min_subjects_per_centre "
        r"\(20\).*- centre 'Z' \(subjects 'N000', 'N001', 'N002'\): 3 subject\(s\).*"
        r"predict.unseen_centre: unharmonised")):  # fmt: skip
        harmonise_new_subjects(model, new, new_meta["centre"], min_subjects=20)
    for option in ("unharmonised", "reference"):
        out, notes = harmonise_new_subjects(model, new, new_meta["centre"], min_subjects=20,
                                            unseen_centre=option)  # fmt: skip
        pd.testing.assert_frame_equal(out, new, check_exact=True)
        assert notes.str.contains("left unharmonised, as if at the reference centre A").all()
    plan = centre_plan(model, new_meta["centre"], min_subjects=20)
    assert plan[["centre", "harmonisation", "estimated_from"]].values.tolist() == [
        ["Z", "unharmonised", 0]]  # fmt: skip


def test_a_centre_the_run_left_unharmonised_stays_so(run, tmp_path):
    features, meta, _, _ = run
    small, small_meta = _features({"Z": 4}, seed=3, cohort="biological", prefix="B")
    _, model = harmonise_cohort(pd.concat([features, small]), pd.concat([meta, small_meta]),
                                family="radiomics", unseen_centre="unharmonised")  # fmt: skip
    model.save(tmp_path / "radiomics.json")
    out, notes = harmonise_new_subjects(ComBatModel.load(tmp_path / "radiomics.json"), small,
                                        small_meta["centre"], min_subjects=20)  # fmt: skip
    pd.testing.assert_frame_equal(out, small, check_exact=True)
    assert notes.str.contains("left unharmonised by the run").all()


def test_method_none_takes_any_centre_unchanged():
    features, meta = _features({"A": 5, "B": 5})
    _, model = harmonise_cohort(features, meta, family="deep", method="none")
    new, new_meta = _features({"Z": 2}, seed=2, prefix="N")
    out, notes = harmonise_new_subjects(model, new, new_meta["centre"], min_subjects=20)
    pd.testing.assert_frame_equal(out, new, check_exact=True)
    assert (notes == "").all()


def test_the_models_of_the_subtype_families_are_read_and_checked(run, tmp_path):
    _, _, _, path = run
    assert load_models({"radiomics": path}, ["radiomics"])["radiomics"].reference == "A"
    with pytest.raises(
        InputError,
        match=r"use the deep family, but its saved harmonisation "
        r"\(results/imaging/harmonisation/deep.json\) was not given",
    ):
        load_models({"radiomics": path}, ["radiomics", "deep"])
    with pytest.raises(InputError, match=r"holds the radiomics family's harmonisation, not deep"):
        load_models({"deep": path}, ["deep"])
    missing = tmp_path / "deep.json"
    with pytest.raises(InputError, match=r"deep.json: cannot read the saved harmonisation"):
        load_models({"deep": missing}, ["deep"])
