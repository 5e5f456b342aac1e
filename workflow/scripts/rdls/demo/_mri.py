"""Synthetic T2-weighted rectal MRI of the demo cohort: one volume and its tumour mask.

Each subject's volume is a small-field-of-view axial pelvis: air outside a body ellipse, fat
(bright on T2), muscle (dark), the rectum (lumen and wall) and a tumour arising in the rectal
wall. In the original (``mixed``) demo the three subtypes differ in the tumour's planted
size, margin and texture at once, with overlapping distributions; the other variants of
``demo.mri_signal`` (``_mri_variants``) differ by one mechanism at a time, or not at all.
The centres differ in intensity scale, voxel spacing, bias field and noise. The mask is the
true tumour as a rater would draw it: its boundary moved by one voxel in places, always one
connected component.

Geometry is LPS (DICOM and SimpleITK convention) with an identity direction, so voxel
``(i, j, k)`` lies at ``origin + spacing * (i, j, k)``. Arrays are held in SimpleITK's
``(z, y, x)`` order; ``shape`` and spacings are given in ``(x, y, z)`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage

from rdls.demo import _mri_variants as variants
from rdls.demo._plan import CENTRES, SUBTYPES

# Stored value of fat at intensity_scale 1, before bias and noise: fat near 1000, muscle near
# 330, air near 0, so int16 holds every centre's images with room to spare.
FAT_REFERENCE = 1000.0

# T2 signal of the normal tissues relative to fat.
_FAT, _MUSCLE, _WALL, _LUMEN = 1.0, 0.33, 0.42, 0.18
_TISSUE_TEXTURE_SD = 0.04  # mild correlated texture of every tissue, relative to its signal


@dataclass(frozen=True)
class _Look:
    """Planted distributions of one subtype's tumour; (low, high) pairs are uniform draws."""

    diameter_mm: tuple[float, float, float, float]  # normal: mean, sd; then low, high clip
    signal: tuple[float, float]  # normal: mean, sd of tumour T2 signal relative to fat
    texture_sd: tuple[float, float]  # amplitude of the tumour's own texture
    texture_sigma_vox: tuple[float, float]  # in-plane correlation (along streaks if streaky)
    streaky: bool  # texture drawn out along one in-plane axis (fibrotic bands)
    foci: tuple[int, int]  # number of necrotic or fibrotic foci (inclusive range)
    lobes: tuple[tuple[int, int], tuple[float, float], tuple[float, float]]  # n, kappa, amp
    spikes: tuple[tuple[int, int], tuple[float, float], tuple[float, float]]  # n, kappa, amp


# RDLS1: large, spiculated, coarse and heterogeneous with necrotic-like foci.
# RDLS2: small, smooth, homogeneous, intermediate-high signal with fine texture.
# RDLS3: intermediate size, lobulated, low (fibrotic) signal with streaky texture.
_LOOKS = {
    "RDLS1": _Look(
        diameter_mm=(39.0, 4.0, 30.0, 48.0),
        signal=(0.60, 0.05),
        texture_sd=(0.08, 0.18),
        texture_sigma_vox=(1.5, 2.8),
        streaky=False,
        foci=(1, 5),
        lobes=((1, 4), (2.0, 8.0), (0.05, 0.25)),
        spikes=((3, 18), (30.0, 120.0), (0.15, 0.55)),
    ),
    "RDLS2": _Look(
        diameter_mm=(23.0, 3.5, 16.0, 32.0),
        signal=(0.80, 0.05),
        texture_sd=(0.02, 0.08),
        texture_sigma_vox=(0.5, 1.2),
        streaky=False,
        foci=(0, 1),
        lobes=((1, 4), (1.5, 5.0), (0.02, 0.15)),
        spikes=((0, 4), (30.0, 120.0), (0.05, 0.30)),
    ),
    "RDLS3": _Look(
        diameter_mm=(30.0, 4.0, 20.0, 40.0),
        signal=(0.40, 0.05),
        texture_sd=(0.04, 0.12),
        texture_sigma_vox=(3.5, 6.0),
        streaky=True,
        foci=(0, 2),
        lobes=((2, 6), (3.0, 10.0), (0.10, 0.35)),
        spikes=((0, 6), (30.0, 120.0), (0.10, 0.35)),
    ),
}

# Evenly spread directions on which the margin's volume and irregularity are integrated.
_N_SPHERE_POINTS = 4096


