"""The subtypes section states how well the assignment probabilities are calibrated, how many
subjects of each cohort are flagged uncertain, and shows the reliability diagram."""

import re

from rdls.report import sections
from rdls.report._files import Files
from tests.unit.report.fixtures import COHORTS


def _section(inputs, config) -> str:
    return sections.subtypes_section(Files(inputs), config).body


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_brier_score_log_loss_and_ece_before_and_after_are_stated(inputs, config):
    text = _text(_section(inputs, config))
    assert "temperature scaling (T = 3.6" in text
    assert "Brier score 0.160 \u2192 0.110" in text
    assert "log-loss 2.310 \u2192 0.284" in text
    assert "expected calibration error 0.081 \u2192 0.042" in text
    assert "2 of 12 training subjects fall below min_confidence 0.6" in text
    assert "50% of them were assigned their consensus subtype, against 100% of the others" in text


def test_uncertain_subjects_are_counted_per_cohort(inputs, config):
    html = _section(inputs, config)
    caption = "Subjects flagged uncertain (confidence below 0.6)"
    assert caption in html
    block = html.split(caption)[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", block, flags=re.S)
    cells = [[_text(c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r)] for r in rows]
    body = {row[0]: row[1:4] for row in cells if row and row[0] in COHORTS}
    # the fixture: confidences 0.99 down to 0.5, the last four subjects (all external) below
    assert body == {"training": ["12", "0", "0%"], "external_validation": ["6", "4", "67%"]}


def test_the_reliability_diagram_is_embedded(inputs, config):
    html = _section(inputs, config)
    embedded = r'<figure[^>]*><img src="data:image/png;base64,[^"]+"[^>]*><figcaption>Reliability'
    assert re.search(embedded, html)


def test_a_run_without_a_calibration_table_says_so_and_the_rest_renders(inputs, config):
    inputs = dict(inputs)
    del inputs["classifier_calibration"]
    html = _section(inputs, config)
    assert "No calibration (results/subtypes/classifier/calibration.tsv)" in html
    assert "Subjects per subtype and cohort" in html


def test_no_classifier_leaves_the_calibration_to_the_classifiers_notice(tmp_path, inputs, config):
    note = tmp_path / "calibration.tsv"
    note.write_text("classifier\tstage\tnote\n\t\tno classifier fitted: no significant subtypes\n")
    html = _section({**inputs, "classifier_calibration": str(note)}, config)
    assert "Brier score" not in html and "No calibration" not in html
