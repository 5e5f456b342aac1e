"""The tiny demo whose MRI carries no subtype (demo.mri_signal: none): consensus clustering finds
no significant subtypes, the whole workflow still completes, and every step after it says why
it has nothing to compare by subtype."""

import html
import json

import pandas as pd
import pytest

from tests.integration.conftest import TINY_IMAGING, deploy, snakemake

pytestmark = pytest.mark.integration

NOTE = "no significant subtypes: nothing to compare by subtype"
# The tiny demo as the other integration tests run it, with the null MRI variant, and the
# default rule. Its 24 training subjects split by tumour size (k = 2: Holm-adjusted p 1e-6
# against the normal null), but the two halves of that continuum are not separated (dip test
# p 0.13 on the line between them), so the rule declares no subtypes.
TINY_NULL = "demo:\n  scale: tiny\n  mri_signal: none\n" + TINY_IMAGING


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    workdir = deploy(tmp_path_factory.mktemp("tiny_null"), TINY_NULL)
    snakemake(workdir, "--cores", "2", "--configfile", "override.yaml")  # rule all
    return workdir / "results"


def read(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def test_consensus_finds_no_structure_and_every_subject_is_none(null_run):
    structure = json.loads((null_run / "subtypes/consensus/structure.json").read_text())
    assert structure["structure"] is False and structure["k"] is None
    assert structure["message"].startswith("No significant subtypes")
    assert "not separated" in structure["message"] and structure["separated_only"] is True
    assignments = read(null_run / "subtypes/assignments.tsv")
    assert len(assignments) == 60 and set(assignments["subtype"]) == {"none"}
    assert set(assignments["source"]) == {"no_structure"}
    assert (assignments["confidence"] == "").all()
    cv = read(null_run / "subtypes/classifier/cross_validation.tsv")
    assert cv["note"].tolist() == [f"no classifier fitted: {structure['message']}"]
    table_one = read(null_run / "subtypes/table_one.tsv")
    assert "none" not in table_one.columns and "overall" in table_one.columns


def test_survival_is_the_whole_cohort_without_subtype_or_rrs(null_run):
    for path in (null_run / "survival/km").glob("*_logrank.tsv"):
        assert read(path)["note"].tolist() == [NOTE], path.name
    cox = read(null_run / "survival/cox/hazard_ratios.tsv")
    assert not cox["term"].str.startswith("subtype").any()
    assert cox["note"].str.startswith(f"{NOTE}; the model has no subtype term").all()
    model = json.loads((null_run / "survival/rrs/model.json").read_text())
    assert model["features"] == [] and model["notes"][0].startswith("no RRS (")
    models = set(read(null_run / "survival/comparison/auc.tsv")["model"])
    assert "clinical" in models and "clinical + RRS" not in models  # comparators may stay
    difference = read(null_run / "survival/comparison/auc_difference.tsv")
    noted = difference[difference["note"] != ""]
    assert len(noted) == 4 and (noted["note"] == model["notes"][0]).all()
    assert "clinical + RRS" not in set(difference["model_b"])


def test_biology_branches_write_their_outputs_with_the_note(null_run):
    assert not list((null_run / "bulk/deseq2").glob("*_vs_*.tsv"))  # no contrast
    expected = f"no contrast between subtypes ({NOTE})"
    for summary in ("bulk/deseq2/summary.tsv", "bulk/gsea/summary.tsv"):
        assert read(null_run / summary)["note"].tolist() == [expected], summary
    for tests in ("wsi/by_subtype.tsv", "bulk/scores/tests.tsv", "bulk/deconvolution/tests.tsv"):
        assert (read(null_run / tests)["note"] == NOTE).all(), tests
    scrna = read(null_run / "scrna/by_subtype/tests.tsv")
    assert len(scrna) > 0 and (scrna["note"] == f"not computable: {NOTE}").all()


def test_the_report_says_no_significant_subtypes_with_the_numbers(null_run):
    structure = json.loads((null_run / "subtypes/consensus/structure.json").read_text())
    page = (null_run / "report/subtype_biology.html").read_text(encoding="utf-8")
    statement = f'<p class="notice warning">{html.escape(structure["message"])}</p>'
    assert page.count(statement) == 3  # the overview, the cards and the subtypes section
    assert "<h3>No significant subtypes</h3>" in page  # the one card
    assert 'class="notice error"' not in page
    for what in ("Survival", "Slide metrics", "Bulk RNA-seq", "Cell-type composition"):
        assert f"{what}: nothing to compare by subtype (no significant subtypes)." in page
