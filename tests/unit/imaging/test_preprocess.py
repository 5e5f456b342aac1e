"""rdls.imaging.preprocess: bias correction, common grid, intensities, tumour-centred crop."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import item_rng
from rdls.errors import InputError
from rdls.imaging.preprocess import (
    PreprocessSettings,
    n4_correct,
    preprocess_subject,
    write_montage,
)

# The demo subject's tumour spans 19 slices of 3 mm and about 38 mm in-plane, so a crop of
# 64 x 64 x 24 voxels of 1 x 1 x 3 mm holds all of it.
WHOLE_TUMOUR = (64, 64, 24)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo subject (RDLS1, centre A: 0.7 x 0.7 x 3 mm), image float32, mask uint8."""
    folder = tmp_path_factory.mktemp("demo")
    truth = write_subject_mri(
        subtype="RDLS1",
        centre="A",
        image_path=folder / "i.nii.gz",
        mask_path=folder / "m.nii.gz",
        shape=(96, 96, 24),
        rng=item_rng(42, "mri", 0),
    )
    image = sitk.ReadImage(str(folder / "i.nii.gz"), sitk.sitkFloat32)
    mask = sitk.ReadImage(str(folder / "m.nii.gz"), sitk.sitkUInt8)
    return image, mask, truth


@pytest.fixture(scope="module")
def default_crop(demo):
    image, mask, _ = demo
    return preprocess_subject(image, mask, settings=PreprocessSettings())


def test_crop_is_two_float32_channels_of_the_configured_size(default_crop):
    assert default_crop.shape == (2, 64, 64, 16)
    assert default_crop.dtype == np.float32
    assert set(np.unique(default_crop[1])) == {0.0, 1.0}
    assert default_crop[1].sum() > 1000
    assert np.isfinite(default_crop).all()


def test_tumour_is_centred_in_the_crop(demo):
    image, mask, _ = demo
    for crop_voxels in ((64, 64, 24), (48, 48, 12), (80, 72, 30)):
        settings = PreprocessSettings(n4=False, crop_voxels=crop_voxels)
        crop = preprocess_subject(image, mask, settings=settings)
        voxels = np.argwhere(crop[1] > 0)
        centre = (np.array(crop_voxels) - 1) / 2
        # The bounding box is centred to a voxel; the centroid of this irregular tumour
        # lies within a couple of voxels of it.
        box_centre = (voxels.min(axis=0) + voxels.max(axis=0)) / 2
        assert np.abs(box_centre - centre).max() <= 1.0, crop_voxels
        assert np.abs(voxels.mean(axis=0) - centre).max() <= 2.5, crop_voxels


def test_percentile_normalisation_maps_to_zero_one_and_clips(demo, default_crop):
    image, mask, _ = demo
    values = default_crop[0]

    assert values.min() == 0.0
    assert values.max() == 1.0
    # Clipped at both ends: the brightest fat and the air pile up at the bounds.
    assert (values == 1.0).sum() > 10
    assert (values == 0.0).sum() > 10
    # The tumour (planted near 0.6 of fat) lies inside the range, not at a bound.
    tumour = np.median(values[default_crop[1] > 0])
    original = sitk.GetArrayFromImage(image)
    low, high = np.percentile(original, [0.5, 99.5])
    expected = (np.median(original[sitk.GetArrayFromImage(mask) > 0]) - low) / (high - low)
    assert tumour == pytest.approx(expected, abs=0.05)
    assert 0.3 < tumour < 0.8


def test_zscore_gives_body_mean_zero_and_unit_sd(demo):
    image, mask, _ = demo
    # On the image's own grid, with a crop that pads the whole image, the crop holds every
    # original voxel (normalised) and padding at the minimum.
    settings = PreprocessSettings(
        n4=False, normalisation="zscore", spacing_mm=image.GetSpacing(), crop_voxels=(128, 128, 32)
    )
    crop = preprocess_subject(image, mask, settings=settings)[0]
    original = np.sort(sitk.GetArrayFromImage(image).ravel())
    normalised = np.sort(crop.ravel())[-original.size :]
    # The normalisation is affine: the sorted values match the sorted originals.
    slope, intercept = np.polyfit(original, normalised, 1)
    assert np.abs(slope * original + intercept - normalised).max() < 1e-4

    body = original > original.mean()  # the body: voxels above the image mean
    assert normalised[body].mean() == pytest.approx(0.0, abs=1e-3)
    assert normalised[body].std() == pytest.approx(1.0, abs=1e-3)
    assert normalised[~body].mean() < -1


