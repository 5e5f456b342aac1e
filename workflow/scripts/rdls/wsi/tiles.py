"""Per-tile quantification of H&E tiles: nuclei, lymphocytes, stroma and a tile class.

One tile (RGB uint8 at a known microns per pixel) goes through optional Macenko stain
normalisation, colour deconvolution into haematoxylin and eosin optical densities (Ruifrok and
Johnston, Anal Quant Cytol Histol 2001), nucleus segmentation (Otsu threshold on haematoxylin
with an absolute floor, then a distance-transform watershed that splits touching nuclei) and a
vectorised table of nucleus shapes. From it come the per-tile numbers the slide-level steps
aggregate: nuclei and lymphocytes per mm2 of tissue, the eosin-dominant nucleus-free share of
the tissue, a lymphocyte score, a stroma score and a tile class.

Lymphocytes are small, round and dark nuclei; stroma is eosin-pink with few, elongated
(fibroblast) nuclei; tumour epithelium has dense, larger, paler and irregular nuclei. Every
size is in microns so the same settings hold at any resolution; thresholds are in
:class:`TileSettings` with the reasoning beside each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.measure import regionprops_table
from skimage.segmentation import watershed

from rdls.errors import InputError

STAIN_NORMALISATIONS = ("none", "macenko")
TILE_CLASSES = ("tumour", "stroma", "lymphocyte_rich", "background")

# Ruifrok and Johnston (2001) unit optical-density vectors of haematoxylin and eosin; the third
# column (DAB) only completes the basis so that the deconvolution matrix is invertible.
_RUIFROK_STAINS = np.array(
    [[0.650, 0.704, 0.286], [0.072, 0.990, 0.105], [0.268, 0.570, 0.776]], dtype=np.float64
)
_RUIFROK_INVERSE = np.linalg.inv(_RUIFROK_STAINS / np.linalg.norm(_RUIFROK_STAINS, axis=1)[:, None])
# Macenko's reference: standard H&E stain vectors (columns: haematoxylin, eosin) and the
# 99th-percentile concentrations of a well-stained slide (Macenko et al., ISBI 2009; the
# values every common implementation ships).
MACENKO_REFERENCE_STAINS = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
MACENKO_REFERENCE_MAX = np.array([1.9705, 1.0308])
_MACENKO_IO = 240.0  # transmitted light intensity of the glass
_MACENKO_BETA = 0.15  # pixels with OD below this in any channel are glass, not stain
_MACENKO_ALPHA = 1.0  # angle percentiles 1 and 99
_MACENKO_MIN_PIXELS = 200  # fewer stained pixels than this: too little tissue to fit stains
# Optical density of every uint8 intensity, log10, with 0 read as 1 to stay finite.
_OD_TABLE = -np.log10(np.maximum(np.arange(256, dtype=np.float64), 1.0) / 255.0).astype(np.float32)


@dataclass(frozen=True)
class TileSettings:
    """Thresholds of tile quantification; sizes in square microns, densities per mm2 of tissue.

    Attributes
    ----------
    stain_normalisation : {"none", "macenko"}
        Macenko normalisation to the standard H&E reference before deconvolution; "none"
        for slides already normalised (as the CRC-VAL-HE tiles are) or synthetic ones.
    tissue_min_od : float
        Summed RGB optical density above which a pixel is tissue (glass is below ~0.1, pale
        stroma above ~0.25).
    nucleus_min_haematoxylin : float
        Floor of the Otsu threshold on haematoxylin OD: a nucleus-free tile has an Otsu
        threshold inside its stroma or cytoplasm texture, and the floor keeps that from
        producing nuclei. Cytoplasm and collagen sit below ~0.2, nuclei above ~0.25.
    nucleus_max_threshold : float
        Ceiling of the Otsu threshold: where lymphocytes are many, Otsu can fall between
        vesicular tumour nuclei (~0.5 OD) and the darker lymphocytes (~1 OD) and lose the
        tumour nuclei; the ceiling keeps every nucleus above cytoplasm in the mask.
    local_window_um : float
        Side of the window of the local-contrast condition: a nucleus pixel must also be at
        least the mean of its surroundings, which separates the packed nuclei of a dense
        infiltrate that all clear the global threshold.
    nucleus_min_contrast : float
        Least excess of a nucleus's mean haematoxylin OD over the median of the tile's
        nucleus-free tissue. Textureless dark regions (folds, out-of-focus or over-stained
        areas, dark background) pass the threshold everywhere, and the watershed cuts their
        noise into "nuclei" with no contrast; real nuclei stand 0.1-0.5 OD above their
        surroundings, and still ~0.05 after the blur of an 8x upsampled tile.
    min_nucleus_um2, max_nucleus_um2 : float
        Objects smaller than a 4 um disc are debris or noise; larger than ~14 um across are
        clumps that the watershed could not split, and are left out of the counts.
    lymphocyte_max_area_um2 : float
        Lymphocytes are 6-8 um across (28-50 um2); tumour nuclei are 50-100 um2.
    lymphocyte_min_roundness : float
        Minor over major axis: lymphocytes are near-circles (> 0.8), tumour nuclei ~0.65,
        fibroblasts ~0.3.
    lymphocyte_min_haematoxylin : float
        Least mean haematoxylin OD of a lymphocyte: condensed chromatin is dark, so a small
        round object paler than this (cytoplasm fold, debris) is not one. Kept lenient (real,
        unnormalised nuclei run 0.25-0.5 OD): size and roundness do most of the separating.
    lymphocyte_rich_density_mm2 : float
        Lymphocytes per mm2 of tissue from which a tile is lymphocyte-rich (dense infiltrates
        run 3000-10000 per mm2; a tumour nest with scattered TILs stays below ~1000).
    lymphocyte_rich_min_share : float
        And the share of nuclei that are lymphocytes, so that a crowded tumour tile with some
        small dark nuclei is not called lymphocyte-rich.
    stroma_min_score : float
        Stroma score from which a tile is stroma.
    stroma_eosin_fraction : float
        Eosin-dominant nucleus-free share of tissue that counts as fully pink (score 1).
    stroma_dense_nuclei_mm2 : float
        Scale of the sparsity term ``exp(-nuclear density / this)`` of the stroma score
        (tumour epithelium: 4000-8000 nuclei per mm2, term 0.1-0.4; stroma 500-1500, term
        0.7-0.9). Exponential rather than clipped, so that it still ranks dense tiles.
    min_tissue_fraction : float
        Below this share of tissue pixels a tile is background.
    """

    stain_normalisation: str = "none"
    tissue_min_od: float = 0.2
    nucleus_min_haematoxylin: float = 0.2
    nucleus_max_threshold: float = 0.4
    local_window_um: float = 8.0
    nucleus_min_contrast: float = 0.05
    min_nucleus_um2: float = 12.0
    max_nucleus_um2: float = 150.0
    lymphocyte_max_area_um2: float = 55.0
    lymphocyte_min_roundness: float = 0.75
    lymphocyte_min_haematoxylin: float = 0.25
    lymphocyte_rich_density_mm2: float = 3000.0
    lymphocyte_rich_min_share: float = 0.4
    stroma_min_score: float = 0.4
    stroma_eosin_fraction: float = 0.6
    stroma_dense_nuclei_mm2: float = 4000.0
    min_tissue_fraction: float = 0.2

    def __post_init__(self):
        if self.stain_normalisation not in STAIN_NORMALISATIONS:
            raise InputError(
                f"stain_normalisation must be one of {', '.join(STAIN_NORMALISATIONS)}, "
                f"got {self.stain_normalisation!r}; set it to 'macenko' for slides from "
                "several scanners or stain batches, else 'none'"
            )
        if not 0 < self.min_nucleus_um2 < self.max_nucleus_um2:
            raise InputError(
                f"need 0 < min_nucleus_um2 < max_nucleus_um2, got {self.min_nucleus_um2} and "
                f"{self.max_nucleus_um2}"
            )


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(
            f"expected an RGB uint8 tile of shape (height, width, 3), got {rgb.dtype} "
            f"{rgb.shape}; drop the alpha channel of RGBA reads (OpenSlide) first"
        )
    return rgb


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """log10 optical density of each channel, ``(height, width, 3)`` float32 (white = 0)."""
    return _OD_TABLE[_check_rgb(rgb)]


def macenko_normalise(rgb, *, target_stains=None, target_max=None) -> np.ndarray:
    """Normalise H&E staining by Macenko's method (Macenko et al., ISBI 2009).

    Optical densities of the stained pixels (OD >= 0.15 in every channel) are projected on
    the plane of their two leading singular vectors; the 1st and 99th percentile angles in
    that plane give the tile's haematoxylin and eosin vectors, their concentrations are
    scaled so the 99th percentiles match the target's, and the tile is rebuilt with the
    target's vectors.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(height, width, 3)`` uint8.
    target_stains : numpy.ndarray, optional
        ``(3, 2)`` optical-density vectors (haematoxylin, eosin) to map onto; default the
        standard H&E reference :data:`MACENKO_REFERENCE_STAINS`.
    target_max : numpy.ndarray, optional
        99th-percentile concentrations (haematoxylin, eosin) of the target; default
        :data:`MACENKO_REFERENCE_MAX`.

    Returns
    -------
    numpy.ndarray
        Normalised tile, same shape, uint8. A tile with fewer than 200 stained pixels (glass,
        a fold of nothing) comes back unchanged: there is no stain to fit.
    """
    rgb = _check_rgb(rgb)
    stains = MACENKO_REFERENCE_STAINS if target_stains is None else np.asarray(target_stains)
    maxima = MACENKO_REFERENCE_MAX if target_max is None else np.asarray(target_max)
    if stains.shape != (3, 2) or maxima.shape != (2,):
        raise ValueError("target_stains must be (3, 2) and target_max (2,)")
    height, width, _ = rgb.shape
    od = -np.log((rgb.reshape(-1, 3).astype(np.float64) + 1.0) / _MACENKO_IO)
    stained = od[(od >= _MACENKO_BETA).all(axis=1)]
    if len(stained) < _MACENKO_MIN_PIXELS:
        return rgb.copy()
    _, vectors = np.linalg.eigh(np.cov(stained, rowvar=False))
    plane = vectors[:, 1:3]  # two leading eigenvectors (eigh sorts ascending)
    projected = stained @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, [_MACENKO_ALPHA, 100 - _MACENKO_ALPHA])
    v_low = plane @ np.array([np.cos(low), np.sin(low)])
    v_high = plane @ np.array([np.cos(high), np.sin(high)])
    # Haematoxylin absorbs more red than eosin does: it is the vector with the larger first
    # component. Signs from the eigen-decomposition are arbitrary; make both positive.
    pair = (v_low, v_high) if v_low[0] > v_high[0] else (v_high, v_low)
    source = np.abs(np.stack(pair, axis=1))
    concentrations, *_ = np.linalg.lstsq(source, od.T, rcond=None)
    source_max = np.percentile(concentrations, 99, axis=1)
    if np.any(source_max <= 0):
        return rgb.copy()
    concentrations *= (maxima / source_max)[:, None]
    out = _MACENKO_IO * np.exp(-stains @ concentrations)
    return np.clip(out.T, 0, 255).reshape(height, width, 3).astype(np.uint8)


def separate_stains(rgb) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin optical densities by colour deconvolution.

    Ruifrok and Johnston's stain vectors (as in ``skimage.color.rgb2hed``) in log10 optical
    density units, so that a pixel's value is the stain's absorbance: glass ~0, stroma
    eosin 0.2-0.5, nuclei haematoxylin 0.3-1.5. Negative values (noise) are clipped to 0.

    Returns
    -------
    tuple of numpy.ndarray
        ``(haematoxylin, eosin)``, each ``(height, width)`` float32.
    """
    od = optical_density(rgb)
    concentrations = od.reshape(-1, 3) @ _RUIFROK_INVERSE[:, :2].astype(np.float32)
    np.maximum(concentrations, 0.0, out=concentrations)
    shape = od.shape[:2]
    return concentrations[:, 0].reshape(shape), concentrations[:, 1].reshape(shape)


