"""Slide metrics from tile tables: compartments, densities, exclusion index, by subtype."""

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.wsi.metrics import (
    compare_by_subtype,
    compartments,
    grid_index,
    heatmap_grids,
    slide_metrics,
)

TILE_MM2 = 0.128**2  # 256 px at 0.5 um/px


def tiles(rows):
    """Tiles from (tumour?, lymphocytes, tissue fraction) triples on a row of the grid."""
    records = []
    for i, (tumour, lymphocytes, fraction) in enumerate(rows):
        records.append({"x": 256 * i, "y": 0, "tissue_fraction": fraction,
                        "eosin_fraction": 0.1 if tumour else 0.7, "n_lymphocytes": lymphocytes,
                        "tile_class": "tumour" if tumour else "stroma"})  # fmt: skip
    return pd.DataFrame(records)


def test_lymphocytes_do_not_decide_the_compartment():
    table = tiles([(True, 0, 1.0), (True, 200, 1.0), (False, 0, 1.0), (False, 200, 1.0)])
    assert compartments(table, tile_mm2=TILE_MM2).tolist() == [
        "tumour", "tumour", "stroma", "stroma"
    ]  # fmt: skip


def test_metrics_follow_their_definitions():
    table = tiles([(True, 2, 1.0), (True, 0, 1.0), (False, 30, 1.0), (False, 10, 0.5)])
    table.loc[len(table)] = {"x": 2048, "y": 0, "tissue_fraction": 0.0, "eosin_fraction": 0.0,
                             "n_lymphocytes": 0, "tile_class": "background"}  # fmt: skip
    found = slide_metrics(table, tile_mm2=TILE_MM2)
    tumour, stroma = 2 * TILE_MM2, 1.5 * TILE_MM2
    assert found["tissue_mm2"] == pytest.approx(tumour + stroma)
    assert found["tiles"] == 4
    assert found["intratumoral_lymphocyte_density_mm2"] == pytest.approx(2 / tumour)
    assert found["stromal_lymphocyte_density_mm2"] == pytest.approx(40 / stroma)
    assert found["exclusion_index"] == pytest.approx((40 / stroma) / (2 / tumour))
    assert found["stroma_fraction"] == pytest.approx(stroma / (tumour + stroma))
    assert found["tumour_stroma_ratio"] == pytest.approx(tumour / stroma)
    assert found["lymphocyte_density_mm2"] == pytest.approx(42 / (tumour + stroma))


def test_no_intratumoral_lymphocytes_gives_a_large_finite_exclusion_index():
    found = slide_metrics(tiles([(True, 0, 1.0), (False, 50, 1.0)]), tile_mm2=TILE_MM2)
    assert found["exclusion_index"] == pytest.approx(50 / TILE_MM2)
    no_stroma = slide_metrics(tiles([(True, 3, 1.0)]), tile_mm2=TILE_MM2)
    assert np.isnan(no_stroma["stromal_lymphocyte_density_mm2"])
    assert np.isnan(no_stroma["tumour_stroma_ratio"]) and no_stroma["stroma_fraction"] == 0


def test_a_tile_table_without_the_needed_columns_is_refused():
    with pytest.raises(InputError, match=r"tile table lacks column\(s\) 'n_lymphocytes'"):
        slide_metrics(tiles([(True, 0, 1.0)]).drop(columns="n_lymphocytes"), tile_mm2=TILE_MM2)


def test_subtypes_are_compared_per_subject_with_adjusted_pairs():
    rng = np.random.default_rng(0)
    rows = []
    column = "intratumoral_lymphocyte_density_mm2"
    for subtype, centre in (("RDLS1", 100.0), ("RDLS2", 2000.0), ("RDLS3", 300.0)):
        for i in range(8):
            for _ in range(2):  # two slides per subject count once
                rows.append({"subject_id": f"{subtype}-{i}", "subtype": subtype,
                             column: centre * rng.lognormal(0, 0.2)})  # fmt: skip
    table = compare_by_subtype(pd.DataFrame(rows),
                               columns=("intratumoral_lymphocyte_density_mm2",))  # fmt: skip
    overall = table[table["comparison"] == "all"].iloc[0]
    assert overall["p_value"] < 1e-3
    assert overall["median_RDLS2"] > overall["median_RDLS3"] > overall["median_RDLS1"]
    pairs = table[table["comparison"] != "all"]
    assert pairs["comparison"].tolist() == ["RDLS1 vs RDLS2", "RDLS1 vs RDLS3", "RDLS2 vs RDLS3"]
    assert (pairs["p_adjusted"] >= pairs["p_value"]).all()
    with pytest.raises(InputError, match="slide metrics lacks column"):
        compare_by_subtype(pd.DataFrame(rows).drop(columns="subtype"),
                           columns=("intratumoral_lymphocyte_density_mm2",))  # fmt: skip


def test_heatmap_grids_place_each_tile_in_its_cell():
    table = tiles([(True, 4, 1.0), (False, 0, 1.0)])
    grids = heatmap_grids(table, tile_mm2=TILE_MM2, shape=(2, 3), step0=256)
    assert grids["lymphocyte_density_mm2"][0, 0] == pytest.approx(4 / TILE_MM2)
    assert grids["compartment"].tolist() == [[0, 1, -1], [-1, -1, -1]]
    assert np.isnan(grids["lymphocyte_density_mm2"][1, 2])


@pytest.mark.parametrize("stride0", [256.0, 252.5, 256.7, 510.3])
def test_heatmap_grids_draw_every_tile_when_the_stride_is_not_whole(stride0):
    """Tile coordinates are rounded multiples of the stride (slide.tile_grid): every tile of
    a full grid gets a cell of its own and no cell is left empty."""
    shape = (7, 9)
    xs = np.rint(np.arange(shape[1]) * stride0).astype(np.int64)
    ys = np.rint(np.arange(shape[0]) * stride0).astype(np.int64)
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    table = pd.DataFrame({"x": grid_x.ravel(), "y": grid_y.ravel(), "tissue_fraction": 1.0,
                          "eosin_fraction": 0.7, "n_lymphocytes": np.arange(grid_x.size),
                          "tile_class": "stroma"})  # fmt: skip

    grids = heatmap_grids(table, tile_mm2=TILE_MM2, shape=shape, step0=stride0)

    density = grids["lymphocyte_density_mm2"]
    assert np.isfinite(density).all()
    np.testing.assert_allclose(density.ravel() * TILE_MM2, np.arange(grid_x.size))
    assert (grids["compartment"] == 1).all()
    assert grid_index(table["x"].max(), stride0) + 1 == shape[1]
