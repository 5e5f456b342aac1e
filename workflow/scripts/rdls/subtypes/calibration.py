"""Subtype probabilities that mean what they say: a calibration map fitted out of fold.

A classifier's own probabilities are not frequencies. Nearest centroid's softmax of negative
squared distances, in tens of standardised dimensions, gives the second-nearest subtype
probabilities such as 1e-250, and its 0.999 says nothing of how often it is wrong.
The map here is fitted to the winning classifier's out-of-fold scores in the training
cross-validation, where every subject's consensus subtype is known and the model that scored
it did not see it:

``temperature`` (the default; Guo et al., ICML 2017)
    ``softmax(scores / T)`` with one T for all subtypes, fitted by minimum log-loss.
    Dividing every score by the same T keeps the order of the subtypes, so every assignment
    (the argmax) is the uncalibrated one and the cross-validated accuracy still describes it.
    Where the fitted T would make the mean confidence exceed the accuracy estimated by
    Laplace's rule of succession, (right + 1) / (N + 2) of N subjects scored, T is raised
    until it does not: a classifier never wrong in cross-validation has a log-loss that
    falls forever as T shrinks, and 24 right answers do not make certainty. (Platt's 1999
    smoothed targets, tried first, also bound T but lowered every confidence, well below
    the accuracy on small cohorts.)
``sigmoid`` (Platt 1999) and ``isotonic`` (Zadrozny and Elkan, KDD 2002)
    One map per subtype, that subtype against the rest, normalised to sum to one
    (scikit-learn's ``CalibratedClassifierCV`` applied to the out-of-fold scores). More
    flexible, and able to change the argmax; isotonic maps are step functions that need
    many subjects.
``none``
    ``softmax(scores)``: the classifier's own probabilities.

Every map but ``none`` then mixes in one uniform pseudo-subject, weight 1 / (N + 2) for the N
subjects it was fitted on (Laplace's add-one smoothing of a probability vector): N subjects
cannot support a probability of 1e-9, and none falls below 1 / (k (N + 2)) for k subtypes.

The scores (:func:`scores`) are the classifier's own log-probabilities: the log-softmax of
the decision function of nearest centroid (negative squared standardised distance to each
centroid plus twice the log prior) and of logistic regression, computed without underflow;
the log-probabilities of the Platt-scaled SVM; the log of the random forest's votes with
Laplace's correction ((votes + 1) / (trees + k); Provost and Domingos, Machine Learning
2003), so that a subtype no tree voted for keeps a finite score. Per-class maps see each
subtype's log-probability, which already weighs it against the others.

Quality is measured on out-of-fold probabilities (:func:`calibration_metrics`): the
multiclass Brier score (Brier 1950; the squared distance between the probability vector and
the true subtype's indicator, averaged over subjects: 0 is perfect, 2 the worst), log-loss,
and the expected calibration error (ECE) of the top class over equal-width confidence bins
(:func:`reliability_bins`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import balanced_accuracy_score, brier_score_loss, log_loss

CALIBRATIONS = ("temperature", "sigmoid", "isotonic", "none")
RELIABILITY_BINS = 10
# The temperature is searched over exp(-10)..exp(10), as scikit-learn's own temperature
# scaling does: from sharpening by e^10 to flattening by e^10.
_LOG_TEMPERATURE_BOUND = 10.0
# Floor of the Platt-scaled SVM's probabilities before the log: its sigmoids never reach 0
# in practice, but a score must stay finite.
_PROBABILITY_FLOOR = 1e-12


def scores(estimator, values: np.ndarray) -> np.ndarray:
    """The classifier's own log-probabilities, computed without underflow.

    Parameters
    ----------
    estimator
        A fitted classifier of :func:`rdls.subtypes.classifier.make_estimator`.
    values : numpy.ndarray
        Subjects by features.

    Returns
    -------
    numpy.ndarray
        Subjects by classes (in ``estimator.classes_`` order), finite; softmax gives the
        classifier's own probabilities back.
    """
    n_classes = len(estimator.classes_)
    if hasattr(estimator, "decision_function"):  # nearest centroid, logistic regression
        logits = np.asarray(estimator.decision_function(values), dtype=float)
        if logits.ndim == 1:  # two classes: the log-odds d of the second; softmax of (-d/2, d/2)
            logits = np.column_stack([-logits / 2, logits / 2])
        # log-softmax rather than log(predict_proba): 1e-250 stays -575, not log(0)
        return log_softmax(logits, axis=1)
    probabilities = np.asarray(estimator.predict_proba(values), dtype=float)
    forest = getattr(estimator, "estimators_", None)
    if forest is not None:  # the random forest: Laplace's correction of the votes
        trees = len(forest)
        return np.log((probabilities * trees + 1) / (trees + n_classes))
    return np.log(np.clip(probabilities, _PROBABILITY_FLOOR, None))


class _Scores(ClassifierMixin, BaseEstimator):
    """Scores passed through as a classifier's: what scikit-learn's per-class maps are fitted
    to. Classes are the column positions ``0..n_classes - 1``."""

    def __init__(self, n_classes: int = 2):
        self.n_classes = n_classes

    def fit(self, X, y=None):
        self.classes_ = np.arange(self.n_classes)
        return self

    def decision_function(self, X):
        values = np.asarray(X, dtype=float)
        # Two classes: scikit-learn expects the second class's log-odds.
        return values[:, 1] - values[:, 0] if self.n_classes == 2 else values

    def predict(self, X):
        return np.asarray(X, dtype=float).argmax(axis=1)


@dataclass
class Calibration:
    """A fitted map from a classifier's scores to calibrated probabilities.

    Attributes
    ----------
    method : str
        One of :data:`CALIBRATIONS`.
    temperature : float
        T of ``softmax(scores / T)``: above 1 the classifier was overconfident; 1 for
        ``none``, NaN for ``sigmoid`` and ``isotonic``.
    maps : sklearn.calibration.CalibratedClassifierCV or None
        The per-class maps of ``sigmoid`` and ``isotonic``.
    smoothing : float
        Weight of the uniform pseudo-subject mixed into the mapped probabilities, 1 / (N + 2)
        for N subjects the map was fitted on (0 for ``none``): no subtype probability falls
        below smoothing / k.
    """

    method: str
    temperature: float = 1.0
    maps: object | None = None
    smoothing: float = 0.0

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (subjects by classes, rows summing to 1) of scores."""
        logits = np.asarray(logits, dtype=float)
        if self.maps is not None:
            mapped = np.asarray(self.maps.predict_proba(logits), dtype=float)
        else:
            mapped = softmax(logits / self.temperature, axis=1)
        return _smoothed(mapped, self.smoothing)