def segment_nuclei(haematoxylin, *, mpp, settings=None) -> np.ndarray:
    """Label nuclei: Otsu threshold with a floor, small-object removal, watershed splitting.

    The haematoxylin image is smoothed over ~0.5 um, thresholded at the larger of its Otsu
    threshold and ``settings.nucleus_min_haematoxylin`` (so a nucleus-free tile gives no
    nuclei), cleared of objects under ``settings.min_nucleus_um2``, and split along the
    watershed of the smoothed distance transform, seeded at maxima at least one lymphocyte
    radius (3 um) apart, so touching nuclei become separate labels while a single elongated
    nucleus stays whole.

    Parameters
    ----------
    haematoxylin : numpy.ndarray
        ``(height, width)`` haematoxylin optical density (:func:`separate_stains`).
    mpp : float
        Microns per pixel.
    settings : TileSettings, optional

    Returns
    -------
    numpy.ndarray
        int32 labels, 0 for background, 1..n for nuclei.
    """
    settings = TileSettings() if settings is None else settings
    if mpp <= 0:
        raise ValueError(f"mpp must be positive, got {mpp}")
    h = np.asarray(haematoxylin, dtype=np.float32)
    smooth = ndimage.gaussian_filter(h, sigma=max(0.25 / mpp, 0.5), truncate=2.0)
    level = settings.nucleus_min_haematoxylin
    if smooth.max() > level:
        # Otsu among the stained pixels, where the choice is cytoplasm/collagen vs nuclei.
        otsu = float(threshold_otsu(smooth[smooth > 0.1 * level]))
        level = min(max(level, otsu), settings.nucleus_max_threshold)
    # Local contrast (settings.local_window_um): darker than the surroundings.
    window = max(3, round(settings.local_window_um / mpp))
    mask = (smooth > level) & (smooth >= ndimage.uniform_filter(smooth, size=window))
    labels, n = ndimage.label(mask)
    if n == 0:
        return labels.astype(np.int32)
    pixel_um2 = mpp * mpp
    sizes = np.bincount(labels.ravel())
    small = sizes * pixel_um2 < settings.min_nucleus_um2
    small[0] = True
    mask = ~small[labels]
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    radius_px = max(1, round(3.0 / mpp))
    distance = ndimage.distance_transform_edt(mask).astype(np.float32)
    distance = ndimage.gaussian_filter(distance, sigma=max(0.5 / mpp, 0.5), truncate=2.0)
    distance[~mask] = 0
    components, _ = ndimage.label(mask)
    peaks = peak_local_max(
        distance, min_distance=radius_px, labels=components, exclude_border=False
    )
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(-distance, markers, mask=mask)
    # Components without a peak (too thin for one) keep their own label.
    orphan = mask & (labels == 0)
    if orphan.any():
        extra, _ = ndimage.label(orphan)
        labels[orphan] = extra[orphan] + labels.max()
    return labels.astype(np.int32)


