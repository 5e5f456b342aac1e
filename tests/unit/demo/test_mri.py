"""The demo MRI generator: readable geometry, DICOM with identifiers, planted effects."""

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from skimage.measure import marching_cubes, mesh_surface_area

from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import CENTRES, SUBTYPES, item_rng

SHAPE = (96, 96, 24)
PER_SUBTYPE = 10
IDENTITY = {"PatientName": "Doe^Jane", "PatientID": "FAKE-0001", "PatientBirthDate": "19550412"}


def _write(folder, name, *, subtype, centre, seed, identity=None):
    image = folder / (f"{name}_dicom" if identity else f"{name}.nii.gz")
    mask = folder / f"{name}_mask.nii.gz"
    truth = write_subject_mri(
        subtype=subtype,
        centre=centre,
        image_path=image,
        mask_path=mask,
        shape=SHAPE,
        rng=item_rng(seed, "mri", 0),
        dicom_identity=identity,
    )
    return truth, image, mask


def _read_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _body(image):
    """Voxels above a low threshold: the body, without the air and its Rician floor."""
    return image > 0.15 * np.percentile(image, 99)


def _features(image_path, mask_path):
    """Log volume, tumour mean and sd after z-scoring within the body, and sphericity."""
    mask_image = sitk.ReadImage(str(mask_path))
    mask = sitk.GetArrayFromImage(mask_image).astype(bool)
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).astype(float)
    body = _body(image)
    z = (image - image[body].mean()) / image[body].std()
    spacing_zyx = mask_image.GetSpacing()[::-1]
    volume = mask.sum() * np.prod(spacing_zyx)
    vertices, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(float), 0.5, spacing=spacing_zyx)
    area = mesh_surface_area(vertices, faces)
    sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area
    return [np.log(volume), z[mask].mean(), z[mask].std(), sphericity]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Ten subjects per subtype at centre A, each from its own seed."""
    folder = tmp_path_factory.mktemp("mri")
    subjects = []
    for k, subtype in enumerate(SUBTYPES):
        for i in range(PER_SUBTYPE):
            seed = 100 * k + i
            subjects.append(_write(folder, f"s{seed}", subtype=subtype, centre="A", seed=seed))
    return subjects


def test_image_and_mask_share_geometry_and_mask_matches_tumour(cohort):
    for truth, image_path, mask_path in cohort:
        image = sitk.ReadImage(str(image_path))
        mask = sitk.ReadImage(str(mask_path))
        assert image.GetSize() == mask.GetSize() == SHAPE
        assert image.GetPixelID() == sitk.sitkInt16 and mask.GetPixelID() == sitk.sitkUInt8
        assert np.allclose(image.GetSpacing(), CENTRES["A"]["spacing_mm"], atol=1e-6)
        assert np.allclose(mask.GetSpacing(), image.GetSpacing(), atol=1e-6)
        assert np.allclose(mask.GetOrigin(), image.GetOrigin(), atol=1e-4)
        assert np.allclose(mask.GetDirection(), np.eye(3).ravel(), atol=1e-6)
        assert np.allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-6)
        labels = sitk.GetArrayFromImage(mask)
        assert set(np.unique(labels)) == {0, 1}
        assert sitk.GetArrayFromImage(sitk.ConnectedComponent(mask)).max() == 1
        assert truth["mask_volume_mm3"] == pytest.approx(truth["tumour_volume_mm3"], rel=0.15)
        voxel_mm3 = np.prod(image.GetSpacing())
        assert labels.sum() * voxel_mm3 == pytest.approx(truth["mask_volume_mm3"])
        assert truth["format"] == "nifti"
    origins = np.array([sitk.ReadImage(str(image)).GetOrigin() for _, image, _ in cohort])
    assert np.all(np.abs(origins[:, 2]) > 10)  # a table position, not the grid's corner at 0
    assert origins.std(axis=0).min() > 1.0  # the origin moves between subjects


def test_dicom_series_has_nifti_geometry_pixels_and_identifiers(tmp_path):
    # Centre B: 0.65 x 0.65 x 3.3 mm, spacings that decimal strings must carry exactly.
    nifti_truth, nifti, _ = _write(tmp_path, "n", subtype="RDLS1", centre="B", seed=5)
    dicom_truth, folder, mask = _write(
        tmp_path, "d", subtype="RDLS1", centre="B", seed=5, identity=IDENTITY
    )
    expected = sitk.ReadImage(str(nifti))
    series = _read_series(folder)
    assert series.GetSize() == expected.GetSize()
    assert np.allclose(series.GetSpacing(), CENTRES["B"]["spacing_mm"], atol=1e-3)
    assert np.allclose(series.GetOrigin(), expected.GetOrigin(), atol=1e-3)
    assert np.allclose(series.GetDirection(), expected.GetDirection(), atol=1e-6)
    assert np.allclose(series.GetOrigin(), sitk.ReadImage(str(mask)).GetOrigin(), atol=1e-3)
    assert np.array_equal(sitk.GetArrayFromImage(series), sitk.GetArrayFromImage(expected))
    assert dicom_truth["format"] == "dicom"
    assert dicom_truth["tumour_volume_mm3"] == nifti_truth["tumour_volume_mm3"]

    files = sorted(folder.glob("*.dcm"))
    assert len(files) == SHAPE[2]
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert {h.SeriesInstanceUID for h in headers} == {headers[0].SeriesInstanceUID}
    assert len({h.SOPInstanceUID for h in headers}) == len(files)
    for header in headers:
        assert header.Modality == "MR"
        assert str(header.PatientName) == IDENTITY["PatientName"]
        assert header.PatientID == IDENTITY["PatientID"]
        assert header.PatientBirthDate == IDENTITY["PatientBirthDate"]


def test_planted_subtype_effects_are_recoverable_with_overlap(cohort):
    subtypes = np.array([truth["subtype"] for truth, _, _ in cohort])
    volume = np.array([truth["tumour_volume_mm3"] for truth, _, _ in cohort])
    irregularity = np.array([truth["margin_irregularity"] for truth, _, _ in cohort])
    median_volume = {s: np.median(volume[subtypes == s]) for s in SUBTYPES}
    assert median_volume["RDLS1"] > median_volume["RDLS3"] > median_volume["RDLS2"]
    median_margin = {s: np.median(irregularity[subtypes == s]) for s in SUBTYPES}
    assert median_margin["RDLS1"] > median_margin["RDLS3"] > median_margin["RDLS2"]
    # Overlap: the intermediate subtype's volumes reach into both neighbours' ranges.
    rdls3 = volume[subtypes == "RDLS3"]
    assert rdls3.max() > volume[subtypes == "RDLS1"].min()
    assert rdls3.min() < volume[subtypes == "RDLS2"].max()

    features = np.array([_features(image, mask) for _, image, mask in cohort])
    predicted = np.array(
        [_leave_one_out_nearest_centroid(features, subtypes, i) for i in range(len(subtypes))]
    )
    recall = [np.mean(predicted[subtypes == s] == s) for s in SUBTYPES]
    assert np.mean(recall) >= 0.7


def _leave_one_out_nearest_centroid(features, labels, left_out):
    train = np.arange(len(labels)) != left_out
    mean, sd = features[train].mean(axis=0), features[train].std(axis=0)
    standard = (features - mean) / sd
    centroids = np.array([standard[train & (labels == s)].mean(axis=0) for s in SUBTYPES])
    distance = np.linalg.norm(centroids - standard[left_out], axis=1)
    return SUBTYPES[int(np.argmin(distance))]


def test_centre_intensity_scale_is_planted(tmp_path):
    # The same seeds at both centres: same anatomy, different scanner.
    medians = {}
    for centre in ("A", "B"):
        per_subject = []
        for seed in range(4):
            _, path, _ = _write(
                tmp_path, f"{centre}{seed}", subtype="RDLS2", centre=centre, seed=seed
            )
            image = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
            per_subject.append(np.median(image[_body(image)]))
        medians[centre] = np.median(per_subject)
    planted = CENTRES["B"]["intensity_scale"] / CENTRES["A"]["intensity_scale"]
    assert medians["B"] / medians["A"] == pytest.approx(planted, rel=0.15)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    first = _write(tmp_path, "a", subtype="RDLS3", centre="C", seed=11)
    again = _write(tmp_path, "b", subtype="RDLS3", centre="C", seed=11)
    other = _write(tmp_path, "c", subtype="RDLS3", centre="C", seed=12)
    assert first[0] == again[0]
    assert first[0] != other[0]
    for index in (1, 2):
        arrays = [
            sitk.GetArrayFromImage(sitk.ReadImage(str(w[index]))) for w in (first, again, other)
        ]
        assert np.array_equal(arrays[0], arrays[1])
        assert not np.array_equal(arrays[0], arrays[2])


def test_unknown_subtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown subtype 'RDLS4'"):
        _write(tmp_path, "x", subtype="RDLS4", centre="A", seed=0)
