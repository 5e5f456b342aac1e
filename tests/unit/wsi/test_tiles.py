"""rdls.wsi.tiles on synthetic demo slides: lymphocyte counts, stroma, Macenko, edge cases."""

from __future__ import annotations

import numpy as np
import openslide
import pandas as pd
import pytest
from scipy.stats import spearmanr

from rdls.demo._slides import write_slide
from rdls.errors import InputError
from rdls.wsi.tiles import (
    TileSettings,
    macenko_normalise,
    quantify_tile,
    quantify_tile_detail,
    quantify_tiles,
    quantify_tiles_detail,
)

MPP = 0.5
TILE = 256
SUBTYPES = ("RDLS1", "RDLS2", "RDLS3", "RDLS1", "RDLS2", "RDLS3")


def read_tiles(path) -> list[np.ndarray]:
    """Every 256 px level-0 tile of a slide, RGB, as the workflow reads them."""
    slide = openslide.OpenSlide(str(path))
    width, height = slide.dimensions
    tiles = [
        np.asarray(slide.read_region((x, y), 0, (TILE, TILE)))[..., :3]
        for y in range(0, height - TILE + 1, TILE)
        for x in range(0, width - TILE + 1, TILE)
    ]
    slide.close()
    return tiles


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Six 1024 px demo slides of mixed subtypes: truth and per-tile quantities."""
    folder = tmp_path_factory.mktemp("slides")
    rows, tiles = [], {}
    for seed, subtype in enumerate(SUBTYPES):
        path = folder / f"s{seed}.tiff"
        truth = write_slide(
            out_path=path, subtype=subtype, mpp=MPP, size_px=(1024, 1024),
            rng=np.random.default_rng(seed),
        )  # fmt: skip
        tiles[seed] = read_tiles(path)
        quantified = quantify_tiles(tiles[seed], mpp=MPP, settings=TileSettings())
        weight = quantified["tissue_fraction"]
        rows.append(
            {
                "subtype": subtype,
                "n_lymphocytes": int(quantified["n_lymphocytes"].sum()),
                "eosin_fraction": float(
                    (quantified["eosin_fraction"] * weight).sum() / weight.sum()
                ),
                "truth_n_lymphocytes": truth["n_lymphocytes"],
                "truth_stroma_fraction": truth["stroma_fraction"],
            }
        )
    return pd.DataFrame(rows), tiles


def test_lymphocyte_counts_follow_planted_truth(demo):
    slides, _ = demo
    rho = spearmanr(slides["n_lymphocytes"], slides["truth_n_lymphocytes"]).statistic
    ratio = slides["n_lymphocytes"] / slides["truth_n_lymphocytes"]
    print(f"Spearman {rho:.3f}; counted / planted {ratio.round(2).tolist()}")
    assert rho >= 0.9
    assert ratio.between(0.75, 1.33).all()


def test_stroma_fraction_is_highest_in_stromal_subtype(demo):
    slides, _ = demo
    by_subtype = slides.groupby("subtype")["eosin_fraction"]
    assert by_subtype.min()["RDLS3"] > max(by_subtype.max()["RDLS1"], by_subtype.max()["RDLS2"])
    rho = spearmanr(slides["eosin_fraction"], slides["truth_stroma_fraction"]).statistic
    assert rho >= 0.8


def test_tile_table_has_one_row_per_tile_and_valid_values(demo):
    _, tiles = demo
    table = quantify_tiles(tiles[2], mpp=MPP, settings=TileSettings())
    assert len(table) == len(tiles[2]) == 16
    assert table["tile"].tolist() == list(range(16))
    assert set(table["tile_class"]) <= {"tumour", "stroma", "lymphocyte_rich", "background"}
    for column in ("lymphocyte_score", "stroma_score", "eosin_fraction", "tissue_fraction"):
        assert table[column].between(0.0, 1.0).all(), column
    assert (table["n_lymphocytes"] <= table["n_nuclei"]).all()
    assert {"stroma", "tumour"} <= set(table["tile_class"])  # RDLS3 slide: both present


def test_a_drawn_lymphocyte_is_counted_in_its_compartment():
    """A dark disc 7 um across at 0.5 um/px on pink tissue is one lymphocyte, in stroma."""
    rgb = np.full((128, 128, 3), (200, 150, 190), dtype=np.uint8)  # pale eosin-pink tissue
    rows, cols = np.mgrid[:128, :128]
    rgb[(rows - 64) ** 2 + (cols - 64) ** 2 <= 7**2] = (40, 30, 90)
    summary, nuclei, _ = quantify_tile_detail(rgb, mpp=MPP)
    assert summary["n_lymphocytes"] == 1 and summary["n_lymphocytes_stroma"] == 1
    assert nuclei["nucleus_class"].tolist() == ["lymphocyte"]
    assert nuclei["compartment"].tolist() == ["stroma"]
    assert summary["epithelium_mm2"] == 0.0
    assert summary["stroma_mm2"] == pytest.approx(summary["tissue_mm2"])
    assert summary["tissue_mm2"] == pytest.approx((128 * MPP / 1000) ** 2)


def test_a_lymphocyte_inside_a_nest_is_intratumoral_and_one_beside_it_stromal():
    """Pale vesicular tumour nuclei packed in a nest, one lymphocyte among them and one in the
    stroma 10 um beyond the nest's outer nuclei."""
    rgb = np.full((256, 256, 3), (215, 150, 185), dtype=np.uint8)
    rows, cols = np.mgrid[:256, :256]
    for y in range(50, 200, 26):  # nuclei 11 um across, 13 um apart, over 75 um
        for x in range(50, 200, 26):
            if (y, x) != (128, 128):
                rgb[(rows - y) ** 2 + (cols - x) ** 2 <= 11**2] = (120, 90, 170)
    rgb[(rows - 128) ** 2 + (cols - 128) ** 2 <= 7**2] = (40, 30, 90)  # lymphocyte in the nest
    rgb[(rows - 128) ** 2 + (cols - 232) ** 2 <= 7**2] = (40, 30, 90)  # and 10 um outside it
    summary, nuclei, _ = quantify_tile_detail(rgb, mpp=MPP)
    lymphocytes = nuclei[nuclei["nucleus_class"] == "lymphocyte"].sort_values("col")
    assert lymphocytes["compartment"].tolist() == ["epithelium", "stroma"]
    assert (nuclei.loc[nuclei["nucleus_class"] == "tumour", "compartment"] == "epithelium").all()
    assert summary["n_lymphocytes_epithelium"] == 1 and summary["n_lymphocytes_stroma"] == 1
    assert 0.006 <= summary["epithelium_mm2"] <= 0.009  # nuclei span 72 um: ~80 um square nest


