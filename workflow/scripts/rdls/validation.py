"""How well a run's imaging features and subtypes recover a demo cohort's planted truth.

Validation code only: these functions read the demo's truth tables, which the analysis never
does. They measure what issue-level targets are stated in (docs/validation.md):

- what a feature family carries: the supervised 5-fold balanced accuracy of a logistic
  regression on the training cohort's features against the planted subtypes, and the R² with
  which one family predicts the first principal components of another (out of fold, by ridge
  regression), so that "the deep features carry what the radiomics carry" is a number that
  does not depend on any one planted effect;
- what the subtypes recover: the adjusted Rand index of the training cohort's subtypes against
  the planted ones, and the balanced accuracy of the classifier's assignment elsewhere after
  matching subtype names to planted labels (Hungarian assignment on the training cohort).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FOLDS = 5


def _check_aligned(features: pd.DataFrame, labels: pd.Series, *, what: str) -> pd.Series:
    missing = features.index.difference(labels.index)
    if len(missing):
        raise ValueError(
            f"{what}: {len(missing)} subjects have features but no planted label "
            f"(first: {', '.join(map(str, missing[:3]))})"
        )
    return labels.loc[features.index]


def _usable(features: pd.DataFrame) -> np.ndarray:
    """Finite, non-constant columns as float; a column with any missing value is dropped."""
    values = features.to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=0) & (values.std(axis=0) > 1e-12)
    return values[:, keep]


def supervised_balanced_accuracy(
    features: pd.DataFrame, labels: pd.Series, *, seed: int = 0, folds: int = FOLDS
) -> float:
    """Out-of-fold balanced accuracy of a standardised L2 logistic regression.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per subject (index subject_id), feature columns only.
    labels : pandas.Series
        Planted subtype per subject_id.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = _check_aligned(features, labels, what="balanced accuracy").to_numpy()
    x = _usable(features)
    if x.shape[1] == 0:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(balanced_accuracy_score(y, cross_val_predict(model, x, y, cv=split)))


def principal_component_r2(
    predictors: pd.DataFrame,
    target: pd.DataFrame,
    *,
    components: int = 10,
    seed: int = 0,
    folds: int = FOLDS,
) -> pd.Series:
    """Out-of-fold R² with which ``predictors`` predict each leading PC of ``target``.

    Both tables are standardised; the principal components of ``target`` are computed once on
    all rows (they define what is to be carried, not a model that is evaluated), and a ridge
    regression with its penalty chosen inside each training fold predicts each of them.

    Returns
    -------
    pandas.Series
        R² per component (``PC1`` ...), and ``weighted`` (components weighted by their
        explained variance) and ``mean``.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    common = predictors.index.intersection(target.index)
    x = _usable(predictors.loc[common])
    t = _usable(target.loc[common])
    t = (t - t.mean(axis=0)) / t.std(axis=0)
    n_components = min(components, t.shape[1], len(common) - 1)
    pca = PCA(n_components=n_components, random_state=seed).fit(t)
    scores = pca.transform(t)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15)))
    split = KFold(folds, shuffle=True, random_state=seed)
    r2 = {}
    for j in range(n_components):
        predicted = cross_val_predict(model, x, scores[:, j], cv=split)
        r2[f"PC{j + 1}"] = float(r2_score(scores[:, j], predicted))
    values = np.array(list(r2.values()))
    weights = pca.explained_variance_ratio_
    r2["weighted"] = float(np.sum(values * weights) / np.sum(weights))
    r2["mean"] = float(values.mean())
    return pd.Series(r2)


def match_names(found: pd.Series, planted: pd.Series) -> dict:
    """Subtype name -> planted label, matched to maximise agreement (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    table = pd.crosstab(found, planted.loc[found.index])
    rows, cols = linear_sum_assignment(-table.to_numpy())
    return {table.index[r]: table.columns[c] for r, c in zip(rows, cols, strict=True)}


def subtype_recovery(assignments: pd.DataFrame, planted: pd.Series) -> dict:
    """ARI in training and balanced accuracy of the assignment in every other cohort.

    Parameters
    ----------
    assignments : pandas.DataFrame
        results/subtypes/assignments.tsv indexed by subject_id (``cohort``, ``subtype``).
    planted : pandas.Series
        Planted subtype per subject_id.

    Returns
    -------
    dict
        ``training_ari`` and ``<cohort>_balanced_accuracy`` for each other cohort; NaN where
        the run found fewer than two subtypes.
    """
    from sklearn.metrics import adjusted_rand_score, balanced_accuracy_score

    truth = _check_aligned(assignments, planted, what="subtype recovery")
    training = assignments["cohort"] == "training"
    out = {
        "training_ari": float(
            adjusted_rand_score(truth[training], assignments.loc[training, "subtype"])
        )
    }
    names = assignments.loc[training, "subtype"]
    structured = names.nunique() >= 2
    mapping = match_names(names, truth) if structured else {}
    for cohort, members in assignments[~training].groupby("cohort", sort=False):
        key = f"{cohort}_balanced_accuracy"
        if not structured:
            out[key] = float("nan")
            continue
        mapped = members["subtype"].map(mapping).fillna("unmatched")
        out[key] = float(balanced_accuracy_score(truth.loc[members.index], mapped))
    return out
