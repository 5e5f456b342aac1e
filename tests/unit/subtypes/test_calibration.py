"""Calibrated subtype probabilities: fitted out of fold, honest on new subjects, measured, and
the uncertain flag, through the classifier and through the subtype steps' files."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.metrics import brier_score_loss, log_loss

from rdls.config import validate_config
from rdls.errors import InputError
from rdls.subtypes.calibration import (
    calibration_metrics,
    cross_fitted,
    expected_calibration_error,
    fit_calibration,
    reliability_bins,
    scores,
)
from rdls.subtypes.classifier import assign, fit_assignment_model
from rdls.subtypes.steps import ASSIGNMENT_COLUMNS, assign_step, classifier_step
from tests.unit.subtypes.test_classifier import _blobs

SIZES = (150, 130, 120)


@pytest.fixture(scope="module")
def overlapping():
    """Three Gaussian subtypes that overlap: about one subject in ten sits nearer another's
    centre. Training, and new subjects drawn from the same three Gaussians."""
    train = _blobs(SIZES, separation=2.5, features=10, seed=0)
    new = _blobs((300, 300, 300), separation=2.5, features=10, seed=0, prefix="V")
    return train, new


@pytest.fixture(scope="module")
def centroid(overlapping):
    """Nearest centroid: its softmax of negative squared distances is overconfident."""
    (X, y), _ = overlapping
    return fit_assignment_model(X, y, candidates=("nearest_centroid",), seed=1)


# --- the promise: probabilities that match how often the assignment is right ---------------


def test_temperature_above_one_tames_an_overconfident_classifier(centroid):
    table = centroid.calibration_table().set_index("stage")
    before, after = table.loc["uncalibrated"], table.loc["calibrated"]
    assert centroid.calibration.method == "temperature"
    assert centroid.calibration.temperature > 1.5
    # out of fold, nearest centroid claims more than it achieves; calibrated, it does not
    assert before["mean_confidence"] - before["accuracy"] > 0.03
    assert abs(after["mean_confidence"] - after["accuracy"]) < 0.05
    assert after["log_loss"] < before["log_loss"] - 0.03
    assert after["ece"] < 0.05


def test_calibrated_confidence_on_new_subjects_matches_their_accuracy(centroid, overlapping):
    _, (X_new, y_new) = overlapping
    assigned = assign(centroid, X_new)
    accuracy = (assigned["subtype"] == y_new).mean()
    assert abs(assigned["confidence"].mean() - accuracy) < 0.05
    probabilities = assigned[[f"prob_{c}" for c in centroid.classes]].to_numpy()
    truth = pd.Index(centroid.classes).get_indexer(y_new)
    assert expected_calibration_error(probabilities, truth) < 0.05
    # the classifier's own probabilities on the same subjects: overconfident, with
    # runner-up subtypes at 1e-20 and below, hence a worse log-loss and Brier score
    own = centroid.estimator.predict_proba(X_new.to_numpy())
    assert own.min() < 1e-20
    assert log_loss(truth, probabilities) < log_loss(truth, own) - 0.01
    assert brier_score_loss(truth, probabilities) < brier_score_loss(truth, own)


def test_temperature_keeps_every_assignment(centroid, overlapping):
    _, (X_new, _) = overlapping
    assigned = assign(centroid, X_new)
    own = centroid.estimator.predict_proba(X_new.to_numpy()).argmax(axis=1)
    assert (assigned["subtype"] == np.asarray(centroid.classes)[own]).all()


@pytest.mark.parametrize("name", ["logistic", "svm", "random_forest"])
def test_every_classifier_gets_calibrated_probabilities(name, overlapping):
    (X, y), (X_new, y_new) = overlapping
    model = fit_assignment_model(X, y, candidates=(name,), seed=1)
    assigned = assign(model, X_new)
    probabilities = assigned[[f"prob_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-9)
    accuracy = (assigned["subtype"] == y_new).mean()
    assert abs(assigned["confidence"].mean() - accuracy) < 0.05
    assert np.isfinite(model.calibration.temperature)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_per_subtype_maps_calibrate_too(method, overlapping):
    (X, y), (X_new, y_new) = overlapping
    model = fit_assignment_model(X, y, candidates=("nearest_centroid",), calibration=method, seed=1)
    assert model.calibration.method == method and np.isnan(model.calibration.temperature)
    table = model.calibration_table().set_index("stage")
    assert table.loc["calibrated", "brier"] < table.loc["uncalibrated", "brier"] + 0.02
    assigned = assign(model, X_new)
    probabilities = assigned[[f"prob_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-9)
    assert abs(assigned["confidence"].mean() - (assigned["subtype"] == y_new).mean()) < 0.06


def test_none_keeps_the_classifiers_own_probabilities(overlapping):
    (X, y), (X_new, _) = overlapping
    model = fit_assignment_model(X, y, candidates=("logistic",), calibration="none", seed=1)
    own = model.estimator.predict_proba(X_new.to_numpy())
    probabilities = assign(model, X_new)[[f"prob_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(probabilities, own, rtol=1e-9, atol=1e-12)
    table = model.calibration_table()
    assert table["brier"].nunique() == 1 and table["temperature"].tolist() == [1.0, 1.0]


def test_no_probability_falls_below_one_pseudo_subject():
    rng = np.random.default_rng(5)
    logits = rng.normal(scale=40.0, size=(98, 3))  # wildly overconfident scores
    y = logits.argmax(axis=1)  # and never wrong
    for method in ("temperature", "sigmoid", "isotonic"):
        calibration = fit_calibration(logits, y, method=method)
        assert calibration.smoothing == pytest.approx(1 / 100)
        probabilities = calibration.probabilities(rng.normal(scale=80.0, size=(500, 3)))
        assert probabilities.min() >= 1 / 300 - 1e-12  # 1 / (k (N + 2))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    assert fit_calibration(logits, y, method="none").probabilities(logits).min() < 1e-30


def test_never_wrong_means_the_laplace_accuracy_not_certainty():
    rng = np.random.default_rng(6)
    logits = rng.normal(scale=5.0, size=(48, 3))
    y = logits.argmax(axis=1)
    calibration = fit_calibration(logits, y, method="temperature")
    confidence = calibration.probabilities(logits).max(axis=1)
    # log-loss alone would shrink T without end; the mean confidence stops at 49/50
    assert confidence.mean() == pytest.approx(49 / 50, abs=1e-9)
    assert confidence.min() < 0.9 < confidence.max()  # borderline subjects stay less sure


def test_a_classifier_never_wrong_in_cross_validation_is_not_certain():
    X, y = _blobs((50, 50, 50), separation=8, seed=0)
    model = fit_assignment_model(X, y, candidates=("nearest_centroid",), seed=1)
    table = model.calibration_table().set_index("stage")
    assert table.loc["uncalibrated", "accuracy"] == 1.0
    # Laplace's rule of succession: 150 right, the next one right with about 151/152
    assert 1 < model.calibration.temperature < np.exp(10)
    assigned = assign(model, _blobs((20, 20, 20), separation=8, seed=0, prefix="V")[0])
    assert 0.95 < assigned["confidence"].mean() < 0.999
    assert assigned["confidence"].max() < 1


# --- the map and the metrics on known numbers ----------------------------------------------


def test_temperature_is_recovered_from_logits_with_a_known_one():
    rng = np.random.default_rng(3)
    truth_logits = rng.normal(scale=2.0, size=(4000, 4))
    y = np.array([rng.choice(4, p=p) for p in softmax(truth_logits, axis=1)])
    calibration = fit_calibration(3.0 * truth_logits, y, method="temperature")
    # (N + 1) / (N + 2) targets move T by far less than the sampling error here
    assert calibration.temperature == pytest.approx(3.0, rel=0.06)


def test_cross_fitted_probabilities_use_a_map_fitted_without_the_fold():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, 60)
    folds = [np.arange(0, 20), np.arange(20, 40), np.arange(40, 60)]
    out = cross_fitted(logits, y, folds, method="temperature")
    rest = np.arange(20, 60)
    by_hand = fit_calibration(logits[rest], y[rest], method="temperature")
    np.testing.assert_allclose(out[:20], by_hand.probabilities(logits[:20]))


def test_brier_log_loss_and_ece_by_hand():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25], [0.3, 0.3, 0.4]])
    y = np.array([0, 2, 0, 2])
    metrics = calibration_metrics(probabilities, y, min_confidence=0.6)
    # Brier: (0.09+0.04+0.01) + (0.01+0.64+0.81) + (0.25+0.0625+0.0625) + (0.09+0.09+0.36)
    assert metrics["brier"] == pytest.approx((0.14 + 1.46 + 0.375 + 0.54) / 4)
    assert metrics["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.1, 0.5, 0.4])))
    # bins (0.3, 0.4]: 0.4 right; (0.4, 0.5]: 0.5 right; (0.6, 0.7]: 0.7 right; (0.7, 0.8]: wrong
    assert metrics["ece"] == pytest.approx((0.6 + 0.5 + 0.3 + 0.8) / 4)
    assert metrics["n_uncertain"] == 2 and metrics["accuracy_uncertain"] == 1.0
    assert metrics["accuracy_confident"] == 0.5 and metrics["accuracy"] == 0.75
    bins = reliability_bins(probabilities, y)
    assert bins["n"].sum() == 4 and bins.loc[bins["n"] > 0, "bin"].tolist() == [4, 5, 7, 8]


def test_scores_give_back_the_classifiers_own_probabilities(overlapping):
    (X, y), _ = overlapping
    for name in ("nearest_centroid", "logistic", "svm"):
        model = fit_assignment_model(X, y, candidates=(name,), calibration="none", seed=1)
        own = model.estimator.predict_proba(X.to_numpy())
        logits = scores(model.estimator, X.to_numpy())
        assert np.isfinite(logits).all()
        np.testing.assert_allclose(softmax(logits, axis=1), own, atol=1e-9)


def test_two_subtypes_are_calibrated_too():
    X, y = _blobs((60, 50), separation=2.0, features=5, seed=2)
    model = fit_assignment_model(X, y, candidates=("nearest_centroid", "logistic"), seed=1)
    table = model.calibration_table().set_index("stage")
    calibrated = table.loc["calibrated"]
    assert abs(calibrated["mean_confidence"] - calibrated["accuracy"]) < 0.06
    assert list(assign(model, X).columns[-2:]) == ["prob_RDLS1", "prob_RDLS2"]


def test_same_seed_same_calibration(overlapping):
    (X, y), _ = overlapping
    first = fit_assignment_model(X, y, candidates=("svm",), seed=5).calibration_table()
    again = fit_assignment_model(X, y, candidates=("svm",), seed=5).calibration_table()
    pd.testing.assert_frame_equal(first, again)


# --- the uncertain flag and the settings ---------------------------------------------------


@pytest.mark.parametrize("threshold", [0.6, 0.9])
def test_uncertain_follows_the_threshold(threshold, overlapping):
    (X, y), (X_new, _) = overlapping
    model = fit_assignment_model(X, y, candidates=("logistic",), min_confidence=threshold, seed=1)
    assigned = assign(model, X_new)
    assert (assigned["uncertain"] == (assigned["confidence"] < threshold)).all()
    assert 0 < assigned["uncertain"].sum() < len(assigned)
    calibrated = model.calibration_table().set_index("stage").loc["calibrated"]
    oof = model.oof[[f"calibrated_{c}" for c in model.classes]].max(axis=1)
    assert calibrated["n_uncertain"] == (oof < threshold).sum()
    # the flag means something: out of fold, uncertain subjects are wrong more often
    assert calibrated["accuracy_uncertain"] < calibrated["accuracy_confident"]


def test_bad_calibration_settings_are_refused(overlapping):
    (X, y), _ = overlapping
    with pytest.raises(ValueError, match=r"unknown calibration 'platt'.*temperature, sigmoid"):
        fit_assignment_model(X, y, calibration="platt", seed=1)
    with pytest.raises(ValueError, match=r"min_confidence must lie in \(0, 1\], got 1.5"):
        fit_assignment_model(X, y, min_confidence=1.5, seed=1)
    with pytest.raises(ValueError, match="unknown calibration 'beta'"):
        fit_calibration(np.zeros((4, 2)), np.array([0, 1, 0, 1]), method="beta")


def test_the_config_refuses_a_bad_method_and_threshold():
    with pytest.raises(InputError, match=r"'subtypes\.classifier\.calibration': 'platt' is not"):
        validate_config({"subtypes": {"classifier": {"calibration": "platt"}}})
    with pytest.raises(InputError, match=r"'subtypes\.classifier\.min_confidence': 0 is less"):
        validate_config({"subtypes": {"classifier": {"min_confidence": 0}}})
    defaults = validate_config({})["subtypes"]["classifier"]
    assert defaults["calibration"] == "temperature" and defaults["min_confidence"] == 0.6


# --- through the steps' files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def steps_run(tmp_path_factory, overlapping):
    """classifier_step (nearest centroid, overconfident as on the demo) and assign_step on the
    overlapping subtypes: training plus a cohort."""
    (X, y), (X_new, _) = overlapping
    root = tmp_path_factory.mktemp("calibrated_steps")
    external = X_new.iloc[::15]  # 60 subjects
    features = pd.concat([X, external])
    cohort = ["training"] * len(X) + ["external_validation"] * len(external)
    selected = features.reset_index().assign(cohort=cohort)
    selected[["subject_id", "cohort", *X.columns]].to_parquet(root / "selected.parquet")
    # item consensus: high for most, below 0.6 for every tenth training subject
    consensus = np.where(np.arange(len(X)) % 10 == 0, 0.45, 0.92)
    pd.DataFrame(
        {"subject_id": X.index, "cluster": 0, "subtype": y.to_numpy(), "confidence": consensus}
    ).to_csv(root / "training.tsv", sep="\t", index=False)
    settings = {"candidates": ["nearest_centroid"], "folds": 5,
                "calibration": "temperature", "min_confidence": 0.6}  # fmt: skip
    classifier_step(
        features=root / "selected.parquet",
        training_subtypes=root / "training.tsv",
        settings=settings,
        seed=1,
        out_model=root / "model.joblib",
        out_cv=root / "cv.tsv",
        out_calibration=root / "calibration.tsv",
        out_reliability=root / "reliability.tsv",
        out_reliability_figure=root / "reliability.png",
        out_reliability_vector=root / "reliability.svg",
    )
    assign_step(
        features=root / "selected.parquet",
        training_subtypes=root / "training.tsv",
        model=root / "model.joblib",
        consensus_settings={
            "item_fraction": 0.8,
            "feature_fraction": 1.0,
            "algorithms": ["kmeans"],
            "pac_interval": [0.1, 0.9],
        },
        reps=5,
        seed=1,
        out_assignments=root / "assignments.tsv",
        out_agreement=root / "agreement.tsv",
        out_igp=root / "igp.tsv",
    )
    return root, external


def test_classifier_step_writes_the_calibration_table_bins_and_diagram(steps_run):
    root, _ = steps_run
    table = pd.read_csv(root / "calibration.tsv", sep="\t")
    assert table["stage"].tolist() == ["uncalibrated", "calibrated"]
    assert table["n"].tolist() == [sum(SIZES)] * 2 and table["note"].isna().all()
    assert table.loc[1, "log_loss"] < table.loc[0, "log_loss"]
    bins = pd.read_csv(root / "reliability.tsv", sep="\t")
    assert bins.groupby("stage")["n"].sum().tolist() == [sum(SIZES)] * 2
    assert (root / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (root / "reliability.svg").read_text()
    model = joblib.load(root / "model.joblib")
    assert model.min_confidence == 0.6 and model.calibration.temperature > 1


def test_assignments_carry_uncertain_and_calibrated_probabilities(steps_run):
    root, external = steps_run
    table = pd.read_csv(root / "assignments.tsv", sep="\t", dtype={"subject_id": str})
    subtypes = ["RDLS1", "RDLS2", "RDLS3"]
    assert list(table.columns) == [*ASSIGNMENT_COLUMNS, *[f"prob_{s}" for s in subtypes]]
    assert table["uncertain"].dtype == bool
    training = table[table["cohort"] == "training"]
    # training: the item consensus against the same threshold; no classifier probabilities
    assert training["uncertain"].sum() == sum(SIZES) // 10
    assert (training["uncertain"] == (training["confidence"] < 0.6)).all()
    assert training[[f"prob_{s}" for s in subtypes]].isna().all().all()
    others = table[table["cohort"] == "external_validation"].set_index("subject_id")
    assert len(others) == len(external)
    assert (others["uncertain"] == (others["confidence"] < 0.6)).all()
    probabilities = others[[f"prob_{s}" for s in subtypes]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=3e-4)  # 4 decimals
    np.testing.assert_allclose(others["confidence"], probabilities.max(axis=1))
    assert others["confidence"].median() < 0.999


def test_without_subtypes_the_calibration_outputs_say_why(tmp_path):
    from tests.unit import no_structure as fixture

    classifier_step(
        features=fixture.write_features(tmp_path / "selected.parquet"),
        training_subtypes=fixture.write_training(tmp_path / "training.tsv"),
        settings={"candidates": ["nearest_centroid"], "folds": 3},
        seed=1,
        out_model=tmp_path / "model.joblib",
        out_cv=tmp_path / "cv.tsv",
        structure=fixture.write_structure(tmp_path / "structure.json"),
        out_calibration=tmp_path / "calibration.tsv",
        out_reliability=tmp_path / "reliability.tsv",
        out_reliability_figure=tmp_path / "reliability.png",
        out_reliability_vector=tmp_path / "reliability.svg",
    )
    table = pd.read_csv(tmp_path / "calibration.tsv", sep="\t")
    assert table["note"].item() == f"no classifier fitted: {fixture.MESSAGE}"
    assert table["stage"].isna().all()
    assert pd.read_csv(tmp_path / "reliability.tsv", sep="\t").empty
    assert (tmp_path / "reliability.png").is_file() and (tmp_path / "reliability.svg").is_file()