@pytest.mark.parametrize("spacing_mm", [(1.0, 1.0, 3.0), (1.5, 1.5, 4.0), (0.8, 0.8, 2.5)])
def test_resampled_mask_keeps_the_tumour_volume(demo, spacing_mm):
    image, mask, truth = demo
    settings = PreprocessSettings(n4=False, spacing_mm=spacing_mm, crop_voxels=(64, 64, 36))

    crop = preprocess_subject(image, mask, settings=settings)

    # Not cropped away: no tumour voxel on the crop's faces.
    tumour = crop[1] > 0
    for axis in range(3):
        assert not np.take(tumour, [0, -1], axis=axis).any()
    volume = tumour.sum() * float(np.prod(spacing_mm))
    assert volume == pytest.approx(truth["mask_volume_mm3"], rel=0.10)


def test_crop_is_in_canonical_ras_order():
    # An LPS image whose intensity grows with x (towards the patient's left) and with z.
    z, y, x = np.meshgrid(np.arange(8), np.arange(20), np.arange(20), indexing="ij")
    image = sitk.GetImageFromArray((100 + 10 * x + 1 * z).astype(np.float32))
    image.SetSpacing((1.0, 1.0, 3.0))
    mask = sitk.GetImageFromArray(((abs(x - 10) < 3) & (abs(y - 10) < 3)).astype(np.uint8))
    mask.CopyInformation(image)
    settings = PreprocessSettings(n4=False, normalisation="zscore", crop_voxels=(12, 12, 6))

    crop = preprocess_subject(image, mask, settings=settings)[0]

    # RAS: the first axis runs towards the patient's right, so intensity falls along it.
    assert (np.diff(crop[:, 5, 3]) < 0).all()
    assert (np.diff(crop[5, 5, :]) > 0).all()


def test_n4_removes_a_planted_smooth_bias_field():
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(12), np.arange(64), np.arange(64), indexing="ij")
    body = ((x - 31.5) / 26) ** 2 + ((y - 31.5) / 22) ** 2 <= 1
    uniform = np.abs(np.where(body, 1000.0, 0.0) + rng.normal(0, 10, body.shape))
    field = np.exp(0.35 * (x - 31.5) / 32 - 0.25 * ((y - 31.5) / 32) ** 2 + 0.1 * (z - 5.5) / 6)
    biased = sitk.GetImageFromArray((uniform * field).astype(np.float32))
    biased.SetSpacing((0.7, 0.7, 3.0))
    biased.SetOrigin((-20.0, -20.0, 0.0))

    corrected = n4_correct(biased, shrink_factor=4)

    def cv(array):
        return array[body].std() / array[body].mean()

    out = sitk.GetArrayFromImage(corrected)
    assert corrected.GetPixelID() == sitk.sitkFloat32
    assert corrected.GetSize() == biased.GetSize()
    assert corrected.GetSpacing() == biased.GetSpacing()
    assert corrected.GetOrigin() == biased.GetOrigin()
    before, after = cv(sitk.GetArrayFromImage(biased)), cv(out)
    # Noise alone gives a CV of 0.010; the field adds about 0.16.
    assert before > 0.12
    assert after < 0.3 * before
    assert after < 0.025


def test_n4_in_preprocessing_changes_the_input_but_not_the_geometry(demo, default_crop):
    image, mask, _ = demo
    without = preprocess_subject(image, mask, settings=PreprocessSettings(n4=False))
    np.testing.assert_array_equal(without[1], default_crop[1])
    assert not np.allclose(without[0], default_crop[0])


@pytest.mark.parametrize("normalisation", ["minmax", "ZSCORE", ""])
def test_unknown_normalisation_is_refused(normalisation):
    with pytest.raises(InputError) as caught:
        PreprocessSettings(normalisation=normalisation)
    assert str(caught.value) == (
        f"config, imaging.preprocess.normalisation: {normalisation!r} is not an option; "
        "use one of percentile, zscore."
    )


@pytest.mark.parametrize("percentiles", [(99.5, 0.5), (5.0, 5.0), (-1.0, 50.0), (1.0, 100.5)])
def test_bad_percentiles_are_refused(percentiles):
    with pytest.raises(InputError) as caught:
        PreprocessSettings(percentiles=percentiles)
    assert str(caught.value) == (
        f"config, imaging.preprocess.percentiles: {list(percentiles)} must be two values "
        "with 0 <= low < high <= 100."
    )


def test_extreme_but_valid_percentiles_are_accepted():
    assert PreprocessSettings(percentiles=(0, 100)).percentiles == (0, 100)


@pytest.mark.parametrize("n", [0, 1, 3, 12])
def test_montage_is_written_as_a_png(tmp_path, default_crop, n):
    import matplotlib.image

    crops = np.stack([default_crop] * n) if n else np.zeros((0, *default_crop.shape), "float32")
    path = tmp_path / f"montage_{n}.png"

    write_montage(crops, [f"S{i:02d}" for i in range(n)], path, title="training", columns=5)

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = matplotlib.image.imread(path).shape[:2]
    rows, columns = max(1, -(-n // 5)), max(1, min(5, n))
    assert width == pytest.approx(1.6 * columns * 110, abs=2)
    assert height == pytest.approx((1.75 * rows + 0.4) * 110, abs=2)
