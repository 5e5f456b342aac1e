"""No significant subtypes: no contrast is made, the summaries say why, and the scores and the
overview are written for every sample with the note instead of tests."""

import pandas as pd
import pytest

from rdls.bulk import steps
from rdls.compare import NO_SUBTYPES_NOTE

from .conftest import planted_counts, write_cohort

NO_CONTRAST = f"no contrast between subtypes ({NO_SUBTYPES_NOTE})"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    counts, sheet, assignments = planted_counts(per_group=4, n_genes=200)
    return counts, write_cohort(tmp_path_factory.mktemp("none"), counts, sheet,
                                assignments.assign(subtype="none", confidence=float("nan"),
                                                   source="no_structure"))  # fmt: skip


def test_the_summaries_without_contrasts_say_why(cohort, tmp_path):
    _, paths = cohort
    steps.de_summary_step(tables={}, alpha=0.05, out_summary=tmp_path / "de.tsv",
                          assignments=paths["assignments"])  # fmt: skip
    steps.gsea_summary_step(tables={}, fdr=0.25, out_summary=tmp_path / "gsea.tsv",
                            assignments=paths["assignments"])  # fmt: skip
    de = pd.read_csv(tmp_path / "de.tsv", sep="\t")
    assert list(de.columns) == ["contrast", "genes_tested", "up", "down", "top_up", "top_down",
                                "note"]  # fmt: skip
    assert de["note"].tolist() == [NO_CONTRAST] and de["contrast"].isna().all()
    gsea = pd.read_csv(tmp_path / "gsea.tsv", sep="\t")
    assert gsea["note"].tolist() == [NO_CONTRAST] and gsea["term"].isna().all()


def test_no_contrast_names_one_subtype_or_none():
    one = pd.DataFrame({"subject_id": ["a", "b"], "subtype": ["RDLS2", "RDLS2"]})
    assert steps.no_contrast_note(one) == (
        "no contrast between subtypes (one subtype only (RDLS2): nothing to compare by subtype)"
    )
    assert steps.no_contrast_note(None) == "no contrast between subtypes"


def test_scores_of_every_sample_with_a_note_instead_of_tests(cohort, tmp_path):
    counts, paths = cohort
    gmt = tmp_path / "estimate.gmt"
    gmt.write_text("ImmuneSignature\tx\t" + "\t".join(counts.index[:20]) + "\n"
                   "StromalSignature\tx\t" + "\t".join(counts.index[20:40]) + "\n")  # fmt: skip
    out = {"out_scores": tmp_path / "scores.tsv", "out_tests": tmp_path / "tests.tsv",
           "out_png": tmp_path / "scores.png"}  # fmt: skip
    steps.scores_step(counts=paths["counts"], sheet=paths["sheet"],
                      assignments=paths["assignments"], gmt=gmt, settings={}, **out)  # fmt: skip
    scores = pd.read_csv(out["out_scores"], sep="\t")
    assert len(scores) == 12 and set(scores["subtype"]) == {"none"}
    assert scores["immune_score"].notna().all()
    tests = pd.read_csv(out["out_tests"], sep="\t")
    assert tests["metric"].tolist() == ["immune_score", "stromal_score", "estimate_score"]
    assert (tests["note"] == NO_SUBTYPES_NOTE).all() and tests["p_value"].isna().all()
    assert NO_SUBTYPES_NOTE in (tmp_path / "scores.svg").read_text()


@pytest.mark.filterwarnings("ignore:The dispersion trend curve fitting did not converge")
def test_the_overview_heatmap_says_there_is_no_contrast(cohort, tmp_path):
    _, paths = cohort
    out = {"out_vst": tmp_path / "vst.parquet", "out_pca_png": tmp_path / "pca.png",
           "out_heatmap_png": tmp_path / "heatmap.png"}  # fmt: skip
    steps.overview_step(**paths, settings={}, de_tables={}, **out)
    assert len(pd.read_parquet(out["out_vst"]).columns) == 13
    assert f"no contrast ({NO_SUBTYPES_NOTE})" in (tmp_path / "heatmap.svg").read_text()
