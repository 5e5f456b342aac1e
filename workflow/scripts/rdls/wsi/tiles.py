"""Per-tile quantification of H&E tiles: every nucleus, the compartments, a tile summary.

One tile (RGB uint8 at a known microns per pixel) goes through optional Macenko stain
normalisation and colour deconvolution into haematoxylin and eosin optical densities (Ruifrok
and Johnston, Anal Quant Cytol Histol 2001). Its nuclei are segmented and classified one by one
(:mod:`rdls.wsi.nuclei`); the nuclei called tumour draw the epithelium at the pixel level
(:mod:`rdls.wsi.compartments`), and each nucleus gets the compartment under its centroid. From
these come the per-tile numbers the slide-level steps add up (areas and lymphocytes by
compartment) and descriptors of the tile as a whole (a lymphocyte score, a stroma score and a
tile class). Every size is in microns so the same settings hold at any resolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rdls.errors import InputError
from rdls.wsi.compartments import CompartmentSettings
from rdls.wsi.nuclei import NucleusSettings

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
    nuclei : rdls.wsi.nuclei.NucleusSettings
        Segmentation and classification of nuclei, one by one.
    compartments : rdls.wsi.compartments.CompartmentSettings
        How epithelium, lumen and the margin band are drawn from the tumour nuclei.
    lymphocyte_rich_density_mm2 : float
        Lymphocytes per mm2 of tissue from which a tile is lymphocyte-rich (dense infiltrates
        run 3000-10000 per mm2; a tumour nest with scattered TILs stays below ~1000).
    lymphocyte_rich_min_share : float
        And the share of nuclei that are lymphocytes, so that a crowded tumour tile with some
        small dark nuclei is not called lymphocyte-rich.
    stroma_min_score : float
        Stroma score from which a tile is stroma.
    stroma_eosin_fraction : float
        Eosin-dominant nucleus-free share of tissue that counts as fully pink (pinkness 1).
    min_tissue_fraction : float
        Below this share of tissue pixels a tile is background.
    """

    stain_normalisation: str = "none"
    tissue_min_od: float = 0.2
    lymphocyte_rich_density_mm2: float = 3000.0
    lymphocyte_rich_min_share: float = 0.4
    stroma_min_score: float = 0.4
    stroma_eosin_fraction: float = 0.6
    min_tissue_fraction: float = 0.2
    nuclei: NucleusSettings = field(default_factory=NucleusSettings)
    compartments: CompartmentSettings = field(default_factory=CompartmentSettings)

    def __post_init__(self):
        if self.stain_normalisation not in STAIN_NORMALISATIONS:
            raise InputError(
                f"stain_normalisation must be one of {', '.join(STAIN_NORMALISATIONS)}, "
                f"got {self.stain_normalisation!r}; set it to 'macenko' for slides from "
                "several scanners or stain batches, else 'none'"
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


def quantify_tile(rgb, *, mpp, settings=None) -> dict:
    """Nuclei, lymphocytes, compartments and a class for one H&E tile.

    :func:`quantify_tile_detail`'s summary alone (the per-tile numbers).
    """
    return quantify_tile_detail(rgb, mpp=mpp, settings=settings)[0]


def quantify_tile_detail(rgb, *, mpp, settings=None) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """Every nucleus of one H&E tile, classified and placed in its compartment.

    Nuclei are segmented and classified one by one (:func:`rdls.wsi.nuclei.detect`); the
    nuclei called tumour draw the epithelium (:func:`rdls.wsi.compartments.compartment_map`);
    each nucleus gets the compartment under its centroid.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(height, width, 3)`` uint8.
    mpp : float
        Microns per pixel of the tile.
    settings : TileSettings, optional

    Returns
    -------
    summary : dict
        ``n_nuclei`` (nuclei not classed "other") and ``n_lymphocytes``; their densities
        ``nuclear_density_mm2`` and ``lymphocyte_density_mm2`` per mm2 of tissue;
        ``tissue_fraction``; the areas ``epithelium_mm2``, ``stroma_mm2``, ``lumen_mm2`` and
        ``tissue_mm2`` (epithelium + stroma); lymphocytes by the compartment of their centroid,
        ``n_lymphocytes_epithelium`` and ``n_lymphocytes_stroma``; ``eosin_fraction`` (share of
        tissue pixels that are eosin-dominant and outside nuclei); ``lymphocyte_score`` in
        [0, 1] (share of nuclei that are lymphocytes, times
        ``1 - exp(-density / lymphocyte_rich_density_mm2)``, times ``1 - eosin_fraction``: a
        lymphocyte-rich tile is packed with nuclei and has little pink matrix, whereas
        necrotic debris holds small dark fragments in eosinophilic material);
        ``stroma_score`` in [0, 1] (the stroma share of the tile's epithelium and stroma,
        times its pinkness ``min(1, eosin_fraction / stroma_eosin_fraction)``); and
        ``tile_class``, the first that applies of: "background" (tissue fraction
        under ``min_tissue_fraction``), "lymphocyte_rich" (lymphocyte density and share at
        their thresholds), "stroma" (stroma score at ``stroma_min_score``), else "tumour".
    nuclei : pandas.DataFrame
        :data:`rdls.wsi.nuclei.NUCLEUS_COLUMNS` with ``nucleus_class`` and ``compartment``.
    codes : numpy.ndarray
        The tile's compartment map (:data:`rdls.wsi.compartments.COMPARTMENTS` codes).
    """
    from rdls.wsi import compartments as comp
    from rdls.wsi.nuclei import detect

    settings = TileSettings() if settings is None else settings
    rgb = _check_rgb(rgb)
    if settings.stain_normalisation == "macenko":
        rgb = macenko_normalise(rgb)
    tissue = optical_density(rgb).sum(axis=2) > settings.tissue_min_od
    haematoxylin, eosin = separate_stains(rgb)
    labels, nuclei = detect(haematoxylin, eosin, mpp=mpp, settings=settings.nuclei)
    classes = nuclei["nucleus_class"].to_numpy()
    tumour_labels = nuclei["label"].to_numpy()[classes == "tumour"]
    tumour = np.isin(labels, tumour_labels) if len(tumour_labels) else np.zeros_like(tissue)
    lymphocyte_labels = nuclei["label"].to_numpy()[classes == "lymphocyte"]
    codes = comp.compartment_map(tissue, tumour, mpp=mpp, settings=settings.compartments,
                                 lymphocytes=np.isin(labels, lymphocyte_labels))  # fmt: skip
    nuclei["compartment"] = comp.names(comp.code_at(codes, nuclei["row"], nuclei["col"]))
    summary = _summarise(nuclei, labels, tissue, codes, haematoxylin, eosin, mpp, settings)
    return summary, nuclei, codes


def _summarise(nuclei, labels, tissue, codes, haematoxylin, eosin, mpp, settings) -> dict:
    from rdls.wsi.compartments import EPITHELIUM, LUMEN, STROMA

    pixel_mm2 = (mpp / 1000.0) ** 2
    n_tissue = int(np.count_nonzero(tissue))
    tissue_mm2 = n_tissue * pixel_mm2
    classes = nuclei["nucleus_class"].to_numpy()
    where = nuclei["compartment"].to_numpy()
    counted = classes != "other"
    lymphocyte = classes == "lymphocyte"
    n_nuclei = int(counted.sum())
    n_lymphocytes = int(lymphocyte.sum())
    nuclear_density = n_nuclei / tissue_mm2 if n_tissue else 0.0
    lymphocyte_density = n_lymphocytes / tissue_mm2 if n_tissue else 0.0
    free_tissue = tissue & (labels == 0)
    pink = free_tissue & (eosin > haematoxylin)
    eosin_fraction = np.count_nonzero(pink) / n_tissue if n_tissue else 0.0
    tissue_fraction = n_tissue / tissue.size

    share = n_lymphocytes / n_nuclei if n_nuclei else 0.0
    lymphocyte_score = (
        share
        * (1.0 - np.exp(-lymphocyte_density / settings.lymphocyte_rich_density_mm2))
        * (1.0 - eosin_fraction)
    )
    # Stroma: the pixel map's stroma share of the tissue, confirmed by pink matrix (a tile
    # whose few nuclei draw no nest but whose matrix is not eosin-dominant, such as fat or
    # mucus, scores low).
    pinkness = min(1.0, eosin_fraction / settings.stroma_eosin_fraction)
    area = np.bincount(codes.ravel(), minlength=5) * pixel_mm2
    nest_and_stroma = area[EPITHELIUM] + area[STROMA]
    share = area[STROMA] / nest_and_stroma if nest_and_stroma else 0.0
    stroma_score = share * pinkness if n_tissue else 0.0

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
        "tissue_mm2": float(area[EPITHELIUM] + area[STROMA]),
        "epithelium_mm2": float(area[EPITHELIUM]),
        "stroma_mm2": float(area[STROMA]),
        "lumen_mm2": float(area[LUMEN]),
        "n_lymphocytes_epithelium": int(np.count_nonzero(lymphocyte & (where == "epithelium"))),
        "n_lymphocytes_stroma": int(np.count_nonzero(lymphocyte & (where == "stroma"))),
        "eosin_fraction": float(eosin_fraction),
        "lymphocyte_score": float(lymphocyte_score),
        "stroma_score": float(stroma_score),
        "tile_class": tile_class,
    }