def _smoothed(probabilities: np.ndarray, weight: float) -> np.ndarray:
    return (1 - weight) * probabilities + weight / probabilities.shape[1]


def fit_calibration(logits: np.ndarray, y: np.ndarray, *, method: str) -> Calibration:
    """Fit a calibration map to scores whose true classes are known.

    Parameters
    ----------
    logits : numpy.ndarray
        Subjects by classes: out-of-fold :func:`scores`.
    y : numpy.ndarray
        Each subject's true class, as the column position ``0..n_classes - 1``.
    method : str
        One of :data:`CALIBRATIONS`.

    Returns
    -------
    Calibration
    """
    if method not in CALIBRATIONS:
        raise ValueError(
            f"unknown calibration {method!r} in subtypes.classifier.calibration; valid ones: "
            f"{', '.join(CALIBRATIONS)}"
        )
    logits = np.asarray(logits, dtype=float)
    y = np.asarray(y, dtype=int)
    if method == "none":
        return Calibration(method)
    smoothing = 1 / (len(y) + 2)
    if method == "temperature":
        temperature = _fit_temperature(logits, y, smoothing=smoothing)
        return Calibration(method, temperature=temperature, smoothing=smoothing)
    n_classes = logits.shape[1]
    passthrough = FrozenEstimator(_Scores(n_classes).fit(logits, y))
    maps = CalibratedClassifierCV(passthrough, method=method).fit(logits, y)
    return Calibration(method, temperature=float("nan"), maps=maps, smoothing=smoothing)


