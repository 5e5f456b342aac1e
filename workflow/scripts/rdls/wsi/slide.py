"""Open one whole-slide image, find its tissue, check it and lay a tile grid over it.

Everything that can be wrong with one slide file is found here, where the file enters, and
raised as :class:`rdls.errors.QCFailure` (step ``"wsi_open"``, or ``"wsi_read"`` for pixel
data that cannot be decoded) with a reason that names the file and says what to do: missing
files, files OpenSlide cannot read (corrupt, truncated, not a slide), and slides that do not
record their microns per pixel when no fallback is given.

Resolution is handled in microns per pixel (``mpp``) throughout: regions are read at a target
``mpp`` from the closest pyramid level at least that fine, so that tiles from scanners with
different pyramids look alike. Tissue detection and QC work on small images (a thumbnail at
about 16 um/px for the mask, a mid-resolution image at a few um/px for sharpness) and return
numbers and flags; whether a flagged slide is excluded is the workflow's decision.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
from PIL import Image
from scipy import ndimage
from skimage import color, filters, measure, morphology

from rdls.errors import InputError, QCFailure

log = logging.getLogger(__name__)

STEP = "wsi_open"
READ_STEP = "wsi_read"

_FORMATS = (
    "Aperio (.svs), Hamamatsu (.ndpi), MIRAX (.mrxs), Leica (.scn) or a tiled, pyramidal "
    "TIFF; other formats: convert them to a tiled TIFF first (for example with vips tiffsave "
    "--tile --pyramid)"
)
_MPP_FIX = (
    "set the slide's 'mpp' column in the slides sheet (microns per pixel at full resolution, "
    "from the scanner's report), or the config key wsi.mpp_fallback for every slide"
)
# openslide.mpp-x and mpp-y may differ by this fraction: scanners round them separately
# (0.2527 vs 0.2528), but tiles and areas here assume square pixels.
_MPP_ANISOTROPY = 0.01
# A TIFF resolution tag outside this range (um/px) is a placeholder (72 dpi gives 353 um/px),
# not a scan: whole-slide scanners record 0.1-1 um/px.
_TIFF_MPP_RANGE = (0.05, 10.0)
_TIFF_UNIT_UM = {"centimeter": 1e4, "inch": 25400.0}
# A pyramid level whose downsample exceeds the wanted one by up to this fraction still counts
# as fine enough (Aperio stores 2.0005 for a 2x level; upsampling by 0.03% changes nothing).
_LEVEL_TOLERANCE = 0.01

# HSV cut-offs (0-1) for what is not tissue. Glass is bright and grey, mount/scanner borders
# are black; pen ink is strongly saturated with a hue outside H&E's, or dark and neutral.
# H&E hues lie in 0.65-1.0 and 0.0-0.10, blue-purple through pink to red (measured at 16 and
# 2 um/px on the Aperio fixtures and the demo slides, whose bluest haematoxylin, with its
# stain perturbed, reaches 0.657); green, cyan and pure blue marker ink lies in 0.15-0.64.
_BLACK_VALUE = 0.15
_PEN_HUE = (0.15, 0.64)
_PEN_SATURATION = 0.35
_PEN_DARK_VALUE = 0.25  # black marker: this dark and unsaturated (dark nuclei are purple)
_PEN_MIN_MM2 = 0.0025  # specks up to 50 x 50 um are colour noise or nuclei, not a stroke
_PEN_MARGIN_PX = 1  # ink edges blend with tissue: drop this many pixels around ink

# QC defaults, chosen on the Aperio fixtures, the demo slides and degraded copies of them
# (see qc_flags). Intensities are grey levels 0-255 (ITU-R 601 luma).
MIN_TISSUE_MM2 = 0.1
BLUR_THRESHOLD = 50.0
DARK_THRESHOLD = 90.0
BRIGHT_THRESHOLD = 225.0
_QC_ERODE_PX = 2  # the tissue edge is sharp in blurred slides too: measure inside it


@dataclass(frozen=True)
class SlideInfo:
    """What the workflow needs to know about one slide file.

    Attributes
    ----------
    path : str
        The file, as given.
    width, height : int
        Level-0 size in pixels.
    mpp : float
        Microns per pixel at level 0 (square pixels).
    mpp_source : {"slide", "fallback"}
        Whether ``mpp`` comes from the file's metadata or from the fallback given.
    level_count : int
        Number of pyramid levels.
    level_downsamples : tuple of float
        Downsample of each level relative to level 0 (level 0 is 1.0).
    vendor : str or None
        OpenSlide's vendor (``"aperio"``, ``"generic-tiff"``, ...), if known.
    """

    path: str
    width: int
    height: int
    mpp: float
    mpp_source: str
    level_count: int
    level_downsamples: tuple[float, ...]
    vendor: str | None


def open_slide(path, *, mpp_fallback: float | None = None):
    """Open a whole-slide image with OpenSlide and work out its microns per pixel.

    Microns per pixel come from, in order: OpenSlide's ``openslide.mpp-x`` and
    ``openslide.mpp-y`` (their mean; they must agree within 1%), the TIFF resolution tags
    (``tiff.XResolution`` with ``tiff.ResolutionUnit`` centimeter or inch, when they give a
    plausible scan resolution), then ``mpp_fallback``.

    Parameters
    ----------
    path : str or path-like
        The slide file (for MIRAX, the ``.mrxs`` file beside its data folder).
    mpp_fallback : float, optional
        Microns per pixel at level 0 to use when the file records none (the slides sheet's
        ``mpp`` column). Ignored when the file records its own.

    Returns
    -------
    slide : openslide.OpenSlide
        The open slide; the caller closes it (``slide.close()`` or ``with slide:``).
    info : SlideInfo

    Raises
    ------
    QCFailure
        Step ``"wsi_open"``: the file is missing, OpenSlide cannot read it, its pixel data
        cannot be decoded, its pixels are not square, or it records no microns per pixel and
        no fallback is given.
    InputError
        ``mpp_fallback`` is not a positive number.
    """
    if mpp_fallback is not None and not (
        isinstance(mpp_fallback, int | float) and math.isfinite(mpp_fallback) and mpp_fallback > 0
    ):
        raise InputError(
            f"slide '{path}': mpp fallback {mpp_fallback!r} must be a positive number of "
            "microns per pixel (for example 0.25 at 40x, 0.5 at 20x); fix the slides sheet's "
            "'mpp' column or the config key wsi.mpp_fallback."
        )
    file = Path(path)
    if not file.is_file():
        what = "is a folder, not a slide file" if file.is_dir() else "does not exist"
        raise QCFailure(
            f"slide file '{path}' {what}. Fix the path in the slides sheet (column 'path'), "
            "or remove the row to leave this slide out.",
            step=STEP,
        )
    try:
        slide = openslide.OpenSlide(str(file))
    except openslide.OpenSlideError as error:
        raise QCFailure(
            f"slide file '{path}' cannot be read by OpenSlide ({error}): it is corrupt, "
            f"truncated or not a whole-slide image. Formats read: {_FORMATS}. Copy the file "
            "again from the scanner or archive, or remove the row to leave this slide out.",
            step=STEP,
        ) from error

    try:
        mpp, source = _slide_mpp(slide, path, mpp_fallback)
        # A corrupt tile may only show when read: decode one from the smallest level.
        last = slide.level_count - 1
        level_w, level_h = slide.level_dimensions[last]
        scale = slide.level_downsamples[last]
        _read_region(
            slide,
            path,
            (int(level_w // 2 * scale), int(level_h // 2 * scale)),
            last,
            (min(64, level_w), min(64, level_h)),
            step=STEP,
        )
    except BaseException:
        slide.close()
        raise
    width, height = slide.dimensions
    info = SlideInfo(
        path=str(path),
        width=int(width),
        height=int(height),
        mpp=mpp,
        mpp_source=source,
        level_count=int(slide.level_count),
        level_downsamples=tuple(float(d) for d in slide.level_downsamples),
        vendor=slide.properties.get(openslide.PROPERTY_NAME_VENDOR),
    )
    log.info(
        "slide %s: %d x %d px, %.4f um/px (%s), %d levels, vendor %s",
        path, info.width, info.height, info.mpp, source, info.level_count, info.vendor,
    )  # fmt: skip
    return slide, info


def _slide_mpp(slide, path, mpp_fallback) -> tuple[float, str]:
    """Microns per pixel and where they came from ("slide" or "fallback")."""
    props = slide.properties
    mpp_x = _positive_float(props.get(openslide.PROPERTY_NAME_MPP_X))
    mpp_y = _positive_float(props.get(openslide.PROPERTY_NAME_MPP_Y))
    if mpp_x is not None and mpp_y is not None:
        if abs(mpp_x - mpp_y) > _MPP_ANISOTROPY * min(mpp_x, mpp_y):
            raise QCFailure(
                f"slide file '{path}' has non-square pixels ({mpp_x} x {mpp_y} um/px, "
                "openslide.mpp-x and mpp-y); tiles and areas need square pixels. Resample the "
                "slide to square pixels, or remove the row to leave this slide out.",
                step=STEP,
            )
        return (mpp_x + mpp_y) / 2, "slide"
    if mpp_x is not None or mpp_y is not None:
        return mpp_x if mpp_x is not None else mpp_y, "slide"

    unit_um = _TIFF_UNIT_UM.get(str(props.get("tiff.ResolutionUnit", "")).lower())
    resolution = _positive_float(props.get("tiff.XResolution"))
    if unit_um is not None and resolution is not None:
        mpp = unit_um / resolution
        if _TIFF_MPP_RANGE[0] <= mpp <= _TIFF_MPP_RANGE[1]:
            return mpp, "slide"
        log.warning(
            "slide %s: TIFF resolution %s per %s (%.3g um/px) is not a scan resolution; ignored",
            path, resolution, props["tiff.ResolutionUnit"], mpp,
        )  # fmt: skip

    if mpp_fallback is not None:
        log.warning("slide %s records no microns per pixel; using %s", path, mpp_fallback)
        return float(mpp_fallback), "fallback"
    raise QCFailure(
        f"slide file '{path}' records no microns per pixel (no openslide.mpp-x/mpp-y and no "
        f"usable TIFF resolution), so sizes in microns cannot be measured. Fix: {_MPP_FIX}.",
        step=STEP,
    )


def _positive_float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _read_region(slide, path, location, level, size, *, step=READ_STEP) -> np.ndarray:
    """RGBA region from OpenSlide, with decoding errors raised as QCFailure."""
    try:
        return np.asarray(slide.read_region(location, level, size))
    except openslide.OpenSlideError as error:
        raise QCFailure(
            f"slide file '{path}': OpenSlide cannot decode its pixels at level {level} "
            f"({error}): the file is corrupt or truncated. Copy it again from the scanner or "
            "archive, or remove the row to leave this slide out.",
            step=step,
        ) from error


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA (straight alpha, as OpenSlide returns) onto white, as uint8 RGB."""
    alpha = rgba[..., 3:4]
    if np.all(alpha == 255):
        return np.ascontiguousarray(rgba[..., :3])
    a = alpha.astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(rgb).astype(np.uint8)