def write_subject_mri(
    *, subtype, centre, image_path, mask_path, shape, rng, dicom_identity=None, mri_signal="mixed"
) -> dict:
    """Write one subject's synthetic T2-weighted volume and tumour mask.

    Parameters
    ----------
    subtype : str
        One of ``SUBTYPES``; sets the tumour's planted size, margin and texture.
    centre : str
        A key of ``CENTRES``; sets spacing, intensity scale, bias field and noise.
    image_path : str or pathlib.Path
        Where the image goes: a ``.nii.gz`` file (int16 NIfTI), or, when ``dicom_identity``
        is given, a folder that receives one MR DICOM file per slice.
    mask_path : str or pathlib.Path
        The tumour mask, a ``.nii.gz`` file (uint8, label 1) on the image's grid.
    shape : tuple of int
        Voxels along x, y and z.
    rng : numpy.random.Generator
        The only source of randomness: the same seed gives identical files.
    dicom_identity : dict, optional
        DICOM keywords and values (for example ``PatientName``, ``PatientID``,
        ``PatientBirthDate``) written into every slice's header. Their presence selects
        DICOM output. The image is drawn before any DICOM-only random draw, so its pixels
        equal those of the NIfTI written from the same seed.
    mri_signal : str
        A value of ``MRI_SIGNALS``: ``"mixed"`` (the original demo, drawn exactly as
        before), or a variant whose subtypes differ by one mechanism (``_mri_variants``).

    Returns
    -------
    dict
        The planted truth: ``tumour_volume_mm3`` (true tumour), ``mask_volume_mm3``,
        ``equivalent_diameter_mm`` (of the true tumour), ``margin_irregularity``,
        ``mean_intensity_tumour`` (stored values in the true tumour), ``spacing_x``,
        ``spacing_y``, ``spacing_z`` (mm), ``centre``, ``subtype`` and ``format``
        (``'nifti'`` or ``'dicom'``). Variants other than ``mixed`` add ``mri_signal`` and
        the planted mechanism parameters (see :func:`_draw_variant`).

    Notes
    -----
    ``margin_irregularity`` is the mean, over evenly spread directions, of the tangent of
    the angle between the tumour surface's normal and the radial direction, measured in the
    tumour's own ellipsoidal frame before voxelisation. It is 0 for an ellipsoid; in the
    default demo (5th-95th percentiles) it runs 0.01-0.11 for smooth (RDLS2), 0.11-0.25 for
    lobulated (RDLS3) and 0.11-0.38 for spiculated (RDLS1) margins. Equivalent diameters
    run about 17-26 mm (RDLS2), 22-33 mm (RDLS3) and 30-43 mm (RDLS1); tumour signal is
    about 0.60, 0.80 and 0.40 of fat (sd 0.05) for RDLS1, RDLS2 and RDLS3, evenly spaced so
    that no two subtypes are much closer to each other than to the third.
    """
    _check_arguments(subtype=subtype, centre=centre, shape=shape, mri_signal=mri_signal)
    scanner = CENTRES[centre]
    spacing = tuple(float(s) for s in scanner["spacing_mm"])
    grid = _Grid(shape_zyx=(int(shape[2]), int(shape[1]), int(shape[0])), spacing_xyz=spacing)

    anatomy = _draw_anatomy(grid, rng)
    if mri_signal == "mixed":
        look = _LOOKS[subtype]
        tumour, irregularity = _draw_tumour(grid, anatomy, look, rng)
        signal = _tissue_signal(grid, anatomy, rng)
        signal[tumour] = _tumour_signal(grid, tumour, look, rng)[tumour]
        planted = {}
    else:
        pheno = variants.phenotype(mri_signal, subtype)
        tumour, signal, irregularity, planted = _draw_variant(grid, anatomy, pheno, rng)
        planted = {"mri_signal": mri_signal, **planted}
    image = _acquire(grid, signal, scanner, rng)
    mask = _rater_mask(tumour, rng)
    origin = _draw_origin(grid, rng)

    if dicom_identity is None:
        _write_nifti(image, path=image_path, spacing=spacing, origin=origin)
        image_format = "nifti"
    else:
        _write_dicom_series(
            image,
            folder=image_path,
            spacing=spacing,
            origin=origin,
            identity=dicom_identity,
            centre=centre,
            rng=rng,
        )
        image_format = "dicom"
    _write_nifti(mask.astype(np.uint8), path=mask_path, spacing=spacing, origin=origin)

    tumour_volume = float(tumour.sum()) * grid.voxel_mm3
    return {
        "tumour_volume_mm3": tumour_volume,
        "mask_volume_mm3": float(mask.sum()) * grid.voxel_mm3,
        "equivalent_diameter_mm": float(np.cbrt(6.0 * tumour_volume / np.pi)),
        "margin_irregularity": irregularity,
        "mean_intensity_tumour": float(image[tumour].mean()),
        "spacing_x": spacing[0],
        "spacing_y": spacing[1],
        "spacing_z": spacing[2],
        "centre": centre,
        "subtype": subtype,
        "format": image_format,
        **planted,
    }


