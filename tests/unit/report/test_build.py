"""rdls.report.build and the section builders: one self-contained page, every section built
from its files, branches that did not run said so, and one bad file costs only its section."""

import copy
import re
import shutil

import pandas as pd
import pytest

from rdls.report import captions, sections
from rdls.report._files import Files
from rdls.report._html import esc
from rdls.report.build import build_report
from rdls.report.inputs import discover_inputs
from tests.unit.report.fixtures import ALL_ON, SUBTYPES, write_results

ANCHORS = ("overview", "cards", "subtypes", "imaging", "survival", "pathology", "bulk", "scrna")


def build(tmp_path, inputs, config, branches=ALL_ON) -> str:
    out = tmp_path / "report" / "subtype_biology.html"
    build_report(inputs=inputs, config=config, branches=branches, out_html=out)
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def html(results_tree, config, tmp_path_factory) -> str:
    """The report of the whole fixture tree, built once for the tests that only read it."""
    return build(tmp_path_factory.mktemp("built"), dict(results_tree[1]), config)


def test_every_section_renders_and_the_page_is_self_contained(html):
    for anchor in ANCHORS:
        assert f'<section class="main" id="{anchor}">' in html
        assert f'href="#{anchor}"' in html  # in the table of contents
    assert 'class="notice error"' not in html
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(sources) >= 30
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    # nothing that a browser would fetch: no script, style sheet, font or remote address
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "url(" not in html


def test_text_from_tables_is_escaped(html):
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cards_show_the_planted_biology(html):
    cards = html.split('id="cards"')[1].split('id="subtypes"')[0]
    assert cards.count('<article class="card"') == len(SUBTYPES)
    assert "Lowest intratumoral lymphocyte density of the 3 subtypes: median 100 per mm" in cards


def test_a_branch_that_did_not_run_says_why_and_the_rest_renders(tmp_path, inputs, config):
    config = copy.deepcopy(config)
    config["wsi"]["activate"] = False
    branches = {**ALL_ON, "wsi": False, "bulk": False, "scrna": False}
    html = build(tmp_path, inputs, config, branches)  # inputs of branches off are ignored
    pathology = html.split('id="pathology"')[1].split("</section>")[0]
    assert "Not in this report: switched off in the config (wsi: activate: false)." in pathology
    bulk = html.split('id="bulk"')[1].split("</section>")[0]
    assert "Not in this report: the bulk sheet has no rows" in bulk
    assert "Hazard ratios of recurrence for each subtype vs RDLS1" in html
    assert "Pathology" not in html.split('id="cards"')[1].split('id="subtypes"')[0]


def test_subtypes_off_leaves_no_cards_and_cohort_montages(tmp_path, inputs, config):
    config = copy.deepcopy(config)
    config["subtypes"]["activate"] = False
    branches = {**ALL_ON, "subtypes": False, "survival": False}
    root = tmp_path / "results"
    write_results(root)
    html = build(tmp_path, discover_inputs(root, branches=branches), config, branches)
    assert (
        "No subtypes in this run: switched off in the config (subtypes: activate: false)." in html
    )
    survival = html.split('id="survival"')[1].split("</section>")[0]
    assert "it needs the subtype discovery branch, which did not run" in survival
    assert "QC montage; subtypes did not run" in html
    assert 'class="notice error"' not in html


def test_missing_files_become_notices(tmp_path, config):
    root = tmp_path / "results"
    inputs = write_results(root)
    shutil.rmtree(root / "survival" / "km")
    (root / "wsi" / "by_subtype.tsv").unlink()
    html = build(tmp_path, inputs, config)
    assert "No Kaplan-Meier figures (results/survival/km/) in this run" in html
    assert "No comparison by subtype (results/wsi/by_subtype.tsv) in this run" in html
    assert "Hazard ratios of recurrence for each subtype" in html


def test_a_malformed_table_costs_only_its_section(tmp_path, config, caplog):
    root = tmp_path / "results"
    inputs = write_results(root)
    pd.DataFrame({"cohort": ["training"], "oops": [1]}).to_csv(
        root / "survival/cox/hazard_ratios.tsv", sep="\t", index=False
    )
    html = build(tmp_path, inputs, config)
    survival = html.split('id="survival"')[1].split("</section>")[0]
    assert 'class="notice error"' in survival and "could not be built: " in survival
    assert html.count('class="notice error"') == 2  # the survival section and the cards
    assert "Lowest intratumoral lymphocyte density" not in html  # the cards failed too
    assert "Cell-type composition of each sample" in html
    assert "could not be built" in caplog.text


