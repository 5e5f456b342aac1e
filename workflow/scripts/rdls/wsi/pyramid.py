"""Pyramidal tiled TIFFs that OpenSlide reads: the demo's slides, and images made into slides.

OpenSlide reads a generic tiled TIFF as a pyramid only when every level is its own top-level
page (reduced levels marked ``subfiletype=1``) with its resolution and unit set; this writer
does exactly that, with zlib compression, one page per 2x downsample.
"""

from __future__ import annotations

import numpy as np
import tifffile

MIN_LEVEL_SIDE_PX = 512  # keep halving until the smaller side drops below this


def write_pyramid(out_path, rgb: np.ndarray, *, mpp: float, tile_px: int = 256) -> None:
    """Write level 0 and its 2x downsamples, each a tiled top-level page OpenSlide reads.

    Parameters
    ----------
    out_path : str or path-like
    rgb : numpy.ndarray
        ``(height, width, 3)`` uint8, level 0.
    mpp : float
        Microns per pixel of level 0, written as the pages' resolution (pixels per cm).
    tile_px : int
        TIFF tile side.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 (height, width, 3), got {rgb.dtype} {rgb.shape}")
    if not mpp > 0:
        raise ValueError(f"mpp must be positive, got {mpp!r}")
    options = {
        "tile": (tile_px, tile_px),
        "photometric": "rgb",
        "compression": "zlib",
        # Level 3 without a predictor: the demo's colour-table pixels repeat exact byte runs,
        # which the horizontal predictor would break up (measured: larger files, slower).
        "compressionargs": {"level": 3},
        "maxworkers": 1,  # the workflow runs slides in parallel jobs; stay on one core
        "resolutionunit": "CENTIMETER",
        "metadata": None,
    }
    with tifffile.TiffWriter(out_path, bigtiff=rgb.nbytes > 2**31) as tif:
        level_mpp = float(mpp)
        tif.write(rgb, resolution=(1e4 / level_mpp, 1e4 / level_mpp), **options)
        while min(rgb.shape[:2]) >= MIN_LEVEL_SIDE_PX:
            rgb = _halve(rgb)
            level_mpp *= 2
            tif.write(rgb, resolution=(1e4 / level_mpp, 1e4 / level_mpp), subfiletype=1, **options)


def _halve(rgb: np.ndarray) -> np.ndarray:
    """2x2 box-filter downsample (odd trailing rows and columns dropped)."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    total = rgb[0:h:2, 0:w:2].astype(np.uint16)
    total += rgb[1:h:2, 0:w:2]
    total += rgb[0:h:2, 1:w:2]
    total += rgb[1:h:2, 1:w:2]
    return ((total + 2) >> 2).astype(np.uint8)
