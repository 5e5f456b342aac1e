"""The subtype rules' glue: start-up checks of the cohort, family joins, item consensus."""

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.subtypes.cohorts import check_training_cohort, cohorts_with_follow_up
from rdls.subtypes.steps import family_weights, item_consensus, read_feature_families


def subjects(n_training=12, events=(1, 0)):
    rows = []
    for i in range(n_training):
        rows.append((f"T{i:02d}", "training", 10.0 + i, events[i % len(events)]))
    rows += [("E1", "external_validation", 5.0, 1), ("B1", "biological", None, None)]
    return pd.DataFrame(rows, columns=["subject_id", "cohort", "rfs_months", "rfs_event"])


def test_a_training_cohort_with_enough_imaged_subjects_and_events_passes():
    table = subjects()
    check_training_cohort(table, with_mri=table["subject_id"], k_max=6, source="s.tsv")


def test_too_few_imaged_training_subjects_for_k_max_is_refused():
    table = subjects()
    with pytest.raises(InputError, match=r"s.tsv: the training cohort has 11 subject\(s\) with an "
                                         r"MRI; .*k_max = 6 needs at least 12"):  # fmt: skip
        check_training_cohort(table, with_mri=table["subject_id"][1:], k_max=6, source="s.tsv")


def test_a_training_cohort_without_recurrences_is_refused():
    table = subjects(events=(0,))
    with pytest.raises(InputError, match="no training subject with an MRI has a recurrence"):
        check_training_cohort(table, with_mri=table["subject_id"], k_max=3, source="s.tsv")


def test_survival_cohorts_are_those_with_mri_and_follow_up_in_a_fixed_order():
    table = subjects()
    assert cohorts_with_follow_up(table, with_mri=table["subject_id"]) == [
        "training", "external_validation"
    ]  # fmt: skip
    assert cohorts_with_follow_up(table, with_mri=["E1"]) == ["external_validation"]


def test_item_consensus_is_the_mean_consensus_with_the_own_cluster():
    consensus = np.array(
        [[1.0, 0.8, 0.2, 0.0], [0.8, 1.0, 0.4, 0.1], [0.2, 0.4, 1.0, 0.0], [0.0, 0.1, 0.0, 1.0]]
    )
    labels = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(item_consensus(consensus, labels), [0.5, 0.6, 0.3, 1.0])


def write_family(path, columns, ids=("S1", "S2", "S3")):
    frame = pd.DataFrame({"subject_id": ids, "cohort": "training", "centre": "A"})
    for column in columns:
        frame[column] = np.arange(len(ids), dtype=float)
    frame.to_parquet(path)
    return path


def test_families_are_joined_side_by_side_on_common_subjects(tmp_path):
    deep = write_family(tmp_path / "deep.parquet", ["deep_000", "deep_001"])
    radiomics = write_family(tmp_path / "r.parquet", ["shape_Volume"], ids=("S2", "S3", "S4"))
    joined, family_of = read_feature_families({"deep": deep, "radiomics": radiomics})
    assert joined["subject_id"].tolist() == ["S2", "S3"]
    assert list(joined.columns) == ["subject_id", "cohort", "deep_000", "deep_001", "shape_Volume"]
    assert family_of == {"deep_000": "deep", "deep_001": "deep", "shape_Volume": "radiomics"}


def test_a_feature_name_in_two_families_is_refused(tmp_path):
    deep = write_family(tmp_path / "deep.parquet", ["x"])
    radiomics = write_family(tmp_path / "r.parquet", ["x"])
    with pytest.raises(InputError, match=r"r.parquet: feature column\(s\) x also occur in family"):
        read_feature_families({"deep": deep, "radiomics": radiomics})


def test_equal_family_weights_give_each_family_the_same_share_of_distances():
    family_of = {"d1": "deep", "d2": "deep", "d3": "deep", "d4": "deep", "r1": "radiomics"}
    weights = family_weights(list(family_of), family_of, how="equal")
    assert weights == {"deep": 0.5, "radiomics": 1.0}
    # Expected squared distance of standardised features: p * w**2 per family.
    assert 4 * weights["deep"] ** 2 == 1 * weights["radiomics"] ** 2
    assert family_weights(list(family_of), family_of, how="by_feature") == {
        "deep": 1.0, "radiomics": 1.0
    }  # fmt: skip
