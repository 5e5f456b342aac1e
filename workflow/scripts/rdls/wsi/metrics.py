"""Per-slide metrics from the nuclei and the pixel-level compartments of every tile.

Each nucleus is classified one by one (:mod:`rdls.wsi.nuclei`) and carries the compartment
under its centroid (:mod:`rdls.wsi.compartments`): a lymphocyte is intratumoral when it lies
inside tumour epithelium, stromal when it lies in stroma, and in the margin band when it lies in
stroma within ``margin_um`` of epithelium. Densities are per mm2 of their own compartment, so
they do not depend on tile size. The immune phenotype of a slide follows Chen and Mellman
(Nature 2017): "desert" where lymphocytes are few anywhere, "excluded" where they stay in the
stroma, "inflamed" where they enter the epithelium; the cut-offs are settings
(:class:`PhenotypeSettings`), stated in the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

TILE_COLUMNS = ("x", "y", "tissue_mm2", "epithelium_mm2", "stroma_mm2", "n_lymphocytes",
                "n_lymphocytes_epithelium", "n_lymphocytes_stroma")  # fmt: skip
SLIDE_METRICS = (
    "tissue_mm2",
    "tiles",
    "lymphocyte_density_mm2",
    "intratumoral_lymphocyte_density_mm2",
    "stromal_lymphocyte_density_mm2",
    "margin_lymphocyte_density_mm2",
    "exclusion_index",
    "lymphocyte_distance_um",
    "stroma_fraction",
    "tumour_stroma_ratio",
)
PHENOTYPES = ("inflamed", "excluded", "desert")
# Floor of the intratumoral density in the exclusion index (the demo's truth uses the same),
# so that a slide without intratumoral lymphocytes gets a large but finite index.
EPSILON_DENSITY_MM2 = 1.0


@dataclass(frozen=True)
class PhenotypeSettings:
    """Cut-offs of the immune phenotype of a slide.

    Attributes
    ----------
    desert_max_density_mm2 : float
        Lymphocytes per mm2 of tissue below which a slide is "desert". Chen and Mellman
        (2017) describe deserts as tumours with few T cells in either compartment; on H&E,
        colorectal stroma with a sparse infiltrate holds some 100-300 lymphocytes per mm2
        against 1000-5000 in an active infiltrate, and 300 lies between the two.
    excluded_min_index : float
        Exclusion index (stromal over intratumoral density) from which a slide that is not a
        desert is "excluded": lymphocytes at least this many times as dense in the stroma as
        in the epithelium. Inflamed tumours carry lymphocytes in both (index ~1-3).
    """

    desert_max_density_mm2: float = 300.0
    excluded_min_index: float = 3.0

    def __post_init__(self):
        if self.desert_max_density_mm2 < 0 or self.excluded_min_index <= 0:
            raise InputError(
                "wsi.phenotype: desert_max_density_mm2 must be >= 0 and excluded_min_index "
                f"> 0, got {self.desert_max_density_mm2} and {self.excluded_min_index}"
            )


def immune_phenotype(metrics: Mapping, settings: PhenotypeSettings | None = None) -> str:
    """ "inflamed", "excluded" or "desert" from a slide's densities ("" without tissue)."""
    settings = PhenotypeSettings() if settings is None else settings
    overall = metrics.get("lymphocyte_density_mm2", np.nan)
    if not np.isfinite(overall):
        return ""
    if overall < settings.desert_max_density_mm2:
        return "desert"
    index = metrics.get("exclusion_index", np.nan)
    if np.isfinite(index) and index >= settings.excluded_min_index:
        return "excluded"
    return "inflamed"


