"""rdls.predict.harmonise: the run's ComBat, recovered as one affine map per centre and feature.

A cohort with planted centre shifts is harmonised by the run's own ComBat; the maps recovered
from the tables before and after must reproduce every subject's harmonised value, and a new
subject at a known centre must get exactly what ComBat gave a subject of that centre with the
same values. A centre ComBat never saw has no map.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.imaging.harmonise import combat
from rdls.predict.harmonise import recover_harmonisation

FEATURES = [f"f{j}" for j in range(5)]
SHIFTS = {
    "A": (np.zeros(5), np.ones(5)),
    "B": (np.array([3.0, -2.0, 1.0, 4.0, 0.5]), np.array([1.8, 1.5, 2.0, 1.6, 1.4])),
    "C": (np.array([-2.0, 1.5, -1.0, -3.0, 2.0]), np.array([0.6, 0.7, 0.5, 0.65, 0.8])),
}


def _features(sizes, seed=0):
    rng = np.random.default_rng(seed)
    rows, centres = [], []
    for centre, n in sizes.items():
        offset, scale = SHIFTS[centre]
        rows.append(offset + scale * (10 + rng.normal(size=(n, len(FEATURES)))))
        centres += [centre] * n
    index = pd.Index([f"S{i:03d}" for i in range(len(centres))], name="subject_id")
    return (
        pd.DataFrame(np.vstack(rows), index=index, columns=FEATURES),
        pd.Series(centres, index=index, name="centre"),
    )


@pytest.fixture(scope="module")
def run():
    """A cohort harmonised by ComBat onto A, as imaging_features does, with f4 not kept."""
    before, centre = _features({"A": 20, "B": 15, "C": 12})
    after, notes = combat(before, centre, reference="A")
    assert notes == []
    return before, after[FEATURES[:4]], centre


def test_recovered_maps_reproduce_every_harmonised_value(run):
    before, after, centre = run
    locked = recover_harmonisation(before, after, centre, family="radiomics", reference="A")
    assert locked.features == FEATURES[:4]  # only what the stability filter kept
    assert locked.maps["relative_residual"].max() < 1e-9
    again, notes = locked.apply(before, centre)
    np.testing.assert_allclose(again.to_numpy(), after.to_numpy(), rtol=0, atol=1e-9)
    assert (notes == "").all()


def test_the_reference_centre_is_the_identity_and_the_others_are_fitted(run):
    before, after, centre = run
    maps = recover_harmonisation(before, after, centre, family="deep").maps.set_index("centre")
    assert (maps.loc["A", "kind"] == "identity").all()
    assert (maps.loc["A", "slope"] == 1).all() and (maps.loc["A", "intercept"] == 0).all()
    assert (maps.loc[["B", "C"], "kind"] == "fitted").all()
    # ComBat undoes each centre's planted scale (onto A's): B was spread out, C squeezed.
    assert (maps.loc["B", "slope"] < 0.8).all() and (maps.loc["C", "slope"] > 1.2).all()


def test_a_new_subject_gets_what_combat_gave_its_centre(run):
    """ComBat is affine per centre: a new value at B maps as B's own subjects' values did."""
    before, after, centre = run
    locked = recover_harmonisation(before, after, centre, family="radiomics")
    b = centre.index[centre == "B"]
    # A new subject whose values lie between two of B's subjects' values.
    new = pd.DataFrame([0.3 * before.loc[b[0]] + 0.7 * before.loc[b[1]]], index=["NEW"])
    expected = 0.3 * after.loc[b[0]] + 0.7 * after.loc[b[1]]
    harmonised, _ = locked.apply(new, pd.Series({"NEW": "B"}))
    np.testing.assert_allclose(harmonised.loc["NEW"], expected, atol=1e-9)


def test_an_unseen_centre_is_refused_naming_it_and_the_fix(run):
    before, after, centre = run
    locked = recover_harmonisation(before, after, centre, family="radiomics", reference="A")
    new = before.iloc[:1].rename(index=lambda _: "NEW")
    with pytest.raises(
        InputError, match=r"centre\(s\) 'Z'.*'NEW'.*centres: A, B, C.*unseen_centre"
    ):
        locked.apply(new, pd.Series({"NEW": "Z"}))
    kept, notes = locked.apply(new, pd.Series({"NEW": "Z"}), unseen_centre="reference")
    np.testing.assert_array_equal(kept.to_numpy(), new[FEATURES[:4]].to_numpy())
    assert "left unharmonised (reference centre A)" in notes["NEW"]


def test_a_centre_combat_left_alone_is_the_identity():
    """A one-subject centre (ComBat leaves it unharmonised): no map to fit, the identity."""
    before, centre = _features({"A": 10, "B": 8, "C": 1})
    after, notes = combat(before, centre, reference="A")
    assert "fewer than 2 subjects" in notes[0]
    maps = recover_harmonisation(before, after, centre, family="deep").maps.set_index("centre")
    assert (maps.loc["C", "kind"] == "identity").all() and (maps.loc["C", "subjects"] == 1).all()


def test_tables_that_are_not_an_affine_map_per_centre_are_refused(run):
    before, after, centre = run
    bent = after.copy()
    b = centre.index[centre == "B"]
    bent.loc[b, "f2"] = bent.loc[b, "f2"] ** 2  # not affine in the unharmonised value
    with pytest.raises(InputError, match=r"centre 'B' is not an affine map.*'f2'"):
        recover_harmonisation(before, bent, centre, family="radiomics")


def test_method_none_needs_unchanged_tables_and_takes_any_centre(run):
    before, _, centre = run
    locked = recover_harmonisation(before, before, centre, family="deep", method="none")
    assert (locked.maps["kind"] == "identity").all()
    new = before.iloc[:1].rename(index=lambda _: "NEW")
    kept, notes = locked.apply(new, pd.Series({"NEW": "Z"}))
    np.testing.assert_array_equal(kept.to_numpy(), new.to_numpy())
    assert notes["NEW"] == ""
