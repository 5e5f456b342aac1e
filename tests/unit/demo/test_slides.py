"""Synthetic slides open in OpenSlide at the right scale and carry the truth they report."""

import numpy as np
import openslide
import pytest
from scipy.stats import spearmanr
from skimage import measure

from rdls.demo._plan import CENTRES, SUBTYPES, item_rng
from rdls.demo._slides import write_slide

TINY = (2048, 1536)
SLIDES_PER_SUBTYPE = 4
CENTRE_MPPS = sorted({centre["slide_mpp"] for centre in CENTRES.values()})

# Independent reading of the pixels: haematoxylin absorbs red, and only lymphocytes are dark
# enough to pass this threshold; glass is near white, every stained class is darker.
LYMPHOCYTE_MAX_RED = 72
TISSUE_MAX_GREEN = 215


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Tiny slides, SLIDES_PER_SUBTYPE of each subtype, across the centres' scanner mpps."""
    folder = tmp_path_factory.mktemp("slides")
    slides = []
    for i in range(SLIDES_PER_SUBTYPE * len(SUBTYPES)):
        subtype = SUBTYPES[i % len(SUBTYPES)]
        mpp = CENTRE_MPPS[i % len(CENTRE_MPPS)]
        path = folder / f"H{i:02d}.tiff"
        truth = write_slide(
            out_path=path, subtype=subtype, mpp=mpp, size_px=TINY, rng=item_rng(7, "slides", i)
        )
        slides.append({"path": path, "subtype": subtype, "truth": truth})
    return slides


def _level0(path) -> np.ndarray:
    slide = openslide.OpenSlide(path)
    return np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB"))


def _measure(rgb: np.ndarray, mpp: float) -> dict:
    """Lymphocytes (dark, compact components of lymphocyte size) and tissue area in pixels."""
    dark = measure.label(rgb[..., 0] < LYMPHOCYTE_MAX_RED)
    areas_um2 = np.array([r.area for r in measure.regionprops(dark)]) * mpp**2
    # A 6-8 um disc covers 28-50 um2; the lower bound also drops discs cut by the image edge.
    lymphocytes = areas_um2[(areas_um2 > 20.0) & (areas_um2 < 70.0)]
    tissue_mm2 = np.count_nonzero(rgb[..., 1] < TISSUE_MAX_GREEN) * (mpp / 1000.0) ** 2
    return {
        "n_lymphocytes": len(lymphocytes),
        "diameter_um": 2.0 * np.sqrt(np.median(lymphocytes) / np.pi),
        "tissue_mm2": tissue_mm2,
    }


def test_openslide_reads_pyramid_at_scanner_resolution(cohort):
    for item in cohort:
        slide = openslide.OpenSlide(item["path"])
        mpp = item["truth"]["mpp"]
        assert slide.dimensions == TINY
        assert slide.level_count == 3  # 2048x1536 -> 1024x768 -> 512x384
        assert slide.level_downsamples == pytest.approx((1.0, 2.0, 4.0))
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(mpp, 1e-6)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(mpp, 1e-6)

    slide = openslide.OpenSlide(cohort[0]["path"])
    corner = np.asarray(slide.read_region((0, 0), 0, (256, 256)).convert("RGB"))
    overview = np.asarray(slide.read_region((0, 0), 2, (512, 384)).convert("RGB"))
    assert corner.shape == (256, 256, 3)
    assert corner.min() > 200  # the corner is glass: the tissue blob stays clear of it
    tissue = overview[..., 1] < TISSUE_MAX_GREEN
    assert 0.4 < tissue.mean() < 0.85


def test_same_seed_gives_identical_file(tmp_path):
    def draw(name, index):
        path = tmp_path / name
        truth = write_slide(
            out_path=path, subtype="RDLS2", mpp=0.5, size_px=TINY, rng=item_rng(3, "slides", index)
        )
        return path.read_bytes(), truth

    first, first_truth = draw("a.tiff", 0)
    again, again_truth = draw("b.tiff", 0)
    other, other_truth = draw("c.tiff", 1)
    assert first == again
    assert first_truth == again_truth
    assert first != other
    assert first_truth["n_lymphocytes"] != other_truth["n_lymphocytes"]


def test_lymphocytes_counted_from_pixels_match_truth(cohort):
    measured, planted = [], []
    for item in cohort:
        truth = item["truth"]
        found = _measure(_level0(item["path"]), truth["mpp"])
        measured.append(found["n_lymphocytes"] / found["tissue_mm2"])
        planted.append(truth["lymphocyte_density_mm2"])
        assert found["n_lymphocytes"] == pytest.approx(truth["n_lymphocytes"], rel=0.02)
        assert found["tissue_mm2"] == pytest.approx(truth["tissue_mm2"], rel=0.01)
        assert 6.0 <= found["diameter_um"] <= 8.0
    assert spearmanr(measured, planted).statistic >= 0.9


def test_lymphocyte_size_follows_microns_per_pixel(tmp_path):
    path = tmp_path / "fine.tiff"
    truth = write_slide(
        out_path=path, subtype="RDLS2", mpp=0.25, size_px=TINY, rng=item_rng(5, "slides", 0)
    )
    found = _measure(_level0(path), 0.25)
    assert 6.0 <= found["diameter_um"] <= 8.0
    assert found["n_lymphocytes"] == pytest.approx(truth["n_lymphocytes"], rel=0.02)


def test_planted_order_of_subtypes(cohort):
    def mean(subtype, key):
        return np.mean([s["truth"][key] for s in cohort if s["subtype"] == subtype])

    intratumoral = {s: mean(s, "intratumoral_lymphocyte_density_mm2") for s in SUBTYPES}
    exclusion = {s: mean(s, "exclusion_index") for s in SUBTYPES}
    stroma = {s: mean(s, "stroma_fraction") for s in SUBTYPES}
    assert max(intratumoral, key=intratumoral.get) == "RDLS2"
    assert intratumoral["RDLS2"] > 4 * max(intratumoral["RDLS1"], intratumoral["RDLS3"])
    assert max(exclusion, key=exclusion.get) == "RDLS1"
    assert max(stroma, key=stroma.get) == "RDLS3"
    assert stroma["RDLS3"] > 0.55 > max(stroma["RDLS1"], stroma["RDLS2"])


def test_truth_adds_up(cohort):
    for item in cohort:
        t = item["truth"]
        assert t["tissue_mm2"] == pytest.approx(t["tumour_mm2"] + t["stroma_mm2"])
        assert t["stroma_fraction"] == pytest.approx(t["stroma_mm2"] / t["tissue_mm2"])
        n_tumour = t["intratumoral_lymphocyte_density_mm2"] * t["tumour_mm2"]
        n_stroma = t["stromal_lymphocyte_density_mm2"] * t["stroma_mm2"]
        assert n_tumour + n_stroma == pytest.approx(t["n_lymphocytes"])
        field_mm2 = TINY[0] * TINY[1] * (t["mpp"] / 1000.0) ** 2
        assert 0.45 <= t["tissue_mm2"] / field_mm2 <= 0.8


def test_unknown_subtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="RDLS4"):
        write_slide(
            out_path=tmp_path / "x.tiff",
            subtype="RDLS4",
            mpp=0.5,
            size_px=TINY,
            rng=np.random.default_rng(0),
        )
