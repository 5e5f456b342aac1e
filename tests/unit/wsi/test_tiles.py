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
    nucleus_table,
    quantify_tile,
    quantify_tiles,
    segment_nuclei,
    separate_stains,
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


def test_nucleus_table_measures_a_drawn_disc():
    """A dark disc 7 um across at 0.5 um/px is one round nucleus of ~38 um2: a lymphocyte."""
    rgb = np.full((128, 128, 3), 235, dtype=np.uint8)
    rgb[:] = (200, 150, 190)  # pale eosin-pink tissue
    rows, cols = np.mgrid[:128, :128]
    rgb[(rows - 64) ** 2 + (cols - 64) ** 2 <= 7**2] = (40, 30, 90)
    haematoxylin, _ = separate_stains(rgb)
    labels = segment_nuclei(haematoxylin, mpp=MPP, settings=TileSettings())
    table = nucleus_table(labels, haematoxylin, mpp=MPP)
    assert len(table) == 1
    assert table["area_um2"].iloc[0] == pytest.approx(np.pi * 3.5**2, rel=0.25)
    assert table["roundness"].iloc[0] > 0.9
    assert quantify_tile(rgb, mpp=MPP)["n_lymphocytes"] == 1


def test_watershed_splits_touching_nuclei():
    rgb = np.full((128, 128, 3), (200, 150, 190), dtype=np.uint8)
    rows, cols = np.mgrid[:128, :128]
    for centre in (56, 70):  # two 7 um discs whose centres are 7 um apart: they touch
        rgb[(rows - 64) ** 2 + (cols - centre) ** 2 <= 7**2] = (40, 30, 90)
    haematoxylin, _ = separate_stains(rgb)
    labels = segment_nuclei(haematoxylin, mpp=MPP, settings=TileSettings())
    assert labels.max() == 2


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
    table = quantify_tiles([], mpp=MPP, settings=TileSettings())
    assert table.empty and "lymphocyte_score" in table.columns