def best_level(info: SlideInfo, downsample: float) -> int:
    """The coarsest pyramid level whose downsample is at most ``downsample`` (1% slack)."""
    fine_enough = [
        level
        for level, d in enumerate(info.level_downsamples)
        if d <= downsample * (1.0 + _LEVEL_TOLERANCE)
    ]
    return max(fine_enough, key=lambda level: info.level_downsamples[level], default=0)


def read_at_mpp(slide, info: SlideInfo, *, x: int, y: int, size_px, mpp: float) -> np.ndarray:
    """Read a region at a target resolution, from the closest pyramid level at least as fine.

    Parameters
    ----------
    slide : openslide.OpenSlide
    info : SlideInfo
        From :func:`open_slide`.
    x, y : int
        Level-0 pixel of the region's top-left corner (may lie outside the slide).
    size_px : int or tuple of int
        Output size in pixels at ``mpp``: a side, or ``(width, height)``.
    mpp : float
        Target microns per pixel; the region covers ``size_px * mpp / info.mpp`` level-0
        pixels.

    Returns
    -------
    numpy.ndarray
        RGB uint8 of shape ``(height, width, 3)``. Transparent pixels, including everything
        past the slide's edge, are white.
    """
    width, height = (size_px, size_px) if np.isscalar(size_px) else size_px
    width, height = int(width), int(height)
    if width < 1 or height < 1 or not mpp > 0:
        raise ValueError(f"read_at_mpp: size {size_px!r} and mpp {mpp!r} must be positive")
    downsample = mpp / info.mpp  # level-0 pixels per output pixel
    level = best_level(info, downsample)
    scale = downsample / info.level_downsamples[level]  # level pixels per output pixel
    box_w, box_h = width * scale, height * scale
    read_w, read_h = max(1, math.ceil(box_w - 1e-6)), max(1, math.ceil(box_h - 1e-6))
    rgb = _on_white(_read_region(slide, info.path, (int(x), int(y)), level, (read_w, read_h)))
    if (read_w, read_h) == (width, height):
        return rgb
    resample = Image.Resampling.BOX if scale > 1 else Image.Resampling.BILINEAR
    resized = Image.fromarray(rgb).resize(
        (width, height), resample=resample, box=(0.0, 0.0, box_w, box_h)
    )
    return np.asarray(resized)


