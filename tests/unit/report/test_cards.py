"""rdls.report.cards: planted numbers in, the right sentences out, ties and gaps included."""

import numpy as np
import pandas as pd
import pytest

from rdls.report._files import Files
from rdls.report.cards import (
    CardInputs,
    Comparison,
    biology_cards,
    comparisons_from_tests,
    extreme_facts,
    known_subtypes,
)
from rdls.report.sections import card_inputs


def texts(cards, subtype, topic=None):
    return [f.text for f in cards[subtype] if topic is None or f.topic == topic]


@pytest.fixture
def cards(inputs, config):
    return biology_cards(card_inputs(Files(inputs), config))


def test_planted_pathology_reads_as_sentences_with_test_and_p(cards):
    assert (
        "Lowest intratumoral lymphocyte density of the 3 subtypes: median 100 per mm\u00b2 "
        "(n = 1 slide) vs 300 per mm\u00b2 in RDLS3 (next lowest); Kruskal-Wallis across "
        "subtypes p = 1.0 \u00d7 10\u207b\u2075; Mann-Whitney U vs RDLS3 adjusted p = 0.006."
    ) in texts(cards, "RDLS1", "Pathology")
    assert any(
        t.startswith("Highest intratumoral lymphocyte density of the 3 subtypes: median 900")
        for t in texts(cards, "RDLS2", "Pathology")
    )
    assert any(
        t.startswith("Highest stroma fraction of the 3 subtypes: median 0.75")
        for t in texts(cards, "RDLS3", "Pathology")
    )
    assert any(
        t.startswith("Immune phenotype excluded on 1 of 1 slides")
        for t in texts(cards, "RDLS1", "Pathology")
    )
    # each extreme is stated once, on the card of the subtype that holds it
    assert not any("stroma fraction" in t for t in texts(cards, "RDLS1") + texts(cards, "RDLS2"))


def test_planted_bulk_and_single_cell_facts(cards):
    rdls2 = " ".join(texts(cards, "RDLS2"))
    assert "Highest ESTIMATE immune score of the 3 subtypes: median 800 vs 100 in RDLS3" in rdls2
    assert "INTERFERON_GAMMA_RESPONSE (NES 2.1, FDR 0.001), ALLOGRAFT_REJECTION" in rdls2
    assert "Highest CD8 T cell share of the 3 subtypes: mean 40% vs 10% in RDLS3" in rdls2
    assert "Highest estimated CD8_T fraction (deconvolution)" in rdls2
    rdls1 = " ".join(texts(cards, "RDLS1"))
    assert "Lowest ESTIMATE immune score of the 3 subtypes: median -500 vs 100 in RDLS3" in rdls1
    # TGF-beta is planted at FDR 0.30: above GSEA's 0.25, so nothing is enriched in RDLS1
    assert "No Hallmark set enriched vs the other subtypes at FDR < 0.25" in rdls1
    assert "Most abundant cell types (mean share of a sample's cells): Epithelial 70%" in rdls1
    rdls3 = " ".join(texts(cards, "RDLS3"))
    assert "EPITHELIAL_MESENCHYMAL_TRANSITION (NES 2.4" in rdls3
    assert "Highest ESTIMATE stromal score of the 3 subtypes: median 900" in rdls3


def test_prognosis_names_the_reference_and_each_hazard_ratio(cards):
    assert texts(cards, "RDLS1", "Prognosis")[0].startswith(
        "Reference level of the multivariable Cox models, adjusted for age, sex"
    )
    hr = texts(cards, "RDLS2", "Prognosis")[0]
    assert hr.startswith("Hazard ratio of recurrence vs RDLS1 (multivariable Cox")
    assert (
        "0.50 (95% CI 0.29\u20130.82, p = 0.004) in training (apparent: names from training "
        "recurrence)" in hr
    )
    assert "0.50 (0.29\u20130.82, p = 0.004) in external_validation" in hr
    assert "100% of its 6 subjects fall in the high recurrence-risk-score group." in texts(
        cards, "RDLS1", "Prognosis"
    )


