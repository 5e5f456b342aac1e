"""Nuclei one by one: segment every nucleus of an H&E tile, measure it and name its cell type.

Input is the haematoxylin and eosin optical density of one tile (``separate_stains`` in
:mod:`rdls.wsi.tiles`, log10 units) at a known resolution. Segmentation is a hysteresis
threshold on smoothed haematoxylin: a nucleus is a connected region above a low threshold that
holds a core above the tile's Otsu threshold. The low threshold takes in the whole of a pale
vesicular nucleus, so a dark nucleolus inside it is part of that nucleus and never an object of
its own. Touching nuclei are split by a watershed of the distance transform, seeded at maxima
one lymphocyte radius apart. Each nucleus then gets a row of shape, stain and context features
and a class by cytology:

- lymphocyte: small (6-7.5 um across), round and the darkest nuclei of the tile, from their
  dense, condensed chromatin;
- tumour: large, paler, vesicular nuclei, often with nucleoli;
- fibroblast: elongated, thin, spindle nuclei;
- other: debris and fragments, objects too faint to be nuclei, and clumps too large for one.

Lymphocyte darkness is judged relative to the tile's own darkest nuclei (so the rule holds
across stain batches) and against each nucleus's own surroundings; every size is in microns,
so the rules hold at any resolution. The thresholds are in :class:`NucleusSettings`, each
with its reason; they are round, physically sensible numbers checked on real H&E (BRCA-M2C
validation images, see ``docs/wsi.md``), not a fitted model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from rdls.errors import InputError

NUCLEUS_CLASSES = ("lymphocyte", "tumour", "fibroblast", "other")
NUCLEUS_COLUMNS = (
    "label", "row", "col", "area_um2", "major_axis_um", "minor_axis_um", "roundness",
    "solidity", "mean_haematoxylin", "sd_haematoxylin", "relative_haematoxylin",
    "contrast_haematoxylin", "ring_eosin", "neighbours",
)  # fmt: skip

# Radius of a lymphocyte (6-7.5 um across): the least distance between two nucleus seeds.
_MIN_SEED_DEPTH_UM = 1.5  # half the width of the thinnest nucleus that may be split
_LYMPHOCYTE_RADIUS_UM = 3.0
# Ring around a nucleus in which its surroundings are measured: about a cytoplasm's width.
_RING_UM = 1.5
# Radius within which neighbouring nuclei count as local context: about two cell diameters.
_NEIGHBOUR_UM = 20.0
# Edge normals of the polygon that stands in for each nucleus's convex hull (solidity).
_HULL_DIRECTIONS = 32


@dataclass(frozen=True)
class NucleusSettings:
    """Thresholds of nucleus segmentation and classification; sizes in um and um2.

    Attributes
    ----------
    smooth_um : float
        Gaussian smoothing (sigma) of haematoxylin before thresholding, about the grain of
        chromatin, so that its texture does not fragment a nucleus; at 1 um, packed
        lymphocytes blur together.
    min_threshold, max_threshold : float
        Limits of the tile's Otsu threshold on haematoxylin OD (the core threshold). Cytoplasm
        and collagen sit below ~0.2 OD, so the floor keeps a nucleus-free tile from producing
        nuclei out of its texture. Where lymphocytes are many, Otsu falls between the pale
        vesicular tumour nuclei and the dark lymphocytes; the ceiling keeps those tumour
        nuclei above it.
    low_fraction : float
        Extent of a nucleus as a fraction of the core threshold (hysteresis): a region above
        it is a nucleus if it holds a core pixel. It takes in the blurred rim of a nucleus
        while the pale gaps between packed lymphocytes stay out of it (at 0.5-0.6 dense
        infiltrates merged into clumps and real lymphocyte recall fell from 0.79 to 0.55).
    pale_fraction : float
        Extent of a pale vesicular nucleus, as a fraction of the core threshold. A tumour
        nucleus's nucleoplasm can be ~0.5 of a lymphocyte's darkness, below the core
        threshold, so that only its nucleolus clears it. A nucleus-sized region above this
        level that holds one object covering under half of it is one nucleus, and the object
        (the nucleolus) grows to the whole region: a nucleolus is never a nucleus of its own.
    min_area_um2, max_area_um2 : float
        Objects under 10 um2 (a 3.6 um disc, half a small lymphocyte) are debris, fragments
        or noise; over 200 um2 (16 um across) they are clumps of nuclei the watershed could not
        split. Both are "other".
    min_contrast : float
        Least excess of a nucleus's mean haematoxylin OD over its surrounding ring: real
        nuclei stand 0.1-0.5 OD above their cytoplasm; folds, out-of-focus and over-stained
        areas pass the threshold without standing out, and are "other".
    lymphocyte_min_area_um2, lymphocyte_max_area_um2 : float
        Lymphocytes are 6-7.5 um across (28-44 um2), down to ~4 um where a section grazes
        one (12 um2). The hysteresis extent takes in the blurred rim, ~1 um, so a 7.5 um
        lymphocyte measures up to ~9.5 um (70 um2); 80 um2 also keeps two lymphocytes
        the watershed could not part, where tumour nuclei (40-150 um2) are mostly larger.
    lymphocyte_min_roundness : float
        Minor over major axis. Lymphocytes are near-circles, but in real sections their
        median roundness is only ~0.7 (squeezed, cut obliquely, merged edges), no higher than
        that of tumour nuclei: roundness only excludes the clearly elongated (< 0.4).
    lymphocyte_min_relative : float
        Least mean haematoxylin of a lymphocyte relative to the tile's darkest nuclei (the
        90th percentile of its nuclei's mean haematoxylin). Condensed chromatin makes
        lymphocytes the darkest nuclei of any tile that has them, whatever the stain batch:
        on real H&E their median is 0.9 of that reference, tumour and stromal nuclei's 0.6-0.8.
    lymphocyte_min_contrast : float
        Least excess of a lymphocyte's mean haematoxylin OD over its 1.5 um ring. Measured
        against the nucleus's own surroundings, so uneven section thickness and background
        do not matter, and absolute, so that the darkest nuclei of a tile without
        lymphocytes (tumour nests) are not taken for them: on real, unnormalised H&E a
        lymphocyte stands a median 0.55 OD (10th percentile 0.39) above its surroundings, a
        tumour nucleus 0.25 and a stromal one 0.34.
    fibroblast_max_roundness : float
        Fibroblast (and endothelial) nuclei are spindles, 3-4 um thin and 10-20 um long:
        minor over major axis under ~0.5.
    fibroblast_max_minor_um : float
        And thin: a short axis under 5 um, where elongated tumour nuclei are 6-8 um wide.
    tumour_min_area_um2 : float
        Tumour nuclei are large (40-150 um2, 8-14 um across); a pale, round object smaller
        than 25 um2 is too small for one and is "other".
    local_window_um : float
        Side of a window over which a nucleus pixel must also reach the local mean
        haematoxylin; 0 (the default) leaves this out. For blurred input (tiles upsampled
        from a coarse resolution) packed lymphocytes merge above any global threshold, and
        this local condition parts them (8 um: about one lymphocyte and its neighbour's rim).
    """

    smooth_um: float = 0.3
    min_threshold: float = 0.2
    max_threshold: float = 0.6
    low_fraction: float = 0.75
    pale_fraction: float = 0.5
    min_area_um2: float = 10.0
    max_area_um2: float = 200.0
    min_contrast: float = 0.05
    lymphocyte_min_area_um2: float = 12.0
    lymphocyte_max_area_um2: float = 80.0
    lymphocyte_min_roundness: float = 0.4
    lymphocyte_min_relative: float = 0.65
    lymphocyte_min_contrast: float = 0.4
    fibroblast_max_roundness: float = 0.5
    fibroblast_max_minor_um: float = 5.0
    tumour_min_area_um2: float = 25.0
    local_window_um: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.local_window_um) and self.local_window_um >= 0):
            raise InputError(
                f"NucleusSettings.local_window_um must be 0 (off) or a positive number of "
                f"microns, got {self.local_window_um!r}"
            )
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "local_window_um":
                continue
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not (np.isfinite(value) and value > 0)
            ):
                raise InputError(
                    f"NucleusSettings.{field.name} must be a positive number, got {value!r}; "
                    "leave it out to use the default"
                )
        pairs = (
            ("min_threshold", "max_threshold"),
            ("min_area_um2", "max_area_um2"),
            ("lymphocyte_min_area_um2", "lymphocyte_max_area_um2"),
        )
        for low, high in pairs:
            if getattr(self, low) >= getattr(self, high):
                raise InputError(
                    f"NucleusSettings: {low} ({getattr(self, low)}) must be below {high} "
                    f"({getattr(self, high)}); swap them or widen the range"
                )
        for name in (
            "low_fraction",
            "pale_fraction",
            "lymphocyte_min_roundness",
            "fibroblast_max_roundness",
            "lymphocyte_min_relative",
        ):
            if getattr(self, name) > 1:
                raise InputError(
                    f"NucleusSettings.{name} must be at most 1, got {getattr(self, name)}: "
                    "it is a ratio of two thresholds or of two axes"
                )


def _check_image(image, name) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D optical-density image, got shape {image.shape}")
    return image


def _check_mpp(mpp) -> float:
    if not (np.isfinite(mpp) and mpp > 0):
        raise ValueError(f"mpp (microns per pixel) must be positive, got {mpp}")
    return float(mpp)


def _fill_holes(mask) -> np.ndarray:
    """``mask`` with its holes filled: background regions that do not reach the border.

    The same as ``ndimage.binary_fill_holes`` (4-connected background) at a fraction of its
    cost, since it labels the background once instead of eroding repeatedly.
    """
    background, n = ndimage.label(~mask)
    if n == 0:
        return mask
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = False  # the mask itself
    return ~outside[background]


def segment(haematoxylin, *, mpp, settings=None) -> np.ndarray:
    """Label the nuclei of one tile.

    Haematoxylin is smoothed over ``settings.smooth_um``; the core threshold is the tile's
    Otsu threshold among stained pixels, clamped to ``[min_threshold, max_threshold]``; a
    nucleus is a connected region above ``low_fraction`` of it that holds a core pixel, with
    its holes filled (hysteresis). Regions are split along the watershed of the smoothed
    distance transform, seeded at maxima at least one lymphocyte radius (3 um) apart, so that
    touching nuclei become separate labels while an elongated nucleus stays whole.

    Parameters
    ----------
    haematoxylin : numpy.ndarray
        ``(height, width)`` haematoxylin optical density, log10.
    mpp : float
        Microns per pixel.
    settings : NucleusSettings, optional

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 for background, 1..n for nuclei (all sizes: :func:`classify` calls
        fragments and clumps "other").
    """
    settings = NucleusSettings() if settings is None else settings
    mpp = _check_mpp(mpp)
    h = _check_image(haematoxylin, "haematoxylin")
    smooth = ndimage.gaussian_filter(h, sigma=max(settings.smooth_um / mpp, 0.5), truncate=2.0)
    level = settings.min_threshold
    stained = smooth[smooth > 0.5 * settings.min_threshold]
    if stained.size > 1 and stained.max() > stained.min():
        level = float(np.clip(threshold_otsu(stained), level, settings.max_threshold))
    above = smooth > settings.low_fraction * level
    if settings.local_window_um > 0:
        window = max(3, round(settings.local_window_um / mpp))
        above &= smooth >= ndimage.uniform_filter(smooth, size=window)
    extent, n = ndimage.label(above)
    if n == 0:
        return extent.astype(np.int32)
    # Hysteresis: keep the extent components that hold a core pixel.
    has_core = np.zeros(n + 1, dtype=bool)
    has_core[extent[smooth > level]] = True
    has_core[0] = False
    mask = has_core[extent]
    # Holes (a pale nuclear centre, a vacuole) are part of their nucleus.
    mask = _fill_holes(mask)
    # Specks too small to be half a nucleus go before the watershed, which is the slow part.
    components, n = ndimage.label(mask)
    sizes = np.bincount(components.ravel(), minlength=n + 1) * mpp * mpp
    keep = sizes >= 0.5 * settings.min_area_um2
    keep[0] = False
    mask = keep[components]
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    distance = ndimage.distance_transform_edt(mask).astype(np.float32)
    distance = ndimage.gaussian_filter(distance, sigma=max(0.5 / mpp, 0.5), truncate=2.0)
    distance[~mask] = 0
    # Seeds: maxima of the distance over a window one lymphocyte radius each way; the
    # pixels of a flat maximum join into one seed. (A maximum filter rather than
    # peak_local_max, whose exact spacing costs more than all the rest of the segmentation.)
    reach = max(1, round(_LYMPHOCYTE_RADIUS_UM / mpp))
    # A seed also needs the depth of a round nucleus: the ridge of a thin (3-4 um) spindle has
    # several shallow maxima, and seeding them would cut a fibroblast into "lymphocytes".
    deep = distance >= _MIN_SEED_DEPTH_UM / mpp
    peaks = mask & deep & (distance >= ndimage.maximum_filter(distance, size=2 * reach + 1))
    markers, _ = ndimage.label(peaks, structure=np.ones((3, 3), dtype=bool))
    labels = watershed(-distance, markers, mask=mask)
    # Components without a peak (too thin for one) keep a label of their own.
    orphan = mask & (labels == 0)
    if orphan.any():
        extra, _ = ndimage.label(orphan)
        labels[orphan] = extra[orphan] + labels.max()
    return _absorb_into_pale_nuclei(labels, smooth, settings.pale_fraction * level, mpp, settings)


def _absorb_into_pale_nuclei(labels, smooth, pale_level, mpp, settings) -> np.ndarray:
    """Give each pale nucleus holding a single small dark object the whole of its extent.

    A vesicular tumour nucleus can be paler than the core threshold except for its nucleoli
    and chromatin clumps. Above ``pale_level`` it is one nucleus-sized region; a region with
    exactly one object that covers under half of it is such a nucleus, and the object (a
    nucleolus) becomes the whole nucleus; so does a region whose several objects are all too
    small for a lymphocyte (two or three nucleoli). Regions with several larger objects (packed
    lymphocytes) or one that fills them (a nucleus and its blurred rim) keep their split. A
    nucleus-sized region with no object becomes a nucleus of its own.
    """
    # Holes (a vacuole) are part of their region; filling them joins no two regions.
    pale, n = ndimage.label(_fill_holes(smooth > pale_level))
    if n == 0:
        return labels
    pixel_um2 = mpp * mpp
    pale_area = np.bincount(pale.ravel(), minlength=n + 1) * pixel_um2
    inside = (labels > 0) & (pale > 0)
    width = np.int64(labels.max()) + 1
    keys = np.unique(pale[inside].astype(np.int64) * width + labels[inside])
    pairs = np.stack([keys // width, keys % width])
    objects_per_region = np.bincount(pairs[0], minlength=n + 1)
    object_area = np.bincount(labels.ravel()) * pixel_um2
    nucleus_sized = (pale_area >= settings.min_area_um2) & (pale_area <= settings.max_area_um2)
    # Two or three nucleoli in one pale nucleus: every object too small for a lymphocyte and
    # all of them together under half the region (packed lymphocytes are each larger).
    held = np.bincount(pairs[0], weights=object_area[pairs[1]], minlength=n + 1)
    largest = np.zeros(n + 1)
    np.maximum.at(largest, pairs[0], object_area[pairs[1]])
    nucleoli = (objects_per_region >= 2) & (largest < settings.lymphocyte_min_area_um2)
    single = objects_per_region == 1
    grows = nucleus_sized & (single | nucleoli) & (held < 0.5 * pale_area)
    grows[0] = False
    owner = np.zeros(n + 1, dtype=np.int64)
    first = pairs[:, np.r_[True, pairs[0, 1:] != pairs[0, :-1]]]  # keys sort by region
    chosen = grows[first[0]]
    owner[first[0][chosen]] = first[1][chosen]
    # A nucleus-sized pale region with no object at all is a pale nucleus with no core (a
    # vesicular tumour nucleus in a tile whose threshold the lymphocytes set): a new label.
    empty = nucleus_sized & (objects_per_region == 0)
    empty[0] = False
    owner[empty] = labels.max() + np.arange(1, int(empty.sum()) + 1)
    new = owner[pale]
    return np.where(new > 0, new, labels).astype(np.int32)


def _solidity(labels, count, index) -> np.ndarray:
    """Area over convex-hull area of each label.

    The hull is the polygon circumscribed about the object's pixels (as squares) with
    ``_HULL_DIRECTIONS`` edge normals, built from the object's support along each normal:
    vectorised over all objects, and a little larger than skimage's pixel-centre hull, so
    solidity reads a few percent lower (0.95 for a drawn disc, 0.89 for a 3:1 ellipse).
    """
    structure = np.ones((3, 3))
    # Padded with background, so that an object filling the tile to its border has an edge.
    padded = np.pad(labels, 1)
    edge = (padded > 0) & (
        (ndimage.grey_erosion(padded, footprint=structure) != padded)
        | (ndimage.grey_dilation(padded, footprint=structure) != padded)
    )
    edge = edge[1:-1, 1:-1]
    rows, cols = np.nonzero(edge)
    owner = labels[rows, cols]
    order = np.argsort(owner, kind="stable")
    rows, cols, owner = rows[order], cols[order], owner[order]
    starts = np.searchsorted(owner, index)
    angles = np.arange(_HULL_DIRECTIONS) * (2 * np.pi / _HULL_DIRECTIONS)
    normals = np.column_stack([np.cos(angles), np.sin(angles)])
    # Support of each object along each normal; a pixel reaches half its width further.
    reach = 0.5 * np.abs(normals).sum(axis=1)
    projection = np.column_stack([rows, cols]).astype(np.float64) @ normals.T
    support = np.maximum.reduceat(projection, starts, axis=0) + reach
    # Vertices: where the edges of consecutive normals meet; then the shoelace formula.
    following = np.roll(np.arange(_HULL_DIRECTIONS), -1)
    a, b = normals, normals[following]
    det = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    h_a, h_b = support, support[:, following]
    x = (h_a * b[:, 1] - h_b * a[:, 1]) / det
    y = (a[:, 0] * h_b - b[:, 0] * h_a) / det
    hull_area = 0.5 * np.abs(
        np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    )
    return np.minimum(1.0, count[index] / hull_area)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float) for c in NUCLEUS_COLUMNS})


def measure(labels, haematoxylin, eosin, *, mpp) -> pd.DataFrame:
    """One row per nucleus: position, size, shape, stain and context.

    Parameters
    ----------
    labels : numpy.ndarray
        int labels from :func:`segment` (0 background).
    haematoxylin, eosin : numpy.ndarray
        Optical densities of the tile, same shape as ``labels``.
    mpp : float
        Microns per pixel.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`NUCLEUS_COLUMNS`: ``label``; centroid ``row`` and ``col`` in the tile's
        pixels; ``area_um2``; ``major_axis_um`` and ``minor_axis_um`` of the fitted ellipse;
        ``roundness`` (minor over major axis, 1 for a circle; unlike 4 pi area / perimeter^2
        it does not depend on how a small boundary is pixelated); ``solidity`` (area over
        convex hull area: low for clumps and ragged debris); ``mean_haematoxylin`` and
        ``sd_haematoxylin`` (OD inside; the SD is high for vesicular nuclei with nucleoli);
        ``relative_haematoxylin`` (mean haematoxylin over the 90th percentile of that of the
        tile's nuclei of 10-200 um2: darkness on the tile's own scale, whatever the stain);
        ``contrast_haematoxylin`` (mean haematoxylin minus that of a 1.5 um ring around the
        nucleus); ``ring_eosin`` (eosin
        OD of that ring: pink cytoplasm of tumour cells, collagen around fibroblasts, little
        around lymphocytes); ``neighbours`` (other nuclei within 20 um: dense infiltrates and
        nests versus sparse stroma).
    """
    mpp = _check_mpp(mpp)
    labels = np.asarray(labels)
    h = _check_image(haematoxylin, "haematoxylin")
    e = _check_image(eosin, "eosin")
    if labels.shape != h.shape or h.shape != e.shape:
        raise ValueError(
            f"labels {labels.shape}, haematoxylin {h.shape} and eosin {e.shape} must have the "
            "same shape"
        )
    if labels.max() == 0:
        return _empty_table()
    n = int(labels.max())
    flat = labels.ravel()
    index = np.unique(flat[flat > 0])
    count = np.bincount(flat, minlength=n + 1).astype(np.float64)
    safe = np.maximum(count, 1.0)
    rows, cols = np.indices(labels.shape, dtype=np.float64)
    rows, cols = rows.ravel(), cols.ravel()

    def per_label(values):
        return np.bincount(flat, weights=values, minlength=n + 1) / safe

    row, col = per_label(rows), per_label(cols)
    # Second central moments give the fitted ellipse (as regionprops' axis lengths do,
    # with the 1/12 of a pixel's own extent so that one-pixel-wide objects have a width).
    d_row, d_col = rows - row[flat], cols - col[flat]
    m_rr = per_label(d_row * d_row) + 1 / 12
    m_cc = per_label(d_col * d_col) + 1 / 12
    m_rc = per_label(d_row * d_col)
    spread = np.sqrt(((m_rr - m_cc) / 2) ** 2 + m_rc**2)
    major = 4 * np.sqrt(np.maximum((m_rr + m_cc) / 2 + spread, 0)) * mpp
    minor = 4 * np.sqrt(np.maximum((m_rr + m_cc) / 2 - spread, 0)) * mpp
    hflat = h.ravel().astype(np.float64)
    mean_h = per_label(hflat)
    sd_h = np.sqrt(np.maximum(per_label(hflat * hflat) - mean_h**2, 0))
    area = count * mpp * mpp
    solidity = _solidity(labels, count, index)
    major, minor, area, mean_h, sd_h = (a[index] for a in (major, minor, area, mean_h, sd_h))
    row, col = row[index], col[index]
    with np.errstate(invalid="ignore", divide="ignore"):
        roundness = np.where(major > 0, minor / major, 1.0)
    # The ring: pixels within 1.5 um outside any nucleus, given to the nearest one's label.
    ring_px = max(1, round(_RING_UM / mpp))
    grown = ndimage.grey_dilation(labels, size=(2 * ring_px + 1, 2 * ring_px + 1))
    ring = np.where(labels == 0, grown, 0)
    ring_n = np.bincount(ring.ravel(), minlength=n + 1)[index]
    ring_h = np.bincount(ring.ravel(), weights=h.ravel(), minlength=n + 1)[index]
    ring_e = np.bincount(ring.ravel(), weights=e.ravel(), minlength=n + 1)[index]
    # A nucleus with no free ring (closed in by neighbours) takes the tile's free tissue level.
    has_ring = ring_n > 0
    fallback_h = fallback_e = 0.0
    if not has_ring.all() and (labels == 0).any():
        fallback_h, fallback_e = float(np.median(h[labels == 0])), float(np.median(e[labels == 0]))
    ring_h = np.where(has_ring, ring_h / np.maximum(ring_n, 1), fallback_h)
    ring_e = np.where(has_ring, ring_e / np.maximum(ring_n, 1), fallback_e)
    # The tile's darkest nuclei (90th percentile of nucleus-sized objects, 10-200 um2) set
    # its scale of darkness: whatever the stain batch, lymphocytes are among them.
    sized = (area >= 10.0) & (area <= 200.0)
    reference = float(np.quantile(mean_h[sized] if sized.any() else mean_h, 0.9))
    centres = np.column_stack([row, col])
    tree = cKDTree(centres)
    neighbours = tree.query_ball_point(centres, r=_NEIGHBOUR_UM / mpp, return_length=True) - 1
    return pd.DataFrame(
        {
            "label": index.astype(np.int64),
            "row": row,
            "col": col,
            "area_um2": area,
            "major_axis_um": major,
            "minor_axis_um": minor,
            "roundness": np.clip(roundness, 0.0, 1.0),
            "solidity": solidity,
            "mean_haematoxylin": mean_h,
            "sd_haematoxylin": sd_h,
            "relative_haematoxylin": mean_h / reference if reference > 0 else np.ones_like(mean_h),
            "contrast_haematoxylin": mean_h - ring_h,
            "ring_eosin": ring_e,
            "neighbours": neighbours.astype(np.int64),
        }
    )[list(NUCLEUS_COLUMNS)]


def classify(nuclei, *, settings=None) -> np.ndarray:
    """Cell type of each nucleus, from :data:`NUCLEUS_CLASSES`, by cytological rules.

    In order: "other" for objects outside the nucleus size range or without contrast to
    their surroundings; "lymphocyte" for small, not elongated nuclei that are among the
    darkest of the tile (relative haematoxylin at ``lymphocyte_min_relative``); "fibroblast"
    for elongated, thin nuclei; "tumour" for the remaining nuclei of tumour size; "other"
    for what is left (small, pale fragments).

    Parameters
    ----------
    nuclei : pandas.DataFrame
        The table of :func:`measure`.
    settings : NucleusSettings, optional

    Returns
    -------
    numpy.ndarray
        One class name per row (object dtype).
    """
    settings = NucleusSettings() if settings is None else settings
    missing = [c for c in NUCLEUS_COLUMNS if c not in nuclei.columns]
    if missing:
        raise ValueError(f"nuclei table lacks columns {missing}; make it with measure()")
    s = settings
    area = nuclei["area_um2"].to_numpy(dtype=float)
    roundness = nuclei["roundness"].to_numpy(dtype=float)
    minor = nuclei["minor_axis_um"].to_numpy(dtype=float)
    relative = nuclei["relative_haematoxylin"].to_numpy(dtype=float)
    contrast = nuclei["contrast_haematoxylin"].to_numpy(dtype=float)
    nucleus = (area >= s.min_area_um2) & (area <= s.max_area_um2) & (contrast >= s.min_contrast)
    lymphocyte = (
        nucleus
        & (area >= s.lymphocyte_min_area_um2)
        & (area <= s.lymphocyte_max_area_um2)
        & (roundness >= s.lymphocyte_min_roundness)
        & (relative >= s.lymphocyte_min_relative)
        & (contrast >= s.lymphocyte_min_contrast)
    )
    fibroblast = (
        nucleus
        & ~lymphocyte
        & (roundness < s.fibroblast_max_roundness)
        & (minor < s.fibroblast_max_minor_um)
    )
    tumour = nucleus & ~lymphocyte & ~fibroblast & (area >= s.tumour_min_area_um2)
    classes = np.full(len(nuclei), "other", dtype=object)
    classes[tumour] = "tumour"
    classes[fibroblast] = "fibroblast"
    classes[lymphocyte] = "lymphocyte"
    return classes


def detect(haematoxylin, eosin, *, mpp, settings=None) -> tuple[np.ndarray, pd.DataFrame]:
    """Segment, measure and classify the nuclei of one tile.

    Returns
    -------
    tuple
        ``(labels, nuclei)``: int32 labels and the :func:`measure` table with a further
        ``nucleus_class`` column.
    """
    settings = NucleusSettings() if settings is None else settings
    labels = segment(haematoxylin, mpp=mpp, settings=settings)
    nuclei = measure(labels, haematoxylin, eosin, mpp=mpp)
    nuclei["nucleus_class"] = pd.Series(
        classify(nuclei, settings=settings), index=nuclei.index, dtype=object
    )
    return labels, nuclei


def match_points(detected, truth, *, radius_px) -> dict:
    """Match detected nuclei to labelled centroids one to one and score lymphocytes.

    Pairs are the minimum-total-distance one-to-one assignment (Hungarian) among pairs closer
    than ``radius_px``; a point takes part in at most one pair.

    Parameters
    ----------
    detected, truth : pandas.DataFrame
        Columns ``x``, ``y`` (pixels) and ``class``. Truth classes may be named as in the
        source ("tumor_epithelial", "stromal"): lymphocytes must be called "lymphocyte".
    radius_px : float
        Largest distance of a match, in pixels.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (lymphocytes: a true positive is a detected lymphocyte matched
        to a labelled lymphocyte), ``precision``, ``recall``, ``f1`` (nan where undefined),
        ``n_matched``, and ``confusion``: a DataFrame of counts, truth class by row (plus
        "unmatched" for detections with no labelled point) and detected class by column
        (plus "unmatched" for labelled points with no detection).
    """
    if not radius_px > 0:
        raise ValueError(f"radius_px must be positive, got {radius_px}")
    for name, table in (("detected", detected), ("truth", truth)):
        missing = {"x", "y", "class"} - set(table.columns)
        if missing:
            raise ValueError(f"{name} lacks columns {sorted(missing)}")
    d_xy = detected[["x", "y"]].to_numpy(dtype=float)
    t_xy = truth[["x", "y"]].to_numpy(dtype=float)
    d_cls = detected["class"].astype(str).to_numpy()
    t_cls = truth["class"].astype(str).to_numpy()
    d_match = np.full(len(d_xy), -1)
    if len(d_xy) and len(t_xy):
        near = cKDTree(d_xy).query_ball_tree(cKDTree(t_xy), r=radius_px)
        d_index = np.repeat(np.arange(len(d_xy)), [len(n) for n in near])
        t_index = np.fromiter((j for n in near for j in n), dtype=np.int64, count=len(d_index))
        if len(d_index):
            # Hungarian on the points with a partner in reach; pairs out of reach cost more
            # than any set of pairs in reach, so the assignment first maximises the number of
            # matches, then minimises their total distance. Out-of-reach pairs are dropped.
            d_used, d_pos = np.unique(d_index, return_inverse=True)
            t_used, t_pos = np.unique(t_index, return_inverse=True)
            far = 1.0 + 2.0 * radius_px * (len(d_used) + len(t_used))
            cost = np.full((len(d_used), len(t_used)), far)
            cost[d_pos, t_pos] = np.hypot(*(d_xy[d_index] - t_xy[t_index]).T)
            r, c = linear_sum_assignment(cost)
            ok = cost[r, c] < far
            d_match[d_used[r[ok]]] = t_used[c[ok]]
    matched = d_match >= 0
    t_matched = np.zeros(len(t_xy), dtype=bool)
    t_matched[d_match[matched]] = True
    truth_of = np.where(matched, t_cls[np.maximum(d_match, 0)], "unmatched")
    pairs = pd.DataFrame(
        {
            "truth": np.concatenate([truth_of, t_cls[~t_matched]]),
            "detected": np.concatenate([d_cls, np.full((~t_matched).sum(), "unmatched")]),
        }
    )
    confusion = pd.crosstab(pairs["truth"], pairs["detected"])
    rows = [*sorted(set(t_cls)), "unmatched"]
    columns = [*sorted(set(d_cls)), "unmatched"]
    confusion = confusion.reindex(index=rows, columns=columns, fill_value=0).astype(np.int64)
    detected_lymphocyte = d_cls == "lymphocyte"
    tp = int(np.sum(detected_lymphocyte & (truth_of == "lymphocyte")))
    fp = int(np.sum(detected_lymphocyte)) - tp
    fn = int(np.sum(t_cls == "lymphocyte")) - tp
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_matched": int(matched.sum()),
        "confusion": confusion,
    }
