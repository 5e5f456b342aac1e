"""Synthetic H&E whole-slide images with planted nucleus- and compartment-level biology.

Each slide is a tissue blob on glass, split into tumour epithelium and stroma, drawn the way
colorectal adenocarcinoma looks at 20-40x:

- Tumour epithelium in nests, some of them glands around white lumens (10-40 um across).
  Tumour cells have pinkish-purple cytoplasm and large vesicular nuclei (9-14 x 6-9 um):
  pale chromatin, a darker nuclear membrane and one or two small dark nucleoli. Nuclei
  crowd along the basement membrane and around lumens, long axis perpendicular to them.
- Stroma: eosin-pink collagen fibres that wrap around the nests, with spindle fibroblast
  nuclei (10-16 x 2.5-4 um) lying along the fibres, and plasma cells (round-oval eccentric
  nucleus of 7-9 um with clumped "clock-face" chromatin, a purple-pink cytoplasm and a pale
  perinuclear hof), so that "small, dark and round" is not the whole story.
- Lymphocytes: round, 6-7.5 um, the darkest nuclei (dense chromatin, hardly any cytoplasm;
  Salgado et al., Ann Oncol 2015, the International TILs Working Group's morphology). They
  never overlap another nucleus (they may touch), so each one is a separate dark disc.

The subtype plants one of the immune phenotypes of Chen & Mellman (Nature 2017) and Hegde et
al. (Clin Cancer Res 2016), with densities from the colorectal infiltration studies of Galon
et al. (Science 2006) and Pagès et al. (Lancet 2018, Immunoscore), read against Salgado's
stromal TIL scoring:

- RDLS1, immune-excluded: lymphocytes pile up in bands of stroma ~6-35 um from the nest
  margins (1000-4000 per mm2 there) and stay out of the epithelium (< ~200 per mm2).
- RDLS2, inflamed: lymphocytes between the tumour cells (500-3000 per mm2 of epithelium)
  and throughout the stroma.
- RDLS3, stromal and immune-desert: abundant stroma, few lymphocytes anywhere (< ~300 per
  mm2).

Each slide draws its own densities log-normally around its subtype's medians, so subtypes
overlap. The truth returned by :func:`write_slide` is counted from what was drawn (every
nucleus and every compartment pixel), so it holds even where a slide lands far from its
subtype's typical values; ``nuclei_out`` writes the drawn nuclei one row each.

The image is built as one uint8 code per pixel (class in the high four bits, a texture level
in the low four) and turned into RGB through a per-slide colour table made from perturbed
haematoxylin and eosin stain vectors. Nuclei are stamped from a few dozen precomputed shapes
per kind (size, angle and, for tumour nuclei, an irregular outline), so a paper-scale slide
(8192 x 6144) stays a handful of vectorised passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from rdls.wsi.pyramid import write_pyramid

MARGIN_UM = 30.0  # the invasive-margin band: stroma within this distance of the epithelium

# Pixel classes, stored in the high four bits of the pixel code. The first four are the
# compartments (drawn before any cell); the rest are cells stamped on top.
_BACKGROUND, _STROMA, _EPITHELIUM, _LUMEN = range(4)
_FIBROBLAST, _TUMOUR_NUCLEUS, _NUCLEAR_RIM, _NUCLEOLUS = range(4, 8)
_LYMPHOCYTE, _PLASMA_NUCLEUS, _PLASMA_CYTOPLASM, _GOLGI = range(8, 12)
_LEVELS = 16  # texture levels, stored in the low four bits of the pixel code
_COMPARTMENTS = {_STROMA: "stroma", _EPITHELIUM: "epithelium", _LUMEN: "lumen"}

# Stain optical densities (log10) of each class: haematoxylin, eosin, and how much the
# texture level modulates them. Lymphocytes are the only class whose red channel drops
# below ~72 over any patch larger than a nucleolus on every slide; nucleoli and the clumps of
# plasma-cell chromatin are as dark but a few um2 each; the nuclear rim stays paler.
# Real, unnormalised H&E (BRCA-M2C) puts a tumour nucleus a median 0.25 OD of haematoxylin
# above its cytoplasm and a lymphocyte 0.55 above its surroundings; the values below keep
# those contrasts.
_CLASS_STAINS = {
    _BACKGROUND: (0.0, 0.0, 0.0),
    _STROMA: (0.03, 0.32, 0.30),  # collagen; the texture level carries the fibres
    _EPITHELIUM: (0.22, 0.17, 0.15),  # tumour cytoplasm, pinkish purple (amphophilic)
    _LUMEN: (0.005, 0.02, 0.2),  # nearly empty
    _FIBROBLAST: (0.55, 0.18, 0.10),
    _TUMOUR_NUCLEUS: (0.42, 0.06, 0.20),  # vesicular: pale, finely granular chromatin
    _NUCLEAR_RIM: (0.52, 0.07, 0.05),  # chromatin against the nuclear membrane
    _NUCLEOLUS: (1.00, 0.35, 0.05),
    _LYMPHOCYTE: (1.30, 0.08, 0.08),
    _PLASMA_NUCLEUS: (0.62, 0.10, 0.45),  # levels drawn as clumps on paler chromatin
    _PLASMA_CYTOPLASM: (0.25, 0.28, 0.10),  # amphophilic
    _GOLGI: (0.10, 0.12, 0.10),  # the pale perinuclear hof
}
# Unit optical-density colours: haematoxylin (blue-purple) and eosin (pink), after Ruifrok
# and Johnston with eosin shifted towards the pink of scanned slides.
_HAEMATOXYLIN_OD = np.array([0.65, 0.70, 0.29])
_EOSIN_OD = np.array([0.16, 0.87, 0.46])

_REGION_CELL_UM = 4.0  # region maps are drawn on a grid of cells about this size
_BAND_ROWS = 512  # level-0 rows rendered at a time, to bound the float temporaries
_TILE = 256
_MARGIN_BLOCK_UM = 2.0  # the margin band is measured on blocks of about this size
_EPSILON_DENSITY_MM2 = 1.0  # floor of the intratumoral density in the exclusion index

# Per-subtype draws. Lymphocyte medians per mm2: inside the epithelium, in stroma away from
# the nests, and at the peak of the band 10-40 um from the nests; plasma cells and
# fibroblasts per mm2 of stroma; the stroma fraction of the tissue. Densities are
# log-normal around the medians so subtypes overlap.
_SUBTYPE_BIOLOGY = {
    "RDLS1": {"phenotype": "excluded", "epithelium_mm2": 80.0, "stroma_mm2": 300.0,
              "band_mm2": 2600.0, "plasma_mm2": 150.0, "fibroblasts_mm2": 700.0,
              "stroma_fraction": (0.25, 0.45)},
    "RDLS2": {"phenotype": "inflamed", "epithelium_mm2": 1400.0, "stroma_mm2": 1300.0,
              "band_mm2": 1500.0, "plasma_mm2": 350.0, "fibroblasts_mm2": 700.0,
              "stroma_fraction": (0.25, 0.45)},
    "RDLS3": {"phenotype": "desert", "epithelium_mm2": 140.0, "stroma_mm2": 170.0,
              "band_mm2": 220.0, "plasma_mm2": 60.0, "fibroblasts_mm2": 1000.0,
              "stroma_fraction": (0.55, 0.75)},
}  # fmt: skip
_DENSITY_LOG_SD = 0.3
_BAND_UM = (6.0, 30.0)  # where the excluded phenotype's lymphocytes pile up (soft edges)
_PATCHINESS_SD = 0.5  # log-normal patchiness of infiltrates, on ~60 um patches

# Nuclei: (long, short) axis ranges in microns; tumour nuclei per mm2 of epithelium before
# they are thinned to touching; lumens per mm2 of the epithelium deep enough to hold one.
_TUMOUR_NUCLEUS_UM = ((9.0, 14.0), (6.0, 9.0))
_FIBROBLAST_UM = ((10.0, 16.0), (2.5, 4.0))
_LYMPHOCYTE_UM = ((6.0, 7.5), (5.7, 7.3))
_PLASMA_NUCLEUS_UM = ((7.0, 9.0), (6.3, 8.0))
_NUCLEOLUS_UM = (1.0, 2.0)
_NUCLEAR_RIM_UM = 0.7
_TUMOUR_CANDIDATES_MM2 = 30000.0
_LUMEN_UM = (10.0, 40.0)  # long axis
_LUMEN_WALL_UM = 14.0  # one tumour cell between a lumen and the stroma
_LUMENS_MM2 = (400.0, 1500.0)
_ANGLE_BINS, _SIZE_BINS = 12, 4  # stamps precomputed per nucleus kind
_FIBRE_PERIOD_UM = (4.5, 7.0)


@dataclass(frozen=True)
class _Stamp:
    """One precomputed shape: pixel offsets and the codes to write there."""

    dy: np.ndarray
    dx: np.ndarray
    codes: np.ndarray  # class << 4, plus a texture level where ``fixed``
    fixed: np.ndarray  # False: keep the pixel's own texture level
    long_um: float
    short_um: float
    angle: float


def write_slide(*, out_path, subtype, mpp, size_px, rng, nuclei_out=None) -> dict:
    """Draw one synthetic H&E slide and write it as a pyramidal tiled TIFF.

    Parameters
    ----------
    out_path : str or path-like
        Where to write the TIFF (OpenSlide reads it as a generic tiled TIFF).
    subtype : {"RDLS1", "RDLS2", "RDLS3"}
        Planted biology: immune-excluded, inflamed or stromal immune-desert.
    mpp : float
        Microns per pixel at level 0; every biological size is converted with it.
    size_px : tuple of int
        Width and height of level 0 in pixels.
    rng : numpy.random.Generator
        The only source of randomness: the same stream gives a byte-identical file.
    nuclei_out : str or path-like, optional
        Where to write a Parquet table of the drawn nuclei, one row each: ``x`` and ``y``
        (level-0 pixel centre), ``class`` (lymphocyte, tumour, fibroblast, plasma),
        ``compartment`` of the centre (epithelium, stroma, lumen), ``long_um``, ``short_um``.

    Returns
    -------
    dict
        Truth counted from the drawn image. Compartments are pixels before cells are drawn
        on them: ``tumour_mm2`` is tumour epithelium (cells with their nuclei, lumens
        excluded), ``stroma_mm2``, ``lumen_mm2``, ``tissue_mm2`` (epithelium + stroma),
        ``stroma_fraction`` (stroma / tissue), ``tumour_stroma_ratio`` (tumour / stroma).
        Lymphocytes: ``n_lymphocytes``, ``lymphocyte_density_mm2`` (per mm2 of tissue),
        ``intratumoral_lymphocyte_density_mm2`` and ``stromal_lymphocyte_density_mm2``
        (lymphocytes whose centre pixel lies in that compartment, per mm2 of it),
        ``exclusion_index`` (stromal density / max(intratumoral density, 1 per mm2)),
        ``margin_um`` (MARGIN_UM), ``margin_mm2`` (stroma within it of the epithelium) and
        ``margin_lymphocyte_density_mm2`` (centres in that band per mm2 of it). Other
        nuclei: ``n_tumour_nuclei``, ``n_fibroblasts``, ``n_plasma_cells``. Then
        ``immune_phenotype`` (planted: excluded, inflamed or desert), ``mpp``, ``width_px``
        and ``height_px``.
    """
    if subtype not in _SUBTYPE_BIOLOGY:
        raise ValueError(
            f"unknown subtype {subtype!r}; choose one of {', '.join(_SUBTYPE_BIOLOGY)}"
        )
    width, height = (int(v) for v in size_px)
    spec = _SUBTYPE_BIOLOGY[subtype]
    biology = _draw_biology(rng, spec)
    cell_px = max(1, round(_REGION_CELL_UM / mpp))
    fields = _draw_fields(rng, height, width, cell_px, mpp, biology["stroma_fraction"])
    grid = _grid_geometry(fields, cell_px, mpp)
    codes = _render_codes(rng, fields, height, width, cell_px, mpp)
    lumens = _draw_lumens(rng, codes, grid, cell_px, mpp)
    compartments = codes >> 4  # before any cell is stamped
    margin = _margin_band(compartments, mpp)

    nuclei = _draw_cells(rng, codes, compartments, grid, lumens, cell_px, mpp, biology)
    rgb = _to_rgb(codes, _colour_table(rng))
    del codes
    write_pyramid(out_path, rgb, mpp=mpp, tile_px=_TILE)
    del rgb

    pixel_mm2 = (mpp / 1000.0) ** 2
    tumour_mm2 = float(np.count_nonzero(compartments == _EPITHELIUM)) * pixel_mm2
    stroma_mm2 = float(np.count_nonzero(compartments == _STROMA)) * pixel_mm2
    lumen_mm2 = float(np.count_nonzero(compartments == _LUMEN)) * pixel_mm2
    margin_mm2 = float(np.count_nonzero(margin)) * pixel_mm2
    tissue_mm2 = tumour_mm2 + stroma_mm2
    rows, cols = nuclei["y"], nuclei["x"]
    kind = nuclei["class"]
    lymphocyte = kind == "lymphocyte"
    n_lymphocytes = int(np.count_nonzero(lymphocyte))
    in_epithelium = lymphocyte & (nuclei["compartment"] == "epithelium")
    in_stroma = lymphocyte & (nuclei["compartment"] == "stroma")
    in_margin = lymphocyte & margin[rows, cols]
    intratumoral = float(np.count_nonzero(in_epithelium)) / tumour_mm2
    stromal = float(np.count_nonzero(in_stroma)) / stroma_mm2
    if nuclei_out is not None:
        _write_nuclei(nuclei_out, nuclei)
    return {
        "tissue_mm2": tissue_mm2,
        "tumour_mm2": tumour_mm2,
        "stroma_mm2": stroma_mm2,
        "stroma_fraction": stroma_mm2 / tissue_mm2,
        "tumour_stroma_ratio": tumour_mm2 / stroma_mm2,
        "n_lymphocytes": n_lymphocytes,
        "lymphocyte_density_mm2": n_lymphocytes / tissue_mm2,
        "intratumoral_lymphocyte_density_mm2": intratumoral,
        "stromal_lymphocyte_density_mm2": stromal,
        "exclusion_index": stromal / max(intratumoral, _EPSILON_DENSITY_MM2),
        "lumen_mm2": lumen_mm2,
        "margin_um": MARGIN_UM,
        "margin_mm2": margin_mm2,
        "margin_lymphocyte_density_mm2": (
            float(np.count_nonzero(in_margin)) / margin_mm2 if margin_mm2 > 0 else float("nan")
        ),
        "n_tumour_nuclei": int(np.count_nonzero(kind == "tumour")),
        "n_fibroblasts": int(np.count_nonzero(kind == "fibroblast")),
        "n_plasma_cells": int(np.count_nonzero(kind == "plasma")),
        "immune_phenotype": spec["phenotype"],
        "mpp": float(mpp),
        "width_px": width,
        "height_px": height,
    }


def _draw_biology(rng: np.random.Generator, spec: dict) -> dict:
    """This slide's cell densities and stroma fraction, log-normal around the subtype's."""
    keys = ("epithelium_mm2", "stroma_mm2", "band_mm2", "plasma_mm2", "fibroblasts_mm2")
    biology = {key: spec[key] * np.exp(rng.normal(0.0, _DENSITY_LOG_SD)) for key in keys}
    biology["stroma_fraction"] = rng.uniform(*spec["stroma_fraction"])
    return biology


def _smooth_noise(rng: np.random.Generator, shape: tuple, sigma) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation.

    Filtered in Fourier space (periodic edges), which costs the same for the wide kernels
    of the tissue outline as for narrow ones.
    """
    spectrum = ndimage.fourier_gaussian(np.fft.rfft2(rng.standard_normal(shape)), sigma, n=shape[1])
    field = np.fft.irfft2(spectrum, s=shape)
    return (field - field.mean()) / field.std()


