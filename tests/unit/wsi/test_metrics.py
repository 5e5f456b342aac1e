"""Slide metrics from tile and nucleus tables: densities by compartment, exclusion, phenotype."""

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.wsi.metrics import (
    PhenotypeSettings,
    compare_by_subtype,
    density_grid,
    grid_index,
    immune_phenotype,
    slide_metrics,
)

TILE_MM2 = 0.128**2  # 256 px at 0.5 um/px


def tiles(rows):
    """Tiles from (epithelium mm2, stroma mm2) pairs on a row of the grid."""
    return pd.DataFrame(
        [{"x": 256 * i, "y": 0, "tissue_mm2": e + s, "epithelium_mm2": e, "stroma_mm2": s,
          "n_lymphocytes": 0, "n_lymphocytes_epithelium": 0, "n_lymphocytes_stroma": 0}
         for i, (e, s) in enumerate(rows)]
    )  # fmt: skip


def lymphocytes(where):
    """Nuclei: one lymphocyte per (compartment, distance um, in margin) triple, and a tumour one."""
    rows = [{"nucleus_class": "lymphocyte", "compartment": c, "distance_to_epithelium_um": d,
             "in_margin": m} for c, d, m in where]  # fmt: skip
    rows.append({"nucleus_class": "tumour", "compartment": "epithelium",
                 "distance_to_epithelium_um": 0.0, "in_margin": False})  # fmt: skip
    return pd.DataFrame(rows)


def test_metrics_follow_their_definitions():
    table = tiles([(0.010, 0.004), (0.006, 0.010), (0.0, 0.0)])
    nuclei = lymphocytes([("epithelium", 0.0, False)] * 2 + [("stroma", 10.0, True)] * 6
                         + [("stroma", 50.0, False)] * 4 + [("lumen", 4.0, True)])  # fmt: skip
    found = slide_metrics(table, nuclei, margin_mm2=0.002)
    epithelium, stroma = 0.016, 0.014
    assert found["tissue_mm2"] == pytest.approx(epithelium + stroma)
    assert found["tiles"] == 2
    assert found["intratumoral_lymphocyte_density_mm2"] == pytest.approx(2 / epithelium)
    assert found["stromal_lymphocyte_density_mm2"] == pytest.approx(10 / stroma)
    assert found["margin_lymphocyte_density_mm2"] == pytest.approx(6 / 0.002)
    assert found["exclusion_index"] == pytest.approx((10 / stroma) / (2 / epithelium))
    assert found["lymphocyte_distance_um"] == pytest.approx(10.0)  # median of 6x10, 4x50, 4
    assert found["stroma_fraction"] == pytest.approx(stroma / (epithelium + stroma))
    assert found["tumour_stroma_ratio"] == pytest.approx(epithelium / stroma)
    # The lymphocyte in a lumen is in neither compartment's tissue.
    assert found["lymphocyte_density_mm2"] == pytest.approx(12 / (epithelium + stroma))
    assert found["immune_phenotype"] == "excluded"  # index 5.7 >= 3, density 400 >= 300


def test_no_intratumoral_lymphocytes_gives_a_large_finite_exclusion_index():
    found = slide_metrics(tiles([(0.01, 0.01)]), lymphocytes([("stroma", 5.0, True)] * 50),
                          margin_mm2=0.001)  # fmt: skip
    assert found["exclusion_index"] == pytest.approx(50 / 0.01)
    assert found["immune_phenotype"] == "excluded"
    no_stroma = slide_metrics(tiles([(0.01, 0.0)]), lymphocytes([("epithelium", 0.0, False)]),
                              margin_mm2=0.0)  # fmt: skip
    assert np.isnan(no_stroma["stromal_lymphocyte_density_mm2"])
    assert np.isnan(no_stroma["margin_lymphocyte_density_mm2"])
    assert np.isnan(no_stroma["tumour_stroma_ratio"]) and no_stroma["stroma_fraction"] == 0
    assert np.isnan(no_stroma["lymphocyte_distance_um"])


@pytest.mark.parametrize(
    ("density", "index", "expected"),
    [(100.0, 50.0, "desert"), (1000.0, 5.0, "excluded"), (1000.0, 1.2, "inflamed"),
     (np.nan, np.nan, ""), (1000.0, np.nan, "inflamed")],
)  # fmt: skip
def test_immune_phenotype_follows_its_cut_offs(density, index, expected):
    metrics = {"lymphocyte_density_mm2": density, "exclusion_index": index}
    assert immune_phenotype(metrics) == expected
    strict = PhenotypeSettings(desert_max_density_mm2=2000.0)
    if np.isfinite(density):
        assert immune_phenotype(metrics, strict) == "desert"


def test_impossible_phenotype_cut_offs_are_refused():
    with pytest.raises(InputError, match="excluded_min_index > 0"):
        PhenotypeSettings(excluded_min_index=0.0)


def test_a_tile_table_without_the_needed_columns_is_refused():
    with pytest.raises(InputError, match=r"tile table lacks column\(s\) 'stroma_mm2'"):
        slide_metrics(tiles([(0.01, 0.0)]).drop(columns="stroma_mm2"), lymphocytes([]),
                      margin_mm2=0.0)  # fmt: skip


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


def test_density_grid_places_each_tile_in_its_cell():
    table = tiles([(TILE_MM2, 0.0), (0.0, 0.0)])
    table["n_lymphocytes"] = [4, 0]
    density = density_grid(table, shape=(2, 3), step0=256)
    assert density[0, 0] == pytest.approx(4 / TILE_MM2)
    assert np.isnan(density[0, 1]) and np.isnan(density[1, 2])


@pytest.mark.parametrize("stride0", [256.0, 252.5, 256.7, 510.3])
def test_density_grid_draws_every_tile_when_the_stride_is_not_whole(stride0):
    """Tile coordinates are rounded multiples of the stride (slide.tile_grid): every tile of
    a full grid gets a cell of its own and no cell is left empty."""
    shape = (7, 9)
    xs = np.rint(np.arange(shape[1]) * stride0).astype(np.int64)
    ys = np.rint(np.arange(shape[0]) * stride0).astype(np.int64)
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    table = pd.DataFrame({"x": grid_x.ravel(), "y": grid_y.ravel(), "tissue_mm2": TILE_MM2,
                          "n_lymphocytes": np.arange(grid_x.size)})  # fmt: skip

    density = density_grid(table, shape=shape, step0=stride0)

    assert np.isfinite(density).all()
    np.testing.assert_allclose(density.ravel() * TILE_MM2, np.arange(grid_x.size))
    assert grid_index(table["x"].max(), stride0) + 1 == shape[1]


def test_phenotypes_are_counted_and_tested_by_subtype():
    from rdls.wsi.metrics import phenotype_by_subtype

    table = pd.DataFrame({"subtype": ["RDLS1"] * 10 + ["RDLS2"] * 10,
                          "immune_phenotype": ["excluded"] * 9 + ["inflamed"]
                          + ["inflamed"] * 8 + ["desert", ""]})  # fmt: skip
    row = phenotype_by_subtype(table)
    assert row["note"] == "RDLS1: excluded 9, inflamed 1; RDLS2: desert 1, inflamed 8"
    assert row["test"] == "chi-square" and row["p_value"] < 1e-3
    one = phenotype_by_subtype(table[table["subtype"] == "RDLS1"])
    assert "p_value" not in one and one["note"] == "RDLS1: excluded 9, inflamed 1"