def test_recurrence_rate_is_ranked(cards):
    assert "the highest of the 3 subtypes" in texts(cards, "RDLS1", "Cohort")[1]
    assert "the lowest of the 3 subtypes" in texts(cards, "RDLS2", "Cohort")[1]
    assert "intermediate among the 3 subtypes" in texts(cards, "RDLS3", "Cohort")[1]


def test_survival_by_the_horizon_is_ranked_in_the_cohorts_the_names_did_not_come_from():
    def summary(survival):
        bounds = {"ci_lower": [0.3, 0.7, 0.4], "ci_upper": [0.7, 0.95, 0.8]}
        return pd.DataFrame({"subtype": ["RDLS1", "RDLS2", "RDLS3"], "n": [20, 25, 15],
                             "events": [9, 3, 5], "horizon": 60.0, "survival": survival,
                             **bounds})  # fmt: skip

    cards = biology_cards(CardInputs(survival_summaries={
        "training": summary([0.1, 0.9, 0.5]),  # by construction: never quoted
        "external_validation": summary([0.52, 0.84, 0.61]),
    }))  # fmt: skip
    rdls1 = texts(cards, "RDLS1", "Prognosis")
    assert rdls1 == [
        "Recurrence-free survival by 60 months in the cohorts its name was not drawn from "
        "(Kaplan-Meier): 52% (30%\u201370%) in external_validation (n = 20, the lowest of the "
        "3 subtypes there)."
    ]
    assert "the highest of the 3 subtypes there" in texts(cards, "RDLS2", "Prognosis")[0]
    assert "training" not in " ".join(texts(cards, "RDLS2") + texts(cards, "RDLS3"))


def test_recurrence_rate_ties_share_a_rank():
    rates = pd.DataFrame(
        {"subtype": ["A", "B", "C", "D"], "n": [10] * 4, "events": [5, 5, 2, 1],
         "rate_per_100_person_years": [9.0, 9.0, 4.0, 1.0]}
    )  # fmt: skip
    cards = biology_cards(CardInputs(rates=rates))
    assert "tied for the highest of the 4 subtypes" in texts(cards, "A")[0]
    assert "tied for the highest of the 4 subtypes" in texts(cards, "B")[0]
    assert "the 3rd highest of the 4 subtypes" in texts(cards, "C")[0]
    assert "the lowest of the 4 subtypes" in texts(cards, "D")[0]


def test_ties_give_every_tied_subtype_the_same_rank():
    comparison = Comparison(values={"A": 1.0, "B": 1.0, "C": 5.0}, test="Kruskal-Wallis", p=0.01)
    facts = dict(extreme_facts(comparison, direction="lowest", label="x", topic="T"))
    assert set(facts) == {"A", "B"}
    assert facts["A"].text.startswith("Lowest x, tied with B: median 1 vs 5 in C (next lowest)")
    assert facts["B"].text.startswith("Lowest x, tied with A:")
    high = extreme_facts(comparison, direction="highest", label="x", topic="T")
    assert [s for s, _ in high] == ["C"]
    assert "vs 1 in A (next highest)" in high[0][1].text


def test_nothing_to_say_when_all_equal_or_a_single_value():
    same = Comparison(values={"A": 2.0, "B": 2.0})
    assert extreme_facts(same, direction="highest", label="x", topic="T") == []
    single = Comparison(values={"A": 2.0, "B": np.nan, "C": None})
    assert extreme_facts(single, direction="highest", label="x", topic="T") == []


def test_missing_values_are_left_out_and_weak_tests_flagged():
    comparison = Comparison(values={"A": 3.0, "B": np.nan, "C": 1.0}, test="Kruskal-Wallis", p=0.2)
    ((subtype, fact),) = extreme_facts(comparison, direction="highest", label="x", topic="T")
    assert subtype == "A"
    assert "of the 2 subtypes" in fact.text
    assert "p = 0.2, not significant" in fact.text
    untested = Comparison(values={"A": 3.0, "C": 1.0})
    ((_, fact),) = extreme_facts(untested, direction="highest", label="x", topic="T")
    assert fact.text.endswith("; no test available.")