def _draw_fields(rng, height, width, cell_px, mpp, stroma_fraction) -> dict:
    """Low-resolution fields whose thresholds define tissue and epithelium, plus texture.

    The tissue is an irregular blob over 50-75% of the field; within it the tumour field is
    thresholded at the quantile that gives the drawn stroma fraction. ``fibre`` is the
    phase of the collagen fibres, which wrap around the nests.
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
    tumour = (blob > tissue_cut) & (nests > tumour_cut)

    # Collagen runs along the nest outlines: the fibres' course is the distance to the
    # nearest nest, made wavy.
    outside_um = ndimage.distance_transform_edt(~tumour) * cell_um
    fibre = outside_um + 8.0 * _smooth_noise(rng, shape, 40.0 / cell_um)
    return {
        "tissue": blob - tissue_cut,
        "tumour": nests - tumour_cut,
        "texture": _smooth_noise(rng, shape, 300.0 / cell_um),  # slow stain unevenness
        "fibre_course": fibre,
        # Phase of the fibres in radians, broken up so that bundles split and merge.
        "fibre": fibre * (2.0 * np.pi / rng.uniform(*_FIBRE_PERIOD_UM))
        + 1.8 * _smooth_noise(rng, shape, 8.0 / cell_um),
        "patches": _smooth_noise(rng, shape, 60.0 / cell_um),
    }


def _grid_geometry(fields: dict, cell_px: int, mpp: float) -> dict:
    """Masks, distances (um) and border directions on the grid of region cells."""
    tissue = fields["tissue"] > 0
    tumour = tissue & (fields["tumour"] > 0)
    cell_um = cell_px * mpp
    inside_um = ndimage.distance_transform_edt(tumour) * cell_um
    outside_um = ndimage.distance_transform_edt(~tumour) * cell_um
    # Directions (radians from the column axis towards rows): across the nest border, and
    # along the collagen fibres.
    drow, dcol = np.gradient(inside_um - outside_um)
    frow, fcol = np.gradient(fields["fibre_course"])
    return {
        "tumour": tumour,
        "stroma": tissue & ~tumour,
        "inside_um": inside_um,
        "outside_um": outside_um,
        "across_border": np.arctan2(drow, dcol),
        "along_fibre": np.arctan2(frow, fcol) + np.pi / 2,
        "patches": fields["patches"],
    }


def _render_codes(rng, fields, height, width, cell_px, mpp) -> np.ndarray:
    """Upsample the fields bilinearly to level 0 and pack class and texture into uint8 codes.

    Epithelium gets slow unevenness and a fine grain; stroma also gets the collagen fibres,
    a cosine of the fibre phase sharpened into bundles with pale clefts between them.
    """
    n_rows, n_cols = fields["tissue"].shape
    cols = _bilinear_index(np.arange(width), cell_px, n_cols)
    codes = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _BAND_ROWS):
        band = np.arange(top, min(top + _BAND_ROWS, height))
        rows = _bilinear_index(band, cell_px, n_rows)
        tissue = _upsample(fields["tissue"], rows, cols) > 0
        tumour = _upsample(fields["tumour"], rows, cols) > 0
        slow = _upsample(fields["texture"], rows, cols)
        fibres = np.cos(_upsample(fields["fibre"], rows, cols))
        texture = np.where(tumour, 7.0 + 2.0 * slow, 6.5 + 1.2 * slow + 3.5 * fibres)
        level = np.clip(np.rint(texture), 0, _LEVELS - 4).astype(np.uint8)
        level += rng.integers(0, 4, size=level.shape, dtype=np.uint8)  # chromatin/fibre grain
        level[tissue] += np.uint8(_STROMA << 4)
        level[tissue & tumour] += np.uint8((_EPITHELIUM - _STROMA) << 4)
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


def _at(grid_field: np.ndarray, points: np.ndarray, cell_px: int) -> np.ndarray:
    """Values of a grid field at level-0 (row, col) points (nearest cell)."""
    return grid_field[points[:, 0] // cell_px, points[:, 1] // cell_px]


def _draw_lumens(rng, codes, grid, cell_px, mpp) -> dict:
    """Gland lumens: pale holes deep enough inside the nests to be lined by tumour cells.

    Returns their centres (level-0 row, col) and mean radii in pixels, which the tumour
    nuclei use to line them.
    """
    deep = grid["tumour"] & (grid["inside_um"] >= _LUMEN_UM[0] / 2 + _LUMEN_WALL_UM)
    centres = _sample_points(rng, deep * rng.uniform(*_LUMENS_MM2), cell_px, mpp, codes.shape)
    stamps = _shape_stamps(rng, "lumen", mpp)
    angle_bin, size_bin = _bins(rng, rng.uniform(0.0, np.pi, len(centres)))
    semi_long = np.array([[s.long_um / 2 for s in row] for row in stamps])[angle_bin, size_bin]
    # Room for the lumen and one cell between it and the stroma; lumens apart by two cells.
    keep = _at(grid["inside_um"], centres, cell_px) >= semi_long + _LUMEN_WALL_UM
    centres, angle_bin, size_bin, semi_long = (
        a[keep] for a in (centres, angle_bin, size_bin, semi_long)
    )
    reach_um = 2 * _LUMEN_UM[1] / 2 + 2 * _LUMEN_WALL_UM
    pairs = cKDTree(centres).query_pairs(reach_um / mpp, output_type="ndarray")
    gap_um = np.hypot(*(centres[pairs[:, 0]] - centres[pairs[:, 1]]).T) * mpp
    close = gap_um < semi_long[pairs[:, 0]] + semi_long[pairs[:, 1]] + 2 * _LUMEN_WALL_UM
    keep = np.ones(len(centres), dtype=bool)
    keep[pairs[close, 1]] = False
    centres, angle_bin, size_bin = centres[keep], angle_bin[keep], size_bin[keep]
    _paint(codes, centres, stamps, angle_bin, size_bin, onto={_EPITHELIUM})
    radius_px = np.array([[(s.long_um + s.short_um) / 4 / mpp for s in row] for row in stamps])[
        angle_bin, size_bin
    ]
    return {"centres": centres, "radius_px": radius_px}


def _margin_band(compartments: np.ndarray, mpp: float) -> np.ndarray:
    """Stroma pixels within MARGIN_UM of the epithelium.

    Distances are measured between blocks of about 2 um (an exact level-0 distance
    transform would cost more than drawing the slide), so the band's edge is good to ~2 um.
    """
    block = max(1, round(_MARGIN_BLOCK_UM / mpp))
    height, width = compartments.shape
    n_rows, n_cols = -(-height // block), -(-width // block)
    epithelium = np.zeros((n_rows * block, n_cols * block), dtype=bool)
    epithelium[:height, :width] = compartments == _EPITHELIUM
    epithelium = epithelium.reshape(n_rows, block, n_cols, block).any(axis=(1, 3))
    near = ndimage.distance_transform_edt(~epithelium, sampling=block * mpp) <= MARGIN_UM
    rows = np.arange(height) // block
    cols = np.arange(width) // block
    return near[rows[:, None], cols[None, :]] & (compartments == _STROMA)


def _sample_points(rng, density_mm2, cell_px, mpp, shape) -> np.ndarray:
    """Poisson points from a per-cell density map, as integer level-0 (row, col)."""
    expected = density_mm2.ravel() * (cell_px * mpp / 1000.0) ** 2
    total = expected.sum()
    n = rng.poisson(total) if total > 0 else 0
    if n == 0:
        return np.empty((0, 2), dtype=np.intp)
    cells = rng.choice(expected.size, size=n, p=expected / total)
    cell_rc = np.stack(np.unravel_index(cells, density_mm2.shape), axis=1)
    points = ((cell_rc + rng.random((n, 2))) * cell_px).astype(np.intp)
    keep = (points[:, 0] < shape[0]) & (points[:, 1] < shape[1])
    return points[keep]


def _spaced(points: np.ndarray, min_distance_px: float) -> np.ndarray:
    """Mask that drops the later point of every pair closer than the minimum distance."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) > 1:
        pairs = cKDTree(points).query_pairs(min_distance_px, output_type="ndarray")
        keep[pairs[:, 1]] = False
    return keep


