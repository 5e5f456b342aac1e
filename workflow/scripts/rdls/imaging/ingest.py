"""Read one subject's T2-weighted MRI and tumour mask, check them and bring them to one grid.

Everything that can be wrong with one subject's files is found here, where the files enter,
and raised as :class:`rdls.errors.QCFailure` (step ``"ingest"``) with a reason that names the
file and says what to do: unreadable, truncated or unsupported files, DICOM folders with no
series, several series or missing slices, images that are not 3D grey-level volumes, masks
that are not label images, masks off the image's grid, empty masks, unexpected labels and
tumour ROIs too small to measure.

Privacy: DICOM headers carry patient identifiers. Series are read without DICOM tags (no
``MetaDataDictionaryArrayUpdate``, no private tags), every metadata key is stripped from the
images returned, and no message or log line quotes a header value or a reader's error text
(which may echo header content); messages name paths, sizes and geometry only.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from rdls.errors import InputError, QCFailure

log = logging.getLogger(__name__)

STEP = "ingest"

# Canonical orientation of every ingested volume: axes run towards patient Left, Posterior and
# Superior, the DICOM and ITK convention.
CANONICAL_ORIENTATION = "LPS"

# File formats by suffix, with the ITK reader that must read them (no guessing by content:
# the format reported in the summary is the one the file claims).
_SUFFIXES = {
    ".nii.gz": ("nifti", "NiftiImageIO"),
    ".nii": ("nifti", "NiftiImageIO"),
    ".nrrd": ("nrrd", "NrrdImageIO"),
    ".mha": ("metaimage", "MetaImageIO"),
    ".mhd": ("metaimage", "MetaImageIO"),
}
_FORMAT_NAMES = {"nifti": "NIfTI", "nrrd": "NRRD", "metaimage": "MetaImage", "dicom": "DICOM"}
_SUPPORTED = (
    "NIfTI (.nii, .nii.gz), NRRD (.nrrd) or MetaImage (.mha, .mhd), "
    "or a folder holding one DICOM series"
)

# DICOM slices must be evenly spaced: the largest deviation of a gap between neighbouring
# slice positions from the median gap, as a fraction of the median gap. Scanners jitter by
# about 1e-6 of the gap; a missing slice deviates by 1 and a duplicated one by -1. ITK builds
# a volume from unevenly spaced slices with the mean gap, placing every slice wrongly.
_SLICE_GAP_TOLERANCE = 0.01

_COMPLEX_PIXELS = {sitk.sitkComplexFloat32, sitk.sitkComplexFloat64}


@dataclass(frozen=True)
class IngestSettings:
    """How a subject's mask is checked and reduced to the tumour ROI.

    Parameters
    ----------
    components : {"largest", "all"}
        ``"largest"`` keeps the largest connected component of the ROI (the found, kept and
        dropped volumes are recorded in the summary); ``"all"`` keeps every component.
        Components are face-connected (6-connectivity in 3D): see ``_select_components``.
    min_roi_mm3 : float
        Smallest tumour ROI, after component selection, that passes; smaller ones fail QC.
    geometry_tolerance : float
        How far the mask's grid may lie from the image's and still count as the same grid:
        spacing and origin may differ by this fraction of the image's voxel spacing (the
        smallest spacing for the origin), direction cosines by this absolute amount. The
        default absorbs float32 rounding of NIfTI headers, not a different grid.
    """

    components: str = "largest"
    min_roi_mm3: float = 100.0
    geometry_tolerance: float = 1e-3

    def __post_init__(self):
        if self.components not in ("largest", "all"):
            raise InputError(
                f"ingest settings, key 'components': {self.components!r} is not an option; "
                "use 'largest' (keep the largest connected ROI component) or 'all'."
            )
        if not self.min_roi_mm3 >= 0:
            raise InputError(
                f"ingest settings, key 'min_roi_mm3': {self.min_roi_mm3!r} must be a volume "
                "in mm3 of 0 or more."
            )
        if not self.geometry_tolerance >= 0:
            raise InputError(
                f"ingest settings, key 'geometry_tolerance': {self.geometry_tolerance!r} "
                "must be a fraction of the voxel spacing of 0 or more (for example 1e-3)."
            )


@dataclass
class IngestedMRI:
    """One subject's checked MRI and tumour mask on the same canonical grid.

    Attributes
    ----------
    subject_id : str
        The subject, as in the mri sheet.
    image : SimpleITK.Image
        The T2-weighted volume, float32, oriented LPS (``sitk.DICOMOrient``), without
        metadata keys.
    mask : SimpleITK.Image
        The tumour ROI, uint8 with values 0 and 1, with the image's exact geometry.
    summary : dict
        Flat record for QC tables (JSON and TSV friendly): ``subject_id``, ``format``
        (``'nifti'``, ``'nrrd'``, ``'metaimage'`` or ``'dicom'``), ``size_x``, ``size_y``,
        ``size_z`` (voxels) and ``spacing_x``, ``spacing_y``, ``spacing_z`` (mm) after
        reorientation, ``roi_volume_mm3`` (kept ROI), ``roi_components`` (found),
        ``roi_components_kept``, ``roi_dropped_mm3`` and ``orientation_in`` (the image's
        orientation code before reorientation, for example ``'RAS'``).
    """

    subject_id: str
    image: sitk.Image
    mask: sitk.Image
    summary: dict = field(default_factory=dict)


def read_image(path, *, role: str) -> sitk.Image:
    """Read one 3D grey-level volume from a file or a DICOM series folder.

    Parameters
    ----------
    path : str or pathlib.Path
        A NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``) or MetaImage (``.mha``, ``.mhd``)
        file, or a folder holding the files of one DICOM series (subfolders are not
        searched).
    role : {"image", "mask"}
        What the file is, used in messages; it is also the mri sheet's column that holds
        the path.

    Returns
    -------
    SimpleITK.Image
        The volume as stored (orientation and pixel type unchanged), without any metadata
        key: no DICOM tag and no header field of the file travels with it.

    Raises
    ------
    rdls.errors.QCFailure
        The path does not exist or has an unsupported suffix; the file is truncated,
        corrupt or not of the format its suffix claims; the folder holds no DICOM series,
        several series, or slices that are not evenly spaced; the volume is not 3D or not
        single-channel.
    """
    if role not in ("image", "mask"):
        raise ValueError(f"role must be 'image' or 'mask', got {role!r}")
    path = Path(path)
    what = f"{role} {'folder' if path.is_dir() else 'file'} '{path}'"
    if not path.exists():
        raise QCFailure(
            f"{role} '{path}' does not exist. Fix the path in the '{role}' column of the "
            "mri sheet.",
            step=STEP,
        )
    if path.is_dir():
        image = _read_dicom_series(path, what=what, role=role)
    else:
        image = _read_file(path, what=what)
    _check_volume(image, what=what)
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    return image


def ingest_subject(
    subject_id, *, image_path, mask_path, mask_label=1, settings=IngestSettings()
) -> IngestedMRI:
    """Read, check and align one subject's T2-weighted MRI and tumour mask.

    The mask must be a label image on the image's grid (within
    ``settings.geometry_tolerance``; the image's geometry is then copied onto it), holding
    background 0 and the tumour label ``mask_label`` only. Its tumour voxels are reduced to
    the ROI (``settings.components``), which must reach ``settings.min_roi_mm3``. Image and
    mask are then oriented LPS together.

    Parameters
    ----------
    subject_id : str
        The subject, as in the mri sheet; named in every message.
    image_path, mask_path : str or pathlib.Path
        The image and mask (see :func:`read_image` for formats).
    mask_label : int
        Value of the tumour in the mask (the mri sheet's ``mask_label`` column).
    settings : IngestSettings
        Component selection, smallest ROI and geometry tolerance.

    Returns
    -------
    IngestedMRI
        Image (float32, LPS), mask (uint8 0/1 on the image's grid) and summary.

    Raises
    ------
    rdls.errors.QCFailure
        Any problem with this subject's files, with a reason that names the file and the fix.
    """
    mask_label = _check_mask_label(mask_label)
    subject_id = str(subject_id)
    image_path, mask_path = Path(image_path), Path(mask_path)
    image_format = _format_of(image_path)
    who = f"subject {subject_id}"
    try:
        image = read_image(image_path, role="image")
        mask = read_image(mask_path, role="mask")
    except QCFailure as failure:
        raise QCFailure(f"{who}: {failure.reason}", step=STEP) from None

    _check_finite(image, who=who, path=image_path)
    labels = _mask_array(mask, who=who, path=mask_path, mask_label=mask_label)
    _check_same_grid(
        image,
        mask,
        who=who,
        image_path=image_path,
        mask_path=mask_path,
        tolerance=settings.geometry_tolerance,
    )
    _check_labels(labels, who=who, path=mask_path, mask_label=mask_label)

    roi = sitk.GetImageFromArray((labels == mask_label).astype(np.uint8))
    roi.CopyInformation(image)
    orientation_in = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        image.GetDirection()
    )
    image = sitk.Cast(sitk.DICOMOrient(image, CANONICAL_ORIENTATION), sitk.sitkFloat32)
    roi = sitk.DICOMOrient(roi, CANONICAL_ORIENTATION)
    roi.CopyInformation(image)

    components = _component_labels(sitk.GetArrayViewFromImage(roi))
    found_voxels = np.bincount(components.ravel())[1:].tolist()
    kept = _select_components(found_voxels, components=settings.components)
    voxel_mm3 = float(np.prod(image.GetSpacing()))
    kept_voxels = [found_voxels[i] for i in kept]
    roi_volume_mm3 = float(sum(kept_voxels)) * voxel_mm3
    dropped_mm3 = float(sum(found_voxels) - sum(kept_voxels)) * voxel_mm3
    if len(kept) < len(found_voxels):
        roi = sitk.GetImageFromArray(np.isin(components, [i + 1 for i in kept]).astype(np.uint8))
        roi.CopyInformation(image)
        log.warning(
            "%s: mask has %d separate ROI components; kept the largest (%.1f mm3), "
            "dropped %.1f mm3",
            who,
            len(found_voxels),
            roi_volume_mm3,
            dropped_mm3,
        )
    if roi_volume_mm3 < settings.min_roi_mm3:
        kept_note = (
            f", the largest of {len(found_voxels)} separate components"
            if len(kept) < len(found_voxels)
            else ""
        )
        raise QCFailure(
            f"{who}: the tumour ROI in mask '{mask_path}' is {roi_volume_mm3:.1f} mm3 "
            f"({sum(kept_voxels)} voxels{kept_note}), below min_roi_mm3 = "
            f"{settings.min_roi_mm3:g} mm3. Check that the mask outlines the tumour; "
            "lower min_roi_mm3 in the config only if tumours this small are expected.",
            step=STEP,
        )

    size, spacing = image.GetSize(), image.GetSpacing()
    summary = {
        "subject_id": subject_id,
        "format": image_format,
        "size_x": int(size[0]),
        "size_y": int(size[1]),
        "size_z": int(size[2]),
        "spacing_x": float(spacing[0]),
        "spacing_y": float(spacing[1]),
        "spacing_z": float(spacing[2]),
        "roi_volume_mm3": roi_volume_mm3,
        "roi_components": len(found_voxels),
        "roi_components_kept": len(kept),
        "roi_dropped_mm3": dropped_mm3,
        "orientation_in": orientation_in,
    }
    log.info(
        "%s: %s image %dx%dx%d at %.3fx%.3fx%.3f mm, %s reoriented to %s; ROI %.1f mm3",
        who,
        _FORMAT_NAMES[image_format],
        *size,
        *spacing,
        orientation_in,
        CANONICAL_ORIENTATION,
        roi_volume_mm3,
    )
    return IngestedMRI(subject_id=subject_id, image=image, mask=roi, summary=summary)


def _select_components(voxels: list[int], *, components: str) -> list[int]:
    """Which connected components of the ROI to keep.

    Components are face-connected (6-connectivity: voxels sharing a face, not only an edge
    or a corner). Masks are drawn slice by slice on thick slices (3 mm and more against
    under 1 mm in-plane): a tumour, several millimetres across, always overlaps itself face
    to face from one slice to the next, so voxels that touch the ROI only at an edge or a
    corner are strands one voxel thin or separate structures (a node, a stray click).
    Face connectivity therefore never splits tumour bulk, and it does not let a stray blob
    that brushes the tumour diagonally count towards the largest component. It is also
    SimpleITK's default and the demo's, whose masks are one face-connected component.

    Parameters
    ----------
    voxels : list of int
        Voxel count of every component, in raster order of their first voxel.
    components : {"largest", "all"}
        Keep the largest component (the first in raster order on a tie) or all of them.

    Returns
    -------
    list of int
        Indices (0-based) of the components kept.
    """
    if components == "all" or len(voxels) <= 1:
        return list(range(len(voxels)))
    if components == "largest":
        return [int(np.argmax(voxels))]
    raise ValueError(f"components must be 'largest' or 'all', got {components!r}")


def _component_labels(roi: np.ndarray) -> np.ndarray:
    """Face-connected component labels (1, 2, ... in raster order) of a binary array."""
    binary = sitk.GetImageFromArray((np.asarray(roi) != 0).astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.ConnectedComponent(binary, False))


def _format_of(path: Path) -> str:
    if path.is_dir():
        return "dicom"
    name = path.name.lower()
    for suffix, (image_format, _) in _SUFFIXES.items():
        if name.endswith(suffix):
            return image_format
    return ""


def _read_file(path: Path, *, what: str) -> sitk.Image:
    name = path.name.lower()
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise QCFailure(
            f"{what}: unsupported format (suffix '{''.join(path.suffixes) or 'none'}'). "
            f"Convert it to {_SUPPORTED}.",
            step=STEP,
        )
    image_format, image_io = _SUFFIXES[suffix]
    format_name = _FORMAT_NAMES[image_format]
    unreadable = (
        f"{what} could not be read as {format_name}: it is truncated, corrupt or not a "
        f"{format_name} file. Check its suffix, or copy or export it again."
    )
    stored_bytes = _gunzipped_size(path, what=what) if suffix == ".nii.gz" else None

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(image_io)
    try:
        image = reader.Execute()
    except RuntimeError:
        # The reader's text is not quoted: it can echo header content.
        if suffix == ".mhd":
            unreadable += " A .mhd header needs the data file it names beside it."
        raise QCFailure(unreadable, step=STEP) from None

    if image_format == "nifti":
        # ITK reads a truncated NIfTI without complaint and fills the missing voxels.
        stored = path.stat().st_size if stored_bytes is None else stored_bytes
        needed = _nifti_bytes(image)
        if needed is not None and stored < needed:
            raise QCFailure(
                f"{what} is truncated: it holds {stored} bytes where its header announces "
                f"{needed}. Copy or export it again.",
                step=STEP,
            )
    return image


def _gunzipped_size(path: Path, *, what: str) -> int:
    """Size of a gzip file's content; checks the stream's end marker and checksum."""
    size = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 22):
                size += len(chunk)
    except (OSError, EOFError, zlib.error):
        raise QCFailure(
            f"{what} is not a complete gzip file (truncated or corrupt). Copy or export it again.",
            step=STEP,
        ) from None
    return size


def _nifti_bytes(image: sitk.Image) -> int | None:
    """Header plus voxel bytes that a single-file NIfTI must hold, from ITK's header keys."""
    try:
        rank = int(image.GetMetaData("dim[0]"))
        dims = [int(image.GetMetaData(f"dim[{i}]")) for i in range(1, rank + 1)]
        bits = int(image.GetMetaData("bitpix"))
        offset = int(float(image.GetMetaData("vox_offset")))
    except (RuntimeError, ValueError):
        return None
    return offset + int(np.prod(dims)) * bits // 8


def _read_dicom_series(folder: Path, *, what: str, role: str) -> sitk.Image:
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise QCFailure(
            f"{what} holds no DICOM series (subfolders are not searched). Point the '{role}' "
            "column of the mri sheet at the folder that holds the series' files.",
            step=STEP,
        )
    files = [sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid) for uid in series]
    if len(series) > 1:
        # Series UIDs are not quoted; the first file of each series tells them apart.
        listing = ", ".join(
            f"{len(names)} files from {Path(sorted(names)[0]).name}" for names in files
        )
        raise QCFailure(
            f"{what} holds {len(series)} DICOM series ({listing}). Put one series per folder "
            f"and point the '{role}' column of the mri sheet at the T2-weighted series.",
            step=STEP,
        )
    names = files[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOff()
    reader.LoadPrivateTagsOff()
    try:
        image = reader.Execute()
    except RuntimeError:
        raise QCFailure(
            f"{what}: the DICOM series could not be read (a corrupt file, slices of "
            "different sizes or an unsupported encoding). Export the series again.",
            step=STEP,
        ) from None
    if image.GetDimension() == 3 and len(names) > 2:
        _check_slice_gaps(names, image, what=what)
    return image


def _check_slice_gaps(names, image: sitk.Image, *, what: str) -> None:
    """Fail when the series' slice positions are not evenly spaced (missing slices)."""
    normal = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)[:, 2]
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.LoadPrivateTagsOff()
    positions = []
    for name in names:  # in the reader's slice order
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise QCFailure(
                f"{what}: the header of DICOM file '{Path(name).name}' could not be read. "
                "Export the series again.",
                step=STEP,
            ) from None
        positions.append(float(np.dot(reader.GetOrigin(), normal)))
    gaps = np.abs(np.diff(positions))
    typical = float(np.median(gaps))
    if typical <= 0 or np.max(np.abs(gaps - typical)) > _SLICE_GAP_TOLERANCE * typical:
        raise QCFailure(
            f"{what}: the {len(names)} slices are not evenly spaced (gaps between slice "
            f"positions from {gaps.min():.3f} to {gaps.max():.3f} mm, typically "
            f"{typical:.3f} mm): a slice is missing, duplicated, or the folder mixes "
            "acquisitions. Export the complete series, alone in its folder.",
            step=STEP,
        )


def _check_volume(image: sitk.Image, *, what: str) -> None:
    size = " x ".join(str(n) for n in image.GetSize())
    if image.GetDimension() != 3 or min(image.GetSize()) < 2:
        kind = f"{image.GetDimension()}D image" if image.GetDimension() != 3 else "single slice"
        raise QCFailure(
            f"{what} is a {kind} (size {size} voxels); a 3D volume is needed. Provide the "
            "whole T2-weighted volume (one 3D file, or one DICOM series of all its slices).",
            step=STEP,
        )
    channels = image.GetNumberOfComponentsPerPixel()
    if channels != 1 or image.GetPixelID() in _COMPLEX_PIXELS:
        kind = "complex" if channels == 1 else f"{channels} values per voxel"
        raise QCFailure(
            f"{what} holds {kind} (colour, vector or complex image); a single-channel "
            "grey-level volume is needed. Export the magnitude image alone.",
            step=STEP,
        )


def _check_mask_label(mask_label) -> int:
    try:
        whole = not isinstance(mask_label, bool) and float(mask_label).is_integer()
    except (TypeError, ValueError):
        whole = False
    if not whole or int(float(mask_label)) < 1:
        raise InputError(
            f"mri sheet, column 'mask_label': {mask_label!r} is not a tumour label; give the "
            "mask's tumour value, a whole number of 1 or more."
        )
    return int(float(mask_label))


def _check_finite(image: sitk.Image, *, who: str, path: Path) -> None:
    if not np.issubdtype(sitk.GetArrayViewFromImage(image).dtype, np.floating):
        return
    bad = int(np.count_nonzero(~np.isfinite(sitk.GetArrayViewFromImage(image))))
    if bad:
        raise QCFailure(
            f"{who}: image '{path}' holds {bad} NaN or infinite voxels. Provide an image "
            "with finite values (replace them, for example with 0, and export it again).",
            step=STEP,
        )


def _mask_array(mask: sitk.Image, *, who: str, path: Path, mask_label: int) -> np.ndarray:
    """The mask's values as integers; fails for masks that are not label images."""
    values = sitk.GetArrayFromImage(mask)
    if np.issubdtype(values.dtype, np.integer):
        return values
    finite = np.isfinite(values)
    fractional = finite & (values != np.round(values))
    if not finite.all() or fractional.any():
        example = values[~finite][0] if not finite.all() else values[fractional][0]
        raise QCFailure(
            f"{who}: mask '{path}' is not a label image: it holds non-integer values (for "
            f"example {float(example):g}), as a probability map does. Provide a label image "
            f"with 0 for background and {mask_label} for the tumour (threshold the "
            "probabilities and save the result as integers).",
            step=STEP,
        )
    return values.astype(np.int64)


def _check_same_grid(image, mask, *, who, image_path, mask_path, tolerance) -> None:
    """Mask on the image's grid within tolerance; else fail giving both values."""
    problems = []
    if image.GetSize() != mask.GetSize():
        problems.append(
            f"size {_fmt(image.GetSize(), 'd')} voxels in the image, "
            f"{_fmt(mask.GetSize(), 'd')} in the mask"
        )
    spacing_i, spacing_m = np.array(image.GetSpacing()), np.array(mask.GetSpacing())
    if np.any(np.abs(spacing_i - spacing_m) > tolerance * spacing_i):
        problems.append(
            f"spacing {_fmt(spacing_i)} mm in the image, {_fmt(spacing_m)} mm in the mask "
            f"(tolerance {tolerance:g} of the spacing)"
        )
    origin_i, origin_m = np.array(image.GetOrigin()), np.array(mask.GetOrigin())
    shift = float(np.linalg.norm(origin_i - origin_m))
    if shift > tolerance * spacing_i.min():
        problems.append(
            f"origin {_fmt(origin_i)} mm in the image, {_fmt(origin_m)} mm in the mask "
            f"({shift:.4g} mm apart, tolerance {tolerance * spacing_i.min():.2g} mm)"
        )
    direction_i, direction_m = np.array(image.GetDirection()), np.array(mask.GetDirection())
    if np.any(np.abs(direction_i - direction_m) > tolerance):
        problems.append(
            f"direction cosines {_fmt(direction_i)} in the image, {_fmt(direction_m)} in "
            f"the mask (tolerance {tolerance:g})"
        )
    if problems:
        raise QCFailure(
            f"{who}: mask '{mask_path}' is not on the grid of image '{image_path}': "
            + "; ".join(problems)
            + ". Export the mask from the image it was drawn on, or resample it onto the "
            "image (nearest neighbour).",
            step=STEP,
        )


def _check_labels(labels: np.ndarray, *, who: str, path: Path, mask_label: int) -> None:
    found = [int(v) for v in np.unique(labels) if v != 0]
    if mask_label not in found:
        listing = ", ".join(map(str, found)) if found else "none (every voxel is 0)"
        raise QCFailure(
            f"{who}: mask '{path}' has no voxel with the tumour label {mask_label}; labels "
            f"found: {listing}. Set the mask_label column of the mri sheet to the tumour's "
            "label, or provide the mask that outlines the tumour.",
            step=STEP,
        )
    others = [v for v in found if v != mask_label]
    if others:
        raise QCFailure(
            f"{who}: mask '{path}' holds label{'s' if len(others) > 1 else ''} "
            f"{', '.join(map(str, others))} besides the tumour label {mask_label}; a mask "
            "must hold only background 0 and the tumour. Remove the other structures from "
            "the mask, and set the mask_label column of the mri sheet if the tumour's label "
            f"is not {mask_label}.",
            step=STEP,
        )


def _fmt(values, kind: str = "g") -> str:
    if kind == "d":
        return " x ".join(str(int(v)) for v in values)
    return "(" + ", ".join(f"{float(v):.6g}" for v in values) + ")"
