"""rdls.imaging.ingest: every format reads alike, every item-level problem fails with a reason
that names the file and the fix, and no DICOM identifier leaves the reader."""

import gzip
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from rdls.demo._mri import write_subject_mri
from rdls.demo._plan import item_rng
from rdls.errors import InputError, QCFailure
from rdls.imaging.ingest import IngestedMRI, IngestSettings, ingest_subject, read_image

SPACING = (0.7, 0.7, 3.0)  # mm, x y z
VOXEL_MM3 = 0.7 * 0.7 * 3.0
ORIGIN = (-17.08, -18.72, -100.92)
IDENTITY = {"PatientName": "Doe^Jane", "PatientID": "FAKE-0001", "PatientBirthDate": "19550412"}


def _image(array_zyx, *, spacing=SPACING, origin=ORIGIN, direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array_zyx))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def _t2(shape_zyx=(12, 24, 24)) -> np.ndarray:
    """Grey-level volume whose every voxel differs, so flips and shifts show."""
    return np.arange(np.prod(shape_zyx), dtype=np.int16).reshape(shape_zyx)


def _box(shape_zyx=(12, 24, 24), *, label=1, dtype=np.uint8) -> np.ndarray:
    """Mask with a 4 x 8 x 8 voxel box (256 voxels, 376 mm3 at SPACING) of ``label``."""
    mask = np.zeros(shape_zyx, dtype=dtype)
    mask[4:8, 8:16, 8:16] = label
    return mask


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def _pair(tmp_path, *, image=None, mask=None, image_name="t2.nii.gz", mask_name="mask.nii.gz"):
    image_path = _write(image if image is not None else _image(_t2()), tmp_path / image_name)
    mask_path = _write(mask if mask is not None else _image(_box()), tmp_path / mask_name)
    return image_path, mask_path


def _fails(subject_id="S01", **kwargs) -> str:
    with pytest.raises(QCFailure) as caught:
        ingest_subject(subject_id, **kwargs)
    assert caught.value.step == "ingest"
    return caught.value.reason


def _demo(tmp_path, *, dicom_identity=None, shape=(48, 48, 12), name="demo"):
    """One demo subject: NIfTI image (or DICOM folder) and NIfTI mask."""
    image_path = tmp_path / (f"{name}_dicom" if dicom_identity else f"{name}.nii.gz")
    mask_path = tmp_path / f"{name}_mask.nii.gz"
    truth = write_subject_mri(
        subtype="RDLS1",
        centre="A",
        image_path=image_path,
        mask_path=mask_path,
        shape=shape,
        rng=item_rng(42, "mri", 0),
        dicom_identity=dicom_identity,
    )
    return image_path, mask_path, truth


# --- a good subject ------------------------------------------------------------------------


def test_ingested_subject_is_float32_image_and_binary_mask_on_one_grid(tmp_path):
    image_path, mask_path = _pair(tmp_path)
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)

    assert isinstance(result, IngestedMRI)
    assert result.image.GetPixelID() == sitk.sitkFloat32
    assert result.mask.GetPixelID() == sitk.sitkUInt8
    for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(result.mask, attribute)() == getattr(result.image, attribute)()
    assert set(np.unique(sitk.GetArrayViewFromImage(result.mask))) == {0, 1}
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result.image), _t2())
    assert result.summary == {
        "subject_id": "S01",
        "format": "nifti",
        "size_x": 24,
        "size_y": 24,
        "size_z": 12,
        "spacing_x": pytest.approx(0.7),
        "spacing_y": pytest.approx(0.7),
        "spacing_z": pytest.approx(3.0),
        "roi_volume_mm3": pytest.approx(256 * VOXEL_MM3, rel=1e-6),
        "roi_components": 1,
        "roi_components_kept": 1,
        "roi_dropped_mm3": 0.0,
        "orientation_in": "LPS",
    }
    json.dumps(result.summary)  # flat and serialisable


