"""Pixel-level compartments: nests from tumour nuclei, lumens, the slide mosaic, the margin band."""

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.wsi.compartments import (
    BACKGROUND,
    EPITHELIUM,
    LUMEN,
    STROMA,
    CompartmentSettings,
    assemble_mosaic,
    code_at,
    compartment_map,
    mosaic_cells,
    names,
    override_by_tile,
    place_on_mosaic,
)


def discs(shape, centres_um, radius_um, mpp):
    """Boolean mask of discs at micron centres (x, y)."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for x, y in centres_um:
        mask |= (cols * mpp - x) ** 2 + (rows * mpp - y) ** 2 <= radius_um**2
    return mask


def nest(mpp, *, side_um=128.0, spacing_um=14.0, box=(30.0, 90.0)):
    """A square nest of tumour nuclei (10 um across) in a tile of tissue."""
    shape = (round(side_um / mpp),) * 2
    grid = np.arange(box[0], box[1] + 1e-9, spacing_um)
    centres = [(x, y) for x in grid for y in grid]
    return np.ones(shape, dtype=bool), discs(shape, centres, 5.0, mpp)


def test_a_nest_of_tumour_nuclei_is_epithelium_and_its_surroundings_stroma():
    tissue, nuclei = nest(0.5)
    codes = compartment_map(tissue, nuclei, mpp=0.5)
    # Between nuclei of the nest (gap 4 um): epithelium; 8 um outside its outer nuclei: stroma.
    assert code_at(codes, [2 * 37.0], [2 * 37.0])[0] == EPITHELIUM
    assert code_at(codes, [2 * 60.0], [2 * (88.0 + 5.0 + 8.0)])[0] == STROMA
    area = np.count_nonzero(codes == EPITHELIUM) * 0.25
    assert 66.0**2 <= area <= 74.0**2  # nuclei span 25-91 um; the 4 um rim adds up to 8


def test_the_same_nest_at_another_resolution_has_the_same_area():
    areas = []
    for mpp in (0.25, 0.5):
        tissue, nuclei = nest(mpp)
        areas.append(np.count_nonzero(compartment_map(tissue, nuclei, mpp=mpp) == EPITHELIUM))
        areas[-1] *= mpp * mpp
    assert areas[0] == pytest.approx(areas[1], rel=0.03)


def test_a_lone_tumour_looking_nucleus_makes_no_nest():
    shape = (256, 256)
    nuclei = discs(shape, [(64.0, 64.0)], 5.0, 0.5)
    codes = compartment_map(np.ones(shape, dtype=bool), nuclei, mpp=0.5)
    assert not (codes == EPITHELIUM).any() and (codes == STROMA).all()


def test_glass_enclosed_by_a_gland_is_lumen_and_glass_outside_is_background():
    shape, mpp = (256, 256), 0.5
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = [(64 + 25 * np.cos(a), 64 + 25 * np.sin(a)) for a in angles]
    nuclei = discs(shape, ring, 5.0, mpp)
    tissue = ~discs(shape, [(64.0, 64.0)], 15.0, mpp)  # the gland's glass lumen
    tissue[:, 240:] = False  # glass beyond the tissue's edge
    codes = compartment_map(tissue, nuclei, mpp=mpp)
    assert code_at(codes, [128], [128])[0] == LUMEN
    assert code_at(codes, [128], [250])[0] == BACKGROUND
    assert code_at(codes, [128], [128 + 2 * 25])[0] == EPITHELIUM
    assert list(names([EPITHELIUM, LUMEN])) == ["epithelium", "lumen"]


def test_without_tumour_nuclei_all_tissue_is_stroma():
    tissue = np.zeros((64, 64), dtype=bool)
    tissue[:, :32] = True
    codes = compartment_map(tissue, np.zeros_like(tissue), mpp=0.5)
    assert (codes[:, :32] == STROMA).all() and (codes[:, 32:] == BACKGROUND).all()


def test_masks_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        compartment_map(np.ones((4, 4), bool), np.ones((4, 5), bool), mpp=0.5)


def test_mosaic_distances_and_margin_band_cross_tiles():
    """Epithelium fills the left tile; the right tile is stroma: distances run across the cut."""
    mpp, mosaic_um = 0.5, 2.0
    left = np.full((256, 256), EPITHELIUM, dtype=np.uint8)
    right = np.full((256, 256), STROMA, dtype=np.uint8)
    cells = [mosaic_cells(c, mpp=mpp, mosaic_um=mosaic_um) for c in (left, right)]
    assert cells[0].shape == (64, 64)
    mosaic, origin = assemble_mosaic(cells, np.array([[100.0, 50.0], [228.0, 50.0]]),
                                     mosaic_um=mosaic_um)  # fmt: skip
    assert mosaic.shape == (64, 128) and list(origin) == [100.0, 50.0]
    distance, in_margin, margin_mm2 = place_on_mosaic(
        [228.0 + 20.0, 228.0 + 60.0, 150.0], [80.0, 80.0, 80.0], mosaic, origin,
        mosaic_um=mosaic_um, margin_um=30.0,
    )  # fmt: skip
    assert distance[0] == pytest.approx(20.0, abs=mosaic_um)
    assert distance[2] == 0.0
    assert list(in_margin) == [True, False, True]
    assert margin_mm2 == pytest.approx(128 * 30 / 1e6, rel=0.08)


def test_a_slide_without_epithelium_has_infinite_distances_and_no_margin():
    mosaic = np.full((10, 10), STROMA, dtype=np.uint8)
    distance, in_margin, margin_mm2 = place_on_mosaic(
        [1.0], [1.0], mosaic, np.zeros(2), mosaic_um=2.0, margin_um=30.0
    )
    assert np.isinf(distance[0]) and not in_margin[0] and margin_mm2 == 0.0


def test_a_tile_classifier_overrules_the_pixel_map_of_its_tiles():
    tiles = pd.DataFrame({"tissue_mm2": [2.0, 2.0, 2.0], "epithelium_mm2": [1.0, 1.0, 1.0],
                          "stroma_mm2": [1.0, 1.0, 1.0], "n_lymphocytes_epithelium": [3, 3, 3],
                          "n_lymphocytes_stroma": [5, 5, 5]})  # fmt: skip
    nuclei = pd.DataFrame({"tile": [0, 1, 2, 2], "compartment": ["epithelium"] * 3 + ["stroma"]})
    cells = [np.array([[EPITHELIUM, STROMA]], dtype=np.uint8) for _ in range(3)]
    override_by_tile(tiles, nuclei, cells, ["tumour", "stroma", "other"])
    assert tiles["epithelium_mm2"].tolist() == [1.0, 0.0, 0.0]
    assert tiles["stroma_mm2"].tolist() == [1.0, 2.0, 0.0]
    assert tiles["tissue_mm2"].tolist() == [2.0, 2.0, 0.0]
    assert tiles["n_lymphocytes_stroma"].tolist() == [5, 8, 0]
    assert nuclei["compartment"].tolist() == ["epithelium", "stroma", "other", "other"]
    assert cells[1].tolist() == [[STROMA, STROMA]] and cells[0].tolist() == [[EPITHELIUM, STROMA]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"nest_gap_um": -1.0}, "nest_gap_um must be >= 0"),
        ({"margin_um": 0.0}, "margin_um must be > 0"),
        ({"mosaic_um": 40.0}, "must not exceed margin_um"),
    ],
)
def test_impossible_settings_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        CompartmentSettings(**options)