NUCLEUS_COLUMNS = ("label", "area_um2", "roundness", "mean_haematoxylin", "centroid_row",
                   "centroid_col")  # fmt: skip


def nucleus_table(labels, haematoxylin, *, mpp) -> pd.DataFrame:
    """One row per nucleus: area, roundness, mean haematoxylin and centroid.

    Roundness is minor over major axis of the fitted ellipse (1 for a circle), which unlike
    4 pi area / perimeter^2 does not depend on how the boundary is pixelated at small sizes.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``area_um2``, ``roundness``, ``mean_haematoxylin``,
        ``centroid_row`` and ``centroid_col`` (pixels).
    """
    labels = np.asarray(labels)
    if labels.max() == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in NUCLEUS_COLUMNS})
    props = regionprops_table(
        labels,
        intensity_image=np.asarray(haematoxylin, dtype=np.float32),
        properties=(
            "label", "area", "centroid", "intensity_mean", "axis_major_length",
            "axis_minor_length",
        ),
    )  # fmt: skip
    major = props["axis_major_length"]
    with np.errstate(invalid="ignore", divide="ignore"):
        roundness = np.where(major > 0, props["axis_minor_length"] / major, 1.0)
    return pd.DataFrame(
        {
            "label": props["label"],
            "area_um2": props["area"] * mpp * mpp,
            "roundness": np.clip(roundness, 0.0, 1.0),
            "mean_haematoxylin": props["intensity_mean"],
            "centroid_row": props["centroid-0"],
            "centroid_col": props["centroid-1"],
        }
    )


