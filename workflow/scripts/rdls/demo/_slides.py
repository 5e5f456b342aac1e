"""Synthetic H&E whole-slide images with planted lymphocyte and stroma biology.

Each slide is a tissue blob on glass, split into tumour epithelium nests and eosin-pink
stroma, with tumour nuclei, fibroblast nuclei and lymphocytes stamped on top. The subtype
decides how much stroma there is and where the lymphocytes sit (RDLS1 at the tumour margin,
RDLS2 inside the nests, RDLS3 spread through abundant stroma). The truth returned by
:func:`write_slide` is counted from what was drawn, so it holds even where random draws
land a slide far from its subtype's typical values.

The image is built as one uint8 code per pixel (tissue class in the high bits, a texture
level in the low four bits) and turned into RGB through a per-slide colour table made from
perturbed haematoxylin and eosin stain vectors. That keeps a paper-scale slide (8192 x 6144)
at a few hundred MB and makes generation a handful of vectorised passes.
"""

from __future__ import annotations

import numpy as np
import tifffile
from scipy import ndimage
from scipy.spatial import cKDTree

# Pixel classes, stored in the high bits of the pixel code.
_BACKGROUND, _STROMA, _TUMOUR, _FIBROBLAST, _TUMOUR_NUCLEUS, _LYMPHOCYTE = range(6)
_LEVELS = 16  # texture levels, stored in the low four bits of the pixel code

# Stain optical densities (log10) of each class: haematoxylin, eosin, and how much the
# texture level modulates them (strong for fibrous stroma, weak for nuclei, so that
# lymphocytes stay clearly darker than tumour nuclei on every slide).
_CLASS_STAINS = {
    _BACKGROUND: (0.0, 0.0, 0.0),
    _STROMA: (0.04, 0.26, 0.35),
    _TUMOUR: (0.16, 0.11, 0.15),
    _FIBROBLAST: (0.55, 0.18, 0.10),
    _TUMOUR_NUCLEUS: (0.50, 0.12, 0.10),
    _LYMPHOCYTE: (1.30, 0.08, 0.08),
}
# Unit optical-density colours: haematoxylin (blue-purple) and eosin (pink), after Ruifrok
# and Johnston with eosin shifted towards the pink of scanned slides.
_HAEMATOXYLIN_OD = np.array([0.65, 0.70, 0.29])
_EOSIN_OD = np.array([0.16, 0.87, 0.46])

_REGION_CELL_UM = 4.0  # region maps are drawn on a grid of cells about this size
_BAND_ROWS = 512  # level-0 rows rendered at a time, to bound the float temporaries
_TILE = 256
_MIN_LEVEL_SIDE_PX = 512  # keep halving until the smaller side drops below this
_MARGIN_DECAY_UM = 60.0  # margin lymphocytes thin out over this distance from the tumour
_EPSILON_DENSITY_MM2 = 1.0  # floor of the intratumoral density in the exclusion index

# Per-subtype draws: median lymphocyte density (per mm2) in tumour and in stroma, the
# share of stromal lymphocytes concentrated at the tumour margin, and the stroma fraction
# of the tissue. Densities are log-normal around the medians so subtypes overlap.
_SUBTYPE_BIOLOGY = {
    "RDLS1": {"tumour_mm2": 130.0, "stroma_mm2": 1500.0, "margin": (0.75, 0.95),
              "stroma_fraction": (0.25, 0.45)},
    "RDLS2": {"tumour_mm2": 2500.0, "stroma_mm2": 3300.0, "margin": (0.05, 0.25),
              "stroma_fraction": (0.25, 0.45)},
    "RDLS3": {"tumour_mm2": 260.0, "stroma_mm2": 1200.0, "margin": (0.15, 0.35),
              "stroma_fraction": (0.55, 0.75)},
}  # fmt: skip
_DENSITY_LOG_SD = 0.3

# Nuclei: density per mm2 of their region, and (long, short) axis ranges in microns.
_TUMOUR_NUCLEI_MM2 = 6000.0
_FIBROBLASTS_MM2 = 700.0
_TUMOUR_NUCLEUS_UM = ((9.0, 12.0), (6.0, 8.0))
_FIBROBLAST_UM = ((11.0, 15.0), (3.0, 4.0))
_LYMPHOCYTE_UM = ((6.0, 8.0), (6.0, 8.0))
_ANGLE_BINS, _SIZE_BINS = 8, 3  # stamps precomputed per nucleus kind


