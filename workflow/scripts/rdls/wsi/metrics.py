"""Per-slide metrics from the per-tile quantification, and their comparison by subtype.

A tile is assigned to a compartment by its eosin: stroma is collagen, pink and nearly free of
nuclei, so most of its tissue pixels are eosin-dominant; tumour epithelium is cells, with
nuclei and pale cytoplasm. Lymphocytes play no part in that decision, so a tumour nest flooded
with lymphocytes (lymphocyte-rich, RDLS2) still counts as tumour and a lymphocyte band in the
stroma still counts as stroma. Densities are lymphocytes per mm2 of tissue in the
compartment, so they do not depend on tile size.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

TILE_COLUMNS = ("x", "y", "tissue_fraction", "eosin_fraction", "n_lymphocytes", "tile_class")
SLIDE_METRICS = (
    "tissue_mm2",
    "tiles",
    "lymphocyte_density_mm2",
    "intratumoral_lymphocyte_density_mm2",
    "stromal_lymphocyte_density_mm2",
    "exclusion_index",
    "stroma_fraction",
    "tumour_stroma_ratio",
)
# Floor of the intratumoral density in the exclusion index (the demo's truth uses the same),
# so that a slide without intratumoral lymphocytes gets a large but finite index.
EPSILON_DENSITY_MM2 = 1.0
# Share of a tile's tissue pixels that are eosin-dominant and nucleus-free at or above which
# the tile is stroma. On the demo slides 0.4 ranks slides by their planted stroma fraction
# best (Spearman 0.94 against 0.81 at 0.5 and 0.92 at 0.3, tiny demo).
STROMA_MIN_EOSIN_FRACTION = 0.4


def compartments(
    tiles: pd.DataFrame,
    *,
    tile_mm2: float,
    stroma_min_eosin_fraction: float = STROMA_MIN_EOSIN_FRACTION,
) -> pd.Series:
    """Compartment of each tile: "tumour", "stroma", "other" or "background".

    A ``compartment`` column, written when a tile classifier checkpoint is configured
    (:mod:`rdls.wsi.classifier`), decides for the tiles it covers; otherwise the eosin rule
    does. "other" is tissue in neither compartment (fat, mucus, normal mucosa).

    Parameters
    ----------
    tiles : pandas.DataFrame
        One row per tile with at least ``tissue_fraction``, ``eosin_fraction``,
        ``n_lymphocytes`` and ``tile_class``, optionally ``compartment``.
    tile_mm2 : float
        Area of one tile in mm2 (side in microns squared / 1e6).
    stroma_min_eosin_fraction : float
        Eosin-dominant share of the tile's tissue at or above which the tile is stroma.
    """
    _check_tiles(tiles)
    tissue_mm2 = tiles["tissue_fraction"].to_numpy(float) * tile_mm2
    eosin = tiles["eosin_fraction"].to_numpy(float)
    compartment = np.where(eosin >= stroma_min_eosin_fraction, "stroma", "tumour").astype(object)
    if "compartment" in tiles.columns:
        given = tiles["compartment"].notna().to_numpy()
        compartment[given] = tiles["compartment"].to_numpy()[given]
    background = (tiles["tile_class"] == "background").to_numpy() | (tissue_mm2 <= 0)
    return pd.Series(np.where(background, "background", compartment), index=tiles.index)


def slide_metrics(
    tiles: pd.DataFrame,
    *,
    tile_mm2: float,
    stroma_min_eosin_fraction: float = STROMA_MIN_EOSIN_FRACTION,
) -> dict:
    """The slide's tissue area, lymphocyte densities by compartment and stroma measures.

    Returns
    -------
    dict
        ``tissue_mm2``, ``tiles``, ``lymphocyte_density_mm2`` (per mm2 of tissue),
        ``intratumoral_lymphocyte_density_mm2`` and ``stromal_lymphocyte_density_mm2``
        (per mm2 of that compartment; NaN without the compartment), ``exclusion_index``
        (stromal / max(intratumoral, 1 per mm2)), ``stroma_fraction`` (stroma / tissue) and
        ``tumour_stroma_ratio`` (tumour / stroma; NaN without stroma).
    """
    compartment = compartments(
        tiles, tile_mm2=tile_mm2, stroma_min_eosin_fraction=stroma_min_eosin_fraction
    )
    area = tiles["tissue_fraction"].to_numpy(float) * tile_mm2
    lymphocytes = tiles["n_lymphocytes"].to_numpy(float)
    tissue = compartment.to_numpy() != "background"
    tumour = compartment.to_numpy() == "tumour"
    stroma = compartment.to_numpy() == "stroma"
    tissue_mm2, tumour_mm2, stroma_mm2 = (float(area[m].sum()) for m in (tissue, tumour, stroma))
    intratumoral = _density(lymphocytes[tumour].sum(), tumour_mm2)
    stromal = _density(lymphocytes[stroma].sum(), stroma_mm2)
    return {
        "tissue_mm2": tissue_mm2,
        "tiles": int(tissue.sum()),
        "lymphocyte_density_mm2": _density(lymphocytes[tissue].sum(), tissue_mm2),
        "intratumoral_lymphocyte_density_mm2": intratumoral,
        "stromal_lymphocyte_density_mm2": stromal,
        "exclusion_index": (
            stromal / max(intratumoral, EPSILON_DENSITY_MM2)
            if np.isfinite(stromal) and np.isfinite(intratumoral)
            else np.nan
        ),
        "stroma_fraction": stroma_mm2 / tissue_mm2 if tissue_mm2 > 0 else np.nan,
        "tumour_stroma_ratio": tumour_mm2 / stroma_mm2 if stroma_mm2 > 0 else np.nan,
    }


def compare_by_subtype(
    metrics: pd.DataFrame, *, group: str = "subtype", columns: tuple[str, ...] = SLIDE_METRICS[2:]
) -> pd.DataFrame:
    """Kruskal-Wallis across subtypes and pairwise Mann-Whitney (BH-adjusted) per metric.

    :func:`rdls.compare.compare_by_subtype` on the slide metrics: slides of one subject are
    averaged first, so that a subject with several slides counts once.
    """
    from rdls.compare import compare_by_subtype as compare

    return compare(metrics, columns=columns, group=group, what="slide metrics")


def heatmap_grids(
    tiles: pd.DataFrame, *, tile_mm2: float, shape: tuple[int, int], step0: float
) -> Mapping[str, np.ndarray]:
    """Lymphocyte density and compartment of each tile on a grid over the slide.

    ``shape`` is the grid's (rows, columns) and ``step0`` the level-0 pixels per grid cell
    (the tile stride). Cells without a tile are NaN (density) or -1 (compartment: 0 tumour,
    1 stroma, 2 background, 3 other tissue).
    """
    density = np.full(shape, np.nan)
    compartment = np.full(shape, -1, dtype=int)
    codes = {"tumour": 0, "stroma": 1, "background": 2, "other": 3}
    rows = np.clip(grid_index(tiles["y"], step0), 0, shape[0] - 1)
    cols = np.clip(grid_index(tiles["x"], step0), 0, shape[1] - 1)
    area = tiles["tissue_fraction"].to_numpy(float) * tile_mm2
    with np.errstate(divide="ignore", invalid="ignore"):
        density[rows, cols] = np.where(area > 0, tiles["n_lymphocytes"] / area, np.nan)
    kinds = compartments(tiles, tile_mm2=tile_mm2)
    compartment[rows, cols] = kinds.map(codes).to_numpy()
    return {"lymphocyte_density_mm2": density, "compartment": compartment}


def grid_index(coordinate, step0: float) -> np.ndarray:
    """Grid cell of each tile from its level-0 coordinate.

    Tile coordinates are ``rint(i * step0)`` (:func:`rdls.wsi.slide.tile_grid`), and the
    stride in level-0 pixels is rarely whole: floor division would put a tile rounded down
    into the previous cell and leave its own empty, so the index is rounded instead.
    """
    return np.rint(np.asarray(coordinate, dtype=float) / float(step0)).astype(int)


def _density(count: float, area_mm2: float) -> float:
    return float(count) / area_mm2 if area_mm2 > 0 else np.nan


def _check_tiles(tiles: pd.DataFrame) -> None:
    missing = [c for c in TILE_COLUMNS if c not in tiles.columns]
    if missing:
        raise InputError(
            f"tile table lacks column(s) {some(missing)}; it must come from "
            "rdls.wsi.tiles.quantify_tiles with the tile grid's x and y."
        )
