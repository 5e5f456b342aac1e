"""Synthetic slides open in OpenSlide at the right scale and carry the truth they report:
compartments counted pixel by pixel and nuclei counted one by one."""

import numpy as np
import openslide
import pandas as pd
import pytest
from scipy.spatial import cKDTree
from scipy.stats import spearmanr
from skimage import measure

from rdls.demo._plan import CENTRES, SUBTYPES, item_rng
from rdls.demo._slides import MARGIN_UM, write_slide

TINY = (2048, 1536)
SLIDES_PER_SUBTYPE = 4
CENTRE_MPPS = sorted({centre["slide_mpp"] for centre in CENTRES.values()})
PHENOTYPES = {"RDLS1": "excluded", "RDLS2": "inflamed", "RDLS3": "desert"}

# Independent reading of the pixels: haematoxylin absorbs red, and only lymphocytes are dark
# enough to pass this threshold over more than a few um2 (nucleoli and plasma-cell chromatin
# clumps pass it in specks); glass and lumens are near white, every stained class darker.
LYMPHOCYTE_MAX_RED = 72
NUCLEOLUS_MAX_RED = 75  # the nuclear rim, next darkest inside a tumour nucleus, stays above
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
            out_path=path,
            subtype=subtype,
            mpp=mpp,
            size_px=TINY,
            rng=item_rng(7, "slides", i),
            nuclei_out=folder / f"H{i:02d}.parquet",
        )
        nuclei = pd.read_parquet(folder / f"H{i:02d}.parquet")
        slides.append({"path": path, "subtype": subtype, "truth": truth, "nuclei": nuclei})
    return slides


def _level0(path) -> np.ndarray:
    slide = openslide.OpenSlide(path)
    return np.asarray(slide.read_region((0, 0), 0, slide.dimensions).convert("RGB"))


def _measure(rgb: np.ndarray, mpp: float) -> dict:
    """Lymphocytes (dark, compact components of lymphocyte size) and tissue area in pixels."""
    dark = measure.label(rgb[..., 0] < LYMPHOCYTE_MAX_RED)
    areas_um2 = np.array([r.area for r in measure.regionprops(dark)]) * mpp**2
    # A 6-7.5 um disc covers 28-44 um2; the lower bound also drops specks and discs cut by
    # the image edge.
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
        path = tmp_path / f"{name}.tiff"
        truth = write_slide(
            out_path=path,
            subtype="RDLS2",
            mpp=0.5,
            size_px=TINY,
            rng=item_rng(3, "slides", index),
            nuclei_out=tmp_path / f"{name}.parquet",
        )
        return path.read_bytes(), truth, pd.read_parquet(tmp_path / f"{name}.parquet")

    first, first_truth, first_nuclei = draw("a", 0)
    again, again_truth, again_nuclei = draw("b", 0)
    other, other_truth, _ = draw("c", 1)
    assert first == again
    assert first_truth == again_truth
    pd.testing.assert_frame_equal(first_nuclei, again_nuclei)
    assert first != other
    assert first_truth["n_lymphocytes"] != other_truth["n_lymphocytes"]


def test_lymphocytes_counted_from_pixels_match_truth(cohort):
    measured, planted = [], []
    for item in cohort:
        truth = item["truth"]
        found = _measure(_level0(item["path"]), truth["mpp"])
        measured.append(found["n_lymphocytes"] / found["tissue_mm2"])
        planted.append(truth["lymphocyte_density_mm2"])
        # Every lymphocyte is a whole dark disc of its own: no other nucleus overlaps it.
        assert found["n_lymphocytes"] == pytest.approx(truth["n_lymphocytes"], rel=0.02)
        assert found["tissue_mm2"] == pytest.approx(truth["tissue_mm2"], rel=0.01)
        assert 6.0 <= found["diameter_um"] <= 7.5
    assert spearmanr(measured, planted).statistic >= 0.9


def test_lymphocyte_size_follows_microns_per_pixel(tmp_path):
    path = tmp_path / "fine.tiff"
    truth = write_slide(
        out_path=path, subtype="RDLS2", mpp=0.25, size_px=TINY, rng=item_rng(5, "slides", 0)
    )
    found = _measure(_level0(path), 0.25)
    assert 6.0 <= found["diameter_um"] <= 7.5
    assert found["n_lymphocytes"] == pytest.approx(truth["n_lymphocytes"], rel=0.02)


def test_tumour_nuclei_are_vesicular_with_nucleoli(cohort):
    """Inside tumour nuclei: small dark specks (nucleoli, 1-2 um) on paler chromatin."""
    for item in cohort[:6]:
        rgb, nuclei, mpp = _level0(item["path"]), item["nuclei"], item["truth"]["mpp"]
        specks = measure.label(rgb[..., 0] < NUCLEOLUS_MAX_RED)
        props = measure.regionprops(specks)
        areas_um2 = np.array([p.area for p in props]) * mpp**2
        centres = np.array([p.centroid for p in props])[(areas_um2 >= 0.2) & (areas_um2 <= 4.0)]
        tumour = nuclei[nuclei["class"] == "tumour"]
        others = nuclei[nuclei["class"] != "tumour"]
        # Every speck near no other kind of nucleus lies inside a tumour nucleus.
        distance_other, _ = cKDTree(others[["y", "x"]]).query(centres)
        distance, nearest = cKDTree(tumour[["y", "x"]]).query(centres)
        own = distance_other * mpp > 6.0
        inside = distance * mpp <= tumour["long_um"].to_numpy()[nearest] / 2
        assert inside[own].mean() >= 0.97
        # Nearly every tumour nucleus holds one or two of them.
        holding = np.bincount(nearest[inside], minlength=len(tumour))
        assert np.mean(holding >= 1) >= 0.85
        assert np.mean(holding <= 2) >= 0.97
        # Their chromatin is pale: the centre pixel is far lighter than a lymphocyte.
        centre_red = rgb[tumour["y"], tumour["x"], 0].astype(float)
        assert np.median(centre_red) > 100