def write_slide(*, out_path, subtype, mpp, size_px, rng) -> dict:
    """Draw one synthetic H&E slide and write it as a pyramidal tiled TIFF.

    Parameters
    ----------
    out_path : str or path-like
        Where to write the TIFF (OpenSlide reads it as a generic tiled TIFF).
    subtype : {"RDLS1", "RDLS2", "RDLS3"}
        Planted biology: immune-excluded, lymphocyte-rich or stromal.
    mpp : float
        Microns per pixel at level 0; every biological size is converted with it.
    size_px : tuple of int
        Width and height of level 0 in pixels.
    rng : numpy.random.Generator
        The only source of randomness: the same stream gives a byte-identical file.

    Returns
    -------
    dict
        Truth counted from the drawn image: ``tissue_mm2``, ``tumour_mm2``, ``stroma_mm2``,
        ``stroma_fraction`` (stroma / tissue), ``tumour_stroma_ratio`` (tumour / stroma),
        ``n_lymphocytes``, ``lymphocyte_density_mm2`` (per mm2 of tissue),
        ``intratumoral_lymphocyte_density_mm2`` and ``stromal_lymphocyte_density_mm2``
        (lymphocytes whose centre lies in that compartment, per mm2 of it),
        ``exclusion_index`` (stromal density / max(intratumoral density, 1 per mm2)),
        ``mpp``, ``width_px`` and ``height_px``.
    """
    if subtype not in _SUBTYPE_BIOLOGY:
        raise ValueError(
            f"unknown subtype {subtype!r}; choose one of {', '.join(_SUBTYPE_BIOLOGY)}"
        )
    width, height = (int(v) for v in size_px)
    biology = _draw_biology(rng, _SUBTYPE_BIOLOGY[subtype])
    cell_px = max(1, round(_REGION_CELL_UM / mpp))
    fields = _draw_fields(rng, height, width, cell_px, mpp, biology["stroma_fraction"])
    codes = _render_codes(rng, fields, height, width, cell_px)
    regions = codes >> 4  # tissue classes before any nucleus is stamped
    pixel_mm2 = (mpp / 1000.0) ** 2
    tumour_mm2 = float(np.count_nonzero(regions == _TUMOUR)) * pixel_mm2
    stroma_mm2 = float(np.count_nonzero(regions == _STROMA)) * pixel_mm2

    lymphocytes = _place_lymphocytes(rng, fields, regions, cell_px, mpp, biology)
    in_tumour = regions[lymphocytes[:, 0], lymphocytes[:, 1]] == _TUMOUR
    _stamp_nuclei(rng, codes, fields, regions, cell_px, mpp, lymphocytes)
    rgb = _to_rgb(codes, _colour_table(rng))
    del codes, regions
    _write_pyramid(out_path, rgb, mpp)

    n_tumour = int(np.count_nonzero(in_tumour))
    intratumoral = n_tumour / tumour_mm2
    stromal = (len(lymphocytes) - n_tumour) / stroma_mm2
    return {
        "tissue_mm2": tumour_mm2 + stroma_mm2,
        "tumour_mm2": tumour_mm2,
        "stroma_mm2": stroma_mm2,
        "stroma_fraction": stroma_mm2 / (tumour_mm2 + stroma_mm2),
        "tumour_stroma_ratio": tumour_mm2 / stroma_mm2,
        "n_lymphocytes": len(lymphocytes),
        "lymphocyte_density_mm2": len(lymphocytes) / (tumour_mm2 + stroma_mm2),
        "intratumoral_lymphocyte_density_mm2": intratumoral,
        "stromal_lymphocyte_density_mm2": stromal,
        "exclusion_index": stromal / max(intratumoral, _EPSILON_DENSITY_MM2),
        "mpp": float(mpp),
        "width_px": width,
        "height_px": height,
    }


def _draw_biology(rng: np.random.Generator, spec: dict) -> dict:
    """This slide's lymphocyte densities, margin share and stroma fraction."""
    return {
        "tumour_mm2": spec["tumour_mm2"] * np.exp(rng.normal(0.0, _DENSITY_LOG_SD)),
        "stroma_mm2": spec["stroma_mm2"] * np.exp(rng.normal(0.0, _DENSITY_LOG_SD)),
        "margin": rng.uniform(*spec["margin"]),
        "stroma_fraction": rng.uniform(*spec["stroma_fraction"]),
    }