def thumbnail(slide, info: SlideInfo, *, mpp: float = 16.0) -> np.ndarray:
    """The whole slide at exactly ``mpp`` microns per pixel, as RGB uint8.

    The image has ``ceil(width * info.mpp / mpp)`` columns (and rows likewise), so its pixel
    (0, 0) is level-0 pixel (0, 0) and every pixel is ``mpp`` wide; the part of the last
    row and column past the slide's edge is white.
    """
    scale = info.mpp / mpp
    size = (max(1, math.ceil(info.width * scale)), max(1, math.ceil(info.height * scale)))
    return read_at_mpp(slide, info, x=0, y=0, size_px=size, mpp=mpp)


@dataclass
class TissueSettings:
    """How tissue is told from glass, ink and borders on a thumbnail.

    Parameters
    ----------
    method : {"saturation", "otsu"}
        ``"saturation"``: tissue is stained, so its HSV saturation is at least
        ``min_saturation`` (robust to uneven glass brightness). ``"otsu"``: tissue is darker
        than glass, thresholded at Otsu's level of the grey image (for faintly stained
        slides where saturation fails).
    min_saturation : float
        Saturation cut-off (0-1) for ``"saturation"``; glass is below 0.05, pale stroma
        above 0.1.
    closing_um : float
        Diameter of the disk that closes gaps between tissue pieces.
    min_object_mm2 : float
        Tissue pieces of at most this area are dropped (dust, debris), and enclosed holes of at
        most this area are filled.
    exclude_pen : bool
        Drop pen marks (strongly saturated green/blue ink, or near-black marker).
    """

    method: str = "saturation"
    min_saturation: float = 0.07
    closing_um: float = 30.0
    min_object_mm2: float = 0.01
    exclude_pen: bool = True

    def __post_init__(self):
        if self.method not in ("saturation", "otsu"):
            raise InputError(
                f"tissue settings, key 'method': {self.method!r} is not an option; use "
                "'saturation' (stained pixels) or 'otsu' (pixels darker than the glass)."
            )
        for key in ("min_saturation", "closing_um", "min_object_mm2"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and value >= 0):
                raise InputError(f"tissue settings, key {key!r}: {value!r} must be 0 or more.")