def _fit_temperature(logits: np.ndarray, y: np.ndarray, *, smoothing: float) -> float:
    rows = np.arange(len(y))
    laplace = (np.sum(logits.argmax(axis=1) == y) + 1) / (len(y) + 2)

    def probabilities(log_inverse_temperature: float) -> np.ndarray:
        mapped = softmax(np.exp(log_inverse_temperature) * logits, axis=1)
        return _smoothed(mapped, smoothing)

    def log_loss_at(log_inverse_temperature: float) -> float:
        return float(-np.log(probabilities(log_inverse_temperature)[rows, y]).mean())

    def excess_confidence(log_inverse_temperature: float) -> float:
        return float(probabilities(log_inverse_temperature).max(axis=1).mean() - laplace)

    # With the uniform pseudo-subject mixed in, log-loss need not be convex in 1/T: a grid
    # over log(1/T) finds the basin, a bounded search inside it the optimum.
    grid = np.linspace(-_LOG_TEMPERATURE_BOUND, _LOG_TEMPERATURE_BOUND, 161)
    best = int(np.argmin([log_loss_at(g) for g in grid]))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)])
    found = minimize_scalar(log_loss_at, bounds=bracket, method="bounded", options={"xatol": 1e-9})
    log_inverse = float(found.x)
    # The mean top-class probability rises with 1/T: cap it at the Laplace accuracy.
    if excess_confidence(log_inverse) > 0:
        if excess_confidence(grid[0]) >= 0:
            log_inverse = float(grid[0])
        else:
            log_inverse = brentq(excess_confidence, grid[0], log_inverse, xtol=1e-12)
    return float(np.exp(-log_inverse))


def cross_fitted(
    logits: np.ndarray, y: np.ndarray, test_folds: list[np.ndarray], *, method: str
) -> np.ndarray:
    """Calibrated out-of-fold probabilities, each fold mapped by a map fitted on the others.

    The map fitted on all out-of-fold scores would be judged on the scores it was fitted to;
    refitting it without each fold in turn keeps its own fit out of the numbers reported.
    """
    logits = np.asarray(logits, dtype=float)
    y = np.asarray(y, dtype=int)
    out = np.full(logits.shape, np.nan)
    for test in test_folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        calibration = fit_calibration(logits[train], y[train], method=method)
        out[test] = calibration.probabilities(logits[test])
    return out


def reliability_bins(
    probabilities: np.ndarray, y: np.ndarray, *, bins: int = RELIABILITY_BINS
) -> pd.DataFrame:
    """The top class's confidence against its accuracy, in equal-width bins of confidence.

    Returns
    -------
    pandas.DataFrame
        One row per bin (empty bins too): ``bin`` (1..bins), ``lower``, ``upper``, ``n``,
        ``mean_confidence`` and ``accuracy`` (NaN in an empty bin). A calibrated classifier
        has accuracy equal to confidence in every bin.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y, dtype=int)
    edges = np.linspace(0, 1, bins + 1)
    # Bins are (lower, upper]; a confidence of exactly 0 cannot occur for a top class.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        member = which == b
        rows.append(
            {
                "bin": b + 1,
                "lower": edges[b],
                "upper": edges[b + 1],
                "n": int(member.sum()),
                "mean_confidence": confidence[member].mean() if member.any() else np.nan,
                "accuracy": correct[member].mean() if member.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(
    probabilities: np.ndarray, y: np.ndarray, *, bins: int = RELIABILITY_BINS
) -> float:
    """Top-class ECE (Naeini et al. 2015, Guo et al. 2017): the mean over subjects of
    |accuracy - confidence| of their confidence bin."""
    table = reliability_bins(probabilities, y, bins=bins)
    filled = table[table["n"] > 0]
    gaps = (filled["accuracy"] - filled["mean_confidence"]).abs()
    return float((gaps * filled["n"]).sum() / filled["n"].sum())


def calibration_metrics(probabilities: np.ndarray, y: np.ndarray, *, min_confidence: float) -> dict:
    """How good out-of-fold probabilities are, and what the ``uncertain`` flag catches.

    Returns
    -------
    dict
        ``n``, ``accuracy`` and ``balanced_accuracy`` of the top class, ``mean_confidence``,
        ``brier`` (multiclass, 0..2), ``log_loss``, ``ece``, ``n_uncertain`` (confidence below
        ``min_confidence``) and the accuracy of the uncertain and of the confident subjects
        (NaN where there are none).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    y = np.asarray(y, dtype=int)
    labels = np.arange(probabilities.shape[1])
    predicted = probabilities.argmax(axis=1)
    correct = predicted == y
    confidence = probabilities.max(axis=1)
    uncertain = confidence < min_confidence
    return {
        "n": len(y),
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "mean_confidence": float(confidence.mean()),
        "brier": float(brier_score_loss(y, probabilities, labels=labels, scale_by_half=False)),
        "log_loss": float(log_loss(y, probabilities, labels=labels)),
        "ece": expected_calibration_error(probabilities, y),
        "n_uncertain": int(uncertain.sum()),
        "accuracy_uncertain": float(correct[uncertain].mean()) if uncertain.any() else np.nan,
        "accuracy_confident": float(correct[~uncertain].mean()) if (~uncertain).any() else np.nan,
    }
