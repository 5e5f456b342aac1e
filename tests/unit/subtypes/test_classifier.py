"""rdls.subtypes.classifier: model choice by cross-validation, assignment and agreement checks."""

from __future__ import annotations

import logging

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from rdls.errors import InputError
from rdls.subtypes.classifier import (
    CLASSIFIERS,
    AssignmentModel,
    agreement,
    assign,
    fit_assignment_model,
    in_group_proportion,
)

NAMES = ("RDLS1", "RDLS2", "RDLS3")


def _blobs(sizes, *, separation: float, features: int = 10, seed: int, prefix: str = "S"):
    """Gaussian blobs, one per subtype, centres ``separation`` apart along random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), features))
    centres *= separation / np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(NAMES[: len(sizes)], sizes)
    values = centres[np.repeat(np.arange(len(sizes)), sizes)] + rng.normal(
        size=(sum(sizes), features)
    )
    index = pd.Index([f"{prefix}{i:03d}" for i in range(sum(sizes))], name="subject_id")
    X = pd.DataFrame(values, index=index, columns=[f"f{j}" for j in range(features)])
    return X, pd.Series(labels, index=index, name="subtype")


@pytest.fixture(scope="module")
def separated():
    return _blobs((40, 30, 30), separation=8, seed=0)


@pytest.fixture(scope="module")
def model(separated):
    X, y = separated
    return fit_assignment_model(X, y, seed=1)


# --- fitting and assignment -----------------------------------------------------------------


def test_separated_subtypes_are_learned_and_assigned_with_confidence(model):
    # new subjects from the same three blobs, in another cohort
    X_new, y_new = _blobs((20, 20, 20), separation=8, seed=0, prefix="V")
    X_new, y_new = X_new.iloc[::-1], y_new.iloc[::-1]  # order does not matter

    assigned = assign(model, X_new)

    assert model.cv["balanced_accuracy"].min() >= 0.95
    assert balanced_accuracy_score(y_new, assigned["subtype"]) >= 0.95
    assert assigned["confidence"].median() >= 0.9
    assert assigned.index.equals(X_new.index)
    assert assigned.index.name == "subject_id"
    assert list(assigned.columns) == [
        "subtype",
        "confidence",
        "uncertain",
        *[f"prob_{n}" for n in NAMES],
    ]


def test_probabilities_sum_to_one_and_confidence_is_the_assigned_ones(model, separated):
    assigned = assign(model, separated[0])
    probs = assigned[[f"prob_{n}" for n in model.classes]].to_numpy()

    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(assigned["confidence"], probs.max(axis=1))
    assert (assigned["subtype"] == np.asarray(model.classes)[probs.argmax(axis=1)]).all()
    assert ((assigned["confidence"] >= 0) & (assigned["confidence"] <= 1)).all()


def test_cross_validation_table_and_summary(model):
    assert list(model.cv.columns) == ["classifier", "fold", "balanced_accuracy"]
    assert model.cv.groupby("classifier").size().to_dict() == {
        "nearest_centroid": 5,
        "logistic": 5,
        "svm": 5,
    }
    summary = model.cv_summary()
    assert list(summary.columns) == ["classifier", "mean", "sd", "selected"]
    assert summary["selected"].sum() == 1
    assert summary.loc[summary["selected"], "classifier"].item() == model.name
    assert model.classes == list(NAMES)
    assert model.columns == [f"f{j}" for j in range(10)]


def test_ties_go_to_the_earlier_candidate(separated):
    # perfectly separated blobs: every candidate scores 1.0 in every fold
    X, y = separated
    first = fit_assignment_model(X, y, candidates=("logistic", "nearest_centroid"), folds=3, seed=2)
    second = fit_assignment_model(
        X, y, candidates=("nearest_centroid", "logistic"), folds=3, seed=2
    )

    assert set(first.cv["balanced_accuracy"]) == {1.0}
    assert first.name == "logistic"
    assert second.name == "nearest_centroid"


def test_best_mean_balanced_accuracy_wins():
    # Subtypes differ only in a nonlinear way (ring vs centre): nearest centroid cannot tell
    # them apart (same centroid), the RBF SVM can.
    rng = np.random.default_rng(3)
    n = 120
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < n // 2, 0.5, 3.0) + 0.2 * rng.normal(size=n)
    values = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    index = pd.Index([f"S{i}" for i in range(n)], name="subject_id")
    X = pd.DataFrame(values, index=index, columns=["x", "y"])
    y = pd.Series(np.where(np.arange(n) < n // 2, "RDLS1", "RDLS2"), index=index)

    model = fit_assignment_model(X, y, candidates=("nearest_centroid", "svm"), seed=4)

    summary = model.cv_summary().set_index("classifier")["mean"]
    assert summary["svm"] >= 0.95
    assert summary["nearest_centroid"] <= 0.8
    assert model.name == "svm"


def test_same_seed_same_model_and_numbers():
    X, y = _blobs((20, 20, 20), separation=2.5, seed=5)  # overlapping: folds matter
    first = fit_assignment_model(X, y, candidates=("svm", "logistic"), folds=3, seed=6)
    again = fit_assignment_model(X, y, candidates=("svm", "logistic"), folds=3, seed=6)

    pd.testing.assert_frame_equal(first.cv, again.cv)
    pd.testing.assert_frame_equal(assign(first, X), assign(again, X))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_fits_and_assigns(name, separated):
    X, y = separated
    model = fit_assignment_model(X, y, candidates=(name,), folds=2, seed=7)

    assigned = assign(model, X)

    assert model.name == name
    assert (assigned["subtype"] == y).mean() >= 0.95


def test_model_survives_joblib(model, separated, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    loaded = joblib.load(path)

    assert isinstance(loaded, AssignmentModel)
    pd.testing.assert_frame_equal(assign(loaded, separated[0]), assign(model, separated[0]))


def test_assign_ignores_extra_columns_and_reorders(model, separated):
    X = separated[0]
    shuffled = X[X.columns[::-1]].assign(extra=1.0)

    pd.testing.assert_frame_equal(assign(model, shuffled), assign(model, X))


def test_small_subtype_reduces_folds_with_a_warning(caplog):
    X, y = _blobs((20, 20, 3), separation=8, seed=8)

    with caplog.at_level(logging.WARNING, logger="rdls.subtypes.classifier"):
        model = fit_assignment_model(X, y, folds=5, seed=9)

    assert model.folds == 3
    assert model.cv["fold"].max() == 3
    assert "'RDLS3' has 3 members, fewer than 5 folds" in caplog.text


def test_svm_is_left_out_when_a_subtype_is_too_small_for_its_calibration(caplog):
    X, y = _blobs((20, 20, 2), separation=8, seed=14)

    with caplog.at_level(logging.WARNING, logger="rdls.subtypes.classifier"):
        model = fit_assignment_model(X, y, candidates=("svm", "logistic"), seed=15)

    assert model.name == "logistic"
    assert model.cv.loc[model.cv["classifier"] == "svm", "balanced_accuracy"].isna().all()
    assert "svm needs at least 2 members" in caplog.text
    with pytest.raises(InputError, match="too few to cross-validate svm"):
        fit_assignment_model(X, y, candidates=("svm",), seed=15)


# --- errors -------------------------------------------------------------------------------


def test_unknown_candidate_lists_the_valid_ones(separated):
    with pytest.raises(
        ValueError, match=r"unknown classifier.*'knn'.*valid ones: nearest_centroid"
    ):
        fit_assignment_model(*separated, candidates=("logistic", "knn"), seed=0)


def test_single_member_subtype_is_an_error():
    X, y = _blobs((10, 10, 1), separation=8, seed=10)
    with pytest.raises(InputError, match=r"subtype\(s\) 'RDLS3' have a single member"):
        fit_assignment_model(X, y, seed=0)


def test_one_subtype_is_an_error():
    X, y = _blobs((10,), separation=8, seed=11)
    with pytest.raises(InputError, match="only one subtype"):
        fit_assignment_model(X, y, seed=0)


def test_missing_labels_and_values_are_errors(separated):
    X, y = separated
    with pytest.raises(InputError, match=r"no label for 2 subject\(s\) with features: 'S000'"):
        fit_assignment_model(X, y.iloc[2:], seed=0)
    holes = X.copy()
    holes.iloc[4, 2] = np.nan
    with pytest.raises(InputError, match=r"column\(s\) 'f2' for subject\(s\) 'S004'"):
        fit_assignment_model(holes, y, seed=0)


def test_assign_names_missing_columns(model, separated):
    with pytest.raises(InputError, match=r"2 training feature column\(s\) missing: 'f3', 'f7'"):
        assign(model, separated[0].drop(columns=["f3", "f7"]))


def test_bad_folds_is_an_error(separated):
    with pytest.raises(InputError, match="folds must be an integer >= 2"):
        fit_assignment_model(*separated, folds=1, seed=0)


# --- agreement ----------------------------------------------------------------------------


def test_agreement_is_perfect_for_renamed_clusters(separated):
    X, y = separated
    clusters = y.map({"RDLS1": 2, "RDLS2": 0, "RDLS3": 1})

    result = agreement(X, y, clusters)

    assert result["ari"] == pytest.approx(1.0)
    assert result["kappa"] == pytest.approx(1.0)
    assert result["mapping"] == {2: "RDLS1", 0: "RDLS2", 1: "RDLS3"}
    assert result["n"] == len(X)


def test_agreement_kappa_by_hand():
    # 10 subjects; clusters match subtypes except two swapped subjects
    index = pd.Index(list("abcdefghij"))
    X = pd.DataFrame({"f": np.arange(10.0)}, index=index)
    assigned = pd.Series(["A"] * 5 + ["B"] * 5, index=index)
    clusters = pd.Series([7, 7, 7, 7, 3, 3, 3, 3, 3, 7], index=index)

    result = agreement(X, assigned, clusters)

    # matched: 7 -> A, 3 -> B; observed agreement 0.8, expected 0.5: kappa = 0.6
    assert result["mapping"] == {7: "A", 3: "B"}
    assert result["kappa"] == pytest.approx(0.6)


def test_agreement_counts_extra_clusters_as_disagreement():
    index = pd.Index(list("abcdef"))
    X = pd.DataFrame({"f": np.arange(6.0)}, index=index)
    assigned = pd.Series(["A", "A", "A", "B", "B", "B"], index=index)
    clusters = pd.Series([0, 0, 2, 1, 1, 1], index=index)

    result = agreement(X, assigned, clusters)

    assert result["mapping"] == {0: "A", 1: "B", 2: "unmatched cluster 2"}
    assert result["kappa"] < 1.0


def test_agreement_uses_the_subjects_of_X(separated):
    X, y = separated
    clusters = y.map({"RDLS1": 0, "RDLS2": 1, "RDLS3": 2})
    result = agreement(X.iloc[:50], y, clusters)
    assert result["n"] == 50
    with pytest.raises(InputError, match=r"cluster labels: no label for 1 subject"):
        agreement(X, y, clusters.iloc[1:])


# --- in-group proportion --------------------------------------------------------------------


def test_in_group_proportion_is_one_for_separated_subtypes(separated):
    X, y = separated

    igp = in_group_proportion(X, y)

    assert list(igp.columns) == ["subtype", "n", "igp", "share"]
    assert igp["subtype"].tolist() == list(NAMES)
    assert igp["n"].tolist() == [40, 30, 30]
    assert (igp["igp"] >= 0.97).all()


def test_in_group_proportion_is_near_the_share_for_random_labels():
    X, _ = _blobs((300, 300, 300), separation=0, seed=12)
    labels = pd.Series(
        np.random.default_rng(13).choice(["RDLS1", "RDLS2"], size=len(X), p=[0.7, 0.3]),
        index=X.index,
    )

    igp = in_group_proportion(X, labels).set_index("subtype")

    assert igp.loc["RDLS1", "igp"] == pytest.approx(igp.loc["RDLS1", "share"], abs=0.05)
    assert igp.loc["RDLS2", "igp"] == pytest.approx(igp.loc["RDLS2", "share"], abs=0.05)


def test_in_group_proportion_by_hand_and_excludes_self_even_for_duplicates():
    # points on a line: 0, 1, 10, 10 (duplicate), 30; labels A A B A B
    X = pd.DataFrame({"x": [0.0, 1.0, 10.0, 10.0, 30.0]}, index=list("abcde"))
    labels = pd.Series(["A", "A", "B", "A", "B"], index=X.index)

    igp = in_group_proportion(X, labels).set_index("subtype")

    # a->b (A, yes), b->a (yes), d->c (B, no): A 2/3. c->d (A, no), e->c or d (c: B, yes): B 1/2
    assert igp.loc["A", "igp"] == pytest.approx(2 / 3)
    assert igp.loc["B", "igp"] == pytest.approx(1 / 2)