def test_deconvolution_shows_cell_types_not_fit_diagnostics(html):
    bulk = html.split('id="bulk"')[1].split("</section>")[0]
    assert '<th scope="row">CD8_T</th>' in bulk
    assert "fit_correlation" not in html


def test_captions_quote_the_config(tmp_path, inputs, config):
    config = copy.deepcopy(config)
    config["subtypes"]["consensus"]["reps"] = 123
    config["survival"]["horizon_months"] = 36
    html = build(tmp_path, inputs, config)
    assert "123 resamplings of 80% of the subjects" in html
    assert "Time-dependent AUC at 36 months" in html
    assert esc(captions.k_rule(config)) in html


def test_imaging_examples_are_a_montage_per_subtype(inputs, config):
    section = sections.imaging_section(Files(inputs), config)
    assert 'alt="tumour examples per subtype"' in section.body
    assert "The 6 most confidently assigned subjects of each subtype" in section.body


def test_tests_in_long_form_become_one_row_per_metric(inputs):
    wide, columns = sections.tests_wide(Files(inputs).table("wsi_by_subtype"))
    assert list(wide["quantity"]) == [
        "intratumoral_lymphocyte_density_mm2", "exclusion_index", "stroma_fraction"
    ]  # fmt: skip
    assert wide.loc[0, "median_RDLS2"] == 900.0
    assert wide.loc[0, "RDLS1 vs RDLS3"] == 0.006
    assert columns["statistic"] == "Kruskal-Wallis statistic" and "test" not in columns


def test_example_heatmap_is_the_slide_nearest_the_subtype_median(tmp_path, config):
    root = tmp_path / "results"
    write_results(root)
    metrics = pd.read_csv(root / "wsi/slide_metrics.tsv", sep="\t")
    extra = metrics.iloc[[0, 0]].assign(
        slide_id=["H0004", "H0005"], intratumoral_lymphocyte_density_mm2=[50.0, 400.0]
    )
    pd.concat([metrics, extra]).to_csv(root / "wsi/slide_metrics.tsv", sep="\t", index=False)
    for slide in ("H0004", "H0005"):
        shutil.copy(root / "wsi/heatmaps/H0001.png", root / f"wsi/heatmaps/{slide}.png")
    html = sections.example_heatmaps_html(Files(discover_inputs(root)))
    # RDLS1's slides have 50, 100 and 400 per mm2: the median slide is H0001
    assert "RDLS1: slide H0001 (subject S0001)" in html
    assert "H0004" not in html and "H0005" not in html


def test_unknown_inputs_or_branches_are_refused(tmp_path, inputs, config):
    with pytest.raises(ValueError, match="does not read"):
        build(tmp_path, {**inputs, "proteome": "x.tsv"}, config)
    with pytest.raises(ValueError, match="unknown branch"):
        build(tmp_path, inputs, config, {**ALL_ON, "proteome": True})


def test_survival_gives_median_and_horizon_rfs_per_subtype(html):
    assert "Median RFS, months (95% CI)" in html and "RFS at 60 months (95% CI)" in html
    assert "not reached" in html and "25% (5%\u201355%)" in html


def test_training_figures_show_apparent_and_corrected_side_by_side(html):
    assert "optimism-corrected performance" in html
    assert "clinical + RRS: apparent only: the RRS is not repeated." in html
    assert "Harrell&#x27;s C" in html or "Harrell's C" in html


def test_calibration_is_summarised_by_slope_observed_expected_and_ici(html):
    assert "O/E (95% CI)" in html
    assert "0.850 (0.600\u20131.200)" in html
    assert "integrated calibration" in html


def test_too_few_events_per_variable_is_warned_in_the_report(html):
    assert "clinical: 6.0 training events per variable: below 10, expect overfitting." in html


def test_an_unstable_rrs_is_flagged_above_its_coefficients(tmp_path, results_tree, config):
    import json

    root = tmp_path / "results"
    shutil.copytree(results_tree[0], root)
    path = root / "survival/rrs/model.json"
    model = json.loads(path.read_text())
    model["notes"] = ["unstable: 63 of 100 repeated cross-validation splits keep no feature"]
    path.write_text(json.dumps(model))
    body = sections.rrs_html(Files(discover_inputs(root)), config)
    assert "Unstable: 63 of 100 repeated cross-validation splits keep no feature." in body
    assert body.index("Unstable") < body.index("Locked coefficients")
