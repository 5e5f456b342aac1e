"""rdls.validation: the numbers docs/validation.md is written from."""

import numpy as np
import pandas as pd
import pytest

from rdls.validation import (
    match_names,
    principal_component_r2,
    subtype_recovery,
    supervised_balanced_accuracy,
)


def _blobs(n_per=40, separation=3.0, features=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b", "c"], n_per)
    centres = {"a": 0.0, "b": separation, "c": -separation}
    x = rng.normal(size=(3 * n_per, features))
    x[:, 0] += [centres[label] for label in labels]
    ids = [f"S{i:03d}" for i in range(3 * n_per)]
    return pd.DataFrame(x, index=ids), pd.Series(labels, index=ids)


def test_separable_classes_reach_high_and_noise_chance_balanced_accuracy():
    features, labels = _blobs(separation=4.0)
    assert supervised_balanced_accuracy(features, labels) > 0.9
    noise = pd.DataFrame(np.random.default_rng(1).normal(size=features.shape), index=features.index)
    assert supervised_balanced_accuracy(noise, labels) < 0.5


def test_balanced_accuracy_needs_a_label_for_every_subject():
    features, labels = _blobs()
    with pytest.raises(ValueError, match="no planted label"):
        supervised_balanced_accuracy(features, labels.iloc[:-3])


def test_constant_and_missing_columns_are_left_out():
    features, labels = _blobs(separation=4.0)
    features[10] = 1.0
    features[11] = np.nan
    assert supervised_balanced_accuracy(features, labels) > 0.9


def test_r2_is_high_for_a_linear_copy_and_low_for_noise():
    rng = np.random.default_rng(2)
    target = pd.DataFrame(rng.normal(size=(120, 12)) @ rng.normal(size=(12, 30)))
    copy = target.iloc[:, :12] @ rng.normal(size=(12, 12))
    r2 = principal_component_r2(copy, target, components=5)
    assert r2["weighted"] > 0.95
    noise = pd.DataFrame(rng.normal(size=(120, 8)), index=target.index)
    assert principal_component_r2(noise, target, components=5)["weighted"] < 0.1
    assert list(r2.index[:5]) == ["PC1", "PC2", "PC3", "PC4", "PC5"]


def test_names_are_matched_to_planted_labels_by_agreement():
    found = pd.Series(["X", "X", "Y", "Y", "Z", "Z"], index=list("abcdef"))
    planted = pd.Series(["p", "p", "q", "r", "r", "r"], index=list("abcdef"))
    assert match_names(found, planted) == {"X": "p", "Y": "q", "Z": "r"}


def test_recovery_reports_training_ari_and_external_accuracy_under_renaming():
    ids = [f"S{i}" for i in range(12)]
    planted = pd.Series(list("aabbccaabbcc"), index=ids)
    assignments = pd.DataFrame(
        {
            "cohort": ["training"] * 6 + ["external_validation"] * 6,
            "subtype": ["R1", "R1", "R2", "R2", "R3", "R3", "R1", "R1", "R2", "R3", "R3", "R3"],
        },
        index=ids,
    )
    out = subtype_recovery(assignments, planted)
    assert out["training_ari"] == pytest.approx(1.0)
    # 5 of 6 right in the external cohort: b is right once of twice.
    assert out["external_validation_balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_recovery_without_subtypes_gives_no_accuracy():
    ids = [f"S{i}" for i in range(6)]
    planted = pd.Series(list("abcabc"), index=ids)
    assignments = pd.DataFrame(
        {"cohort": ["training"] * 3 + ["external_validation"] * 3, "subtype": ["none"] * 6},
        index=ids,
    )
    out = subtype_recovery(assignments, planted)
    assert out["training_ari"] == pytest.approx(0.0)
    assert np.isnan(out["external_validation_balanced_accuracy"])