def tissue_mask(rgb: np.ndarray, *, mpp: float, settings: TissueSettings | None = None):
    """Tissue pixels of an RGB image (usually a thumbnail) at ``mpp`` microns per pixel.

    Glass (unstained or bright), black borders and, with ``settings.exclude_pen``, pen marks
    are excluded; the rest is closed with a disk of ``closing_um``, enclosed holes and pieces
    up to ``min_object_mm2`` are filled and removed, and pen marks are cut out again.

    Returns
    -------
    numpy.ndarray of bool
        Same height and width as ``rgb``.
    """
    settings = settings or TissueSettings()
    rgb = np.asarray(rgb)[..., :3]
    hsv = color.rgb2hsv(rgb)
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    black = value < _BLACK_VALUE
    if settings.method == "saturation":
        tissue = saturation >= settings.min_saturation
    else:
        grey = _grey(rgb)
        candidates = grey[~black]
        if candidates.size == 0 or candidates.min() == candidates.max():
            tissue = np.zeros(grey.shape, dtype=bool)
        else:
            tissue = grey < filters.threshold_otsu(candidates)
    # Not tissue, even where closing or hole filling would make it so: black borders and
    # pen strokes (a very dark pixel on its own is a nucleus, and stays in).
    cut = _strokes(black, mpp=mpp)
    if settings.exclude_pen:
        cut |= _pen_mask(hue, saturation, value, mpp=mpp)
    tissue &= ~black & ~cut

    radius = round(settings.closing_um / mpp / 2)
    if radius >= 1:
        tissue = morphology.closing(tissue, morphology.disk(radius))
    pixel_mm2 = (mpp / 1000.0) ** 2
    max_px = int(settings.min_object_mm2 / pixel_mm2)
    if max_px >= 1:
        tissue = _fill_enclosed_holes(tissue, max_px)
    tissue &= ~cut
    if max_px >= 1:
        tissue = morphology.remove_small_objects(tissue, max_size=max_px)
    return tissue