def quantify_tile(rgb, *, mpp, settings=None) -> dict:
    """Nuclei, lymphocytes, stroma and a class for one H&E tile.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(height, width, 3)`` uint8.
    mpp : float
        Microns per pixel of the tile.
    settings : TileSettings, optional

    Returns
    -------
    dict
        ``n_nuclei`` and ``n_lymphocytes`` (nuclei within the size limits); their densities
        ``nuclear_density_mm2`` and ``lymphocyte_density_mm2`` per mm2 of tissue;
        ``tissue_fraction``; ``eosin_fraction`` (share of tissue pixels that are
        eosin-dominant and outside nuclei); ``lymphocyte_score`` in [0, 1] (share of nuclei
        that are lymphocytes, times ``1 - exp(-density / lymphocyte_rich_density_mm2)``,
        times ``1 - eosin_fraction``: a lymphocyte-rich tile is packed with nuclei and has
        little pink matrix, whereas necrotic debris holds small dark nuclear fragments in
        eosinophilic material);
        ``stroma_score`` in [0, 1] (pinkness times nuclear sparsity, raised for elongated
        nuclei); and ``tile_class``, the first that applies of: "background" (tissue
        fraction under ``min_tissue_fraction``), "lymphocyte_rich" (lymphocyte density and
        share at their thresholds), "stroma" (stroma score at ``stroma_min_score``), else
        "tumour".
    """
    settings = TileSettings() if settings is None else settings
    rgb = _check_rgb(rgb)
    if settings.stain_normalisation == "macenko":
        rgb = macenko_normalise(rgb)
    od = optical_density(rgb)
    tissue = od.sum(axis=2) > settings.tissue_min_od
    haematoxylin, eosin = separate_stains(rgb)
    labels = segment_nuclei(haematoxylin, mpp=mpp, settings=settings)
    nuclei = nucleus_table(labels, haematoxylin, mpp=mpp)
    return _summarise(nuclei, labels, tissue, haematoxylin, eosin, mpp, settings)