def _clear_of(points: np.ndarray, others: np.ndarray, distance_px: float) -> np.ndarray:
    """Mask of the points farther than ``distance_px`` from every one of ``others``."""
    if len(points) == 0 or len(others) == 0:
        return np.ones(len(points), dtype=bool)
    distance, _ = cKDTree(others).query(points)
    return distance > distance_px


def _patchiness(grid: dict) -> np.ndarray:
    """Log-normal patches with mean one over the tissue: infiltrates cluster."""
    patches = np.exp(_PATCHINESS_SD * grid["patches"])
    return patches / patches[grid["tumour"] | grid["stroma"]].mean()


def _in(compartments: np.ndarray, points: np.ndarray, *classes) -> np.ndarray:
    """Mask of the points whose pixel lies in one of the compartments."""
    return np.isin(compartments[points[:, 0], points[:, 1]], classes)


def _draw_cells(rng, codes, compartments, grid, lumens, cell_px, mpp, biology) -> dict:
    """Stamp every cell kind into the codes; return the drawn nuclei as columns.

    Lymphocytes go first, and any later cell that would cover a lymphocyte pixel is left
    out, so lymphocytes may touch other nuclei but never overlap them. Each kind's
    candidates are first kept apart from each other and from the lymphocytes by distance,
    and then checked pixel by pixel as they are stamped.
    """
    shape = codes.shape
    patches = _patchiness(grid)
    lymphocyte_px = _LYMPHOCYTE_UM[1][0] / 2 / mpp  # least lymphocyte radius

    # Lymphocytes: in the epithelium, in the stroma, and piled up in the band at the nest
    # margins (flat where band and stroma densities are alike).
    low, high = _BAND_UM
    d = grid["outside_um"]
    window = 1.0 / ((1.0 + np.exp(-(d - low) / 3.0)) * (1.0 + np.exp(-(high - d) / 4.0)))
    stromal = biology["stroma_mm2"] + (biology["band_mm2"] - biology["stroma_mm2"]) * window
    density = np.where(grid["tumour"], biology["epithelium_mm2"], 0.0)
    density = np.where(grid["stroma"], stromal, density) * patches
    centres = _sample_points(rng, density, cell_px, mpp, shape)
    centres = centres[_spaced(centres, (_LYMPHOCYTE_UM[0][1] + 1.0) / mpp)]
    lymphocytes = centres[_in(compartments, centres, _STROMA, _EPITHELIUM)]
    angles = rng.uniform(0.0, np.pi, len(lymphocytes))
    stamps = _shape_stamps(rng, "lymphocyte", mpp)
    drawn = [_stamp_kind(rng, codes, lymphocytes, angles, stamps, "lymphocyte")]

    # Plasma cells in the stroma, clear of the nests so that their cytoplasm stays whole.
    plasma_zone = grid["stroma"] & (grid["outside_um"] >= 8.0)
    density = np.where(plasma_zone, biology["plasma_mm2"], 0.0) * patches
    centres = _sample_points(rng, density, cell_px, mpp, shape)
    centres = centres[_in(compartments, centres, _STROMA)]
    reach_px = lymphocyte_px + _PLASMA_NUCLEUS_UM[1][0] / 2 / mpp
    centres = centres[_clear_of(centres, lymphocytes, reach_px)]
    centres = centres[_spaced(centres, 14.0 / mpp)]
    angles = rng.uniform(0.0, 2 * np.pi, len(centres))
    stamps = _shape_stamps(rng, "plasma", mpp)
    blockers = {_LYMPHOCYTE, _PLASMA_NUCLEUS, _PLASMA_CYTOPLASM, _GOLGI}
    drawn.append(
        _stamp_kind(rng, codes, centres, angles, stamps, "plasma", onto={_STROMA},
                    blockers=blockers, full_turn=True)
    )  # fmt: skip

    # Tumour nuclei crowd along the basement membrane and around the lumens (a basal
    # palisade, long axis across the border); deeper in the nests they lie any way.
    density = np.where(grid["tumour"], _TUMOUR_CANDIDATES_MM2, 0.0)
    centres = _sample_points(rng, density, cell_px, mpp, shape)
    centres = centres[_in(compartments, centres, _EPITHELIUM)]
    border_um = _at(grid["inside_um"], centres, cell_px)
    angles = _at(grid["across_border"], centres, cell_px)
    if len(lumens["centres"]):
        distance, nearest = cKDTree(lumens["centres"]).query(centres)
        lumen_um = (distance - lumens["radius_px"][nearest]) * mpp
        offset = centres - lumens["centres"][nearest]
        to_lumen = lumen_um < border_um
        angles = np.where(to_lumen, np.arctan2(offset[:, 0], offset[:, 1]), angles)
        border_um = np.where(to_lumen, lumen_um, border_um)
    basal = (border_um >= 4.0) & (border_um <= 12.0)
    jitter = rng.normal(0.0, 0.2, len(centres))
    angles = np.where(basal, angles + jitter, rng.uniform(0.0, np.pi, len(centres)))
    keep = border_um >= 4.0
    reach_px = lymphocyte_px + _TUMOUR_NUCLEUS_UM[1][0] / 2 / mpp
    keep &= _clear_of(centres, lymphocytes, reach_px)
    centres, angles = centres[keep], angles[keep]
    keep = _spaced(centres, 5.0 / mpp)  # the stamps then pack them, touching
    stamps = _shape_stamps(rng, "tumour", mpp)
    tumour = _stamp_kind(rng, codes, centres[keep], angles[keep], stamps, "tumour",
                         onto={_EPITHELIUM}, blockers={_LYMPHOCYTE, _TUMOUR_NUCLEUS,
                                                       _NUCLEAR_RIM}, rounds=4)  # fmt: skip
    _stamp_nucleoli(rng, codes, tumour, mpp)
    drawn.append(tumour)

    # Fibroblasts along the collagen fibres.
    density = np.where(grid["stroma"], biology["fibroblasts_mm2"], 0.0)
    centres = _sample_points(rng, density, cell_px, mpp, shape)
    centres = centres[_in(compartments, centres, _STROMA)]
    centres = centres[
        _clear_of(centres, lymphocytes, lymphocyte_px + _FIBROBLAST_UM[1][0] / 2 / mpp)
    ]
    centres = centres[_spaced(centres, 9.0 / mpp)]
    angles = _at(grid["along_fibre"], centres, cell_px) + rng.normal(0.0, 0.15, len(centres))
    stamps = _shape_stamps(rng, "fibroblast", mpp)
    blockers = {_LYMPHOCYTE, _PLASMA_NUCLEUS, _PLASMA_CYTOPLASM, _GOLGI, _FIBROBLAST}
    drawn.append(
        _stamp_kind(rng, codes, centres, angles, stamps, "fibroblast", onto={_STROMA},
                    blockers=blockers)
    )  # fmt: skip

    nuclei = {key: np.concatenate([d[key] for d in drawn]) for key in drawn[0]}
    names = np.array([_COMPARTMENTS.get(c, "background") for c in range(16)], dtype=object)
    nuclei["compartment"] = names[compartments[nuclei["y"], nuclei["x"]]]
    return nuclei


