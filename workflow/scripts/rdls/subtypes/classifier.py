"""Assigning subtypes outside training: a classifier chosen by cross-validation, and checks.

The classifier is learned on the training cohort's selected features and its consensus
subtypes, then applied unchanged to the other cohorts. Candidates are compared by stratified
k-fold cross-validation in training (balanced accuracy); the best mean wins, ties going to
the earlier candidate, and the winner is refitted on all training subjects.

Every prediction is the subtype with the highest predicted probability, in cross-validation
as in :func:`assign`, so the cross-validated accuracy describes exactly what is assigned.

The probabilities are calibrated (:mod:`rdls.subtypes.calibration`): a map (temperature
scaling by default) is fitted to the winner's out-of-fold scores in the same folds, and its
quality before and after is measured on those out-of-fold predictions, each fold mapped by a
map fitted without it. A subject whose calibrated probability of its subtype is below
``min_confidence`` is flagged ``uncertain``.

Two checks of an assignment in another cohort: :func:`agreement` with an independent
clustering of that cohort (adjusted Rand index, Cohen's kappa after matching cluster ids to
subtypes), and :func:`in_group_proportion` (Kapp and Tibshirani, Biostatistics 2007: the share
of a subtype's members whose nearest neighbour carries the same subtype).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.special import softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score, cohen_kappa_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestCentroid, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from rdls.errors import InputError
from rdls.errors import some as _names
from rdls.subtypes.calibration import (
    CALIBRATIONS,
    Calibration,
    calibration_metrics,
    cross_fitted,
    fit_calibration,
    reliability_bins,
    scores,
)

log = logging.getLogger(__name__)

CLASSIFIERS = ("nearest_centroid", "logistic", "svm", "random_forest")
# Platt scaling of the SVM needs two members of every subtype in each training fold.
_MIN_PER_CLASS = {"svm": 2}


@dataclass
class AssignmentModel:
    """A fitted subtype classifier and how the candidates did in cross-validation.

    Attributes
    ----------
    name : str
        The chosen candidate (one of :data:`CLASSIFIERS`).
    estimator
        The scikit-learn estimator, refitted on all training subjects.
    classes : list of str
        Subtype names, in the order of the estimator's probability columns.
    cv : pandas.DataFrame
        One row per candidate and fold: ``classifier``, ``fold``, ``balanced_accuracy``.
    columns : list of str
        Feature columns, in training order; :func:`assign` needs them all.
    folds : int
        Folds actually used (fewer than asked when a subtype is small).
    calibration : rdls.subtypes.calibration.Calibration
        The map from the estimator's scores to the probabilities :func:`assign` reports,
        fitted on the out-of-fold scores of all folds.
    min_confidence : float
        :func:`assign` flags a subject ``uncertain`` below this calibrated probability.
    oof : pandas.DataFrame
        The chosen candidate's out-of-fold predictions, index ``subject_id``: ``fold``,
        ``subtype`` (the training label), ``uncalibrated_<subtype>`` (the estimator's own
        probabilities) and ``calibrated_<subtype>`` (mapped by a calibration fitted on the
        other folds) for every subtype.
    """

    name: str
    estimator: object
    classes: list[str]
    cv: pd.DataFrame
    columns: list[str] = field(default_factory=list)
    folds: int = 5
    calibration: Calibration = field(default_factory=lambda: Calibration("none"))
    min_confidence: float = 0.0
    oof: pd.DataFrame = field(default_factory=pd.DataFrame)

    def cv_summary(self) -> pd.DataFrame:
        """Per candidate: ``classifier``, ``mean``, ``sd`` (ddof=1) and ``selected``."""
        grouped = self.cv.groupby("classifier", sort=False)["balanced_accuracy"]
        summary = grouped.agg(mean="mean", sd="std").reset_index()
        summary["selected"] = summary["classifier"] == self.name
        return summary

    def _oof(self, stage: str) -> tuple[np.ndarray, np.ndarray]:
        probabilities = self.oof[[f"{stage}_{c}" for c in self.classes]].to_numpy(dtype=float)
        truth = pd.Index(self.classes).get_indexer(self.oof["subtype"])
        return probabilities, truth

    def calibration_table(self) -> pd.DataFrame:
        """Out-of-fold quality of the probabilities before and after calibration.

        Returns
        -------
        pandas.DataFrame
            Rows ``uncalibrated`` and ``calibrated`` (column ``stage``), with ``classifier``,
            ``method`` and ``temperature`` (1 before; NaN for sigmoid and isotonic maps),
            ``folds``, ``min_confidence`` and the numbers of
            :func:`rdls.subtypes.calibration.calibration_metrics` (Brier score, log-loss,
            expected calibration error, subjects below ``min_confidence`` and their accuracy).
        """
        rows = []
        settings = (
            ("uncalibrated", "none", 1.0),
            ("calibrated", self.calibration.method, self.calibration.temperature),
        )
        for stage, method, temperature in settings:
            probabilities, truth = self._oof(stage)
            metrics = calibration_metrics(probabilities, truth, min_confidence=self.min_confidence)
            rows.append(
                {
                    "classifier": self.name,
                    "stage": stage,
                    "method": method,
                    "temperature": temperature,
                    "folds": self.folds,
                    "min_confidence": self.min_confidence,
                    **metrics,
                }
            )
        return pd.DataFrame(rows)

    def reliability_table(self) -> pd.DataFrame:
        """The reliability diagram's numbers (:func:`rdls.subtypes.calibration.reliability_bins`)
        of the out-of-fold probabilities before and after calibration (column ``stage``)."""
        parts = []
        for stage in ("uncalibrated", "calibrated"):
            probabilities, truth = self._oof(stage)
            parts.append(reliability_bins(probabilities, truth).assign(stage=stage))
        table = pd.concat(parts, ignore_index=True)
        return table[["stage", *[c for c in table.columns if c != "stage"]]]


def make_estimator(name: str, *, seed: int, smallest_class: int = 5):
    """An unfitted scikit-learn classifier with probabilities, by candidate name.

    ``nearest_centroid`` works on the features as given (already standardised on training);
    ``logistic`` (multinomial, L2) and ``svm`` (RBF kernel, Platt-scaled probabilities by
    ``CalibratedClassifierCV``) standardise again inside the pipeline; ``random_forest`` has
    300 trees.
    """
    if name == "nearest_centroid":
        return NearestCentroid()
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if name == "svm":
        inner = StratifiedKFold(
            n_splits=max(2, min(3, smallest_class)), shuffle=True, random_state=seed
        )
        return make_pipeline(
            StandardScaler(),
            CalibratedClassifierCV(SVC(kernel="rbf"), method="sigmoid", cv=inner, ensemble=False),
        )
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
    raise ValueError(f"unknown classifier {name!r}; valid ones: {', '.join(CLASSIFIERS)}")


def fit_assignment_model(
    X: pd.DataFrame,
    labels: pd.Series,
    *,
    candidates=("nearest_centroid", "logistic", "svm"),
    folds: int = 5,
    calibration: str = "temperature",
    min_confidence: float = 0.6,
    seed: int,
) -> AssignmentModel:
    """Choose a subtype classifier by cross-validation in training and refit it on all.

    Parameters
    ----------
    X : pandas.DataFrame
        Training subjects (index ``subject_id``) by selected features, no missing values.
    labels : pandas.Series
        Subtype name of each training subject, indexed by ``subject_id``.
    candidates : sequence of str
        Classifiers compared, from :data:`CLASSIFIERS`; ties go to the earlier one.
    folds : int
        Stratified folds (shuffled with ``seed``). Reduced, with a warning in the log, to the
        size of the smallest subtype when that is smaller (at least 2).
    calibration : str
        How the chosen classifier's probabilities are calibrated on its out-of-fold scores,
        one of :data:`rdls.subtypes.calibration.CALIBRATIONS` (``temperature``, ``sigmoid``,
        ``isotonic``, ``none``).
    min_confidence : float
        Calibrated probability of the assigned subtype below which :func:`assign` flags a
        subject ``uncertain`` (0 < min_confidence <= 1).
    seed : int
        Seeds the folds and every candidate.

    Returns
    -------
    AssignmentModel

    Raises
    ------
    ValueError
        An unknown candidate, no candidate, an unknown calibration or a min_confidence
        outside (0, 1].
    rdls.errors.InputError
        Labels and features do not cover the same subjects, missing values, fewer than two
        subtypes, or a subtype with a single member.
    """
    candidates = list(dict.fromkeys(candidates))  # each once, in the order given
    if not candidates:
        raise ValueError(f"no classifier candidates given; valid ones: {', '.join(CLASSIFIERS)}")
    unknown = [c for c in candidates if c not in CLASSIFIERS]
    if unknown:
        raise ValueError(
            f"unknown classifier(s) {', '.join(map(repr, unknown))} in "
            f"subtypes.classifier.candidates; valid ones: {', '.join(CLASSIFIERS)}"
        )
    if calibration not in CALIBRATIONS:
        raise ValueError(
            f"unknown calibration {calibration!r} in subtypes.classifier.calibration; valid "
            f"ones: {', '.join(CALIBRATIONS)}"
        )
    if not 0 < min_confidence <= 1:
        raise ValueError(
            f"subtypes.classifier.min_confidence must lie in (0, 1], got {min_confidence!r}."
        )
    if int(folds) != folds or folds < 2:
        raise InputError(f"subtypes.classifier.folds must be an integer >= 2, got {folds!r}.")
    values = _matrix(X, where="training features")
    y = _labels_for(X, labels)
    counts = pd.Series(y).value_counts()
    if counts.size < 2:
        raise InputError(
            f"training subtypes: only one subtype ({counts.index[0]!r}); a classifier needs at "
            "least two. Check the consensus clustering's k."
        )
    smallest = int(counts.min())
    if smallest < 2:
        raise InputError(
            f"training subtypes: subtype(s) {_names(counts.index[counts < 2])} have a single "
            "member; cross-validation needs at least 2 per subtype. Choose another k in "
            "subtypes.consensus."
        )
    folds = int(folds)
    if smallest < folds:
        log.warning(
            "subtype %r has %d members, fewer than %d folds: cross-validating with %d folds",
            counts.idxmin(),
            smallest,
            folds,
            smallest,
        )
        folds = smallest

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(values, y))
    classes = np.unique(y)  # the estimators' column order
    rows = []
    out_of_fold = {}  # candidate -> subjects by classes: each scored by the fold without it
    for name in candidates:
        out_of_fold[name] = np.full((len(y), len(classes)), np.nan)
        for fold, (train_idx, test_idx) in enumerate(splits, start=1):
            inner_smallest = int(pd.Series(y[train_idx]).value_counts().min())
            if inner_smallest < _MIN_PER_CLASS.get(name, 1):
                score = np.nan  # cannot be fitted on this fold: the candidate is not eligible
            else:
                estimator = make_estimator(name, seed=seed, smallest_class=inner_smallest)
                estimator.fit(values[train_idx], y[train_idx])
                fold_scores = scores(estimator, values[test_idx])
                out_of_fold[name][test_idx] = fold_scores
                predicted = classes[fold_scores.argmax(axis=1)]
                score = balanced_accuracy_score(y[test_idx], predicted)
            rows.append({"classifier": name, "fold": fold, "balanced_accuracy": score})
    cv = pd.DataFrame(rows)
    # a candidate that could not be fitted on some fold gets a NaN mean
    means = cv.groupby("classifier", sort=False)["balanced_accuracy"].agg(
        lambda scores: scores.mean(skipna=False)
    )
    eligible = [c for c in candidates if np.isfinite(means[c])]
    for name in [c for c in candidates if c not in eligible]:
        log.warning(
            "%s needs at least %d members of every subtype in each training fold; left out",
            name,
            _MIN_PER_CLASS[name],
        )
    if not eligible:
        raise InputError(
            f"training subtypes: subtype {counts.idxmin()!r} has {smallest} members, too few to "
            f"cross-validate {', '.join(candidates)}. Add nearest_centroid or logistic to "
            "subtypes.classifier.candidates, or choose another k."
        )
    best = max(eligible, key=lambda c: (means[c], -candidates.index(c)))
    log.info(
        "cross-validated balanced accuracy: %s; chose %s",
        ", ".join(f"{c} {means[c]:.3f}" for c in candidates),  # nan: not eligible
        best,
    )
    estimator = make_estimator(best, seed=seed, smallest_class=smallest)
    estimator.fit(values, y)
    logits, truth = out_of_fold[best], np.searchsorted(classes, y)
    fitted_calibration = fit_calibration(logits, truth, method=calibration)
    calibrated = cross_fitted(logits, truth, [test for _, test in splits], method=calibration)
    fold_of = np.empty(len(y), dtype=int)
    for fold, (_, test_idx) in enumerate(splits, start=1):
        fold_of[test_idx] = fold
    oof = pd.DataFrame({"fold": fold_of, "subtype": y}, index=X.index.copy())
    oof.index.name = X.index.name or "subject_id"
    for stage, probabilities in (
        ("uncalibrated", softmax(logits, axis=1)),
        ("calibrated", calibrated),
    ):
        for j, name in enumerate(classes):
            oof[f"{stage}_{name}"] = probabilities[:, j]
    log.info(
        "calibration of %s: %s, temperature %.3g (1 uncalibrated, nan for per-class maps)",
        best,
        calibration,
        fitted_calibration.temperature,
    )
    return AssignmentModel(
        name=best,
        estimator=estimator,
        classes=[str(c) for c in estimator.classes_],
        cv=cv,
        columns=[str(c) for c in X.columns],
        folds=folds,
        calibration=fitted_calibration,
        min_confidence=float(min_confidence),
        oof=oof,
    )


def assign(model: AssignmentModel, X: pd.DataFrame) -> pd.DataFrame:
    """The subtype of each subject, with its probability and every subtype's probability.

    Parameters
    ----------
    model : AssignmentModel
        From :func:`fit_assignment_model`.
    X : pandas.DataFrame
        Subjects (index ``subject_id``) by the training features (extra columns ignored),
        standardised as in training (:func:`rdls.subtypes.selection.apply_selection`).

    Returns
    -------
    pandas.DataFrame
        Index ``subject_id``; ``subtype`` (the most probable), ``confidence`` (its calibrated
        probability), ``uncertain`` (confidence below the model's ``min_confidence``) and
        ``prob_<subtype>`` (calibrated) for every subtype.
    """
    missing = [c for c in model.columns if c not in X.columns]
    if missing:
        raise InputError(
            f"features to classify: {len(missing)} training feature column(s) missing: "
            f"{_names(missing)}. Select the cohort's features with the training selection "
            "(apply_selection) before assigning subtypes."
        )
    values = _matrix(X[model.columns], where="features to classify")
    proba = model.calibration.probabilities(scores(model.estimator, values))
    best = proba.argmax(axis=1)
    classes = np.asarray(model.classes, dtype=object)
    confidence = proba[np.arange(len(best)), best]
    out = pd.DataFrame(
        {
            "subtype": classes[best],
            "confidence": confidence,
            "uncertain": confidence < model.min_confidence,
        },
        index=X.index.copy(),
    )
    for j, name in enumerate(model.classes):
        out[f"prob_{name}"] = proba[:, j]
    out.index.name = X.index.name or "subject_id"
    return out


def agreement(X: pd.DataFrame, classifier_labels: pd.Series, cluster_labels: pd.Series) -> dict:
    """How well assigned subtypes agree with an independent clustering of the same cohort.

    Parameters
    ----------
    X : pandas.DataFrame
        The cohort's features; its index says which subjects are compared.
    classifier_labels : pandas.Series
        Assigned subtype names, indexed by ``subject_id``.
    cluster_labels : pandas.Series
        Cluster ids from clustering the cohort on its own, indexed by ``subject_id``.

    Returns
    -------
    dict
        ``ari`` (adjusted Rand index, independent of naming), ``kappa`` (Cohen's kappa after
        matching each cluster id to the subtype it overlaps most, by the Hungarian algorithm
        on the contingency table; unmatched clusters count as disagreement), ``mapping``
        (``{cluster id: subtype}``) and ``n`` (subjects compared).
    """
    assigned = _labels_for(X, classifier_labels, where="assigned subtypes")
    clusters = _labels_for(X, cluster_labels, where="cluster labels", as_str=False)
    subtypes = sorted({str(v) for v in assigned})
    cluster_ids = _sorted({_native(v) for v in clusters})
    table = np.zeros((len(cluster_ids), len(subtypes)))
    row_of = {c: i for i, c in enumerate(cluster_ids)}
    col_of = {s: j for j, s in enumerate(subtypes)}
    for c, s in zip(clusters, assigned, strict=True):
        table[row_of[_native(c)], col_of[str(s)]] += 1
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {cluster_ids[i]: subtypes[j] for i, j in zip(rows, cols, strict=True)}
    for c in cluster_ids:
        mapping.setdefault(c, f"unmatched cluster {c}")
    matched = np.asarray([mapping[_native(c)] for c in clusters], dtype=object)
    return {
        "ari": float(adjusted_rand_score(assigned, [str(c) for c in clusters])),
        "kappa": float(cohen_kappa_score(assigned.astype(str), matched.astype(str))),
        "mapping": mapping,
        "n": len(assigned),
    }


def in_group_proportion(X: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """In-group proportion of each subtype (Kapp and Tibshirani, Biostatistics 2007).

    Returns
    -------
    pandas.DataFrame
        One row per subtype (sorted): ``subtype``, ``n``, ``igp`` (share of its members whose
        nearest other subject, Euclidean, has the same subtype) and ``share`` (the subtype's
        share of all subjects: about what random labels would give).
    """
    values = _matrix(X, where="features")
    y = _labels_for(X, labels)
    if len(y) < 2:
        raise InputError(
            f"in-group proportion: {len(y)} subject(s); at least 2 are needed for neighbours."
        )
    neighbours = NearestNeighbors(n_neighbors=1).fit(values)
    _, nearest = neighbours.kneighbors()  # without X: each subject's nearest other subject
    same = y[nearest[:, 0]] == y
    rows = []
    for name in sorted(set(y)):
        member = y == name
        rows.append(
            {
                "subtype": name,
                "n": int(member.sum()),
                "igp": float(same[member].mean()),
                "share": float(member.mean()),
            }
        )
    return pd.DataFrame(rows)


def _labels_for(
    X: pd.DataFrame, labels: pd.Series, *, where: str = "subtype labels", as_str: bool = True
) -> np.ndarray:
    if not isinstance(labels, pd.Series):
        raise InputError(f"{where} must be a pandas Series indexed by subject_id.")
    if labels.index.has_duplicates:
        dup = labels.index[labels.index.duplicated()]
        raise InputError(f"{where}: subject(s) {_names(dup)} appear more than once.")
    absent = X.index.difference(labels.index)
    if len(absent):
        raise InputError(
            f"{where}: no label for {len(absent)} subject(s) with features: {_names(absent)}. "
            "Labels and features must cover the same subjects."
        )
    aligned = labels.reindex(X.index)
    if aligned.isna().any():
        raise InputError(
            f"{where}: missing label for subject(s) {_names(X.index[aligned.isna()])}. "
            "Every subject needs a label."
        )
    values = aligned.to_numpy(dtype=object)
    return values.astype(str) if as_str else values


def _matrix(X: pd.DataFrame, *, where: str) -> np.ndarray:
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"{where} must be a pandas DataFrame indexed by subject_id.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise InputError(f"{where}: empty table ({X.shape[0]} subjects, {X.shape[1]} columns).")
    if X.index.has_duplicates:
        raise InputError(
            f"{where}: subject(s) {_names(X.index[X.index.duplicated()])} appear more than "
            "once. Keep one row per subject."
        )
    not_numeric = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if not_numeric:
        raise InputError(f"{where}: column(s) {_names(not_numeric)} are not numeric.")
    values = X.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(
            f"{where}: missing or infinite values in column(s) "
            f"{_names(X.columns[bad.any(axis=0)])} for subject(s) "
            f"{_names(X.index[bad.any(axis=1)])}. Impute them or leave those subjects out."
        )
    return values


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types: order by their text
        return sorted(values, key=str)


def _native(value):
    return value.item() if isinstance(value, np.generic) else value
