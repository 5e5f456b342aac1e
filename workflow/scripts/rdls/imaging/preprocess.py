"""Bring an ingested MRI to the network's input: bias correction, common grid, intensities, crop.

The steps, in order: optional N4 bias-field correction (SimpleITK), canonical orientation,
resampling to a common voxel spacing, intensity normalisation and a fixed-size crop centred on
the tumour (torchio). The result is a two-channel array: the normalised image and the tumour
mask on the same grid, so the network sees the tumour's signal, texture and shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from rdls.errors import InputError

log = logging.getLogger(__name__)

NORMALISATIONS = ("percentile", "zscore")


@dataclass(frozen=True)
class PreprocessSettings:
    """How each subject's volume becomes the network's input.

    Parameters
    ----------
    n4 : bool
        Correct the bias field with N4 (SimpleITK) before anything else.
    n4_shrink_factor : int
        In-plane shrink factor of the image that N4 fits the field on; the field is smooth,
        so 4 costs little accuracy and saves most of the time.
    spacing_mm : tuple of float
        Voxel spacing (x, y, z) of the network's grid.
    normalisation : {"percentile", "zscore"}
        ``"percentile"`` maps the image's ``percentiles`` to 0 and 1, so that a tumour's
        signal is measured against fat, the brightest tissue of a T2-weighted pelvis;
        ``"zscore"`` subtracts the mean and divides by the standard deviation of the body
        (voxels above the image mean).
    percentiles : tuple of float
        Low and high percentile of ``"percentile"`` normalisation.
    crop_voxels : tuple of int
        Size (x, y, z) of the crop centred on the tumour's bounding box, padded with the
        image's minimum where the tumour lies near the edge of the field of view.
    """

    n4: bool = True
    n4_shrink_factor: int = 4
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 3.0)
    normalisation: str = "percentile"
    percentiles: tuple[float, float] = (0.5, 99.5)
    crop_voxels: tuple[int, int, int] = (64, 64, 16)

    def __post_init__(self):
        where = "config, imaging.preprocess"
        if self.normalisation not in NORMALISATIONS:
            raise InputError(
                f"{where}.normalisation: {self.normalisation!r} is not an option; "
                f"use one of {', '.join(NORMALISATIONS)}."
            )
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise InputError(
                f"{where}.percentiles: {list(self.percentiles)} must be two values with "
                "0 <= low < high <= 100."
            )


def n4_correct(image: sitk.Image, *, shrink_factor: int = 4) -> sitk.Image:
    """Divide out the smooth multiplicative bias field estimated by N4.

    The field is fitted on a shrunken copy inside an Otsu body mask and evaluated on the full
    grid, as in SimpleITK's N4 example; the slice direction is never shrunk (few thick slices).
    """
    image = sitk.Cast(image, sitk.sitkFloat32)
    shrink = [int(shrink_factor), int(shrink_factor), 1]
    small = sitk.Shrink(image, shrink)
    body = sitk.OtsuThreshold(small, 0, 1, 200)
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([25, 25, 25])
    corrector.Execute(small, body)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    return sitk.Cast(image / sitk.Exp(log_field), sitk.sitkFloat32)


def preprocess_subject(
    image: sitk.Image, mask: sitk.Image, *, settings: PreprocessSettings
) -> np.ndarray:
    """The network's input for one subject.

    Parameters
    ----------
    image, mask : SimpleITK.Image
        An ingested volume and its binary tumour mask on the same grid
        (:func:`rdls.imaging.ingest.ingest_subject`).
    settings : PreprocessSettings

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(2, *settings.crop_voxels)``: the normalised image and
        the tumour mask (0 or 1), in torchio's canonical (RAS) voxel order.
    """
    import torchio as tio

    if settings.n4:
        image = n4_correct(image, shrink_factor=settings.n4_shrink_factor)
    subject = tio.Subject(
        image=tio.ScalarImage.from_sitk(sitk.Cast(image, sitk.sitkFloat32)),
        mask=tio.LabelMap.from_sitk(sitk.Cast(mask, sitk.sitkUInt8)),
    )
    transform = tio.Compose(
        [
            tio.ToCanonical(),
            tio.Resample(tuple(settings.spacing_mm)),
            _normalisation(settings),
            tio.CropOrPad(tuple(settings.crop_voxels), mask_name="mask", padding_mode="minimum"),
        ]
    )
    out = transform(subject)
    crop = np.concatenate([out["image"].numpy(), out["mask"].numpy() > 0]).astype(np.float32)
    if not crop[1].any():
        # Resampling can only lose a tumour smaller than a voxel of the new grid, which
        # ingestion's minimum volume rules out; a change there must not pass silently.
        raise RuntimeError("the tumour mask vanished in resampling; check min_roi_mm3")
    return crop


def _normalisation(settings: PreprocessSettings):
    import torchio as tio

    if settings.normalisation == "percentile":
        return tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=settings.percentiles)
    return tio.ZNormalization(masking_method=tio.ZNormalization.mean)


def write_montage(crops: np.ndarray, labels, path, *, title: str, columns: int = 10) -> None:
    """A PNG of each subject's central tumour slice with the mask outlined, for visual QC.

    Parameters
    ----------
    crops : numpy.ndarray
        ``(n, 2, x, y, z)`` network inputs (:func:`preprocess_subject`).
    labels : sequence of str
        One caption per crop (the subject_id).
    path : str or pathlib.Path
        The PNG to write; a vector copy is not made (a montage is a raster by nature).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(crops)
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(1.6 * columns, 1.75 * rows + 0.4), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, crop, label in zip(axes.flat, crops, labels, strict=False):
        mask = crop[1] > 0.5
        z = int(np.argmax(mask.sum(axis=(0, 1)))) if mask.any() else crop.shape[-1] // 2
        # Arrays are RAS (x to the left of the patient's right); show radiological view.
        ax.imshow(np.rot90(crop[0, :, :, z]), cmap="gray", vmin=0.0, vmax=1.0)
        if mask[:, :, z].any():
            ax.contour(
                np.rot90(mask[:, :, z]).astype(float),
                levels=[0.5],
                colors="#ff5a36",
                linewidths=0.7,
            )
        ax.set_title(str(label), fontsize=7)
    if n == 0:
        axes.flat[0].text(0.5, 0.5, "no subjects passed QC", ha="center", va="center")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
