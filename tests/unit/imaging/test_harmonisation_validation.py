"""scripts/harmonisation_validation.py: what it measures from a run, and the doc it writes."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location(
    "harmonisation_validation", REPO / "scripts" / "harmonisation_validation.py"
)
validation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(validation)


def test_assignment_accuracy_is_balanced_per_cohort_and_counts_unplanted_names_wrong():
    planted = ["RDLS1", "RDLS1", "RDLS2", "RDLS2", "RDLS1", "RDLS2"]
    truth = pd.DataFrame({"subject_id": list("abcdef"), "subtype": planted})
    assigned = pd.DataFrame({
        "subject_id": list("abcdef"),
        "cohort": ["training"] * 4 + ["external_validation"] * 2,
        "subtype": ["RDLS1", "RDLS2", "RDLS2", "RDLS2", "RDLS4", "RDLS2"],
    })  # fmt: skip
    accuracy = validation.assignment_accuracy(assigned, truth)
    assert accuracy["training"] == pytest.approx(0.75)  # RDLS1 1/2, RDLS2 2/2
    assert accuracy["external_validation"] == pytest.approx(0.5)  # RDLS4 was never planted


def test_centre_proportions_set_the_assigned_beside_the_planted():
    planted = pd.DataFrame({"centre": ["A"] * 3 + ["Q"] * 3, "subtype": ["RDLS1", "RDLS2",
                            "RDLS3"] * 2, "planted_proportion": [0.6, 0.2, 0.2] * 2,
                            "observed_proportion": [0.5, 0.25, 0.25] * 2})  # fmt: skip
    assigned = pd.DataFrame({"subject_id": list("abcd"), "centre": "A",
                             "subtype": ["RDLS1", "RDLS1", "RDLS1", "RDLS3"]})  # fmt: skip
    table = validation.centre_proportions(assigned, planted)
    assert table["centre"].tolist() == ["A"] * 3  # Q has no assigned subject
    np.testing.assert_allclose(table["assigned_proportion"], [0.75, 0.0, 0.25])
    assert (table["subjects"] == 4).all()


def test_each_run_overrides_the_method_and_the_tiny_demos_minimum():
    tiny = validation.overrides(scale="tiny", case_mix=True, method="none")
    assert "centre_case_mix: true" in tiny and "method: none" in tiny
    assert "min_subjects_per_centre: 10" in tiny and "shards_per_cohort: 2" in tiny
    default = validation.overrides(scale="default", case_mix=False, method="combat")
    assert "min_subjects_per_centre: 20" in default and "shards_per_cohort" not in default


def test_the_doc_section_of_a_scale_is_replaced_between_its_markers(tmp_path):
    doc = tmp_path / "harmonisation.md"
    begin, end = validation.BEGIN.format(scale="tiny"), validation.END.format(scale="tiny")
    other = validation.BEGIN.format(scale="default") + "\nkept\n" + validation.END.format(
        scale="default")  # fmt: skip
    doc.write_text(f"# Title\n\n{begin}\nold\n{end}\n\n{other}\n\nafter\n")
    validation.write_doc(doc, f"{begin}\nnew\n{end}", scale="tiny")
    text = doc.read_text()
    assert "new" in text and "old" not in text and "kept" in text
    assert text.startswith("# Title") and text.rstrip().endswith("after")
