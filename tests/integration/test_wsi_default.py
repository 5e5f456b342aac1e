"""The whole-slide branch on the default demo's 60 slides recovers the planted biology (the
issue's acceptance numbers, checked on every CI run)."""

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slides(default_run):
    metrics = pd.read_csv(default_run / "results/wsi/slide_metrics.tsv", sep="\t")
    truth = pd.read_csv(default_run / "results/demo/default/truth/slides.tsv", sep="\t")
    return metrics.merge(truth, on="slide_id", suffixes=("", "_true"))


@pytest.mark.parametrize(
    ("column", "minimum"),
    [("lymphocyte_density_mm2", 0.9), ("stroma_fraction", 0.7), ("tissue_mm2", 0.9)],
)
def test_slide_measures_follow_the_planted_truth(slides, column, minimum):
    rho = slides[[column, f"{column}_true"]].corr("spearman").iloc[0, 1]
    print(f"{column}: Spearman {rho:.3f} against the planted truth ({len(slides)} slides)")
    assert rho >= minimum


def test_subtype_order_of_the_slide_biology_is_the_planted_one(default_run):
    table = pd.read_csv(default_run / "results/wsi/by_subtype.tsv", sep="\t")
    medians = table[table["comparison"] == "all"].set_index("metric")
    print(medians.filter(like="median_").to_string())
    intratumoral = medians.loc["intratumoral_lymphocyte_density_mm2"]
    assert (
        intratumoral["median_RDLS2"] > intratumoral["median_RDLS3"] > intratumoral["median_RDLS1"]
    )
    assert intratumoral["p_value"] < 0.05
    exclusion = medians.loc["exclusion_index"]
    assert exclusion["median_RDLS1"] > exclusion["median_RDLS3"] > exclusion["median_RDLS2"]
    stroma = medians.loc["stroma_fraction"]
    assert stroma["median_RDLS3"] > max(stroma["median_RDLS1"], stroma["median_RDLS2"])