def test_every_format_ingests_to_identical_arrays_and_geometry(tmp_path):
    nifti, mask_path, _ = _demo(tmp_path)
    dicom, dicom_mask, _ = _demo(tmp_path, dicom_identity=IDENTITY, name="dcm")
    stored = sitk.ReadImage(str(nifti))
    paths = {"nifti": nifti, "dicom": dicom}
    for suffix in (".nrrd", ".mha", ".mhd"):
        paths[suffix] = _write(stored, tmp_path / f"demo{suffix}")
    paths["nii"] = _write(stored, tmp_path / "demo.nii")

    results = {
        key: ingest_subject("S01", image_path=p, mask_path=mask_path) for key, p in paths.items()
    }

    reference = results["nifti"]
    assert reference.summary["roi_volume_mm3"] > 1000
    for key, result in results.items():
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(result.image),
            sitk.GetArrayFromImage(reference.image),
            err_msg=key,
        )
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(result.mask), sitk.GetArrayFromImage(reference.mask), err_msg=key
        )
        assert result.image.GetSize() == reference.image.GetSize()
        np.testing.assert_allclose(
            result.image.GetSpacing(), reference.image.GetSpacing(), atol=1e-5
        )
        np.testing.assert_allclose(result.image.GetOrigin(), reference.image.GetOrigin(), atol=1e-4)
        assert result.image.GetDirection() == reference.image.GetDirection()
    assert {key: r.summary["format"] for key, r in results.items()} == {
        "nifti": "nifti",
        "dicom": "dicom",
        ".nrrd": "nrrd",
        ".mha": "metaimage",
        ".mhd": "metaimage",
        "nii": "nifti",
    }
    # The demo draws the same mask for both, so one mask serves every format.
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(dicom_mask))),
        sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path))),
    )


def test_image_is_reoriented_to_lps_and_keeps_every_voxel_in_place(tmp_path):
    ras = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # NIfTI's usual RAS storage
    array = _t2()
    image = _image(array, direction=ras)
    mask = _image(_box(), direction=ras)
    image_path, mask_path = _pair(tmp_path, image=image, mask=mask)

    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)

    assert result.summary["orientation_in"] == "RAS"
    assert result.image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    # The same physical point carries the same value before and after reorientation.
    for index in [(0, 0, 0), (3, 17, 5), (23, 23, 11)]:
        point = image.TransformIndexToPhysicalPoint(index)
        after = result.image.TransformPhysicalPointToIndex(point)
        assert result.image[after] == array[index[2], index[1], index[0]]
        assert result.mask[after] == _box()[index[2], index[1], index[0]]


def test_mask_within_tolerance_passes_and_takes_the_images_geometry(tmp_path):
    # NRRD keeps the image's origin in double precision; the NIfTI mask rounds it to float32.
    origin = (-17.0812345678, -18.7234567891, -100.9234567891)
    image_path = _write(_image(_t2(), origin=origin), tmp_path / "t2.nrrd")
    mask_path = _write(_image(_box(), origin=origin), tmp_path / "mask.nii.gz")
    mask_origin = sitk.ReadImage(str(mask_path)).GetOrigin()
    assert mask_origin != origin  # the rounding is there

    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)

    assert result.mask.GetOrigin() == result.image.GetOrigin()
    assert result.image.GetOrigin() == pytest.approx(origin, abs=1e-9)
    assert result.mask.GetSpacing() == result.image.GetSpacing()


def test_float_mask_with_whole_values_and_another_label_passes(tmp_path):
    mask = _image(_box(label=2, dtype=np.float32))
    image_path, mask_path = _pair(tmp_path, mask=mask)
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path, mask_label=2)
    assert int(sitk.GetArrayViewFromImage(result.mask).sum()) == 256


# --- 1. unreadable files --------------------------------------------------------------------


def _truncated(source: Path, target: Path, fraction=0.6) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def test_truncated_nifti_fails_naming_the_file(tmp_path):
    image_path, mask_path = _pair(tmp_path)
    broken = _truncated(image_path, tmp_path / "broken.nii.gz")
    reason = _fails(image_path=broken, mask_path=mask_path)
    assert str(broken) in reason
    assert "gzip" in reason and "export it again" in reason


def test_truncated_uncompressed_nifti_fails_with_byte_counts(tmp_path):
    # ITK itself reads a truncated NIfTI without complaint, filling the missing voxels.
    image_path, mask_path = _pair(tmp_path, image_name="t2.nii")
    broken = _truncated(image_path, tmp_path / "broken.nii", fraction=0.9)
    reason = _fails(image_path=broken, mask_path=mask_path)
    assert f"image file '{broken}' is truncated" in reason
    assert str(image_path.stat().st_size) in reason  # the announced size


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("noise.nrrd", "random", "could not be read as NRRD"),
        ("noise.mha", "random", "could not be read as MetaImage"),
        ("noise.nii.gz", "random", "not a complete gzip file"),
        ("lonely.mhd", "mhd", "needs the data file it names beside it"),
        ("t2.png", "random", "unsupported format (suffix '.png')"),
        ("t2", "random", "unsupported format (suffix 'none')"),
    ],
)
def test_unreadable_or_unsupported_image_fails_naming_the_file(tmp_path, name, content, expected):
    _, mask_path = _pair(tmp_path)
    path = tmp_path / name
    if content == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        path.write_text(
            "ObjectType = Image\nNDims = 3\nDimSize = 24 24 12\nElementType = MET_SHORT\n"
            "ElementDataFile = lonely.raw\n"
        )
    reason = _fails(image_path=path, mask_path=mask_path)
    assert str(path) in reason
    assert expected in reason