def _bins(rng, angles: np.ndarray, *, full_turn: bool = False):
    """Angle bin of each angle and a random size bin, indexing the precomputed stamps."""
    period = 2 * np.pi if full_turn else np.pi
    angle_bin = (np.mod(angles, period) / period * _ANGLE_BINS).astype(np.intp) % _ANGLE_BINS
    return angle_bin, rng.integers(0, _SIZE_BINS, len(angles))


def _stamp_kind(rng, codes, centres, angles, stamps, name, *, onto=None, blockers=(),
                full_turn=False, rounds=1) -> dict:  # fmt: skip
    """Stamp one kind of cell; return the nuclei actually drawn, as columns."""
    angle_bin, size_bin = _bins(rng, angles, full_turn=full_turn)
    keep = _paint(codes, centres, stamps, angle_bin, size_bin, onto=onto, blockers=blockers,
                  rounds=rounds, rng=rng)  # fmt: skip
    chosen = [stamps[a][s] for a, s in zip(angle_bin[keep], size_bin[keep], strict=True)]
    return {
        "x": centres[keep, 1],
        "y": centres[keep, 0],
        "class": np.full(int(keep.sum()), name, dtype=object),
        "long_um": np.array([s.long_um for s in chosen], dtype=float),
        "short_um": np.array([s.short_um for s in chosen], dtype=float),
        "angle": np.array([s.angle for s in chosen], dtype=float),
    }


