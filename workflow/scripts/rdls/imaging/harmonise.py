"""Centre (scanner) harmonisation of imaging features with ComBat, and how well it worked.

ComBat (Johnson et al., Biostatistics 2007; inmoose's ``pycombat_norm``) removes each centre's
additive and multiplicative shift of every feature with empirical-Bayes shrinkage. One centre
is the reference: its values stay as they are and the others are mapped onto it, so adding a
subject at one centre changes the harmonised values of that centre only, and a later cohort
from a new centre is mapped onto the same reference.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# ComBat estimates a centre's mean and variance; with fewer subjects it cannot.
MIN_SUBJECTS_PER_CENTRE = 2


def combat(
    features: pd.DataFrame, centre: pd.Series, *, reference: str
) -> tuple[pd.DataFrame, list[str]]:
    """Harmonise features across centres onto a reference centre.

    Parameters
    ----------
    features : pandas.DataFrame
        Subjects x features, finite values.
    centre : pandas.Series
        Centre of each subject, aligned with ``features``' index.
    reference : str
        The centre whose values are kept.

    Returns
    -------
    harmonised : pandas.DataFrame
        Same shape, index and columns.
    notes : list of str
        What was left as it was and why (centres too small, features constant in a centre).
    """
    from inmoose.pycombat import pycombat_norm

    centre = centre.loc[features.index].astype(str)
    counts = centre.value_counts()
    if reference not in counts.index:
        raise ValueError(f"reference centre {reference!r} has no subjects")
    notes = []
    small = sorted(counts.index[counts < MIN_SUBJECTS_PER_CENTRE])
    if small:
        notes.append(
            f"centres {', '.join(small)} have fewer than {MIN_SUBJECTS_PER_CENTRE} subjects "
            "and are left unharmonised"
        )
    rows = ~centre.isin(small)
    block = features.loc[rows]
    # A feature constant within a centre has no variance to scale; ComBat would divide by 0.
    spread = block.groupby(centre[rows]).std(ddof=0).min(axis=0)
    usable = spread.index[spread > 0]
    constant = [c for c in features.columns if c not in set(usable)]
    if constant:
        notes.append(f"{len(constant)} features constant within a centre are left unharmonised")
    harmonised = features.copy()
    if centre[rows].nunique() >= 2 and len(usable):
        adjusted = pycombat_norm(
            block[usable].T.astype(float), centre[rows].to_numpy(), ref_batch=reference
        )
        harmonised.loc[rows, usable] = np.asarray(adjusted, dtype=float).T
    for note in notes:
        log.warning("ComBat: %s", note)
    return harmonised, notes


def reference_centre(centre: pd.Series, cohort: pd.Series, *, training: str = "training") -> str:
    """The training cohort's largest centre (ties broken by name), ComBat's default reference."""
    counts = centre[cohort == training].value_counts()
    if counts.empty:
        raise ValueError("no training-cohort subject to choose a reference centre from")
    return sorted(counts.index[counts == counts.max()])[0]


def centre_predictability(features: pd.DataFrame, centre: pd.Series, *, seed: int) -> float:
    """Cross-validated balanced accuracy of predicting the centre from the features.

    Chance is one over the number of centres; harmonisation should bring it towards chance.
    Logistic regression on standardised features, stratified 5-fold cross-validation (fewer
    folds when a centre is small); centres with fewer than 2 subjects are left out. NaN when
    fewer than two centres remain.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    centre = centre.loc[features.index].astype(str)
    counts = centre.value_counts()
    keep = centre.isin(counts.index[counts >= 2])
    if centre[keep].nunique() < 2:
        return float("nan")
    folds = int(min(5, counts[counts >= 2].min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))
    scores = cross_val_score(
        model,
        features.loc[keep].to_numpy(dtype=float),
        centre[keep].to_numpy(),
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
    )
    return float(np.mean(scores))