def test_random_bytes_never_reach_the_message(tmp_path):
    # The NRRD reader quotes the file's first line in its error; that text could be a header.
    _, mask_path = _pair(tmp_path)
    path = tmp_path / "secret.nrrd"
    path.write_bytes(b"PatientName: Doe^Jane\n" + bytes(100))
    reason = _fails(image_path=path, mask_path=mask_path)
    assert "Doe" not in reason


def test_missing_files_fail_naming_the_sheet_column(tmp_path):
    image_path, _ = _pair(tmp_path)
    reason = _fails(image_path=image_path, mask_path=tmp_path / "nowhere.nii.gz")
    assert reason == (
        f"subject S01: mask '{tmp_path / 'nowhere.nii.gz'}' does not exist. Fix the path in "
        "the 'mask' column of the mri sheet."
    )


def test_image_that_is_not_a_3d_volume_fails(tmp_path):
    _, mask_path = _pair(tmp_path)
    flat = _write(sitk.Image(24, 24, sitk.sitkInt16), tmp_path / "flat.nii.gz")
    series = sitk.JoinSeries([_image(_t2()), _image(_t2())])
    four_d = _write(series, tmp_path / "dynamic.nii.gz")
    slab = _write(_image(_t2((1, 24, 24))), tmp_path / "slab.nrrd")

    assert "is a 2D image (size 24 x 24 voxels); a 3D volume is needed" in _fails(
        image_path=flat, mask_path=mask_path
    )
    assert "is a 4D image (size 24 x 24 x 12 x 2 voxels); a 3D volume is needed" in _fails(
        image_path=four_d, mask_path=mask_path
    )
    assert "is a single slice (size 24 x 24 x 1 voxels)" in _fails(
        image_path=slab, mask_path=mask_path
    )


def test_colour_image_fails(tmp_path):
    _, mask_path = _pair(tmp_path)
    colour = sitk.Compose([_image(_t2())] * 3)
    path = _write(colour, tmp_path / "colour.nrrd")
    assert "holds 3 values per voxel" in _fails(image_path=path, mask_path=mask_path)


def test_image_with_nan_fails(tmp_path):
    array = _t2().astype(np.float32)
    array[0, 0, :5] = np.nan
    # NRRD: ITK's NIfTI reader turns NaN into 0 itself.
    image_path, mask_path = _pair(tmp_path, image=_image(array), image_name="t2.nrrd")
    reason = _fails(image_path=image_path, mask_path=mask_path)
    assert f"image '{image_path}' holds 5 NaN or infinite voxels" in reason


# --- DICOM folders --------------------------------------------------------------------------


def test_folder_without_dicom_fails(tmp_path):
    _, mask_path = _pair(tmp_path)
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    reason = _fails(image_path=folder, mask_path=mask_path)
    assert reason.startswith(f"subject S01: image folder '{folder}' holds no DICOM series")
    assert "'image' column of the mri sheet" in reason


def test_folder_with_two_series_fails_counting_them(tmp_path):
    first, mask_path, _ = _demo(tmp_path, dicom_identity=IDENTITY, name="a")
    second = tmp_path / "second"
    write_subject_mri(
        subtype="RDLS2",
        centre="B",
        image_path=second,
        mask_path=tmp_path / "b_mask.nii.gz",
        shape=(48, 48, 12),
        rng=item_rng(42, "mri", 1),
        dicom_identity=IDENTITY,
    )
    mixed = tmp_path / "mixed"
    shutil.copytree(first, mixed)
    for path in second.iterdir():
        shutil.copy(path, mixed / f"other_{path.name}")

    reason = _fails(image_path=mixed, mask_path=mask_path)
    assert f"image folder '{mixed}' holds 2 DICOM series" in reason
    assert "12 files from IM0001.dcm" in reason and "12 files from other_IM0001.dcm" in reason
    assert "Put one series per folder" in reason


