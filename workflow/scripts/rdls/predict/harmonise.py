"""New subjects harmonised with the run's saved ComBat models, nothing refitted.

The run saves one model per feature family when it fits it
(``results/imaging/harmonisation/{family}.json``, :class:`rdls.imaging.harmonise.ComBatModel`):
the training fit (reference centre, grand mean, pooled variance) and every centre's location
and scale, whether fitted in training, estimated from the centre's own images or left
unharmonised. A new subject at one of these centres is mapped exactly as the run mapped that
centre's subjects, on its own, so the other subjects of the sheet change nothing.

A centre the run never saw is estimated as the run estimates one: from the predict sheet's
subjects at that centre only, the training model fixed, no outcome used, when there are at
least ``min_subjects_per_centre`` of them. A smaller one is refused, or scored unharmonised
(as if scanned at the reference centre) when ``predict.unseen_centre`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from rdls.errors import InputError, some
from rdls.imaging.harmonise import (
    UNHARMONISED,
    CentreFit,
    ComBatModel,
    estimate_centre,
    unseen_centre_message,
)

log = logging.getLogger(__name__)

# ``reference`` is the earlier name of ``unharmonised``: kept so that older configs still run.
UNSEEN_CENTRE = ("error", "unharmonised", "reference")
PREDICT_SHEET = "predict_sheet"  # source of a centre estimated from the predict sheet
CENTRE_COLUMNS = ["family", "centre", "subjects", "harmonisation", "estimated_from", "note"]


def load_models(paths: Mapping[str, str | Path], families) -> dict[str, ComBatModel]:
    """The run's saved harmonisation of each family the subtype features use."""
    models = {}
    for family in families:
        if family not in paths:
            raise InputError(
                f"the subtype features use the {family} family, but its saved harmonisation "
                f"(results/imaging/harmonisation/{family}.json) was not given; the config's "
                "subtypes.families must be the run's."
            )
        model = ComBatModel.load(paths[family])
        if model.family != family:
            raise InputError(
                f"{paths[family]}: holds the {model.family} family's harmonisation, not "
                f"{family}'s; rerun the rule imaging_features rather than moving its files."
            )
        models[family] = model
    return models


def small_new_centres(
    centre: pd.Series, model: ComBatModel, *, min_subjects: int
) -> dict[str, list[str]]:
    """New centres (not in ``model``) with fewer than ``min_subjects`` subjects: their IDs."""
    if model.method != "combat":
        return {}
    centre = centre.astype(str)
    new = centre[~centre.isin(set(model.centres))]
    return {
        str(name): [str(i) for i in members.index]
        for name, members in new.groupby(new)
        if len(members) < min_subjects
    }


def refusal_message(
    small: Mapping[str, list[str]], model: ComBatModel, *, min_subjects: int, where: str
) -> str:
    """What stops the scoring of new centres too small to estimate, and the fix."""
    return unseen_centre_message(
        {name: (len(ids), f"subjects {some(ids)}") for name, ids in small.items()},
        known_centres=model.centres,
        min_subjects=min_subjects,
        where=where,
        known_as="the run's saved harmonisation",
        option="predict.unseen_centre",
    )