def _check_arguments(*, subtype, centre, shape, mri_signal) -> None:
    variants.check_mri_signal(mri_signal)
    if subtype not in _LOOKS:
        raise ValueError(f"unknown subtype {subtype!r}; choose one of {', '.join(SUBTYPES)}")
    if centre not in CENTRES:
        raise ValueError(f"unknown centre {centre!r}; choose one of {', '.join(CENTRES)}")
    # Below 8 voxels a side the anatomy (body, rectum, tumour) no longer fits the grid.
    if len(shape) != 3 or min(int(n) for n in shape) < 8:
        raise ValueError(f"shape must be 3 voxel counts (x, y, z) of at least 8, got {shape!r}")


class _Grid:
    """Voxel grid with open (broadcastable) mm coordinates centred on the volume."""

    def __init__(self, *, shape_zyx, spacing_xyz):
        self.shape = shape_zyx
        self.spacing_zyx = spacing_xyz[::-1]
        self.voxel_mm3 = float(np.prod(spacing_xyz))
        nz, ny, nx = shape_zyx
        sx, sy, sz = spacing_xyz
        self.z = ((np.arange(nz) - (nz - 1) / 2) * sz)[:, None, None]
        self.y = ((np.arange(ny) - (ny - 1) / 2) * sy)[None, :, None]
        self.x = ((np.arange(nx) - (nx - 1) / 2) * sx)[None, None, :]
        self.fov_x, self.fov_y, self.fov_z = nx * sx, ny * sy, nz * sz


@dataclass(frozen=True)
class _Anatomy:
    body: np.ndarray  # bool, inside the skin
    muscle: np.ndarray  # bool
    lumen: np.ndarray  # bool
    wall: np.ndarray  # bool, rectal wall ring
    tumour_centre: np.ndarray  # (x, y, z) mm
    wall_direction: float  # in-plane angle from the rectal axis to the tumour's centre


def _draw_anatomy(grid: _Grid, rng: np.random.Generator) -> _Anatomy:
    """Body, muscles and rectum; the field of view is centred on the tumour, as planned."""
    # The body is sized to the field of view (a pelvis crop) so that every grid shows air.
    body = _fov_ellipse(
        grid,
        centre=(0.0, rng.normal(0.0, 0.02)),
        semi_axes=(rng.uniform(0.50, 0.56), rng.uniform(0.42, 0.47)),
    )
    # Obturator internus on both sides, pelvic floor muscles behind the rectum (+y is
    # posterior in LPS).
    muscle = np.zeros_like(body)
    for side in (-1.0, 1.0):
        muscle |= _fov_ellipse(
            grid,
            centre=(side * rng.uniform(0.38, 0.43), rng.normal(0.0, 0.03)),
            semi_axes=(rng.uniform(0.06, 0.09), rng.uniform(0.18, 0.25)),
        )
    muscle |= _fov_ellipse(
        grid,
        centre=(0.0, rng.uniform(0.33, 0.38)),
        semi_axes=(rng.uniform(0.25, 0.32), rng.uniform(0.05, 0.08)),
    )
    muscle &= body

    tumour_centre = np.array([rng.normal(0.0, 1.5), rng.normal(0.0, 1.5), rng.normal(0.0, 2.0)])
    lumen_mm = rng.uniform(4.0, 6.0)
    wall_mm = rng.uniform(3.0, 4.5)
    wall_direction = rng.uniform(0.0, 2.0 * np.pi)
    # The tumour's centre sits mid-wall, so the rectal axis lies a lumen radius and half a
    # wall away from it; the axis drifts gently with z as the rectum curves.
    offset = lumen_mm + wall_mm / 2
    axis_x = tumour_centre[0] - offset * np.cos(wall_direction) + rng.normal(0.0, 0.08) * grid.z
    axis_y = tumour_centre[1] - offset * np.sin(wall_direction) + rng.normal(0.0, 0.08) * grid.z
    radius = np.sqrt((grid.x - axis_x) ** 2 + (grid.y - axis_y) ** 2)
    lumen = radius <= lumen_mm
    wall = (radius <= lumen_mm + wall_mm) & ~lumen
    body, muscle = np.broadcast_to(body, grid.shape), np.broadcast_to(muscle, grid.shape)
    return _Anatomy(body, muscle, lumen, wall, tumour_centre, wall_direction)


