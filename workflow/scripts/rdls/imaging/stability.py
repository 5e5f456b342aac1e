"""Feature stability under mask and re-scan perturbations, by intraclass correlation.

A feature is worth clustering on only if it survives what differs between two readings of the
same tumour: a rater drawing the margin a voxel tighter or looser, and a second scan with
another bias field, noise and small motion. Each training subject of a sample is measured
under every perturbation; the intraclass correlation of each feature over subjects and
perturbations says how much of its variance is between tumours (Zwanenburg et al., Sci Rep
2019, "Assessing robustness of radiomic features by image perturbation").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

ICC_KINDS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)")
PERTURBATIONS = ("original", "eroded", "dilated", "rescan")


def icc(values: np.ndarray, *, kind: str = "ICC(1,1)") -> np.ndarray:
    """Intraclass correlation of many features at once (Shrout and Fleiss, 1979).

    Parameters
    ----------
    values : numpy.ndarray
        ``(subjects, measurements)`` for one feature or ``(subjects, measurements,
        features)`` for many; every cell must be finite.
    kind : {"ICC(1,1)", "ICC(2,1)", "ICC(3,1)"}
        One-way random (each subject measured under its own perturbations), two-way random
        absolute agreement, or two-way mixed consistency.

    Returns
    -------
    numpy.ndarray
        One ICC per feature (a float for a 2D input). A feature that does not vary at all
        gets NaN: stability is undefined for a constant.
    """
    if kind not in ICC_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ICC_KINDS)}, got {kind!r}")
    x = np.asarray(values, dtype=float)
    single = x.ndim == 2
    if single:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("values must be (subjects >= 2, measurements >= 2[, features])")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite")
    n, k = x.shape[:2]
    grand = x.mean(axis=(0, 1))
    subject_means = x.mean(axis=1)
    measurement_means = x.mean(axis=0)
    ss_total = ((x - grand) ** 2).sum(axis=(0, 1))
    ss_subjects = k * ((subject_means - grand) ** 2).sum(axis=0)
    ss_measurements = n * ((measurement_means - grand) ** 2).sum(axis=0)
    ms_subjects = ss_subjects / (n - 1)
    ms_within = (ss_total - ss_subjects) / (n * (k - 1))
    ms_measurements = ss_measurements / (k - 1)
    ms_error = (ss_total - ss_subjects - ss_measurements) / ((n - 1) * (k - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "ICC(1,1)":
            result = (ms_subjects - ms_within) / (ms_subjects + (k - 1) * ms_within)
        elif kind == "ICC(2,1)":
            result = (ms_subjects - ms_error) / (
                ms_subjects + (k - 1) * ms_error + k * (ms_measurements - ms_error) / n
            )
        else:
            result = (ms_subjects - ms_error) / (ms_subjects + (k - 1) * ms_error)
    result = np.where(ss_total > 0, result, np.nan)
    return float(result[0]) if single else result


def perturb(
    image: sitk.Image, mask: sitk.Image, *, kind: str, seed: int
) -> tuple[sitk.Image, sitk.Image]:
    """One perturbed reading of a subject's ingested image and mask.

    ``eroded`` and ``dilated`` move the mask's margin one voxel in-plane (a rater's
    tighter or looser contour; through-plane, one voxel is a whole 3 mm slice);
    ``rescan`` redraws the image with a new bias field, Rician-like noise and a small
    motion artefact (torchio), as a second scan on the same day would; ``original``
    returns the inputs.
    """
    if kind == "original":
        return image, mask
    if kind in ("eroded", "dilated"):
        morphology = sitk.BinaryErode if kind == "eroded" else sitk.BinaryDilate
        moved = morphology(sitk.Cast(mask, sitk.sitkUInt8), [1, 1, 0], sitk.sitkBall, 0, 1)
        if kind == "eroded" and sitk.GetArrayViewFromImage(moved).sum() == 0:
            moved = mask  # a tumour one voxel thin has no interior to erode to
        return image, moved
    if kind == "rescan":
        import torch

        with torch.random.fork_rng():  # seeded here without moving the caller's stream
            torch.manual_seed(seed)
            return _rescan(image, mask)
    raise ValueError(f"kind must be one of {', '.join(PERTURBATIONS)}, got {kind!r}")


def _rescan(image: sitk.Image, mask: sitk.Image) -> tuple[sitk.Image, sitk.Image]:
    import torchio as tio

    array = sitk.GetArrayFromImage(image).astype(np.float32)
    scale = float(np.percentile(array, 99.5)) or 1.0
    rescan = tio.Compose(
        [
            tio.RandomBiasField(coefficients=0.15),
            tio.RandomNoise(std=(0.01 * scale, 0.02 * scale)),
            tio.RandomMotion(degrees=1, translation=1, num_transforms=1),
        ]
    )
    scanned = rescan(tio.ScalarImage.from_sitk(sitk.Cast(image, sitk.sitkFloat32)))
    out = scanned.as_sitk()
    out.CopyInformation(image)
    return sitk.Cast(out, sitk.sitkFloat32), mask


def stability_table(
    measurements: dict[str, np.ndarray], feature_names, *, threshold: float, kind: str
) -> pd.DataFrame:
    """ICC per feature from ``{perturbation: (subjects, features)}`` arrays, and the verdict.

    Returns a table with ``feature``, ``icc``, ``kept`` (ICC at or above ``threshold``) and
    ``reason`` (why a feature is dropped: low ICC, constant or not finite).
    """
    stacked = np.stack([measurements[p] for p in measurements], axis=1)  # n, k, features
    finite = np.isfinite(stacked).all(axis=(0, 1))
    values = np.full(stacked.shape[2], np.nan)
    if finite.any():
        values[finite] = icc(stacked[:, :, finite], kind=kind)
    reason = np.where(
        ~finite,
        "not finite under a perturbation",
        np.where(
            np.isnan(values),
            "constant",
            np.where(values < threshold, f"{kind} below {threshold}", ""),
        ),
    )
    return pd.DataFrame(
        {"feature": list(feature_names), "icc": values, "kept": reason == "", "reason": reason}
    )