def _summarise(nuclei, labels, tissue, haematoxylin, eosin, mpp, settings) -> dict:
    n_pixels = tissue.size
    n_tissue = int(np.count_nonzero(tissue))
    tissue_mm2 = n_tissue * (mpp / 1000.0) ** 2
    area = nuclei["area_um2"].to_numpy()
    free_tissue = tissue & (labels == 0)
    surround = float(np.median(haematoxylin[free_tissue])) if free_tissue.any() else 0.0
    counted = (
        (area >= settings.min_nucleus_um2)
        & (area <= settings.max_nucleus_um2)
        & (nuclei["mean_haematoxylin"].to_numpy() - surround >= settings.nucleus_min_contrast)
    )
    lymphocyte = (
        counted
        & (area <= settings.lymphocyte_max_area_um2)
        & (nuclei["roundness"].to_numpy() >= settings.lymphocyte_min_roundness)
        & (nuclei["mean_haematoxylin"].to_numpy() >= settings.lymphocyte_min_haematoxylin)
    )
    n_nuclei = int(counted.sum())
    n_lymphocytes = int(lymphocyte.sum())
    nuclear_density = n_nuclei / tissue_mm2 if n_tissue else 0.0
    lymphocyte_density = n_lymphocytes / tissue_mm2 if n_tissue else 0.0
    pink = free_tissue & (eosin > haematoxylin)
    eosin_fraction = np.count_nonzero(pink) / n_tissue if n_tissue else 0.0
    tissue_fraction = n_tissue / n_pixels

    share = n_lymphocytes / n_nuclei if n_nuclei else 0.0
    lymphocyte_score = (
        share
        * (1.0 - np.exp(-lymphocyte_density / settings.lymphocyte_rich_density_mm2))
        * (1.0 - eosin_fraction)
    )
    # Stroma: pink, few nuclei, and those few elongated (fibroblasts) rather than round.
    others = counted & ~lymphocyte
    elongated = (
        float(np.mean(nuclei["roundness"].to_numpy()[others] < 0.5)) if others.any() else 0.5
    )
    pinkness = min(1.0, eosin_fraction / settings.stroma_eosin_fraction)
    sparsity = float(np.exp(-nuclear_density / settings.stroma_dense_nuclei_mm2))
    stroma_score = pinkness * sparsity * (0.75 + 0.25 * elongated) if n_tissue else 0.0

    if tissue_fraction < settings.min_tissue_fraction:
        tile_class = "background"
    elif (
        lymphocyte_density >= settings.lymphocyte_rich_density_mm2
        and share >= settings.lymphocyte_rich_min_share
    ):
        tile_class = "lymphocyte_rich"
    elif stroma_score >= settings.stroma_min_score:
        tile_class = "stroma"
    else:
        tile_class = "tumour"
    return {
        "n_nuclei": n_nuclei,
        "n_lymphocytes": n_lymphocytes,
        "nuclear_density_mm2": float(nuclear_density),
        "lymphocyte_density_mm2": float(lymphocyte_density),
        "tissue_fraction": float(tissue_fraction),
        "eosin_fraction": float(eosin_fraction),
        "lymphocyte_score": float(lymphocyte_score),
        "stroma_score": float(stroma_score),
        "tile_class": tile_class,
    }


def quantify_tiles(tiles: Iterable[np.ndarray], *, mpp, settings=None) -> pd.DataFrame:
    """:func:`quantify_tile` over many tiles: one row per tile, in order, with ``tile`` index."""
    settings = TileSettings() if settings is None else settings
    rows = [quantify_tile(tile, mpp=mpp, settings=settings) for tile in tiles]
    columns = ["tile", *QUANTITY_COLUMNS]
    if not rows:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c == "tile_class" else float) for c in columns}
        )
    table = pd.DataFrame(rows)
    table.insert(0, "tile", np.arange(len(rows)))
    return table[columns]


QUANTITY_COLUMNS = (
    "n_nuclei", "n_lymphocytes", "nuclear_density_mm2", "lymphocyte_density_mm2",
    "tissue_fraction", "eosin_fraction", "lymphocyte_score", "stroma_score", "tile_class",
)  # fmt: skip