def _fov_ellipse(grid: _Grid, *, centre, semi_axes) -> np.ndarray:
    """In-plane ellipse, ``(y, x)`` array; centre and semi-axes in fractions of the field."""
    u = grid.x[0] / grid.fov_x - centre[0]
    v = grid.y[0] / grid.fov_y - centre[1]
    return (u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 <= 1.0


def _draw_tumour(
    grid: _Grid, anatomy: _Anatomy, look: _Look, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The true tumour (bool array) and its margin irregularity.

    The tumour is a star-shaped body in an ellipsoidal frame: its radius along direction
    ``n`` is ``s * (1 + p(n))``, with ``p`` a sum of von Mises-Fisher bumps (broad lobes and
    narrow spikes) and ``s`` chosen so that its volume equals the drawn equivalent diameter's
    sphere before it is clipped to the body and cut by the lumen.
    """
    mean, sd, low, high = look.diameter_mm
    diameter = float(np.clip(rng.normal(mean, sd), low, high))
    elongation = rng.uniform(1.4, 1.9)  # rectal tumours run along the bowel (z)
    flattening = rng.uniform(0.9, 1.1)
    tilt = rng.normal(0.0, np.radians(10))
    bumps = _draw_bumps(look.lobes, look.spikes, rng)
    body = _star_tumour(
        grid, anatomy, diameter=diameter, elongation=elongation, flattening=flattening,
        tilt=tilt, bumps=bumps,
    )  # fmt: skip
    return body.tumour, body.irregularity


@dataclass(frozen=True)
class _Body:
    """A star-shaped tumour and the frame it was drawn in."""

    tumour: np.ndarray  # bool
    irregularity: float
    relative_radius: np.ndarray  # ellipsoidal radius of each voxel over the body's scale
    centre: np.ndarray  # (x, y, z) mm
    rotation: np.ndarray
    semi_axes: np.ndarray
    scale: float


def _star_tumour(
    grid: _Grid, anatomy: _Anatomy, *, diameter, elongation, flattening, tilt, bumps
) -> _Body:
    """The tumour body from its drawn size, shape, tilt and margin bumps (no randomness)."""
    in_plane = diameter / 2 / np.cbrt(elongation)
    semi_axes = np.array([in_plane * flattening, in_plane / flattening, in_plane * elongation])
    rotation = _rotation(azimuth=anatomy.wall_direction, tilt=tilt)
    directions, kappas, amplitudes = bumps

    sphere = _fibonacci_sphere(_N_SPHERE_POINTS)
    bumps, gradient = _bumps(sphere, directions, kappas, amplitudes)
    # Volume of a star-shaped body is the mean of r^3 times 4 pi / 3: scale r to match.
    scale = np.mean((1.0 + bumps) ** 3) ** (-1.0 / 3.0)
    irregularity = float(np.mean(np.linalg.norm(gradient, axis=1) / (1.0 + bumps)))

    offset = np.stack(
        np.broadcast_arrays(
            grid.x - anatomy.tumour_centre[0],
            grid.y - anatomy.tumour_centre[1],
            grid.z - anatomy.tumour_centre[2],
        ),
        axis=-1,
    )
    frame = (offset @ rotation) / semi_axes
    rho = np.linalg.norm(frame, axis=-1)
    # Only voxels within reach of the margin need the (costlier) bump evaluation; the reach
    # is the largest sampled radius, padded for peaks that fall between sampled directions.
    candidate = rho <= scale * (1.0 + 1.1 * bumps.max()) + 0.05
    n = frame[candidate] / np.maximum(rho[candidate], 1e-9)[:, None]
    tumour = np.zeros(grid.shape, dtype=bool)
    tumour[candidate] = rho[candidate] <= scale * (
        1.0 + _bumps(n, directions, kappas, amplitudes)[0]
    )
    tumour &= anatomy.body & ~anatomy.lumen
    return _Body(
        tumour=_largest_component(tumour),
        irregularity=irregularity,
        relative_radius=rho / scale,
        centre=anatomy.tumour_centre,
        rotation=rotation,
        semi_axes=semi_axes,
        scale=float(scale),
    )


def _draw_bumps(lobes, spikes, rng: np.random.Generator):
    """Directions, concentrations and amplitudes of the lobes and spikes of one margin."""
    kappas, amplitudes, counts = [], [], []
    for (n_low, n_high), kappa_range, amplitude_range in (lobes, spikes):
        count = int(rng.integers(n_low, n_high + 1))
        counts.append(count)
        kappas.append(rng.uniform(*kappa_range, size=count))
        amplitudes.append(rng.uniform(*amplitude_range, size=count))
    directions = rng.normal(size=(sum(counts), 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions, np.concatenate(kappas), np.concatenate(amplitudes)


def _bumps(n, directions, kappas, amplitudes) -> tuple[np.ndarray, np.ndarray]:
    """Bump sum ``p`` at unit vectors ``n`` and its gradient along the sphere.

    Each bump is ``a * exp(kappa * (n . d - 1))``: height ``a`` at its centre ``d``, angular
    width about ``1 / sqrt(kappa)`` radians; its tangential gradient is analytic. Single
    precision cuts the cost of the exponentials, most of a subject's time, several-fold.
    """
    n, directions = n.astype(np.float32), directions.astype(np.float32)
    kappas, amplitudes = kappas.astype(np.float32), amplitudes.astype(np.float32)
    cosines = n @ directions.T
    weights = amplitudes * np.exp(kappas * (cosines - 1.0))
    value = weights.sum(axis=1)
    slope = weights * kappas
    gradient = slope @ directions - (slope * cosines).sum(axis=1)[:, None] * n
    return value, gradient


def _fibonacci_sphere(count: int) -> np.ndarray:
    """Nearly evenly spread unit vectors (equal area each), deterministic."""
    k = np.arange(count) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / count)
    azimuth = np.pi * (1.0 + np.sqrt(5.0)) * k
    return np.stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1
    )


def _rotation(*, azimuth: float, tilt: float) -> np.ndarray:
    """Rotation of the tumour's frame; its columns are the frame's axes in (x, y, z).

    The long axis is tipped from z by ``tilt``, then the frame turned in-plane by ``azimuth``.
    """
    ca, sa, ct, st = np.cos(azimuth), np.sin(azimuth), np.cos(tilt), np.sin(tilt)
    turn = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])
    tip = np.array([[1.0, 0.0, 0.0], [0.0, ct, -st], [0.0, st, ct]])
    return turn @ tip


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest face-connected component (SimpleITK's default connectivity)."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == np.argmax(sizes)


def _draw_variant(grid: _Grid, anatomy: _Anatomy, pheno, rng: np.random.Generator):
    """Tumour, T2 signal and planted parameters of one subject of a single-mechanism variant.

    Every mechanism is drawn from ``pheno`` (``_mri_variants.phenotype``): size, margin
    (with strands into the fat), texture (with a core or bands) and mean signal.

    Returns
    -------
    tuple
        The true tumour (bool), the signal of the whole volume relative to fat, the margin
        irregularity and the planted parameters: ``planted_diameter_mm``, ``margin_type``,
        ``n_lobes``, ``lobe_amplitude`` (mean, 0 without), ``n_spikes``, ``spike_amplitude``
        (mean, 0 without), ``n_strands``, ``texture_type``, ``texture_sd``,
        ``texture_sigma_vox``, ``core_fraction`` and ``core_contrast`` (signed; 0 without a
        core), ``band_period_mm``, ``band_width_mm`` and ``band_depth`` (0 without bands),
        ``signal_type`` and ``tumour_signal`` (planted mean T2 signal relative to fat).
    """
    size, margin, texture = pheno.size, pheno.margin, pheno.texture
    diameter = float(
        np.clip(np.exp(rng.normal(np.log(size.median_mm), size.log_sd)), *size.clip_mm)
    )
    elongation = rng.uniform(1.4, 1.9)  # rectal tumours run along the bowel (z)
    flattening = rng.uniform(0.9, 1.1)
    tilt = rng.normal(0.0, np.radians(10))
    groups = []
    for (n_low, n_high), kappa_range, amplitude_range in (margin.lobes, margin.spikes):
        count = int(rng.integers(n_low, n_high + 1))
        groups.append(
            (
                count,
                rng.uniform(*kappa_range, size=count),
                rng.uniform(*amplitude_range, size=count),
            )
        )
    directions = rng.normal(size=(groups[0][0] + groups[1][0], 3))
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    kappas = np.concatenate([groups[0][1], groups[1][1]])
    amplitudes = np.concatenate([groups[0][2], groups[1][2]])
    body = _star_tumour(
        grid, anatomy, diameter=diameter, elongation=elongation, flattening=flattening,
        tilt=tilt, bumps=(directions, kappas, amplitudes),
    )  # fmt: skip

    signal = _tissue_signal(grid, anatomy, rng)
    spikes = slice(groups[0][0], None)
    n_strands = _draw_strands(
        grid, anatomy, body, signal, directions=directions[spikes],
        bumps=(directions, kappas, amplitudes), margin=margin, rng=rng,
    )  # fmt: skip
    level = float(
        np.clip(rng.normal(pheno.intensity.mean, pheno.intensity.sd), *pheno.intensity.clip)
    )
    tumour_signal, texture_planted = _variant_texture(grid, body, texture, rng)
    signal[body.tumour] = level + tumour_signal[body.tumour]
    planted = {
        "planted_diameter_mm": diameter,
        "margin_type": margin.name,
        "n_lobes": groups[0][0],
        "lobe_amplitude": float(groups[0][2].mean()) if groups[0][0] else 0.0,
        "n_spikes": groups[1][0],
        "spike_amplitude": float(groups[1][2].mean()) if groups[1][0] else 0.0,
        "n_strands": n_strands,
        **texture_planted,
        "signal_type": pheno.intensity.name,
        "tumour_signal": level,
    }
    return body.tumour, signal, body.irregularity, planted


def _draw_strands(
    grid: _Grid, anatomy: _Anatomy, body: _Body, signal, *, directions, bumps, margin, rng
) -> int:
    """Low-signal strands from spike tips into the fat (fibrosis, desmoplasia); in place.

    Each spike, with ``margin.strand_probability``, continues as a straight strand about a
    voxel wide for ``margin.strand_length_mm`` beyond its tip, darkening fat only. The
    strands are not tumour: the mask leaves them out, as a rater leaves out fat stranding.
    """
    fat = anatomy.body & ~anatomy.muscle & ~anatomy.wall & ~anatomy.lumen & ~body.tumour
    count = 0
    for direction in directions:
        if rng.random() >= margin.strand_probability:
            continue
        length = rng.uniform(*margin.strand_length_mm)
        value = rng.uniform(0.30, 0.45)  # fibrous tissue, near muscle on T2
        # The spike's tip in mm: the body's radius along its direction, in the tumour frame.
        radius = body.scale * (1.0 + _bumps(direction[None, :], *bumps)[0][0])
        tip = body.centre + body.rotation @ (body.semi_axes * direction * radius)
        outward = body.rotation @ (body.semi_axes * direction)
        outward /= np.linalg.norm(outward)
        rel = np.stack(
            np.broadcast_arrays(grid.x - tip[0], grid.y - tip[1], grid.z - tip[2]), axis=-1
        )
        along = np.clip(rel @ outward, 0.0, length)
        across = rel - along[..., None] * outward
        # In-plane width about one voxel; along z the slice thickness does the widening.
        distance = np.sqrt(across[..., 0] ** 2 + across[..., 1] ** 2 + (across[..., 2] / 3.0) ** 2)
        strand = (distance <= 0.6) & fat
        signal[strand] = value
        count += 1
    return count


def _variant_texture(grid: _Grid, body: _Body, texture, rng: np.random.Generator):
    """Zero-mean signal offsets inside the tumour: correlated texture, core or bands.

    The offsets are centred over the tumour's voxels, so the tumour's mean signal is the
    drawn level whatever its texture.
    """
    amplitude = rng.uniform(*texture.sd)
    sigma = rng.uniform(*texture.sigma_vox)
    field = amplitude * _smooth_noise(grid.shape, (max(sigma / 2, 0.5), sigma, sigma), rng)
    planted = {
        "texture_type": texture.name,
        "texture_sd": amplitude,
        "texture_sigma_vox": sigma,
        "core_fraction": 0.0,
        "core_contrast": 0.0,
        "band_period_mm": 0.0,
        "band_width_mm": 0.0,
        "band_depth": 0.0,
    }
    if texture.core_fraction is not None:
        fraction = rng.uniform(*texture.core_fraction)
        if rng.random() < texture.fibrotic_core_probability:
            contrast = -rng.uniform(*texture.fibrotic_contrast)
        else:
            contrast = rng.uniform(*texture.necrotic_contrast)
        # Soft-edged core in the tumour's own frame, so it sits at the tumour's centre.
        weight = np.clip((fraction - body.relative_radius) / 0.15 + 0.5, 0.0, 1.0)
        field = field + contrast * weight
        planted.update(core_fraction=fraction, core_contrast=contrast)
    if texture.band_period_mm is not None:
        period = rng.uniform(*texture.band_period_mm)
        width = rng.uniform(*texture.band_width_mm)
        depth = rng.uniform(*texture.band_depth)
        angle = rng.uniform(0.0, np.pi)
        phase = rng.uniform(0.0, period)
        # Distance across the bands, wavering by about a millimetre as fibrous bands do.
        across = grid.x * np.cos(angle) + grid.y * np.sin(angle)
        across = across + 1.0 * _smooth_noise(grid.shape, (1.0, 4.0, 4.0), rng)
        in_band = np.mod(across + phase, period) < width
        field = field - depth * in_band
        planted.update(band_period_mm=period, band_width_mm=width, band_depth=depth)
    field = field.astype(np.float32)
    field -= field[body.tumour].mean()
    return field, planted


def _tissue_signal(grid: _Grid, anatomy: _Anatomy, rng: np.random.Generator) -> np.ndarray:
    """T2 signal of the normal tissues relative to fat, with mild correlated texture."""
    signal = np.zeros(grid.shape, dtype=np.float32)
    signal[anatomy.body] = _FAT
    signal[anatomy.muscle] = _MUSCLE
    signal[anatomy.wall & anatomy.body] = _WALL
    signal[anatomy.lumen & anatomy.body] = _LUMEN
    signal *= 1.0 + _TISSUE_TEXTURE_SD * _smooth_noise(grid.shape, (0.7, 1.5, 1.5), rng)
    return signal


def _tumour_signal(
    grid: _Grid, tumour: np.ndarray, look: _Look, rng: np.random.Generator
) -> np.ndarray:
    """T2 signal in and around the tumour: base level, subtype texture and foci."""
    level = rng.normal(*look.signal)
    amplitude = rng.uniform(*look.texture_sd)
    sigma = rng.uniform(*look.texture_sigma_vox)
    if look.streaky:
        # Fibrotic bands: long correlation along one in-plane axis, short across it.
        along_x = rng.random() < 0.5
        sigmas = (0.6, 0.6, sigma) if along_x else (0.6, sigma, 0.6)
    else:
        sigmas = (max(sigma / 2, 0.5), sigma, sigma)  # z voxels are about 4 times thicker
    signal = level + amplitude * _smooth_noise(grid.shape, sigmas, rng)

    # Foci of necrosis (fluid-bright) or fibrosis and haemorrhage (dark), inside the tumour.
    voxels = np.flatnonzero(tumour)
    for _ in range(int(rng.integers(look.foci[0], look.foci[1] + 1))):
        k, j, i = np.unravel_index(voxels[rng.integers(voxels.size)], grid.shape)
        radius = rng.uniform(1.5, 4.0)
        value = rng.uniform(0.95, 1.15) if rng.random() < 0.5 else rng.uniform(0.18, 0.28)
        focus = (
            (grid.x - grid.x[0, 0, i]) ** 2
            + (grid.y - grid.y[0, j, 0]) ** 2
            + ((grid.z - grid.z[k, 0, 0]) / 1.5) ** 2  # flatter in z: a 3 mm slice holds few
        ) <= radius**2
        signal[focus] = value
    return signal.astype(np.float32)


def _smooth_noise(shape, sigma_zyx, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-correlated noise with unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma_zyx)
    return noise / noise.std()


def _acquire(grid: _Grid, signal: np.ndarray, scanner: dict, rng: np.random.Generator):
    """Scanner effects: point spread, bias field, intensity scale and Rician noise; int16."""
    blurred = ndimage.gaussian_filter(signal, (0.3, 0.6, 0.6))
    gain = FAT_REFERENCE * scanner["intensity_scale"]
    clean = blurred * _bias_field(grid, scanner["bias_strength"], rng) * gain
    # Magnitude of a complex signal with Gaussian noise in both channels is Rician; the
    # noise level is fixed by the coil, relative to fat at this centre's gain.
    sd = scanner["noise_sd"] * gain
    real = clean + sd * rng.standard_normal(grid.shape, dtype=np.float32)
    imaginary = sd * rng.standard_normal(grid.shape, dtype=np.float32)
    magnitude = np.sqrt(real**2 + imaginary**2)
    return np.clip(np.rint(magnitude), 0, np.iinfo(np.int16).max).astype(np.int16)


def _bias_field(grid: _Grid, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative field ``exp(strength * q)``, ``q`` a random quadratic.

    ``q`` has zero mean over the volume and peaks at magnitude 1, so the field spans
    ``exp(-strength)`` to ``exp(strength)`` without shifting the overall intensity.
    """
    u, v, w = grid.x / grid.fov_x, grid.y / grid.fov_y, grid.z / grid.fov_z
    terms = (u, v, w, u * u, v * v, w * w, u * v, u * w, v * w)
    coefficients = rng.normal(size=len(terms))
    field = sum(c * t for c, t in zip(coefficients, terms, strict=True))
    field = np.broadcast_to(field, grid.shape)
    field = field - field.mean()
    return np.exp(strength * field / np.abs(field).max()).astype(np.float32)


def _rater_mask(tumour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The tumour as a rater draws it, slice by slice.

    A smooth random field picks stretches of the in-plane boundary (about 30% each) that
    move one voxel in or out, as a hand-drawn contour wanders. The largest face-connected
    component is kept, so the mask is one component. Only boundary voxels move, so the
    tumour's in-plane interior, present at every planted size, keeps the mask non-empty.
    """
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    inner = tumour & ~ndimage.binary_erosion(tumour, in_plane)
    outer = ndimage.binary_dilation(tumour, in_plane) & ~tumour
    wander = _smooth_noise(tumour.shape, (0.7, 2.0, 2.0), rng)
    mask = (tumour & ~(inner & (wander < -0.5))) | (outer & (wander > 0.5))
    return _largest_component(mask)


def _draw_origin(grid: _Grid, rng: np.random.Generator) -> tuple[float, float, float]:
    """Corner voxel position: field of view near the isocentre in-plane, table position in z.

    Rounded to 0.01 mm so that DICOM's decimal strings carry it exactly.
    """
    _, ny, nx = grid.shape
    _, sy, sx = grid.spacing_zyx
    corner = (
        -(nx - 1) / 2 * sx + rng.normal(0.0, 5.0),
        -(ny - 1) / 2 * sy + rng.normal(0.0, 5.0),
        rng.uniform(-120.0, -60.0),
    )
    return tuple(round(float(c), 2) for c in corner)


def _write_nifti(array: np.ndarray, *, path, spacing, origin) -> None:
    path = Path(path)
    if not path.name.endswith(".nii.gz"):
        raise ValueError(f"NIfTI output must end in .nii.gz, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_dicom_series(
    image: np.ndarray, *, folder, spacing, origin, identity, centre, rng: np.random.Generator
) -> None:
    """One MR DICOM file per axial slice, positioned so that readers rebuild the volume.

    UIDs are hashed from one draw of ``rng``, so they are reproducible per seed yet unique
    per subject. The identity keywords go into every header, as they would from a scanner.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seed = str(rng.integers(np.iinfo(np.int64).max))
    study_uid = generate_uid(entropy_srcs=[seed, "study"])
    series_uid = generate_uid(entropy_srcs=[seed, "series"])
    frame_uid = generate_uid(entropy_srcs=[seed, "frame"])
    sx, sy, sz = spacing
    nz, ny, nx = image.shape
    for k in range(nz):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[seed, str(k)])
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "MR"
        ds.Manufacturer = "rdls synthetic"
        ds.InstitutionName = f"rdls demo centre {centre}"
        ds.StudyDate = ds.SeriesDate = "20200101"
        ds.SeriesDescription = "T2W TSE axial"
        ds.SeriesNumber = 3
        ds.InstanceNumber = k + 1
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = 4000
        ds.EchoTime = 100
        ds.MagneticFieldStrength = 3
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        position = (origin[0], origin[1], origin[2] + k * sz)
        ds.ImagePositionPatient = [f"{p:.4f}" for p in position]
        ds.SliceLocation = f"{position[2]:.4f}"
        ds.PixelSpacing = [f"{sy:.4f}", f"{sx:.4f}"]  # row spacing (y) first
        ds.SliceThickness = f"{sz:.4f}"
        ds.SpacingBetweenSlices = f"{sz:.4f}"
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1  # signed, as int16
        ds.PixelData = np.ascontiguousarray(image[k]).tobytes()
        for keyword, value in identity.items():
            if tag_for_keyword(keyword) is None:
                raise ValueError(f"dicom_identity: {keyword!r} is not a DICOM keyword")
            setattr(ds, keyword, value)
        ds.save_as(folder / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
