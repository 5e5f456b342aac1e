"""Which subjects and cohorts the subtype and survival analyses can use, checked at start."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from rdls.errors import InputError

TRAINING = "training"
# The subjects sheet's cohorts (its schema's enum), in the order tables and figures use.
COHORT_ORDER = ("training", "internal_validation", "external_validation", "biological")


def check_training_cohort(
    subjects: pd.DataFrame, *, with_mri: Iterable[str], k_max: int, source: str
) -> None:
    """Refuse at start a cohort whose training part cannot yield named subtypes.

    Subtypes are discovered in the training cohort and named by their recurrence rate there,
    so it needs MRI for at least ``2 * k_max`` subjects (two per cluster at the largest k)
    and recurrence-free survival with at least one recurrence.
    """
    training = subjects[subjects["cohort"] == TRAINING]
    imaged = training[training["subject_id"].isin(set(with_mri))]
    if len(imaged) < 2 * k_max:
        raise InputError(
            f"{source}: the training cohort has {len(imaged)} subject(s) with an MRI; "
            f"consensus clustering up to subtypes.consensus.k_max = {k_max} needs at least "
            f"{2 * k_max}. Add training subjects (and their rows in the mri sheet), or lower "
            "k_max."
        )
    events = pd.to_numeric(imaged["rfs_event"], errors="coerce")
    if not (events == 1).any():
        raise InputError(
            f"{source}: no training subject with an MRI has a recurrence (rfs_event = 1); "
            "subtypes are named by their recurrence rate in training (RDLS1 the highest), "
            "so the training cohort needs recurrence-free survival with events. Fill "
            "rfs_months and rfs_event, or set subtypes.activate to false."
        )


def cohorts_with_follow_up(subjects: pd.DataFrame, *, with_mri: Iterable[str]) -> list[str]:
    """Cohorts in which some subject has an MRI and a recorded recurrence-free survival."""
    imaged = subjects[subjects["subject_id"].isin(set(with_mri))]
    followed = imaged[pd.to_numeric(imaged["rfs_months"], errors="coerce").notna()]
    return [name for name in COHORT_ORDER if name in set(followed["cohort"])]