def test_dicom_series_with_a_missing_slice_fails(tmp_path):
    folder, mask_path, _ = _demo(tmp_path, dicom_identity=IDENTITY)
    (folder / "IM0006.dcm").unlink()
    reason = _fails(image_path=folder, mask_path=mask_path)
    assert "the 11 slices are not evenly spaced" in reason
    assert "from 3.000 to 6.000 mm" in reason


def test_dicom_series_never_leaks_identifiers(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    folder, mask_path, _ = _demo(tmp_path, dicom_identity=IDENTITY, shape=(96, 96, 24))
    assert IDENTITY["PatientID"].encode() in (folder / "IM0001.dcm").read_bytes()

    result = ingest_subject("S01", image_path=folder, mask_path=mask_path)
    nifti = tmp_path / "out.nii.gz"
    nrrd = tmp_path / "out.nrrd"
    sitk.WriteImage(result.image, str(nifti))
    sitk.WriteImage(result.image, str(nrrd))
    sitk.WriteImage(result.mask, str(tmp_path / "out_mask.nrrd"))

    assert result.image.GetMetaDataKeys() == ()
    assert result.mask.GetMetaDataKeys() == ()
    assert read_image(folder, role="image").GetMetaDataKeys() == ()
    written = [
        gzip.decompress(nifti.read_bytes()),
        nrrd.read_bytes(),
        (tmp_path / "out_mask.nrrd").read_bytes(),
    ]
    streams = (json.dumps(result.summary), caplog.text, *capfd.readouterr())
    for value in (*IDENTITY.values(), "Doe Jane"):
        assert not any(value.encode() in data for data in written), value
        assert not any(value in text for text in streams), value
    # Short fragments are only searched in text: 3 bytes can occur in pixel data by chance.
    assert not any(fragment in text for text in streams for fragment in ("Doe", "Jane"))


def test_header_fields_of_files_are_stripped(tmp_path):
    image = _image(_t2())
    image.SetMetaData("descrip", "Doe^Jane FAKE-0001")  # NIfTI's free-text header field
    image_path, mask_path = _pair(tmp_path, image=image)
    assert "descrip" in sitk.ReadImage(str(image_path)).GetMetaDataKeys()

    assert read_image(image_path, role="image").GetMetaDataKeys() == ()
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)
    out = _write(result.image, tmp_path / "out.nrrd")
    assert b"FAKE-0001" not in out.read_bytes()


# --- 2. mask and image on different grids ---------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"shape": (12, 24, 23)},
            "size 24 x 24 x 12 voxels in the image, 23 x 24 x 12 in the mask",
        ),
        (
            {"spacing": (0.7, 0.7, 3.3)},
            "spacing (0.7, 0.7, 3) mm in the image, (0.7, 0.7, 3.3) mm in the mask "
            "(tolerance 0.001 of the spacing)",
        ),
        (
            {"origin": (-17.08, -18.72, -97.92)},
            "origin (-17.08, -18.72, -100.92) mm in the image, (-17.08, -18.72, -97.92) mm in "
            "the mask (3 mm apart, tolerance 0.0007 mm)",
        ),
        (
            {"direction": (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0)},
            "direction cosines (1, 0, 0, 0, 1, 0, 0, 0, 1) in the image, "
            "(1, 0, 0, 0, 0, 1, 0, -1, 0) in the mask (tolerance 0.001)",
        ),
        ({"spacing": (0.7, 0.7015, 3.0)}, "(0.7, 0.7015, 3) mm in the mask"),  # 2e-3 > tolerance
    ],
)
def test_mask_off_the_image_grid_fails_giving_both_values(tmp_path, change, expected):
    change = dict(change)
    nz, ny, nx = change.pop("shape", (12, 24, 24))
    mask = _image(_box()[:nz, :ny, :nx], **change)
    image_path, mask_path = _pair(tmp_path, mask=mask, image_name="t2.nrrd", mask_name="m.nrrd")
    reason = _fails(image_path=image_path, mask_path=mask_path)
    assert reason.startswith(
        f"subject S01: mask '{mask_path}' is not on the grid of image '{image_path}'"
    )
    assert expected in reason
    assert "resample it onto the image (nearest neighbour)" in reason


def test_geometry_tolerance_is_a_setting(tmp_path):
    mask = _image(_box(), spacing=(0.7, 0.7015, 3.0))
    image_path, mask_path = _pair(tmp_path, mask=mask, image_name="t2.nrrd", mask_name="m.nrrd")
    loose = IngestSettings(geometry_tolerance=0.01)
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path, settings=loose)
    assert result.mask.GetSpacing() == result.image.GetSpacing()


