"""The subtype-biology report of the default demo: every section filled, and the cards state
the planted biology (RDLS1 immune-excluded, RDLS2 lymphocyte-rich, RDLS3 stromal)."""

import re

import pytest

pytestmark = pytest.mark.integration

SECTIONS = ("Cohort and quality control", "Subtype discovery", "Imaging", "Survival",
            "Pathology", "Bulk RNA-seq", "Single-cell RNA-seq")  # fmt: skip


@pytest.fixture(scope="module")
def report(default_run):
    return (default_run / "results/report/subtype_biology.html").read_text()


@pytest.fixture(scope="module")
def cards(report):
    found = re.findall(r'<article class="card"[^>]*><h3>(\w+)</h3>(.*?)</article>', report, re.S)
    return {subtype: re.sub(r"<[^>]+>", " ", body) for subtype, body in found}


def test_every_section_is_filled(report):
    for title in SECTIONS:
        assert title in report, title
    assert "could not be built" not in report and "switched off in the config" not in report
    assert report.count("<img") >= 20


@pytest.mark.parametrize(
    ("subtype", "sentence"),
    [
        ("RDLS1", "Lowest intratumoral lymphocyte density"),
        ("RDLS1", "Highest lymphocyte exclusion index"),
        ("RDLS1", "highest of the 3 subtypes"),  # recurrence rate
        ("RDLS2", "Highest intratumoral lymphocyte density"),
        ("RDLS2", "Highest ESTIMATE immune score"),
        ("RDLS2", "lowest of the 3 subtypes"),
        ("RDLS3", "Highest stroma fraction"),
        ("RDLS3", "Highest ESTIMATE stromal score"),
    ],
)
def test_cards_state_the_planted_biology(cards, subtype, sentence):
    assert set(cards) == {"RDLS1", "RDLS2", "RDLS3"}
    assert sentence in cards[subtype], cards[subtype][:2000]