def centre_plan(model: ComBatModel, centre: pd.Series, *, min_subjects: int) -> pd.DataFrame:
    """How each centre of the new subjects is harmonised (:data:`CENTRE_COLUMNS`).

    ``harmonisation`` is the saved centre's source (``reference``, ``training``,
    ``own_images``: estimated by the run from its own images, ``unharmonised``), or for a
    centre the run did not have ``predict_sheet`` (estimated from these subjects) or
    ``unharmonised`` (fewer than ``min_subjects``); ``none`` when the run did not harmonise.
    ``estimated_from`` is the number of subjects the centre's estimate rests on.
    """
    centre = centre.astype(str)
    rows = []
    for name, members in centre.groupby(centre):
        fit = model.centres.get(name)
        n = len(members)
        if model.method != "combat":
            source, estimated_from, note = "none", 0, ""
        elif fit is not None:
            source, estimated_from = fit.source, fit.subjects
            note = f"left unharmonised by the run ({fit.reason})" if fit.reason else ""
        elif n >= min_subjects:
            source, estimated_from = PREDICT_SHEET, n
            note = f"not in the run: estimated from the predict sheet's {n} subjects at it"
        else:
            source, estimated_from = UNHARMONISED, 0
            note = (f"not in the run and fewer than {min_subjects} subjects: left "
                    f"unharmonised, as if at the reference centre {model.reference}")  # fmt: skip
        rows.append({"family": model.family, "centre": str(name), "subjects": n,
                     "harmonisation": source, "estimated_from": estimated_from,
                     "note": note})  # fmt: skip
    return pd.DataFrame(rows, columns=CENTRE_COLUMNS)


def new_centre_problem(name: str, n: int, model: ComBatModel, *, min_subjects: int) -> str:
    """One line for the sheet check: a new centre too small to estimate, and the fix."""
    return (
        f"centre {name!r} is not in the run's saved harmonisation (centres "
        f"{', '.join(sorted(model.centres))}) and has {n} subject(s) in the sheet, fewer than "
        f"imaging.harmonisation.min_subjects_per_centre ({min_subjects}) to estimate its "
        "scanner shift from its own images. Spell the centre as in the run if it is one of "
        "these, add subjects of that centre to the sheet, or set predict.unseen_centre: "
        "unharmonised to score them unharmonised, as if scanned at the reference centre "
        f"({model.reference})."
    )


def harmonise_new_subjects(
    model: ComBatModel,
    features: pd.DataFrame,
    centre: pd.Series,
    *,
    min_subjects: int,
    unseen_centre: str = "error",
) -> tuple[pd.DataFrame, pd.Series]:
    """Harmonise new subjects' unharmonised features with the run's saved model.

    Parameters
    ----------
    model : ComBatModel
        The run's saved model of this family.
    features : pandas.DataFrame
        Subjects (index ``subject_id``) by unharmonised features; every feature of the model.
    centre : pandas.Series
        Each subject's centre.
    min_subjects : int
        Fewest subjects of a new centre from which it is estimated
        (``imaging.harmonisation.min_subjects_per_centre``).
    unseen_centre : {"error", "unharmonised", "reference"}
        A smaller new centre: stop, or score its subjects unharmonised (noted).

    Returns
    -------
    harmonised : pandas.DataFrame
        Same index, the model's features.
    notes : pandas.Series
        Per subject, what was done unusually (empty string otherwise).
    """
    if unseen_centre not in UNSEEN_CENTRE:
        raise ValueError(f"unseen_centre must be one of {UNSEEN_CENTRE}, got {unseen_centre!r}")
    centre = centre.loc[features.index].astype(str)
    small = small_new_centres(centre, model, min_subjects=min_subjects)
    if small and unseen_centre == "error":
        raise InputError(
            refusal_message(small, model, min_subjects=min_subjects,
                            where=f"{model.family} features of the predict sheet's subjects")
        )  # fmt: skip
    notes = pd.Series("", index=features.index, dtype=object)
    # A copy: the new centres' estimates belong to this scoring, not to the run's model.
    model = ComBatModel(**{**model.__dict__, "centres": dict(model.centres)})
    for row in centre_plan(model, centre, min_subjects=min_subjects).itertuples():
        members = centre.index[centre == row.centre]
        if row.note:
            notes[members] = f"centre {row.centre}, {model.family} features: {row.note}"
            log.warning("%s", notes[members[0]])
        if row.centre in model.centres:
            continue
        if row.harmonisation == PREDICT_SHEET:
            model.centres[row.centre] = estimate_centre(
                model, features.loc[members], source=PREDICT_SHEET
            )
        else:
            model.centres[row.centre] = CentreFit(UNHARMONISED, len(members))
    return model.apply(features, centre), notes
