"""rdls.report.inputs: the report asks for every file it shows, and only for branches that run."""

import re

import pytest

from rdls.report.inputs import BRANCHES, FILES, contrast_inputs, items, report_inputs
from tests.conftest import REPO
from tests.unit.report.fixtures import COHORTS, CONTRASTS, SLIDES

ITEMS = dict(
    cohorts=list(COHORTS),
    survival_cohorts=list(COHORTS),
    shards=["training-00", "external_validation-00"],
    slides=list(SLIDES),
    contrasts=list(CONTRASTS),
)


def test_every_branch_off_leaves_the_cohort_and_qc():
    inputs = report_inputs(branches={}, **ITEMS)
    assert inputs == {
        "cohort_overview": "results/cohort/overview.tsv",
        "cohort_figure": "results/cohort/overview.png",
        "qc_exclusions": "results/qc/exclusions.tsv",
    }


def test_slides_without_subtypes_have_no_comparison_by_subtype():
    inputs = report_inputs(branches={"wsi": True}, **ITEMS)
    assert inputs["heatmaps"] == [f"results/wsi/heatmaps/{s}.png" for s in SLIDES]
    assert "wsi_by_subtype" not in inputs and "assignments" not in inputs


def test_per_subtype_examples_replace_the_qc_montages_once_subtypes_run():
    imaging = report_inputs(branches={"imaging": True}, **ITEMS)
    assert imaging["montages"] == [f"results/imaging/montages/{c}.png" for c in COHORTS]
    assert "crops" not in imaging
    both = report_inputs(branches={"imaging": True, "subtypes": True}, **ITEMS)
    assert "montages" not in both
    assert both["crops"] == [
        "results/imaging/crops/training-00.npz",
        "results/imaging/crops/external_validation-00.npz",
    ]


def test_bulk_contrasts_and_no_empty_lists():
    inputs = report_inputs(branches={"bulk": True, "subtypes": True}, **{**ITEMS, "slides": []})
    assert inputs["gsea"] == [f"results/bulk/gsea/{c}.tsv" for c in CONTRASTS]
    assert inputs["volcanoes"][0] == "results/bulk/deseq2/RDLS1_vs_rest_volcano.png"
    no_contrasts = report_inputs(branches={"bulk": True, "subtypes": True})
    assert "deseq2" not in no_contrasts and "bulk_pca" in no_contrasts


def test_unknown_branch_is_refused():
    with pytest.raises(ValueError, match="unknown branch"):
        report_inputs(branches={"proteomics": True})


def test_items_are_read_back_from_paths():
    km = report_inputs(branches={b: True for b in BRANCHES}, **ITEMS)["km_figures"]
    assert items(km, "km_figures") == {c: f"results/survival/km/{c}.png" for c in COHORTS}
    assert items(["x/results/bulk/deseq2/RDLS1_vs_rest_volcano.png"], "volcanoes") == {
        "RDLS1_vs_rest": "x/results/bulk/deseq2/RDLS1_vs_rest_volcano.png"
    }
    with pytest.raises(ValueError, match="does not match"):
        items(["results/survival/km/training.svg"], "km_figures")


def test_discovery_finds_what_the_rule_would_ask_for(results_tree):
    root, found = results_tree
    expected = report_inputs(branches={b: True for b in BRANCHES}, root=str(root), **ITEMS)
    as_sets = {k: set(v) if isinstance(v, list) else v for k, v in expected.items()}
    assert {k: set(v) if isinstance(v, list) else v for k, v in found.items()} == as_sets


def test_every_file_is_an_output_of_a_rule_of_the_workflow():
    """The report's patterns match the rules' outputs, for every branch whose rules exist."""
    rules = REPO / "workflow" / "rules"
    text = "\n".join(p.read_text() for p in rules.glob("*.smk"))
    branch_files = {"imaging": "imaging", "subtypes": "subtypes", "survival": "survival",
                    "wsi": "wsi", "scrna": "scrna", "bulk": "bulk"}  # fmt: skip
    checked = 0
    for key, (pattern, needs, _) in FILES.items():
        if any(not (rules / f"{branch_files[b]}.smk").is_file() for b in needs):
            continue  # the branch's rules are not in this version of the workflow
        regex = re.escape(f"results/{pattern}")
        regex = re.sub(r"\\\{\w+\\\}", r"\\{\\w+\\}", regex)
        assert re.search(regex, text), f"no rule writes results/{pattern} ({key})"
        checked += 1
    assert checked >= 40


def test_contrast_files_come_alone_for_the_second_input_function():
    contrasts = contrast_inputs(["RDLS1_vs_rest"])
    assert contrasts == {
        "deseq2": ["results/bulk/deseq2/RDLS1_vs_rest.tsv"],
        "volcanoes": ["results/bulk/deseq2/RDLS1_vs_rest_volcano.png"],
        "gsea": ["results/bulk/gsea/RDLS1_vs_rest.tsv"],
        "gsea_figures": ["results/bulk/gsea/RDLS1_vs_rest.png"],
    }
    assert contrast_inputs([]) == {}
    everything = report_inputs(branches={b: True for b in BRANCHES}, **ITEMS)
    rest = report_inputs(branches={b: True for b in BRANCHES}, **{**ITEMS, "contrasts": []})
    assert {**rest, **contrast_inputs(CONTRASTS)} == everything
