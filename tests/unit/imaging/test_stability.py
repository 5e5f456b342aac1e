"""rdls.imaging.stability: intraclass correlation, mask and re-scan perturbations, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from rdls.imaging.stability import ICC_KINDS, icc, perturb, stability_table

# Shrout and Fleiss (1979), Psychological Bulletin 86(2):420-428, Table 2: six targets
# rated by four judges, and the single-rating ICCs the paper publishes to two decimals.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)
PUBLISHED = {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71}


def _icc_by_hand(table, kind: str) -> float:
    """ICC from the ANOVA mean squares written out with loops (Shrout and Fleiss, Table 1)."""
    rows = [list(map(float, row)) for row in table]
    n, k = len(rows), len(rows[0])
    grand = sum(sum(row) for row in rows) / (n * k)
    row_means = [sum(row) / k for row in rows]
    col_means = [sum(rows[i][j] for i in range(n)) / n for j in range(k)]
    bss = k * sum((m - grand) ** 2 for m in row_means)  # between targets
    jss = n * sum((m - grand) ** 2 for m in col_means)  # between judges
    tss = sum((rows[i][j] - grand) ** 2 for i in range(n) for j in range(k))
    wss = tss - bss  # within targets
    ess = wss - jss  # residual
    bms, wms = bss / (n - 1), wss / (n * (k - 1))
    jms, ems = jss / (k - 1), ess / ((n - 1) * (k - 1))
    if kind == "ICC(1,1)":
        return (bms - wms) / (bms + (k - 1) * wms)
    if kind == "ICC(2,1)":
        return (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    return (bms - ems) / (bms + (k - 1) * ems)


# --- icc ----------------------------------------------------------------------------------


def test_mean_squares_by_hand_are_shrout_and_fleiss_anova():
    # The paper's ANOVA of the example: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02. ICC(1,1) from
    # them is (11.24 - 6.26) / (11.24 + 3 * 6.26) = 0.166; the helper must agree.
    assert _icc_by_hand(SHROUT_FLEISS, "ICC(1,1)") == pytest.approx(
        (11.24 - 6.26) / (11.24 + 3 * 6.26), abs=1e-3
    )
    assert _icc_by_hand(SHROUT_FLEISS, "ICC(3,1)") == pytest.approx(
        (11.24 - 1.02) / (11.24 + 3 * 1.02), abs=1e-3
    )


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_icc_reproduces_shrout_and_fleiss(kind):
    value = icc(SHROUT_FLEISS, kind=kind)

    assert isinstance(value, float)
    assert round(value, 2) == PUBLISHED[kind]
    assert value == pytest.approx(_icc_by_hand(SHROUT_FLEISS, kind), abs=1e-6)


def test_icc_exact_values_of_the_example():
    # In exact arithmetic the mean squares are BMS 1349/120, WMS 451/72, JMS 2339/72 and
    # EMS 367/360, so the three ICCs are these fractions (computed once with fractions).
    assert icc(SHROUT_FLEISS, kind="ICC(1,1)") == pytest.approx(448 / 2703, abs=1e-12)
    assert icc(SHROUT_FLEISS, kind="ICC(2,1)") == pytest.approx(184 / 635, abs=1e-12)
    assert icc(SHROUT_FLEISS, kind="ICC(3,1)") == pytest.approx(920 / 1287, abs=1e-12)


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_icc_over_many_features_equals_one_at_a_time(kind):
    rng = np.random.default_rng(4)
    subject = rng.normal(size=(12, 1, 9)) * rng.uniform(0.1, 3, size=9)
    values = subject + rng.normal(size=(12, 4, 9)) + rng.normal(size=(1, 4, 9))

    together = icc(values, kind=kind)

    assert together.shape == (9,)
    looped = [icc(values[:, :, j], kind=kind) for j in range(9)]
    np.testing.assert_allclose(together, looped, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        together, [_icc_by_hand(values[:, :, j], kind) for j in range(9)], atol=1e-10
    )
    # The features span stable to unstable: the test is not of one trivial value.
    assert together.min() < 0.3 and together.max() > 0.8


@pytest.mark.parametrize("kind", ICC_KINDS)
def test_constant_feature_is_nan_and_perfect_agreement_is_one(kind):
    rng = np.random.default_rng(5)
    perfect = np.repeat(rng.normal(size=(8, 1)), 3, axis=1)
    constant = np.full((8, 3), 2.5)
    values = np.stack([perfect, constant], axis=2)

    result = icc(values, kind=kind)

    assert result[0] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(result[1])
    assert np.isnan(icc(constant, kind=kind))


def test_icc_of_pure_noise_is_near_zero():
    rng = np.random.default_rng(6)
    values = rng.normal(size=(400, 4, 3))
    assert np.abs(icc(values)).max() < 0.1


@pytest.mark.parametrize(
    "values, message",
    [
        (np.ones(5), "must be \\(subjects >= 2"),
        (np.ones((1, 4)), "must be \\(subjects >= 2"),
        (np.ones((5, 1)), "must be \\(subjects >= 2"),
        (np.ones((2, 2, 2, 2)), "must be \\(subjects >= 2"),
        (np.array([[1.0, 2.0], [np.nan, 3.0]]), "must be finite"),
        (np.array([[1.0, 2.0], [np.inf, 3.0]]), "must be finite"),
    ],
)
def test_icc_refuses_bad_shapes_and_non_finite_values(values, message):
    with pytest.raises(ValueError, match=message):
        icc(values)


def test_icc_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match=r"kind must be one of ICC\(1,1\), ICC\(2,1\), ICC\(3,1\)"):
        icc(SHROUT_FLEISS, kind="ICC(3,k)")


# --- perturb ------------------------------------------------------------------------------


def _subject(seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """A 32 x 32 x 8 image (0.7 x 0.7 x 3 mm) with a bright ellipsoid tumour on slices 2-5."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.arange(8), np.arange(32), np.arange(32), indexing="ij")
    tumour = ((x - 15) / 6.0) ** 2 + ((y - 16) / 5.0) ** 2 + ((z - 3.5) / 2.2) ** 2 <= 1
    array = (300 + 400 * tumour + rng.normal(0, 20, size=tumour.shape)).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.7, 3.0))
    image.SetOrigin((-10.0, 5.0, 2.0))
    mask = sitk.GetImageFromArray(tumour.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def _slices(mask_array: np.ndarray) -> list[int]:
    return [int(z) for z in np.flatnonzero(mask_array.any(axis=(1, 2)))]


def test_original_returns_the_inputs():
    image, mask = _subject()
    out_image, out_mask = perturb(image, mask, kind="original", seed=0)
    assert out_image is image
    assert out_mask is mask


def test_eroded_mask_is_a_smaller_subset_on_the_same_slices():
    image, mask = _subject()
    original = sitk.GetArrayFromImage(mask).astype(bool)

    out_image, eroded = perturb(image, mask, kind="eroded", seed=0)
    moved = sitk.GetArrayFromImage(eroded).astype(bool)

    assert out_image is image
    assert not (moved & ~original).any()  # subset
    assert 0 < moved.sum() < original.sum()
    assert _slices(moved) == _slices(original)  # in-plane only: no slice lost
    # One voxel in-plane: every slice loses its rim, and only its rim.
    ring = original & ~moved
    for z in _slices(original):
        assert ring[z].any()
    assert eroded.GetSpacing() == mask.GetSpacing()
    assert eroded.GetOrigin() == mask.GetOrigin()


def test_dilated_mask_is_a_larger_superset_on_the_same_slices():
    image, mask = _subject()
    original = sitk.GetArrayFromImage(mask).astype(bool)

    _, dilated = perturb(image, mask, kind="dilated", seed=0)
    moved = sitk.GetArrayFromImage(dilated).astype(bool)

    assert not (original & ~moved).any()  # superset
    assert moved.sum() > original.sum()
    assert _slices(moved) == _slices(original)
    # No voxel added more than one voxel away in-plane from the original mask.
    grown = sitk.GetArrayFromImage(
        sitk.BinaryDilate(sitk.Cast(mask, sitk.sitkUInt8), [1, 1, 0], sitk.sitkBox, 0, 1)
    ).astype(bool)
    assert not (moved & ~grown).any()


def test_erosion_of_a_one_voxel_thin_tumour_keeps_the_mask():
    image, _ = _subject()
    thin = np.zeros((8, 32, 32), dtype=np.uint8)
    thin[3, 16, 10:20] = 1
    mask = sitk.GetImageFromArray(thin)
    mask.CopyInformation(image)

    _, eroded = perturb(image, mask, kind="eroded", seed=0)

    np.testing.assert_array_equal(sitk.GetArrayFromImage(eroded), thin)


def test_rescan_keeps_geometry_and_mask_and_changes_intensities():
    image, mask = _subject()

    scanned, same_mask = perturb(image, mask, kind="rescan", seed=3)

    assert same_mask is mask
    assert scanned.GetPixelID() == sitk.sitkFloat32
    for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(scanned, attribute)() == pytest.approx(getattr(image, attribute)())
    before, after = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(scanned)
    assert np.isfinite(after).all()
    # Changed everywhere by more than rounding (bias, noise of 1-2 % of the 99.5th
    # percentile, motion)...
    assert np.abs(after - before).mean() > 10
    # ...but a second reading of the same tumour, not another image: its signal moves by a
    # bias field's worth (here under 20 %) and it stays 400 brighter than its surroundings
    # give or take the bias.
    tumour = sitk.GetArrayFromImage(mask).astype(bool)
    assert after[tumour].mean() / before[tumour].mean() == pytest.approx(1, abs=0.2)
    assert after[tumour].mean() - after[~tumour].mean() == pytest.approx(400, rel=0.25)


def test_rescan_is_seeded():
    image, mask = _subject()
    first = sitk.GetArrayFromImage(perturb(image, mask, kind="rescan", seed=3)[0])
    again = sitk.GetArrayFromImage(perturb(image, mask, kind="rescan", seed=3)[0])
    other = sitk.GetArrayFromImage(perturb(image, mask, kind="rescan", seed=4)[0])

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_perturb_refuses_an_unknown_kind():
    image, mask = _subject()
    with pytest.raises(ValueError, match="kind must be one of original, eroded, dilated, rescan"):
        perturb(image, mask, kind="shifted", seed=0)


# --- stability_table ------------------------------------------------------------------------


def test_stability_table_keeps_stable_features_and_says_why_others_go():
    rng = np.random.default_rng(7)
    n = 20
    subject = rng.normal(size=n)
    perturbations = ("original", "eroded", "dilated", "rescan")
    measurements = {}
    for p in perturbations:
        stable = subject + 0.05 * rng.normal(size=n)
        also_stable = 10 * subject + 100 + 0.5 * rng.normal(size=n)
        unstable = rng.normal(size=n)  # nothing shared between readings
        constant = np.full(n, 4.0)
        broken = subject.copy()
        measurements[p] = np.column_stack([stable, also_stable, unstable, constant, broken])
    measurements["eroded"][3, 4] = np.nan  # one reading of one subject failed

    table = stability_table(
        measurements,
        ["stable", "also_stable", "unstable", "constant", "broken"],
        threshold=0.75,
        kind="ICC(1,1)",
    )

    assert list(table.columns) == ["feature", "icc", "kept", "reason"]
    rows = table.set_index("feature")
    assert rows.loc["stable", "icc"] > 0.99
    assert rows.loc["also_stable", "icc"] > 0.99
    assert rows.loc["unstable", "icc"] < 0.3
    assert np.isnan(rows.loc["constant", "icc"])
    assert np.isnan(rows.loc["broken", "icc"])
    assert rows["kept"].to_dict() == {
        "stable": True,
        "also_stable": True,
        "unstable": False,
        "constant": False,
        "broken": False,
    }
    assert rows["reason"].to_dict() == {
        "stable": "",
        "also_stable": "",
        "unstable": "ICC(1,1) below 0.75",
        "constant": "constant",
        "broken": "not finite under a perturbation",
    }
    # The stable features' ICCs are those of icc() on their own.
    stacked = np.stack([measurements[p][:, :2] for p in perturbations], axis=1)
    np.testing.assert_allclose(rows.loc[["stable", "also_stable"], "icc"], icc(stacked))


def test_stability_table_threshold_is_inclusive_and_all_nonfinite_is_handled():
    rng = np.random.default_rng(8)
    subject = rng.normal(size=10)
    measurements = {
        "original": np.column_stack([subject, np.full(10, np.inf)]),
        "rescan": np.column_stack([subject + 0.3 * rng.normal(size=10), np.full(10, np.inf)]),
    }
    value = icc(np.stack([measurements[p][:, 0] for p in measurements], axis=1))

    table = stability_table(measurements, ["a", "b"], threshold=value, kind="ICC(1,1)")

    assert table["kept"].tolist() == [True, False]
    assert table["reason"].tolist() == ["", "not finite under a perturbation"]

    only_broken = stability_table(
        {p: m[:, 1:] for p, m in measurements.items()}, ["b"], threshold=0.5, kind="ICC(3,1)"
    )
    assert only_broken["reason"].tolist() == ["not finite under a perturbation"]