# --- 3, 4. labels ---------------------------------------------------------------------------


def test_empty_mask_fails_saying_no_label_was_found(tmp_path):
    image_path, mask_path = _pair(tmp_path, mask=_image(np.zeros((12, 24, 24), np.uint8)))
    assert _fails(image_path=image_path, mask_path=mask_path) == (
        f"subject S01: mask '{mask_path}' has no voxel with the tumour label 1; labels found: "
        "none (every voxel is 0). Set the mask_label column of the mri sheet to the tumour's "
        "label, or provide the mask that outlines the tumour."
    )


def test_mask_without_the_configured_label_lists_the_labels_found(tmp_path):
    image_path, mask_path = _pair(tmp_path, mask=_image(_box(label=255)))
    reason = _fails(image_path=image_path, mask_path=mask_path)
    assert "has no voxel with the tumour label 1; labels found: 255." in reason
    assert "mask_label column of the mri sheet" in reason


def test_extra_labels_fail_naming_them(tmp_path):
    mask = _box()
    mask[0:2, 0:4, 0:4] = 2
    mask[10:12, 20:24, 20:24] = 3
    image_path, mask_path = _pair(tmp_path, mask=_image(mask))
    assert _fails(image_path=image_path, mask_path=mask_path) == (
        f"subject S01: mask '{mask_path}' holds labels 2, 3 besides the tumour label 1; a mask "
        "must hold only background 0 and the tumour. Remove the other structures from the "
        "mask, and set the mask_label column of the mri sheet if the tumour's label is not 1."
    )


def test_probability_mask_fails_asking_for_a_label_image(tmp_path):
    probabilities = _box().astype(np.float32) * 0.9
    probabilities[4, 8, 8] = 0.37
    image_path, mask_path = _pair(tmp_path, mask=_image(probabilities))
    reason = _fails(image_path=image_path, mask_path=mask_path)
    assert f"mask '{mask_path}' is not a label image: it holds non-integer values" in reason
    assert "Provide a label image with 0 for background and 1 for the tumour" in reason


# --- 5. connected components ----------------------------------------------------------------


def _two_blobs() -> np.ndarray:
    mask = _box()  # 256 voxels
    mask[0:2, 0:4, 0:4] = 1  # 32 voxels, far away
    return mask


def test_largest_component_is_kept_and_the_rest_recorded(tmp_path, caplog):
    image_path, mask_path = _pair(tmp_path, mask=_image(_two_blobs()))
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result.mask), _box())
    assert result.summary["roi_components"] == 2
    assert result.summary["roi_components_kept"] == 1
    assert result.summary["roi_volume_mm3"] == pytest.approx(256 * VOXEL_MM3, rel=1e-6)
    assert result.summary["roi_dropped_mm3"] == pytest.approx(32 * VOXEL_MM3, rel=1e-6)
    assert "S01: mask has 2 separate ROI components" in caplog.text


def test_all_components_are_kept_when_asked(tmp_path):
    image_path, mask_path = _pair(tmp_path, mask=_image(_two_blobs()))
    settings = IngestSettings(components="all")
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path, settings=settings)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result.mask), _two_blobs())
    assert result.summary["roi_components"] == result.summary["roi_components_kept"] == 2
    assert result.summary["roi_volume_mm3"] == pytest.approx(288 * VOXEL_MM3, rel=1e-6)
    assert result.summary["roi_dropped_mm3"] == 0.0


def test_components_are_face_connected(tmp_path):
    # A blob touching the box only at an edge (across slices) or a corner is separate.
    mask = _box()
    mask[8:10, 16:18, 8:16] = 1  # shares an edge with the box: next slice, next row
    mask[2:4, 4:8, 4:8] = 1  # shares only a corner with the box
    mask[4:8, 8:16, 16:18] = 1  # shares a face: part of the box's component
    image_path, mask_path = _pair(tmp_path, mask=_image(mask))
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path)
    assert result.summary["roi_components"] == 3
    assert result.summary["roi_volume_mm3"] == pytest.approx((256 + 64) * VOXEL_MM3, rel=1e-6)


# --- 6. small ROI ---------------------------------------------------------------------------