QUANTITY_COLUMNS = (
    "n_nuclei", "n_lymphocytes", "nuclear_density_mm2", "lymphocyte_density_mm2",
    "tissue_fraction", "tissue_mm2", "epithelium_mm2", "stroma_mm2", "lumen_mm2",
    "n_lymphocytes_epithelium", "n_lymphocytes_stroma", "eosin_fraction", "lymphocyte_score",
    "stroma_score", "tile_class",
)  # fmt: skip


def quantify_tiles(tiles: Iterable[np.ndarray], *, mpp, settings=None) -> pd.DataFrame:
    """:func:`quantify_tile` over many tiles: one row per tile, in order, with ``tile`` index."""
    return quantify_tiles_detail(tiles, mpp=mpp, settings=settings)[0]


def quantify_tiles_detail(
    tiles: Iterable[np.ndarray], *, mpp, settings=None, mosaic_um=None
) -> tuple[pd.DataFrame, pd.DataFrame, list[np.ndarray]]:
    """:func:`quantify_tile_detail` over many tiles.

    Returns the per-tile table (``tile`` index first), the nuclei of every tile in one table
    (with their ``tile``) and, per tile, its compartment map on mosaic cells of ``mosaic_um``
    (default: the settings' :attr:`CompartmentSettings.mosaic_um`).
    """
    from rdls.wsi.compartments import mosaic_cells
    from rdls.wsi.nuclei import NUCLEUS_COLUMNS

    settings = TileSettings() if settings is None else settings
    mosaic_um = settings.compartments.mosaic_um if mosaic_um is None else mosaic_um
    rows, nuclei, cells = [], [], []
    for index, tile in enumerate(tiles):
        summary, table, codes = quantify_tile_detail(tile, mpp=mpp, settings=settings)
        rows.append(summary)
        table.insert(0, "tile", index)
        nuclei.append(table)
        cells.append(mosaic_cells(codes, mpp=mpp, mosaic_um=mosaic_um))
    columns = ["tile", *QUANTITY_COLUMNS]
    nucleus_columns = ["tile", *NUCLEUS_COLUMNS, "nucleus_class", "compartment"]
    if not rows:
        empty = pd.DataFrame(
            {c: pd.Series(dtype=object if c == "tile_class" else float) for c in columns}
        )
        return empty, pd.DataFrame(columns=nucleus_columns), []
    table = pd.DataFrame(rows)
    table.insert(0, "tile", np.arange(len(rows)))
    return table[columns], pd.concat(nuclei, ignore_index=True)[nucleus_columns], cells