def test_the_detail_tables_keep_the_tile_of_each_nucleus(demo):
    _, tiles = demo
    table, nuclei, cells = quantify_tiles_detail(tiles[2][:3], mpp=MPP)
    assert len(table) == 3 and len(cells) == 3 and cells[0].shape == (64, 64)
    assert set(nuclei["tile"]) <= {0, 1, 2} and len(nuclei) > 0
    counted = nuclei[nuclei["nucleus_class"] == "lymphocyte"].groupby("tile").size()
    assert counted.reindex(range(3), fill_value=0).tolist() == table["n_lymphocytes"].tolist()


def test_macenko_keeps_shape_and_undoes_a_stain_shift(demo):
    _, tiles = demo
    tile = tiles[1][5]
    normalised = macenko_normalise(tile)
    assert normalised.shape == tile.shape and normalised.dtype == np.uint8
    # Shift the stains: scale each channel's optical density differently.
    od = -np.log((tile.astype(float) + 1.0) / 256.0)
    shifted = np.clip(256.0 * np.exp(-od * np.array([1.3, 0.85, 1.15])) - 1.0, 0, 255)
    shifted = shifted.astype(np.uint8)
    before = np.abs(shifted.astype(float) - normalised).mean()
    after = np.abs(macenko_normalise(shifted).astype(float) - normalised).mean()
    assert after < 0.5 * before


def test_macenko_returns_a_blank_tile_unchanged():
    white = np.full((64, 64, 3), 245, dtype=np.uint8)
    assert np.array_equal(macenko_normalise(white), white)


@pytest.mark.parametrize("normalisation", ["none", "macenko"])
def test_white_tile_is_background_without_nuclei(normalisation):
    white = np.full((256, 256, 3), 242, dtype=np.uint8)
    result = quantify_tile(white, mpp=MPP, settings=TileSettings(stain_normalisation=normalisation))
    assert result["tile_class"] == "background"
    assert result["n_nuclei"] == 0 and result["n_lymphocytes"] == 0
    assert result["tissue_fraction"] == 0.0


def test_unknown_stain_normalisation_is_refused():
    with pytest.raises(
        ValueError, match=r"stain_normalisation must be one of none, macenko, got 'reinhard'"
    ):
        TileSettings(stain_normalisation="reinhard")
    assert issubclass(InputError, ValueError)


def test_non_rgb_input_is_refused():
    with pytest.raises(ValueError, match="drop the alpha channel"):
        quantify_tile(np.zeros((8, 8, 4), dtype=np.uint8), mpp=MPP)


def test_no_tiles_give_an_empty_table_with_the_columns():
    table, nuclei, cells = quantify_tiles_detail([], mpp=MPP, settings=TileSettings())
    assert table.empty and "lymphocyte_score" in table.columns
    assert nuclei.empty and {"nucleus_class", "compartment"} <= set(nuclei.columns)
    assert cells == []