def test_nucleus_table_matches_the_truth(cohort):
    for item in cohort:
        t, nuclei = item["truth"], item["nuclei"]
        assert list(nuclei.columns) == ["x", "y", "class", "compartment", "long_um", "short_um"]
        counts = nuclei["class"].value_counts()
        assert counts.get("lymphocyte", 0) == t["n_lymphocytes"]
        assert counts.get("tumour", 0) == t["n_tumour_nuclei"]
        assert counts.get("fibroblast", 0) == t["n_fibroblasts"]
        assert counts.get("plasma", 0) == t["n_plasma_cells"]
        lymphocytes = nuclei[nuclei["class"] == "lymphocyte"]
        inside = np.count_nonzero(lymphocytes["compartment"] == "epithelium")
        assert inside / t["tumour_mm2"] == pytest.approx(t["intratumoral_lymphocyte_density_mm2"])
        by_class = nuclei.groupby("class")["compartment"].agg(set)
        assert by_class["tumour"] == {"epithelium"}
        assert by_class["fibroblast"] <= {"stroma"} and by_class["plasma"] <= {"stroma"}
        assert by_class["lymphocyte"] <= {"stroma", "epithelium"}
        sizes = nuclei.groupby("class")[["long_um", "short_um"]].median()
        assert 9.0 <= sizes.loc["tumour", "long_um"] <= 14.0
        assert 6.0 <= sizes.loc["tumour", "short_um"] <= 9.0
        assert 10.0 <= sizes.loc["fibroblast", "long_um"] <= 16.0
        assert 2.5 <= sizes.loc["fibroblast", "short_um"] <= 4.0
        assert 6.0 <= sizes.loc["lymphocyte", "long_um"] <= 7.5
        # Epithelium is packed with tumour nuclei, stroma holds few nuclei.
        assert 3000 <= t["n_tumour_nuclei"] / t["tumour_mm2"] <= 9000


def test_planted_order_of_subtypes(cohort):
    def median(subtype, key):
        return np.median([s["truth"][key] for s in cohort if s["subtype"] == subtype])

    intratumoral = {s: median(s, "intratumoral_lymphocyte_density_mm2") for s in SUBTYPES}
    exclusion = {s: median(s, "exclusion_index") for s in SUBTYPES}
    stroma = {s: median(s, "stroma_fraction") for s in SUBTYPES}
    assert max(intratumoral, key=intratumoral.get) == "RDLS2"
    assert intratumoral["RDLS2"] > 4 * max(intratumoral["RDLS1"], intratumoral["RDLS3"])
    assert max(exclusion, key=exclusion.get) == "RDLS1"
    assert exclusion["RDLS1"] > 3 * max(exclusion["RDLS2"], exclusion["RDLS3"])
    assert max(stroma, key=stroma.get) == "RDLS3"
    assert stroma["RDLS3"] > 0.55 > max(stroma["RDLS1"], stroma["RDLS2"])
    for item in cohort:
        t = item["truth"]
        assert t["immune_phenotype"] == PHENOTYPES[item["subtype"]]
        if item["subtype"] == "RDLS1":  # excluded: lymphocytes pile up at the nest margins
            assert t["margin_lymphocyte_density_mm2"] > t["stromal_lymphocyte_density_mm2"]
            assert t["margin_lymphocyte_density_mm2"] > 5 * t["intratumoral_lymphocyte_density_mm2"]
        if item["subtype"] == "RDLS3":  # desert: few anywhere
            assert t["lymphocyte_density_mm2"] < 600


def test_truth_adds_up(cohort):
    for item in cohort:
        t = item["truth"]
        assert t["tissue_mm2"] == pytest.approx(t["tumour_mm2"] + t["stroma_mm2"])
        assert t["stroma_fraction"] == pytest.approx(t["stroma_mm2"] / t["tissue_mm2"])
        assert t["tumour_stroma_ratio"] == pytest.approx(t["tumour_mm2"] / t["stroma_mm2"])
        n_tumour = t["intratumoral_lymphocyte_density_mm2"] * t["tumour_mm2"]
        n_stroma = t["stromal_lymphocyte_density_mm2"] * t["stroma_mm2"]
        assert n_tumour + n_stroma == pytest.approx(t["n_lymphocytes"])
        assert t["exclusion_index"] == pytest.approx(
            t["stromal_lymphocyte_density_mm2"] / max(t["intratumoral_lymphocyte_density_mm2"], 1.0)
        )
        assert t["margin_um"] == MARGIN_UM
        assert 0 < t["margin_mm2"] <= t["stroma_mm2"]
        n_margin = t["margin_lymphocyte_density_mm2"] * t["margin_mm2"]
        assert n_margin <= n_stroma + 1e-6
        assert n_margin == pytest.approx(round(n_margin), abs=1e-6)
        assert 0 < t["lumen_mm2"] < 0.2 * t["tumour_mm2"]
        field_mm2 = TINY[0] * TINY[1] * (t["mpp"] / 1000.0) ** 2
        assert 0.45 <= (t["tissue_mm2"] + t["lumen_mm2"]) / field_mm2 <= 0.8


def test_unknown_subtype_is_refused(tmp_path):
    with pytest.raises(ValueError, match="RDLS4"):
        write_slide(
            out_path=tmp_path / "x.tiff",
            subtype="RDLS4",
            mpp=0.5,
            size_px=TINY,
            rng=np.random.default_rng(0),
        )
