"""A run without significant subtypes: the report says so at the top of the page and of the
subtypes section, with the consensus step's numbers, shows one card saying why instead of a
card per subtype, and every section that compares subtypes says why it has nothing to compare."""

import json

import pandas as pd
import pytest

from rdls.compare import NO_SUBTYPES_NOTE, compare_by_subtype
from rdls.report.build import build_report
from rdls.report.inputs import discover_inputs
from rdls.scrna.composition import compare_composition
from rdls.subtypes.no_structure import no_structure_assignments, note_tables, write_no_classifier
from rdls.survival.rrs import RRSModel
from rdls.survival.steps import DIFFERENCE_COLUMNS, GROUP_COLUMNS, no_rrs_reason
from tests.unit.no_structure import MESSAGE, STRUCTURE
from tests.unit.report.fixtures import ALL_ON, COHORTS, CONTRASTS, tsv, write_results

NO_RRS = no_rrs_reason(pd.Series(["none"]))


def without_structure(root):
    """The fixture tree rewritten as a run without subtypes writes it (the rdls writers)."""
    write_results(root)
    assignments = pd.read_csv(root / "subtypes/assignments.tsv", sep="\t")
    cohort = assignments.set_index("subject_id")["cohort"]
    none = no_structure_assignments(cohort)
    tsv(root / "subtypes/assignments.tsv", none)
    (root / "subtypes/consensus/structure.json").write_text(json.dumps(STRUCTURE))
    summary = pd.read_csv(root / "subtypes/consensus/summary.tsv", sep="\t")
    tsv(root / "subtypes/consensus/summary.tsv", summary.assign(chosen=False))
    tsv(root / "subtypes/consensus/subtype_rates.tsv",
        {"cluster": [0], "subtype": ["none"], "n": [12], "n_followup": [12], "events": [5],
         "person_months": [700.0], "rate_per_100_person_years": [8.6]})  # fmt: skip
    write_no_classifier(message=MESSAGE, out_model=root / "model.joblib",
                        out_cv=root / "subtypes/classifier/cross_validation.tsv")  # fmt: skip
    agreement, igp = note_tables(none, message=MESSAGE, training="training")
    tsv(root / "subtypes/agreement.tsv", agreement)
    tsv(root / "subtypes/in_group_proportion.tsv", igp)
    for cohort in COHORTS:
        tsv(root / f"survival/km/{cohort}_logrank.tsv",
            {"comparison": ["by subtype"], "statistic": [None], "df": [None],
             "p_value": [None], "p_adjusted": [None], "note": [NO_SUBTYPES_NOTE]})  # fmt: skip
    cox = pd.read_csv(root / "survival/cox/hazard_ratios.tsv", sep="\t")
    cox = cox[~cox["term"].str.startswith("subtype")]
    tsv(root / "survival/cox/hazard_ratios.tsv",
        cox.assign(note=f"{NO_SUBTYPES_NOTE}; the model has no subtype term"))  # fmt: skip
    (root / "survival/rrs/model.json").write_text(
        json.dumps(RRSModel.without_features(NO_RRS).to_dict())
    )
    scores = pd.read_csv(root / "survival/risk_scores.tsv", sep="\t")
    tsv(root / "survival/risk_scores.tsv", scores.assign(rrs=None, rrs_group=None))
    groups = pd.DataFrame({"cohort": list(COHORTS), "n": [12, 6], "events": [5, 2],
                           "note": [NO_RRS] * 2})  # fmt: skip
    tsv(root / "survival/rrs/groups.tsv", groups.reindex(columns=GROUP_COLUMNS))
    auc = pd.read_csv(root / "survival/comparison/auc.tsv", sep="\t")
    tsv(root / "survival/comparison/auc.tsv", auc[auc["model"] == "clinical"])
    difference = pd.DataFrame({"cohort": list(COHORTS), "model_a": "clinical", "note": NO_RRS})
    tsv(root / "survival/comparison/auc_difference.tsv",
        difference.reindex(columns=DIFFERENCE_COLUMNS))  # fmt: skip
    slides = pd.read_csv(root / "wsi/slide_metrics.tsv", sep="\t").assign(subtype="none")
    metrics = ["intratumoral_lymphocyte_density_mm2", "exclusion_index", "stroma_fraction"]
    tsv(root / "wsi/by_subtype.tsv", compare_by_subtype(slides, columns=metrics))
    bulk = pd.read_csv(root / "bulk/scores/scores.tsv", sep="\t").assign(subtype="none")
    tsv(root / "bulk/scores/scores.tsv", bulk)
    columns = ["immune_score", "stromal_score", "estimate_score"]
    tsv(root / "bulk/scores/tests.tsv", compare_by_subtype(bulk, columns=columns))
    fractions = pd.read_csv(root / "bulk/deconvolution/fractions.tsv", sep="\t")
    fractions = fractions.assign(subtype="none")
    tsv(root / "bulk/deconvolution/fractions.tsv", fractions)
    types = [c for c in fractions.columns if c not in ("sample_id", "subject_id", "subtype")]
    tsv(root / "bulk/deconvolution/tests.tsv", compare_by_subtype(fractions, columns=types))
    for contrast in CONTRASTS:
        for path in (root / "bulk").rglob(f"{contrast}*"):
            path.unlink()
    composition = pd.read_csv(root / "scrna/by_subtype/composition.tsv", sep="\t")
    composition = composition.assign(subtype="none")
    tsv(root / "scrna/by_subtype/composition.tsv", composition)
    tsv(root / "scrna/by_subtype/tests.tsv", compare_composition(composition))
    return discover_inputs(root)