def test_roi_below_min_volume_fails_with_volume_and_threshold(tmp_path):
    mask = np.zeros((12, 24, 24), np.uint8)
    mask[5:7, 10:14, 10:14] = 1  # 32 voxels, 47.04 mm3
    image_path, mask_path = _pair(tmp_path, mask=_image(mask))
    assert _fails(image_path=image_path, mask_path=mask_path) == (
        f"subject S01: the tumour ROI in mask '{mask_path}' is 47.0 mm3 (32 voxels), below "
        "min_roi_mm3 = 100 mm3. Check that the mask outlines the tumour; lower min_roi_mm3 in "
        "the config only if tumours this small are expected."
    )


def test_small_roi_after_dropping_components_says_so(tmp_path):
    mask = np.zeros((12, 24, 24), np.uint8)
    mask[1:3, 2:6, 2:6] = 1  # 32 voxels
    mask[8:10, 16:20, 16:19] = 1  # 24 voxels
    image_path, mask_path = _pair(tmp_path, mask=_image(mask))
    reason = _fails(image_path=image_path, mask_path=mask_path)
    assert "is 47.0 mm3 (32 voxels, the largest of 2 separate components), below" in reason
    settings = IngestSettings(components="all", min_roi_mm3=80.0)
    result = ingest_subject("S01", image_path=image_path, mask_path=mask_path, settings=settings)
    assert result.summary["roi_volume_mm3"] == pytest.approx(56 * VOXEL_MM3, rel=1e-6)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"components": "biggest"}, "key 'components': 'biggest' is not an option"),
        ({"min_roi_mm3": -1.0}, "key 'min_roi_mm3'"),
        ({"geometry_tolerance": float("nan")}, "key 'geometry_tolerance'"),
    ],
)
def test_bad_settings_are_refused(kwargs, expected):
    with pytest.raises(InputError, match=expected):
        IngestSettings(**kwargs)


@pytest.mark.parametrize("mask_label", [0, 1.5, "one", True])
def test_bad_mask_label_is_refused(tmp_path, mask_label):
    image_path, mask_path = _pair(tmp_path)
    with pytest.raises(InputError, match="column 'mask_label'"):
        ingest_subject("S01", image_path=image_path, mask_path=mask_path, mask_label=mask_label)


# --- real data ------------------------------------------------------------------------------


def test_real_colorectal_t2_series_ingests(shared_data, tmp_path, caplog):
    folder = shared_data / "radiomics" / "cmb_crc_mr_scan001" / "SCAN_001" / "t2_image"
    assert len(list(folder.glob("*.dcm"))) == 33
    raw = read_image(folder, role="image")
    assert raw.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)  # axial, LPS
    # A small ellipsoid (semi-axes 15 mm in-plane, 16 mm along z) at the volume's centre.
    k, j, i = np.ogrid[tuple(slice(0, n) for n in raw.GetSize()[::-1])]
    x, y, z = (
        (index - (n - 1) / 2) * spacing / semi_axis
        for index, n, spacing, semi_axis in zip(
            (i, j, k), raw.GetSize(), raw.GetSpacing(), (15.0, 15.0, 16.0), strict=True
        )
    )
    inside = x**2 + y**2 + z**2 <= 1.0
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(raw)
    mask_path = _write(mask, tmp_path / "ellipsoid.nii.gz")

    caplog.set_level(logging.DEBUG)
    result = ingest_subject("CMB-001", image_path=folder, mask_path=mask_path)

    summary = result.summary
    assert summary["format"] == "dicom"
    assert (summary["size_x"], summary["size_y"], summary["size_z"]) == (584, 512, 33)
    assert summary["spacing_x"] == pytest.approx(0.6836, abs=1e-6)
    assert summary["spacing_y"] == pytest.approx(0.6836, abs=1e-6)
    assert summary["spacing_z"] == pytest.approx(8.0, abs=1e-5)  # slices 7 mm thick, 1 mm gap
    assert summary["orientation_in"] == "LPS"
    assert result.image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    voxels = int(sitk.GetArrayViewFromImage(result.mask).sum())
    assert voxels == int(inside.sum()) > 1000
    assert summary["roi_volume_mm3"] == pytest.approx(voxels * np.prod(result.image.GetSpacing()))
    assert summary["roi_volume_mm3"] == pytest.approx(4 / 3 * np.pi * 15 * 15 * 16, rel=0.15)
    assert summary["roi_components"] == 1
    # The real (pseudonymised) identifiers stay in the headers.
    header = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0], stop_before_pixels=True)
    assert result.image.GetMetaDataKeys() == ()
    for value in (str(header.PatientName), str(header.PatientID)):
        assert value not in json.dumps(summary)
        assert value not in caplog.text