def _stamp_nucleoli(rng, codes, tumour: dict, mpp: float) -> None:
    """One or two small dark nucleoli inside each tumour nucleus, along its long axis."""
    n = len(tumour["x"])
    two = rng.random(n) < 0.45
    first = np.where(two, rng.uniform(0.1, 0.4, n), rng.uniform(-0.25, 0.25, n))
    second = -rng.uniform(0.1, 0.4, n)
    along_frac = np.concatenate([first, second[two]])
    across_frac = rng.uniform(-0.2, 0.2, len(along_frac))
    index = np.concatenate([np.arange(n), np.flatnonzero(two)])
    along = along_frac * tumour["long_um"][index] / 2 / mpp
    across = across_frac * tumour["short_um"][index] / 2 / mpp
    angle = tumour["angle"][index]
    rows = tumour["y"][index] + np.rint(along * np.sin(angle) + across * np.cos(angle))
    cols = tumour["x"][index] + np.rint(along * np.cos(angle) - across * np.sin(angle))
    centres = np.stack([rows, cols], axis=1).astype(np.intp)
    angle_bin, size_bin = _bins(rng, np.zeros(len(centres)))
    stamps = _shape_stamps(rng, "nucleolus", mpp, n_angles=1)
    _paint(codes, centres, stamps, angle_bin, size_bin, onto={_TUMOUR_NUCLEUS})