def _smooth_noise(rng: np.random.Generator, shape: tuple, sigma) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation.

    Filtered in Fourier space (periodic edges), which costs the same for the wide kernels
    of the tissue outline as for narrow ones.
    """
    spectrum = ndimage.fourier_gaussian(np.fft.rfft2(rng.standard_normal(shape)), sigma, n=shape[1])
    field = np.fft.irfft2(spectrum, s=shape)
    return (field - field.mean()) / field.std()


def _draw_fields(rng, height, width, cell_px, mpp, stroma_fraction) -> dict:
    """Low-resolution fields whose thresholds define tissue, tumour nests and texture.

    The tissue is an irregular blob over 50-75% of the field; within it the tumour field is
    thresholded at the quantile that gives the drawn stroma fraction.
    """
    shape = (-(-height // cell_px), -(-width // cell_px))
    cell_um = cell_px * mpp
    y, x = np.meshgrid(
        np.linspace(-1.0, 1.0, shape[0]), np.linspace(-1.0, 1.0, shape[1]), indexing="ij"
    )
    blob = _smooth_noise(rng, shape, 0.12 * min(shape)) - 2.5 * (x**2 + y**2)
    tissue_fraction = rng.uniform(0.5, 0.75)
    tissue_cut = np.quantile(blob, 1.0 - tissue_fraction)

    # Nests of ~100 um on top of a broad gradient, so tumour clusters on one side of the
    # tissue and the stroma has an invasive margin rather than salt-and-pepper islands.
    nests = _smooth_noise(rng, shape, 25.0 / cell_um) + 0.6 * _smooth_noise(
        rng, shape, 400.0 / cell_um
    )
    tumour_cut = np.quantile(nests[blob > tissue_cut], stroma_fraction)

    # Texture: slow stain unevenness plus horizontal collagen streaks.
    texture = 0.5 * _smooth_noise(rng, shape, 300.0 / cell_um) + 0.9 * _smooth_noise(
        rng, shape, (4.0 / cell_um, 24.0 / cell_um)
    )
    return {"tissue": blob - tissue_cut, "tumour": nests - tumour_cut, "texture": texture}


def _render_codes(rng, fields, height, width, cell_px) -> np.ndarray:
    """Upsample the fields bilinearly to level 0 and pack class and texture into uint8 codes."""
    n_rows, n_cols = fields["tissue"].shape
    cols = _bilinear_index(np.arange(width), cell_px, n_cols)
    codes = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _BAND_ROWS):
        band = np.arange(top, min(top + _BAND_ROWS, height))
        rows = _bilinear_index(band, cell_px, n_rows)
        tissue = _upsample(fields["tissue"], rows, cols) > 0
        tumour = _upsample(fields["tumour"], rows, cols) > 0
        texture = _upsample(fields["texture"], rows, cols)
        level = np.clip(np.rint(7.0 + 2.5 * texture), 0, _LEVELS - 4).astype(np.uint8)
        level += rng.integers(0, 4, size=level.shape, dtype=np.uint8)  # chromatin/fibre grain
        level[tissue] += np.uint8(_STROMA << 4)
        level[tissue & tumour] += np.uint8((_TUMOUR - _STROMA) << 4)
        codes[band] = level
    return codes


def _bilinear_index(positions: np.ndarray, cell_px: int, n_cells: int):
    """Lower neighbour cell and weight of the upper one for level-0 pixel positions."""
    coords = np.clip((positions + 0.5) / cell_px - 0.5, 0.0, n_cells - 1.0)
    lower = np.minimum(coords.astype(np.intp), max(n_cells - 2, 0))
    return lower, (coords - lower).astype(np.float32)


def _upsample(field: np.ndarray, rows, cols) -> np.ndarray:
    """Bilinear interpolation of a low-resolution field at the given (rows, cols) indices."""
    (r0, rw), (c0, cw) = rows, cols
    field = field.astype(np.float32)
    band = field[r0] * (1 - rw)[:, None] + field[r0 + 1] * rw[:, None]
    return band[:, c0] * (1 - cw) + band[:, c0 + 1] * cw


def _place_lymphocytes(rng, fields, regions, cell_px, mpp, biology) -> np.ndarray:
    """Lymphocyte centres (row, col) drawn from a density map in cells per mm2.

    Stromal lymphocytes mix a uniform share with a share that decays away from the tumour
    margin; the mix is scaled so the mean stromal density equals the drawn one.
    """
    tumour, stroma = _low_res_regions(fields)
    distance_um = ndimage.distance_transform_edt(~tumour) * cell_px * mpp
    margin = np.exp(-distance_um / _MARGIN_DECAY_UM)
    margin /= margin[stroma].mean()
    stromal = biology["stroma_mm2"] * ((1 - biology["margin"]) + biology["margin"] * margin)
    density = np.where(tumour, biology["tumour_mm2"], np.where(stroma, stromal, 0.0))
    centres = _sample_points(rng, density, cell_px, mpp, regions.shape)
    # Apart by more than a diameter, so that no two lymphocytes merge into one blob.
    centres = _thin(centres, (_LYMPHOCYTE_UM[0][1] + 1.0) / mpp)
    return centres[regions[centres[:, 0], centres[:, 1]] != _BACKGROUND]


def _low_res_regions(fields: dict) -> tuple[np.ndarray, np.ndarray]:
    """Tumour and stroma masks on the grid of region cells."""
    tissue = fields["tissue"] > 0
    tumour = tissue & (fields["tumour"] > 0)
    return tumour, tissue & ~tumour


def _sample_points(rng, density_mm2, cell_px, mpp, shape) -> np.ndarray:
    """Poisson points from a per-cell density map, as integer level-0 (row, col)."""
    expected = density_mm2.ravel() * (cell_px * mpp / 1000.0) ** 2
    n = rng.poisson(expected.sum())
    cells = rng.choice(expected.size, size=n, p=expected / expected.sum())
    cell_rc = np.stack(np.unravel_index(cells, density_mm2.shape), axis=1)
    points = ((cell_rc + rng.random((n, 2))) * cell_px).astype(np.intp)
    keep = (points[:, 0] < shape[0]) & (points[:, 1] < shape[1])
    return points[keep]


def _thin(points: np.ndarray, min_distance_px: float) -> np.ndarray:
    """Drop the later point of every pair closer than the minimum distance."""
    pairs = cKDTree(points).query_pairs(min_distance_px, output_type="ndarray")
    keep = np.ones(len(points), dtype=bool)
    keep[pairs[:, 1]] = False
    return points[keep]


def _stamp_nuclei(rng, codes, fields, regions, cell_px, mpp, lymphocytes) -> None:
    """Stamp tumour nuclei, fibroblasts and then lymphocytes (on top) into the codes."""
    tumour, stroma = _low_res_regions(fields)
    # Tumour nuclei crowd along the nest borders, which makes the nests read as glands.
    border_um = ndimage.distance_transform_edt(tumour) * cell_px * mpp
    crowding = 0.4 + 1.6 * np.exp(-border_um / 15.0)
    tumour_density = np.where(tumour, _TUMOUR_NUCLEI_MM2 * crowding, 0.0)
    tumour_nuclei = _scatter_nuclei(
        rng, tumour_density, regions, _TUMOUR, cell_px, mpp, _TUMOUR_NUCLEUS_UM, lymphocytes
    )
    angles = rng.uniform(0.0, np.pi, len(tumour_nuclei))
    _stamp(rng, codes, tumour_nuclei, _TUMOUR_NUCLEUS, angles, _TUMOUR_NUCLEUS_UM, mpp)

    fibroblast_density = np.where(stroma, _FIBROBLASTS_MM2, 0.0)
    fibroblasts = _scatter_nuclei(
        rng, fibroblast_density, regions, _STROMA, cell_px, mpp, _FIBROBLAST_UM, lymphocytes
    )
    angles = rng.normal(0.0, 0.25, len(fibroblasts))  # along the horizontal collagen
    _stamp(rng, codes, fibroblasts, _FIBROBLAST, angles, _FIBROBLAST_UM, mpp)

    round_angles = np.zeros(len(lymphocytes))
    _stamp(rng, codes, lymphocytes, _LYMPHOCYTE, round_angles, _LYMPHOCYTE_UM, mpp)


def _scatter_nuclei(rng, density_mm2, regions, region, cell_px, mpp, size_um, lymphocytes):
    """Nucleus centres in one region, apart from each other and from every lymphocyte.

    A nucleus on top of a lymphocyte would merge with it into one blob and hide it from a
    nucleus detector, so lymphocytes win: a nucleus goes where the two would overlap at
    typical sizes (they may still touch, as in tissue).
    """
    points = _sample_points(rng, density_mm2, cell_px, mpp, regions.shape)
    points = points[regions[points[:, 0], points[:, 1]] == region]
    # Neighbours may touch end to end but not sit on top of each other.
    points = _thin(points, ((size_um[0][1] + size_um[1][1]) / 2 + 1.0) / mpp)
    clearance_um = (np.mean(size_um[0]) + np.mean(_LYMPHOCYTE_UM[0])) / 2
    distance, _ = cKDTree(lymphocytes).query(points)
    return points[distance > clearance_um / mpp]


def _stamp(rng, codes, centres, cls, angles, size_um, mpp) -> None:
    """Paint ellipses of class ``cls``, keeping each pixel's texture level.

    Sizes (drawn within ``size_um``: long and short axis ranges) and angles are binned onto
    a few precomputed stamps so that painting is one fancy-indexed assignment per stamp
    rather than one per nucleus.
    """
    (long_lo, long_hi), (short_lo, short_hi) = size_um
    angle_bin = (np.mod(angles, np.pi) / np.pi * _ANGLE_BINS).astype(int) % _ANGLE_BINS
    size_bin = rng.integers(0, _SIZE_BINS, len(centres))
    for a in range(_ANGLE_BINS):
        for s in range(_SIZE_BINS):
            chosen = centres[(angle_bin == a) & (size_bin == s)]
            t = (s + 0.5) / _SIZE_BINS
            dy, dx = _ellipse_offsets(
                (long_lo + t * (long_hi - long_lo)) / 2 / mpp,
                (short_lo + t * (short_hi - short_lo)) / 2 / mpp,
                (a + 0.5) * np.pi / _ANGLE_BINS,
            )
            rows = (chosen[:, :1] + dy).ravel()
            cols = (chosen[:, 1:] + dx).ravel()
            inside = (rows >= 0) & (rows < codes.shape[0]) & (cols >= 0) & (cols < codes.shape[1])
            rows, cols = rows[inside], cols[inside]
            codes[rows, cols] = (cls << 4) | (codes[rows, cols] & (_LEVELS - 1))


def _ellipse_offsets(semi_long: float, semi_short: float, angle: float):
    """Pixel offsets (rows, cols) inside an ellipse centred on the origin."""
    reach = int(np.ceil(semi_long))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    inside = (along / semi_long) ** 2 + (across / semi_short) ** 2 <= 1.0
    return dy[inside], dx[inside]


def _colour_table(rng: np.random.Generator) -> np.ndarray:
    """RGB of every pixel code, from this slide's stain vectors and strengths.

    Stain variability between slides: each stain's colour is perturbed by a few percent and
    its strength by up to 10%, and the glass has a faint tint.
    """
    haematoxylin = _HAEMATOXYLIN_OD * rng.uniform(0.93, 1.07, 3) * rng.uniform(0.9, 1.1)
    eosin = _EOSIN_OD * rng.uniform(0.93, 1.07, 3) * rng.uniform(0.9, 1.1)
    glass = rng.uniform(0.005, 0.03, 3)
    table = np.zeros((256, 3), dtype=np.uint8)
    level = (np.arange(_LEVELS) - (_LEVELS - 1) / 2) / ((_LEVELS - 1) / 2)
    for cls, (h, e, modulation) in _CLASS_STAINS.items():
        factor = (1.0 + modulation * level)[:, None]
        od = glass + factor * (h * haematoxylin + e * eosin)
        table[cls << 4 : (cls << 4) + _LEVELS] = np.rint(255.0 * 10.0**-od)
    return table


def _to_rgb(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Look up each pixel code's colour, one channel at a time (faster than a 2-D take)."""
    rgb = np.empty((*codes.shape, 3), dtype=np.uint8)
    for channel in range(3):
        rgb[..., channel] = table[:, channel][codes]
    return rgb


def _write_pyramid(out_path, rgb: np.ndarray, mpp: float) -> None:
    """Write level 0 and its 2x downsamples, each a tiled top-level page OpenSlide reads."""
    options = {
        "tile": (_TILE, _TILE),
        "photometric": "rgb",
        "compression": "zlib",
        # Level 3 without a predictor: the colour-table pixels repeat exact byte runs, which
        # the horizontal predictor would break up (measured: larger files, slower).
        "compressionargs": {"level": 3},
        "maxworkers": 1,  # the workflow runs slides in parallel jobs; stay on one core
        "resolutionunit": "CENTIMETER",
        "metadata": None,
    }
    with tifffile.TiffWriter(out_path, bigtiff=rgb.nbytes > 2**31) as tif:
        level_mpp = float(mpp)
        tif.write(rgb, resolution=(1e4 / level_mpp, 1e4 / level_mpp), **options)
        while min(rgb.shape[:2]) >= _MIN_LEVEL_SIDE_PX:
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