def _fill_enclosed_holes(mask: np.ndarray, max_px: int) -> np.ndarray:
    """Fill glass enclosed by tissue of at most ``max_px`` pixels.

    Unlike ``skimage.morphology.remove_small_holes``, glass touching the image's edge is
    never a hole: on a small slide, the glass between tissue and the edge is not tissue.
    """
    labels, n = ndimage.label(~mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fill = sizes <= max_px
    fill[0] = False
    fill[edge] = False
    return mask | fill[labels]


def _pen_mask(hue, saturation, value, *, mpp: float) -> np.ndarray:
    """Pen ink: saturated green-blue hues, or dark and neutral; widened to catch its edges.

    Specks of at most ``_PEN_MIN_MM2`` are not ink (JPEG colour noise next to dark nuclei at
    a few um/px): marker strokes are hundreds of microns wide.
    """
    coloured = (hue >= _PEN_HUE[0]) & (hue <= _PEN_HUE[1]) & (saturation >= _PEN_SATURATION)
    dark = (value < _PEN_DARK_VALUE) & (value >= _BLACK_VALUE) & (saturation < _PEN_SATURATION)
    pen = _strokes(coloured | dark, mpp=mpp)
    if _PEN_MARGIN_PX and pen.any():
        pen = ndimage.binary_dilation(pen, iterations=_PEN_MARGIN_PX)
    return pen


def _strokes(mask: np.ndarray, *, mpp: float) -> np.ndarray:
    """``mask`` without specks of at most ``_PEN_MIN_MM2``."""
    max_px = int(_PEN_MIN_MM2 / (mpp / 1000.0) ** 2)
    return morphology.remove_small_objects(mask, max_size=max_px) if max_px >= 1 else mask


def _grey(rgb: np.ndarray) -> np.ndarray:
    """Grey levels 0-255 (float) from RGB uint8, ITU-R 601 luma."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def qc_flags(
    rgb: np.ndarray,
    mask: np.ndarray,
    *,
    mpp: float,
    min_tissue_mm2: float = MIN_TISSUE_MM2,
    blur_threshold: float = BLUR_THRESHOLD,
    dark_threshold: float = DARK_THRESHOLD,
    bright_threshold: float = BRIGHT_THRESHOLD,
) -> dict:
    """Tissue area, sharpness and brightness of a slide, and what fails.

    Measured on ``rgb``, a mid-resolution image of the whole slide (2 um/px is a good
    choice: sharp focus still shows there, and a whole slide fits in memory), inside the
    tissue ``mask`` eroded by two pixels (the tissue's edge against glass is sharp even in a
    blurred scan).

    Defaults were chosen on the two Aperio fixtures (cmu-1-small-region at 0.499 um/px,
    the TCGA slide taken as 0.25 um/px), four demo slides and degraded copies of them, all
    measured at 2 um/px; the thresholds assume that resolution (the Laplacian's variance
    grows as the image gets coarser and sharper-looking):

    - ``min_tissue_mm2`` 0.1: the tiny-scale demo slides carry 0.4-0.6 mm2 of tissue and the
      fixtures about 0.65 mm2, biopsies several mm2 and resections hundreds; below 0.1 mm2
      (about 400 tiles of 256 px at 0.5 um/px) densities are not worth measuring.
    - ``blur_threshold`` 50: variance of the Laplacian of grey (0-255) in tissue measured
      5,100-9,200 on the fixtures and 1,150-2,900 on the demo slides, 1-2 after a Gaussian
      blur of sigma 4 px (8 um) and 180-1,500 for copies darkened to 40%. At 2 um/px only
      gross defocus shows; mild blur of a 40x scan needs a finer image.
    - ``dark_threshold`` 90 and ``bright_threshold`` 225: mean grey in tissue measured
      140-145 on the fixtures and 150-185 on the demo slides, 55-73 when darkened to 40%,
      and above 230 for tissue washed out towards glass (80% of the way to white).

    Parameters
    ----------
    rgb : numpy.ndarray
        RGB uint8 image of the slide at ``mpp`` microns per pixel.
    mask : numpy.ndarray of bool
        Tissue mask of the same field of view: ``rgb``'s shape, or coarser (a thumbnail's
        mask), in which case it is resized with nearest neighbour.
    mpp : float
        Microns per pixel of ``rgb``.

    Returns
    -------
    dict
        ``tissue_mm2``, ``laplacian_variance`` and ``mean_intensity`` (NaN without tissue),
        and ``flags``: a list of ``"too little tissue"``, ``"blurred"``, ``"too dark"``,
        ``"too bright"`` (empty when the slide passes).
    """
    rgb = np.asarray(rgb)[..., :3]
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != rgb.shape[:2]:
        rows = np.minimum(
            (np.arange(rgb.shape[0]) * mask.shape[0] / rgb.shape[0]).astype(int),
            mask.shape[0] - 1,
        )
        cols = np.minimum(
            (np.arange(rgb.shape[1]) * mask.shape[1] / rgb.shape[1]).astype(int),
            mask.shape[1] - 1,
        )
        mask = mask[np.ix_(rows, cols)]
    tissue_mm2 = float(np.count_nonzero(mask)) * (mpp / 1000.0) ** 2
    inner = ndimage.binary_erosion(mask, iterations=_QC_ERODE_PX)
    if not inner.any():
        inner = mask
    grey = _grey(rgb)
    if inner.any():
        laplacian = ndimage.laplace(grey, mode="reflect")
        laplacian_variance = float(np.var(laplacian[inner]))
        mean_intensity = float(np.mean(grey[inner]))
    else:
        laplacian_variance = mean_intensity = float("nan")

    flags = []
    if tissue_mm2 < min_tissue_mm2:
        flags.append("too little tissue")
    if laplacian_variance < blur_threshold:
        flags.append("blurred")
    if mean_intensity < dark_threshold:
        flags.append("too dark")
    if mean_intensity > bright_threshold:
        flags.append("too bright")
    return {
        "tissue_mm2": tissue_mm2,
        "laplacian_variance": laplacian_variance,
        "mean_intensity": mean_intensity,
        "flags": flags,
    }


MIN_TILE_INSIDE = 0.05  # least share of a tile inside the slide for an edge tile to count


def tile_grid(
    mask: np.ndarray,
    *,
    mask_mpp: float,
    info: SlideInfo,
    tile_px: int = 256,
    tile_mpp: float = 0.5,
    overlap_px: int = 0,
    min_tissue_fraction: float = 0.5,
) -> pd.DataFrame:
    """The tissue tiles of a regular grid at the tile resolution, as coordinates (no files).

    Tiles are ``tile_px`` pixels wide at ``tile_mpp`` with stride ``tile_px - overlap_px``,
    starting at level-0 pixel (0, 0); a tile is kept when the share of its area inside the
    slide that ``mask`` covers (area-weighted, so exact for any ratio of tile to mask pixel
    size) is at least ``min_tissue_fraction``, and at least a twentieth of it lies inside
    the slide. Pixels of an edge tile past the slide read as white (:func:`read_at_mpp`).

    Parameters
    ----------
    mask : numpy.ndarray of bool
        Tissue mask whose pixel (0, 0) is level-0 pixel (0, 0), at ``mask_mpp``
        (:func:`thumbnail` then :func:`tissue_mask`).
    mask_mpp : float
    info : SlideInfo
    tile_px, tile_mpp, overlap_px, min_tissue_fraction
        Tile side (pixels at ``tile_mpp``), overlap between neighbours (pixels at
        ``tile_mpp``) and the smallest tissue share kept.

    Returns
    -------
    pandas.DataFrame
        One row per kept tile, in row-major order: ``tile_id`` (0, 1, ...), ``x``, ``y``
        (level-0 pixel of the top-left, int), ``size0`` (side in level-0 pixels,
        ``tile_px * tile_mpp / info.mpp``, float) and ``tissue_fraction``. Read a tile with
        ``read_at_mpp(slide, info, x=x, y=y, size_px=tile_px, mpp=tile_mpp)``.
    """
    if not (int(tile_px) == tile_px >= 1 and 0 <= overlap_px < tile_px):
        raise InputError(
            f"tile settings: tile_px {tile_px!r} must be a whole number of pixels of 1 or more "
            f"and overlap_px {overlap_px!r} at least 0 and less than tile_px."
        )
    if not (tile_mpp > 0 and mask_mpp > 0 and 0 <= min_tissue_fraction <= 1):
        raise InputError(
            f"tile settings: tile_mpp {tile_mpp!r} and mask mpp {mask_mpp!r} must be positive "
            f"and min_tissue_fraction {min_tissue_fraction!r} between 0 and 1."
        )
    tile_px, mask = int(tile_px), np.asarray(mask, dtype=bool)
    size0 = tile_px * tile_mpp / info.mpp
    stride0 = (tile_px - overlap_px) * tile_mpp / info.mpp
    xs = np.rint(np.arange(0.0, info.width, stride0)).astype(np.int64)
    ys = np.rint(np.arange(0.0, info.height, stride0)).astype(np.int64)
    xs, ys = xs[xs < info.width], ys[ys < info.height]
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    grid_x, grid_y = grid_x.ravel(), grid_y.ravel()

    # Area of mask under each tile from the summed-area table, which is bilinear within each
    # mask pixel, so interpolating it at fractional corners integrates the mask exactly.
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1))
    table[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0, dtype=np.float64), axis=1)
    to_mask = info.mpp / mask_mpp
    side = size0 * to_mask
    c0 = np.clip(grid_x * to_mask, 0, mask.shape[1])
    c1 = np.clip(grid_x * to_mask + side, 0, mask.shape[1])
    r0 = np.clip(grid_y * to_mask, 0, mask.shape[0])
    r1 = np.clip(grid_y * to_mask + side, 0, mask.shape[0])

    def area_to(rows, cols):
        return ndimage.map_coordinates(table, [rows, cols], order=1, mode="nearest")

    area = area_to(r1, c1) - area_to(r0, c1) - area_to(r1, c0) + area_to(r0, c0)
    # Judged on the part of the tile inside the slide, so that tissue running to the slide's
    # edge (a region of interest, a core cut to size) keeps its edge tiles; slivers of under
    # a twentieth of a tile are left out.
    inside = (c1 - c0) * (r1 - r0)
    fraction = np.clip(area / np.maximum(inside, 1e-12), 0.0, 1.0)
    keep = (fraction >= min_tissue_fraction) & (inside >= MIN_TILE_INSIDE * side**2)
    return pd.DataFrame(
        {
            "tile_id": np.arange(int(keep.sum()), dtype=np.int64),
            "x": grid_x[keep],
            "y": grid_y[keep],
            "size0": np.full(int(keep.sum()), size0),
            "tissue_fraction": fraction[keep],
        }
    )


def plot_thumbnail(rgb, mask, *, png, title: str, flags=()) -> None:
    """Save the thumbnail with the tissue outline in green and the QC flags in the title."""
    from matplotlib.figure import Figure

    rgb = np.asarray(rgb)[..., :3]
    height, width = rgb.shape[:2]
    aspect = height / max(width, 1)
    figure = Figure(figsize=(6.0, max(2.0, 6.0 * aspect + 0.6)))
    axes = figure.add_subplot()
    axes.imshow(rgb, interpolation="nearest")
    padded = np.pad(np.asarray(mask, dtype=float), 1)  # closes outlines at the image edge
    for contour in measure.find_contours(padded, 0.5):
        axes.plot(contour[:, 1] - 1, contour[:, 0] - 1, color="#00b050", linewidth=1.0)
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.set_axis_off()
    status = "QC: " + ", ".join(flags) if flags else "QC passed"
    axes.set_title(f"{title}\n{status}", fontsize=9, color="#c00000" if flags else "black")
    figure.tight_layout()
    figure.savefig(png, dpi=150)