def test_a_subtype_absent_from_a_source_is_told_so():
    tests = pd.DataFrame(
        {
            "metric": ["stroma_fraction"],
            "comparison": ["all"],
            "test": ["Kruskal-Wallis"],
            "median_RDLS1": [0.2],
            "median_RDLS2": [0.6],
            "median_RDLS3": [np.nan],
            "statistic": [3.0],
            "p_value": [0.04],
        }
    )
    cards = biology_cards(CardInputs(wsi_tests=tests), subtypes=["RDLS1", "RDLS2", "RDLS3"])
    assert texts(cards, "RDLS3") == [
        "No slide of this subtype has slide metrics (none analysed, or all failed QC)."
    ]
    assert "Highest stroma fraction of the 2 subtypes" in texts(cards, "RDLS2")[0]


def test_hazard_ratio_not_estimated_says_why():
    hr = pd.DataFrame(
        {
            "cohort": ["training"],
            "term": ["subtype[RDLS2]"],
            "hazard_ratio": [np.nan],
            "ci_lower": [np.nan],
            "ci_upper": [np.nan],
            "p_value": [np.nan],
            "note": ["not estimated: 3 events for 6 terms in the training cohort"],
        }
    )
    cards = biology_cards(CardInputs(hazard_ratios=hr), subtypes=["RDLS1", "RDLS2"])
    assert texts(cards, "RDLS1") == ["Reference level of the multivariable Cox models."]
    assert texts(cards, "RDLS2")[0].endswith(
        "): not estimated in training (not estimated: 3 events for 6 terms in the training cohort)."
    )


def test_two_subtypes_take_hallmark_sets_from_the_pairwise_contrast_with_its_sign():
    gsea = pd.DataFrame(
        {"term": ["HALLMARK_A", "HALLMARK_B"], "nes": [2.0, -1.9], "fdr": [0.01, 0.02]}
    )
    cards = biology_cards(CardInputs(gsea={"RDLS1_vs_RDLS2": gsea}), subtypes=["RDLS1", "RDLS2"])
    assert texts(cards, "RDLS1") == ["Most enriched Hallmark sets vs RDLS2: A (NES 2, FDR 0.01)."]
    assert texts(cards, "RDLS2") == ["Most enriched Hallmark sets vs RDLS1: B (NES 1.9, FDR 0.02)."]


def test_no_tables_no_cards_and_subtypes_in_natural_order():
    assert biology_cards(CardInputs()) == {}
    assignments = pd.DataFrame(
        {"subject_id": ["a", "b", "c"], "cohort": ["training"] * 3,
         "subtype": ["RDLS10", "RDLS2", "RDLS1"]}
    )  # fmt: skip
    assert known_subtypes(CardInputs(assignments=assignments)) == ["RDLS1", "RDLS2", "RDLS10"]
    cards = biology_cards(CardInputs(assignments=assignments))
    assert texts(cards, "RDLS10") == [
        "1 subject(s) assigned across 1 cohort(s), 1 of 3 in training (33%)."
    ]


def test_medians_come_from_the_values_where_the_tests_lack_them():
    tests = pd.DataFrame(
        {"score": ["immune_score"], "comparison": ["all"], "test": ["Kruskal-Wallis"],
         "statistic": [5.0], "p_value": [0.03]}
    )  # fmt: skip
    scores = pd.DataFrame(
        {"sample_id": list("abcd"), "subtype": ["A", "A", "B", "B"],
         "immune_score": [1.0, 3.0, 10.0, 12.0]}
    )  # fmt: skip
    comparison = comparisons_from_tests(tests, values=scores, value_columns=["immune_score"])
    assert comparison["immune_score"].values == {"A": 2.0, "B": 11.0}
    assert comparison["immune_score"].p == 0.03


def test_a_lead_the_pairwise_test_does_not_support_is_flagged():
    comparison = Comparison(
        values={"A": 544.0, "B": 545.0, "C": 648.0},
        test="Kruskal-Wallis",
        p=9e-6,
        pairwise={frozenset(("A", "B")): ("Mann-Whitney U", 0.7)},
    )
    ((subtype, fact),) = extreme_facts(comparison, direction="lowest", label="x", topic="T")
    assert subtype == "A"
    assert fact.text.endswith(
        "Kruskal-Wallis across subtypes p = 9.0 \u00d7 10\u207b\u2076; Mann-Whitney U vs B "
        "adjusted p = 0.7, not significant."
    )