def _paint(codes, centres, stamps, angle_bin, size_bin, *, onto=None, blockers=(), rounds=1,
           rng=None) -> np.ndarray:  # fmt: skip
    """Paint stamps at the centres; return which were painted.

    A stamp that would cover a pixel of a ``blockers`` class is left out whole; a painted
    stamp changes only pixels of an ``onto`` class (every class when None), which keeps
    tumour nuclei inside the epithelium and nucleoli inside their nucleus. Stamps go one
    stamp shape at a time, so a kind that blocks itself fills space like random sequential
    packing; with ``rounds`` > 1 the centres are dealt into rounds and each round visits
    the shapes in a random order, so that no size or angle gets the first pick.
    """
    onto_lut = np.ones(16, dtype=bool)
    if onto is not None:
        onto_lut[:] = False
        onto_lut[list(onto)] = True
    block_lut = np.zeros(16, dtype=bool)
    block_lut[list(blockers)] = True
    height, width = codes.shape
    keep = np.ones(len(centres), dtype=bool)
    n_shapes = len(stamps) * len(stamps[0])
    order = (
        [np.arange(n_shapes)] if rounds == 1 else [rng.permutation(n_shapes) for _ in range(rounds)]
    )
    shape_of = angle_bin * len(stamps[0]) + size_bin
    round_of = np.arange(len(centres)) % rounds
    for r, shapes in enumerate(order):
        for shape in shapes:
            stamp = stamps[shape // len(stamps[0])][shape % len(stamps[0])]
            index = np.flatnonzero((shape_of == shape) & (round_of == r))
            if index.size == 0:
                continue
            rows = centres[index, :1] + stamp.dy
            cols = centres[index, 1:] + stamp.dx
            inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            rows, cols = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
            current = codes[rows, cols]
            if blockers:
                hit = (block_lut[current >> 4] & inside).any(axis=1)
                keep[index[hit]] = False
                rows, cols, inside, current = rows[~hit], cols[~hit], inside[~hit], current[~hit]
            new = np.where(stamp.fixed, stamp.codes, stamp.codes | (current & (_LEVELS - 1)))
            paint = inside & onto_lut[current >> 4]
            codes[rows[paint], cols[paint]] = new[paint]
    return keep


_SHAPES = {
    "lymphocyte": _LYMPHOCYTE_UM,
    "tumour": _TUMOUR_NUCLEUS_UM,
    "fibroblast": _FIBROBLAST_UM,
    "plasma": _PLASMA_NUCLEUS_UM,
    "nucleolus": (_NUCLEOLUS_UM, _NUCLEOLUS_UM),
    "lumen": (_LUMEN_UM, (0.6 * _LUMEN_UM[0], 0.9 * _LUMEN_UM[1])),
}


def _shape_stamps(rng, kind: str, mpp: float, n_angles: int = _ANGLE_BINS) -> list[list[_Stamp]]:
    """Stamps of one kind, indexed [angle bin][size bin]; sizes spread over the ranges."""
    (long_lo, long_hi), (short_lo, short_hi) = _SHAPES[kind]
    period = 2 * np.pi if kind == "plasma" else np.pi
    stamps = []
    for a in range(n_angles):
        angle = (a + 0.5) * period / _ANGLE_BINS
        row = []
        for s in range(_SIZE_BINS):
            t = (s + 0.5) / _SIZE_BINS
            long_um = long_lo + t * (long_hi - long_lo)
            short_um = min(long_um, short_lo + t * (short_hi - short_lo))
            row.append(_BUILDERS[kind](rng, long_um, short_um, angle, mpp))
        stamps.append(row)
    return stamps


def _frame(reach_px: float, angle: float):
    """Offset grid around a centre and its coordinates along and across ``angle``."""
    reach = int(np.ceil(reach_px)) + 1
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    return dy, dx, along, across


def _outline(along, across, semi_long, semi_short, wobble=None) -> np.ndarray:
    """Inside of an ellipse whose radius is scaled by ``1 + wobble(theta)``."""
    u, v = along / semi_long, across / semi_short
    radius = np.hypot(u, v)
    if wobble is None:
        return radius <= 1.0
    theta = np.arctan2(v, u)
    scale = 1.0 + sum(c * np.cos(k * theta + p) for k, c, p in wobble)
    return radius <= scale


def _wobble(rng, amplitude: float) -> list:
    """Random low harmonics of an irregular outline."""
    return [(k, rng.uniform(0.0, amplitude), rng.uniform(0.0, 2 * np.pi)) for k in (2, 3, 4)]


def _stamp_from(dy, dx, layers, long_um, short_um, angle) -> _Stamp:
    """A stamp from (mask, class, level or None) layers, later layers on top."""
    code = np.zeros(dy.shape, dtype=np.uint8)
    fixed = np.zeros(dy.shape, dtype=bool)
    covered = np.zeros(dy.shape, dtype=bool)
    for mask, cls, level in layers:
        code[mask] = cls << 4
        fixed[mask] = level is not None
        if level is not None:
            code[mask] |= np.broadcast_to(level, dy.shape)[mask]
        covered |= mask
    return _Stamp(dy[covered], dx[covered], code[covered], fixed[covered], long_um, short_um, angle)


def _tumour_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Vesicular tumour nucleus: irregular outline, pale inside, a darker membrane rim."""
    a, b = long_um / 2 / mpp, short_um / 2 / mpp
    dy, dx, along, across = _frame(a * 1.2, angle)
    body = _outline(along, across, a, b, _wobble(rng, 0.06))
    rim = body & (ndimage.distance_transform_edt(body) <= max(1.0, _NUCLEAR_RIM_UM / mpp))
    layers = [(body, _TUMOUR_NUCLEUS, None), (rim, _NUCLEAR_RIM, None)]
    return _stamp_from(dy, dx, layers, long_um, short_um, angle)


def _lymphocyte_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Round lymphocyte nucleus, dense chromatin."""
    dy, dx, along, across = _frame(long_um / 2 / mpp, angle)
    body = _outline(along, across, long_um / 2 / mpp, short_um / 2 / mpp)
    return _stamp_from(dy, dx, [(body, _LYMPHOCYTE, None)], long_um, short_um, angle)


def _fibroblast_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Spindle nucleus with tapered ends and a slight bend."""
    a, b = long_um / 2 / mpp, short_um / 2 / mpp
    dy, dx, along, across = _frame(a, angle)
    bend = rng.uniform(-0.15, 0.15) * b
    body = (np.abs(along) / a) ** 1.5 + ((across - bend * (along / a) ** 2) / b) ** 2 <= 1.0
    return _stamp_from(dy, dx, [(body, _FIBROBLAST, None)], long_um, short_um, angle)


def _plasma_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Plasma cell around its nucleus: eccentric clock-face nucleus, hof, cytoplasm."""
    a, b = long_um / 2 / mpp, short_um / 2 / mpp
    cell_a = a + rng.uniform(2.0, 3.0) / mpp
    cell_b = b + rng.uniform(1.0, 1.8) / mpp
    shift = cell_a - a - 0.4 / mpp  # the nucleus sits at one pole of the cell
    dy, dx, along, across = _frame(2 * cell_a, angle)
    cell = _outline(along - shift, across, cell_a, cell_b, _wobble(rng, 0.04))
    hof = np.hypot(along - (a + 1.0 / mpp), across) <= 1.4 / mpp
    nucleus = _outline(along, across, a, b)
    # Clock-face chromatin: dark clumps on a ring and one in the middle, paler between.
    level = 3 + rng.integers(0, 3, dy.shape)
    turn = rng.uniform(0.0, 2 * np.pi)
    spots = [(0.0, 0.0)] + [
        (0.6 * np.cos(turn + k * 2 * np.pi / 5), 0.6 * np.sin(turn + k * 2 * np.pi / 5))
        for k in range(5)
    ]
    clump_px = 0.8 / mpp
    for u, v in spots:
        level[np.hypot(along - u * a, across - v * b) <= clump_px] = _LEVELS - 1
    layers = [
        (cell, _PLASMA_CYTOPLASM, None),
        (hof & cell, _GOLGI, None),
        (nucleus, _PLASMA_NUCLEUS, level.astype(np.uint8)),
    ]
    return _stamp_from(dy, dx, layers, long_um, short_um, angle)


def _nucleolus_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Small round nucleolus (at least one pixel)."""
    radius = max(0.5, long_um / 2 / mpp)
    dy, dx, along, across = _frame(radius, angle)
    body = np.hypot(along, across) <= radius
    return _stamp_from(dy, dx, [(body, _NUCLEOLUS, None)], long_um, short_um, angle)


def _lumen_stamp(rng, long_um, short_um, angle, mpp) -> _Stamp:
    """Gland lumen: an irregular pale hole."""
    short_um = long_um * rng.uniform(0.6, 0.95)
    a, b = long_um / 2 / mpp, short_um / 2 / mpp
    dy, dx, along, across = _frame(a * 1.3, angle)
    body = _outline(along, across, a, b, _wobble(rng, 0.1))
    return _stamp_from(dy, dx, [(body, _LUMEN, None)], long_um, short_um, angle)


_BUILDERS = {
    "lymphocyte": _lymphocyte_stamp,
    "tumour": _tumour_stamp,
    "fibroblast": _fibroblast_stamp,
    "plasma": _plasma_stamp,
    "nucleolus": _nucleolus_stamp,
    "lumen": _lumen_stamp,
}


def _write_nuclei(path, nuclei: dict) -> None:
    """The drawn nuclei as a Parquet table, one row each."""
    import pandas as pd

    pd.DataFrame(
        {
            "x": nuclei["x"].astype(np.int32),
            "y": nuclei["y"].astype(np.int32),
            "class": nuclei["class"].astype(str),
            "compartment": nuclei["compartment"].astype(str),
            "long_um": nuclei["long_um"].astype(np.float32),
            "short_um": nuclei["short_um"].astype(np.float32),
        }
    ).to_parquet(path, index=False)


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