def slide_metrics(
    tiles: pd.DataFrame,
    nuclei: pd.DataFrame,
    *,
    margin_mm2: float,
    phenotype: PhenotypeSettings | None = None,
) -> dict:
    """The slide's tissue area, lymphocyte densities by compartment and stroma measures.

    Parameters
    ----------
    tiles : pandas.DataFrame
        One row per tile (:data:`TILE_COLUMNS`), from :func:`rdls.wsi.tiles.quantify_tiles`.
    nuclei : pandas.DataFrame
        One row per nucleus with ``nucleus_class``, ``compartment``, and
        ``distance_to_epithelium_um`` and ``in_margin`` from
        :func:`rdls.wsi.compartments.place_on_mosaic`.
    margin_mm2 : float
        Area of the margin band (stroma within the margin width of epithelium).
    phenotype : PhenotypeSettings, optional

    Returns
    -------
    dict
        ``tissue_mm2`` (epithelium + stroma), ``tiles``, ``lymphocyte_density_mm2`` (per mm2
        of tissue), ``intratumoral_lymphocyte_density_mm2``, ``stromal_lymphocyte_density_mm2``
        and ``margin_lymphocyte_density_mm2`` (per mm2 of that compartment; NaN without it),
        ``exclusion_index`` (stromal / max(intratumoral, 1 per mm2)),
        ``lymphocyte_distance_um`` (median distance of the lymphocytes outside epithelium to
        the nearest epithelium; NaN without epithelium), ``stroma_fraction`` (stroma / tissue),
        ``tumour_stroma_ratio`` (epithelium / stroma; NaN without stroma) and
        ``immune_phenotype``.
    """
    _check_tiles(tiles)
    epithelium_mm2 = float(tiles["epithelium_mm2"].sum())
    stroma_mm2 = float(tiles["stroma_mm2"].sum())
    tissue_mm2 = epithelium_mm2 + stroma_mm2
    lymphocytes = nuclei[nuclei["nucleus_class"] == "lymphocyte"]
    where = lymphocytes["compartment"]
    intratumoral = _density((where == "epithelium").sum(), epithelium_mm2)
    stromal = _density((where == "stroma").sum(), stroma_mm2)
    outside = lymphocytes.loc[where != "epithelium", "distance_to_epithelium_um"]
    outside = outside[np.isfinite(outside)]
    found = {
        "tissue_mm2": tissue_mm2,
        "tiles": int((tiles["tissue_mm2"] > 0).sum()),
        "lymphocyte_density_mm2": _density(where.isin(["epithelium", "stroma"]).sum(), tissue_mm2),
        "intratumoral_lymphocyte_density_mm2": intratumoral,
        "stromal_lymphocyte_density_mm2": stromal,
        "margin_lymphocyte_density_mm2": _density(
            (lymphocytes["in_margin"].astype(bool) & (where == "stroma")).sum(), margin_mm2
        ),
        "exclusion_index": (
            stromal / max(intratumoral, EPSILON_DENSITY_MM2)
            if np.isfinite(stromal) and np.isfinite(intratumoral)
            else np.nan
        ),
        "lymphocyte_distance_um": float(outside.median()) if len(outside) else np.nan,
        "stroma_fraction": stroma_mm2 / tissue_mm2 if tissue_mm2 > 0 else np.nan,
        "tumour_stroma_ratio": epithelium_mm2 / stroma_mm2 if stroma_mm2 > 0 else np.nan,
    }
    found["immune_phenotype"] = immune_phenotype(found, phenotype)
    return found


def compare_by_subtype(
    metrics: pd.DataFrame, *, group: str = "subtype", columns: tuple[str, ...] = SLIDE_METRICS[2:]
) -> pd.DataFrame:
    """Kruskal-Wallis across subtypes and pairwise Mann-Whitney (BH-adjusted) per metric.

    :func:`rdls.compare.compare_by_subtype` on the slide metrics: slides of one subject are
    averaged first, so that a subject with several slides counts once.
    """
    from rdls.compare import compare_by_subtype as compare

    return compare(metrics, columns=columns, group=group, what="slide metrics")


def phenotype_by_subtype(metrics: pd.DataFrame, *, group: str = "subtype") -> dict:
    """One comparison row: immune phenotype counts per subtype and a chi-square test.

    Returns a row for :func:`compare_by_subtype`'s table: ``metric`` "immune_phenotype",
    ``comparison`` "all", the test, its statistic and p-value (only with two or more subtypes
    and phenotypes), and the counts per subtype in ``note`` (e.g. "RDLS1: excluded 8,
    inflamed 2").
    """
    from scipy import stats

    known = metrics[metrics["immune_phenotype"].isin(PHENOTYPES)]
    counts = pd.crosstab(known[group].astype(str), known["immune_phenotype"])
    note = "; ".join(
        f"{subtype}: " + ", ".join(f"{p} {int(n)}" for p, n in row.items() if n)
        for subtype, row in counts.iterrows()
    )
    row = {"metric": "immune_phenotype", "comparison": "all", "note": note}
    if counts.shape[0] >= 2 and counts.shape[1] >= 2:
        result = stats.chi2_contingency(counts.to_numpy())
        row.update(test="chi-square", statistic=float(result.statistic),
                   p_value=float(result.pvalue))  # fmt: skip
    return row


def density_grid(tiles: pd.DataFrame, *, shape: tuple[int, int], step0: float) -> np.ndarray:
    """Lymphocytes per mm2 of tissue of each tile on a grid over the slide.

    ``shape`` is the grid's (rows, columns) and ``step0`` the level-0 pixels per grid cell
    (the tile stride). Cells without a tile or without tissue are NaN.
    """
    density = np.full(shape, np.nan)
    rows = np.clip(grid_index(tiles["y"], step0), 0, shape[0] - 1)
    cols = np.clip(grid_index(tiles["x"], step0), 0, shape[1] - 1)
    area = tiles["tissue_mm2"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        density[rows, cols] = np.where(area > 0, tiles["n_lymphocytes"] / area, np.nan)
    return density


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