@pytest.fixture(scope="module")
def html(tmp_path_factory, config):
    root = tmp_path_factory.mktemp("none") / "results"
    inputs = without_structure(root)
    out = root.parent / "report.html"
    build_report(inputs=inputs, config=config, branches=ALL_ON, out_html=out)
    return out.read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    """A section's body, after its heading."""
    body = html.split(f'<section class="main" id="{anchor}">')[1].split("</section>")[0]
    return body.split("</h2>", 1)[1]


def test_the_page_and_the_subtypes_section_open_with_the_numbers(html):
    statement = f'<p class="notice warning">{MESSAGE}</p>'
    for anchor in ("overview", "cards", "subtypes"):
        assert section(html, anchor).startswith(statement), anchor
    assert 'class="notice error"' not in html


def test_one_card_says_why_there_is_no_card_per_subtype(html):
    cards = section(html, "cards")
    assert cards.count('<article class="card"') == 1
    assert "<h3>No significant subtypes</h3>" in cards and "p = 0.41" in cards
    assert "RDLS1" not in cards


def test_the_subtypes_section_shows_the_notes_not_numbers(html):
    subtypes = section(html, "subtypes")
    assert f"Classifier: no classifier fitted: {MESSAGE}</p>" in subtypes  # one full stop
    assert f"not computed: {MESSAGE}" in subtypes  # agreement and in-group proportion


def test_sections_that_compare_subtypes_say_why_they_compare_nothing(html):
    why = "nothing to compare by subtype (no significant subtypes)"
    for anchor, what in (("imaging", "Tumour examples"), ("survival", "Survival"),
                         ("pathology", "Slide metrics"), ("bulk", "Bulk RNA-seq"),
                         ("scrna", "Cell-type composition")):  # fmt: skip
        assert f"{what}: {why}." in section(html, anchor), anchor
    survival = section(html, "survival")
    assert "the clinical covariates alone" in survival and "No RRS (no significant" in survival
    assert "HR (95% CI)" in survival  # the clinical terms' hazard ratios are still shown
    bulk = section(html, "bulk")
    assert "No contrast between subtypes: nothing to compare by subtype." in bulk
    assert "No DESeq2 tables" not in bulk


def test_with_subtypes_the_k_found_and_each_subtypes_stability_are_shown(
    results_tree, config, tmp_path
):
    out = tmp_path / "report.html"
    build_report(inputs=dict(results_tree[1]), config=config, branches=ALL_ON, out_html=out)
    html = out.read_text(encoding="utf-8")
    subtypes = section(html, "subtypes")
    assert "<p>3 subtypes (rcsi): PAC 0.050 against 0.400 in 25 null datasets.</p>" in subtypes
    assert "highly stable" in subtypes and ">Holm-adjusted p</th>" in subtypes
    assert ">RCSI</th>" in subtypes and ">2.08<" in subtypes
    assert "No significant subtypes" not in html
