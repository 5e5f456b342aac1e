"""Scoring new subjects: the run's imaging steps, then every locked model, nothing refitted.

:func:`predict_step` is what the rule calls (paths in, paths out). Underneath,
:func:`load_locked` reads what the run locked, :func:`check_subjects` refuses before any image
is read what the locked models cannot take (covariates, levels, centres),
:func:`extract_features` runs the run's own ingest, preprocessing, radiomics and encoder on the
new subjects, and :func:`score_subjects` applies the locked models to their features.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.compare import NO_STRUCTURE
from rdls.errors import InputError, QCFailure
from rdls.imaging.harmonise import ComBatModel
from rdls.predict.harmonise import (
    centre_plan,
    harmonise_new_subjects,
    load_models,
    new_centre_problem,
    small_new_centres,
)
from rdls.predict.sheet import ingest_rows, read_predict_sheet, where

log = logging.getLogger(__name__)

CLINICAL, CLINICAL_RRS = "clinical", "clinical + RRS"
PREDICTION_COLUMNS = ["subject_id", "centre", "status", "subtype", "confidence", "uncertain",
                      "rrs", "rrs_group", "horizon_months", "recurrence_probability",
                      "recurrence_probability_clinical", "step", "reason", "note"]  # fmt: skip


@dataclass
class LockedModels:
    """Everything the run fitted that a new subject's prediction needs.

    Attributes
    ----------
    harmonisation : dict
        Family -> the run's saved :class:`rdls.imaging.harmonise.ComBatModel`.
    selection : rdls.subtypes.selection.FeatureSelection
        The subtype features, training mean and scale.
    family_of, family_weights : dict
        Each selected feature's family, and each family's weight in the distances.
    classifier : rdls.subtypes.classifier.AssignmentModel or dict
        The dict of :func:`rdls.subtypes.no_structure.no_structure_model` where the run found
        no significant subtypes (every new subject's subtype is then "none").
    rrs : rdls.survival.rrs.RRSModel or None
        With its cut-off; None when the survival branch did not run.
    clinical : dict or None
        ``{"design": CoxDesign, "models": {name: locked model}}`` as
        :func:`rdls.survival.steps.compare_step` wrote it; None without survival.
    """

    harmonisation: dict[str, ComBatModel]
    selection: object
    family_of: dict[str, str]
    family_weights: dict[str, float]
    classifier: object
    rrs: object | None = None
    clinical: dict | None = None

    @property
    def families(self) -> list[str]:
        return sorted(set(self.family_of.values()))

    @property
    def covariates(self) -> list[str]:
        return list(self.clinical["design"].covariates) if self.clinical else []

    @property
    def horizon_months(self) -> float:
        if not self.clinical:
            return float("nan")
        return float(self.clinical["models"][CLINICAL]["horizon"])

    @property
    def no_structure(self) -> str:
        """Why the run has no subtypes (its classifier file's message); "" where it has."""
        from rdls.subtypes.no_structure import is_no_structure

        return str(self.classifier["message"]) if is_no_structure(self.classifier) else ""

    @property
    def classes(self) -> list[str]:
        """The subtypes the classifier assigns (none without structure)."""
        return [] if self.no_structure else [str(c) for c in self.classifier.classes]


def load_locked(
    *,
    harmonisation: Mapping[str, str | Path],
    selection: str | Path,
    classifier: str | Path,
    rrs_model: str | Path | None = None,
    clinical_models: str | Path | None = None,
) -> LockedModels:
    """Read the models the run saved when it fitted them.

    ``harmonisation`` maps each feature family to the run's saved ComBat model
    (``results/imaging/harmonisation/{family}.json``).
    """
    import joblib

    from rdls.subtypes.selection import FeatureSelection
    from rdls.survival.cox import CoxDesign
    from rdls.survival.rrs import RRSModel

    chosen = json.loads(Path(selection).read_text())
    family_of = dict(chosen["family_of"])
    locked_harmonisation = load_models(harmonisation, sorted(set(family_of.values())))
    clinical = None
    if clinical_models is not None:
        data = json.loads(Path(clinical_models).read_text())
        clinical = {"design": CoxDesign.from_dict(data["design"]), "models": data["models"]}
        # No RRS (no significant subtypes): the run locked the clinical model alone.
        rrs = json.loads(Path(rrs_model).read_text()) if rrs_model is not None else {}
        rrs_empty = rrs_model is not None and not rrs.get("features")
        wanted = (CLINICAL,) if rrs_empty else (CLINICAL, CLINICAL_RRS)
        absent = [m for m in wanted if m not in clinical["models"]]
        if absent:
            raise InputError(
                f"{clinical_models}: no locked model {', '.join(map(repr, absent))}; rerun "
                "survival_compare_models rather than editing the file."
            )
    rrs = None
    if rrs_model is not None:
        rrs = RRSModel.from_dict(json.loads(Path(rrs_model).read_text()))
    return LockedModels(
        harmonisation=locked_harmonisation,
        selection=FeatureSelection.from_dict(chosen),
        family_of=family_of,
        family_weights={k: float(v) for k, v in chosen["family_weights"].items()},
        classifier=joblib.load(classifier),
        rrs=rrs,
        clinical=clinical,
    )


def check_subjects(
    sheet: pd.DataFrame,
    locked: LockedModels,
    *,
    source: str | Path,
    unseen_centre: str,
    min_subjects: int = 20,
) -> pd.DataFrame:
    """Refuse what the locked models cannot take, before any image is read.

    Checks that every covariate of the locked clinical model is a filled column, that each
    categorical covariate takes a level the training cohort had and each log2 covariate is
    positive, and that every centre is in the run's saved harmonisation or has at least
    ``min_subjects`` subjects in the sheet to estimate it from (unless ``unseen_centre`` is
    ``"unharmonised"`` or ``"reference"``). Returns the clinical design matrix (index
    ``subject_id``; no columns without survival).

    Raises
    ------
    rdls.errors.InputError
        Listing every problem by sheet, row, column and fix.
    """
    problems: list[str] = []
    frame = sheet.set_index("subject_id", drop=False)
    if locked.clinical:
        design = locked.clinical["design"]
        absent = [c for c in design.covariates if c not in frame.columns]
        if absent:
            raise InputError(
                f"{source}: covariate column(s) {', '.join(map(repr, absent))} missing. The "
                "locked clinical model (results/survival/comparison/locked_models.json) was "
                "fitted with them and cannot predict the recurrence probability without "
                "them. Add each column with every subject's value."
            )
        for column in design.covariates:
            empty = frame.index[frame[column].isna()]
            for subject_id in empty:
                problems.append(
                    f"{where(sheet, subject_id, source)}, column {column!r}: empty, but the "
                    "locked clinical model needs it to predict the recurrence probability. "
                    "Fill it in, or leave the subject out of the sheet."
                )
            levels = design.categorical_levels.get(column)
            if levels is not None:
                text = frame[column].map(lambda v: v if pd.isna(v) else str(v))
                for subject_id in frame.index[text.notna() & ~text.isin(levels)]:
                    problems.append(
                        f"{where(sheet, subject_id, source)}, column {column!r}: level "
                        f"{text[subject_id]!r} did not occur in the training cohort, so the "
                        f"locked clinical model has no coefficient for it (known levels: "
                        f"{', '.join(levels)}). Recode it to one of these, or leave the "
                        "subject out."
                    )
            elif column in design.log2:
                numbers = pd.to_numeric(frame[column], errors="coerce")
                for subject_id in frame.index[numbers.notna() & (numbers <= 0)]:
                    problems.append(
                        f"{where(sheet, subject_id, source)}, column {column!r}: "
                        f"{numbers[subject_id]:g} is not positive; the locked clinical model "
                        f"takes log2({column}). Correct the value, or leave the subject out."
                    )
    if unseen_centre == "error":
        for model in locked.harmonisation.values():
            centre = frame["centre"].astype(str)
            small = small_new_centres(centre, model, min_subjects=min_subjects)
            for name, ids in small.items():
                problems += [
                    f"{where(sheet, subject_id, source)}, column 'centre': "
                    + new_centre_problem(name, len(ids), model, min_subjects=min_subjects)
                    for subject_id in ids
                ]
            break  # every family has the same centres
    if problems:
        raise InputError(
            f"{len(problems)} subject(s) or value(s) the locked models cannot take:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    if not locked.clinical:
        return pd.DataFrame(index=frame.index)
    from rdls.survival.cox import design_matrix

    return design_matrix(locked.clinical["design"], frame)


def extract_features(
    subjects: Sequence[dict],
    *,
    work_dir: str | Path,
    ingest: Mapping,
    preprocess: Mapping,
    params_file: str | Path,
    checkpoint: str | Path,
    encoder: Mapping,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The run's imaging steps on the new subjects, into ``work_dir``; nothing is trained.

    Every subject that fails a check is kept in the returned status table (``subject_id``,
    ``status``, ``step``, ``reason``) rather than stopping here; the caller decides.

    Returns
    -------
    features : dict
        ``{"radiomics": DataFrame, "deep": DataFrame}`` of the subjects that passed, index
        ``subject_id``, unharmonised.
    status : pandas.DataFrame
        One row per subject: its last step and whether it passed.
    """
    from rdls.imaging.steps import (
        embed_shard,
        ingest_shard,
        preprocess_shard,
        radiomics_shard,
    )

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ingested = ingest_shard(
        subjects=subjects,
        out_dir=work / "ingested",
        out_table=work / "ingested.tsv",
        settings=dict(ingest),
        allow_exclusions=True,
    )
    preprocess_shard(
        ingested_table=work / "ingested.tsv",
        ingested_dir=work / "ingested",
        out_crops=work / "crops.npz",
        out_table=work / "crops.tsv",
        settings=dict(preprocess),
        allow_exclusions=True,
    )
    radiomic_status = radiomics_shard(
        ingested_table=work / "ingested.tsv",
        ingested_dir=work / "ingested",
        params_file=params_file,
        out_features=work / "radiomics.parquet",
        out_table=work / "radiomics.tsv",
        allow_exclusions=True,
    )
    embed_shard(
        crops=work / "crops.npz",
        checkpoint=checkpoint,
        out_features=work / "deep.parquet",
        settings=dict(encoder),
    )
    status = pd.concat([ingested[["subject_id", "status", "step", "reason"]], radiomic_status])
    failed = status[status["status"] != "ok"].drop_duplicates("subject_id")
    passed = [s["subject_id"] for s in subjects if s["subject_id"] not in set(failed["subject_id"])]
    status = pd.concat(
        [
            failed,
            pd.DataFrame({"subject_id": passed, "status": "ok", "step": "", "reason": ""}),
        ]
    ).set_index("subject_id")
    status = status.loc[[s["subject_id"] for s in subjects]].reset_index()
    features = {}
    for family in ("radiomics", "deep"):
        table = pd.read_parquet(work / f"{family}.parquet")
        table = table.set_index("subject_id").astype(float) if len(table) else table
        features[family] = table.reindex([s for s in passed if s in set(table.index)])
    return features, status


def score_subjects(
    features: Mapping[str, pd.DataFrame],
    centre: pd.Series,
    clinical_design: pd.DataFrame,
    locked: LockedModels,
    *,
    unseen_centre: str = "error",
    min_subjects: int = 20,
) -> pd.DataFrame:
    """Apply every locked model to new subjects' unharmonised features.

    Parameters
    ----------
    features : mapping
        Family -> subjects (index ``subject_id``) by unharmonised features; the subjects
        scored are those every needed family has.
    centre : pandas.Series
        Each subject's centre.
    clinical_design : pandas.DataFrame
        The locked clinical design's columns for each subject (:func:`check_subjects`).
    locked : LockedModels
    unseen_centre : {"error", "unharmonised", "reference"}
    min_subjects : int
        A centre not in the run's saved harmonisation is estimated from these subjects at
        it when there are at least this many (:mod:`rdls.predict.harmonise`).

    Returns
    -------
    pandas.DataFrame
        Index ``subject_id``: ``subtype``, ``confidence`` and ``prob_<subtype>`` for every
        subtype (calibrated probabilities, :func:`rdls.subtypes.classifier.assign`),
        ``uncertain`` (confidence below the run's subtypes.classifier.min_confidence),
        ``rrs``, ``rrs_group``, ``horizon_months``, ``recurrence_probability`` (clinical +
        RRS) and ``recurrence_probability_clinical`` (NaN without survival), and ``note``.
    """
    from rdls.subtypes.classifier import assign
    from rdls.subtypes.selection import apply_selection

    ids = None
    for family in locked.families:
        if family not in features:
            raise InputError(f"no {family} features for the new subjects; they are needed.")
        index = features[family].index
        ids = index if ids is None else ids.intersection(index, sort=False)
    harmonised, notes = [], pd.Series("", index=ids, dtype=object)
    for family in locked.families:
        table, family_notes = harmonise_new_subjects(
            locked.harmonisation[family],
            features[family].loc[ids],
            centre,
            min_subjects=min_subjects,
            unseen_centre=unseen_centre,
        )
        harmonised.append(table)
        notes = notes.str.cat(family_notes, sep="; ").str.strip("; ")
    joined = pd.concat(harmonised, axis=1)
    joined.index.name = "subject_id"
    scaled = apply_selection(locked.selection, joined)
    weights = pd.Series({c: locked.family_weights[locked.family_of[c]] for c in scaled.columns})
    scaled = scaled * weights
    if locked.no_structure:
        out = pd.DataFrame({"subtype": NO_STRUCTURE, "confidence": np.nan}, index=scaled.index)
        notes = notes.str.cat(pd.Series(locked.no_structure, index=ids), sep="; ").str.strip("; ")
    else:
        out = assign(locked.classifier, scaled)
    out["rrs"] = np.nan
    out["rrs_group"] = None
    out["horizon_months"] = locked.horizon_months
    out["recurrence_probability"] = np.nan
    out["recurrence_probability_clinical"] = np.nan
    if locked.rrs is not None and not locked.rrs.empty:
        rrs = locked.rrs.score(scaled)
        out["rrs"] = rrs
        out["rrs_group"] = locked.rrs.group(rrs)
    if locked.clinical and locked.rrs is not None:
        from rdls.survival.compare import risk_from_locked

        design = clinical_design.loc[ids].assign(rrs=out["rrs"])
        models = locked.clinical["models"]
        out["recurrence_probability_clinical"] = risk_from_locked(models[CLINICAL], design)
        if not locked.rrs.empty:
            out["recurrence_probability"] = risk_from_locked(models[CLINICAL_RRS], design)
    out["note"] = notes
    return out


def predict_step(
    *,
    sheet: str | Path,
    covariates: Sequence[str],
    harmonisation: Mapping[str, str | Path],
    selection: str | Path,
    classifier: str | Path,
    checkpoint: str | Path,
    params_file: str | Path,
    rrs_model: str | Path | None,
    clinical_models: str | Path | None,
    imaging: Mapping,
    allow_exclusions: bool,
    unseen_centre: str,
    out_predictions: str | Path,
    out_harmonisation: str | Path,
    out_work: str | Path,
    min_subjects_per_centre: int = 20,
) -> pd.DataFrame:
    """Score the subjects of the predict sheet with the run's locked models.

    Parameters
    ----------
    sheet : path
        The predict sheet (:func:`rdls.predict.sheet.read_predict_sheet`).
    covariates : sequence of str
        The config's clinical covariates (checked again against the locked model's).
    harmonisation, selection, classifier, rrs_model, clinical_models : paths
        What the run locked (:func:`load_locked`); ``rrs_model`` and ``clinical_models`` may
        be None when the survival branch does not run.
    checkpoint, params_file : path
        The run's encoder and radiomics parameter file.
    imaging : mapping
        The config's ``imaging`` block (``ingest``, ``preprocess``, ``encoder``): the
        settings the run extracted its features with.
    allow_exclusions : bool
        A subject whose images fail QC is listed with its reason (true) or stops the job
        naming its row and file (false).
    unseen_centre : {"error", "unharmonised", "reference"}
        A centre not in the run's saved harmonisation and with fewer than
        ``min_subjects_per_centre`` subjects in the sheet: stop, or score it unharmonised.
    out_predictions : path
        One row per subject (:data:`PREDICTION_COLUMNS`, with ``prob_<subtype>`` after
        ``confidence``).
    out_harmonisation : path
        How each family and centre of the scored subjects was harmonised
        (:func:`rdls.predict.harmonise.centre_plan`).
    out_work : path
        Folder for the new subjects' ingested images, crops and unharmonised features.
    min_subjects_per_centre : int
        Fewest subjects from which a centre not in the run's saved harmonisation is
        estimated from its own images (``imaging.harmonisation.min_subjects_per_centre``,
        whose default this is).
    """
    locked = load_locked(
        harmonisation=harmonisation,
        selection=selection,
        classifier=classifier,
        rrs_model=rrs_model,
        clinical_models=clinical_models,
    )
    needed = list(dict.fromkeys([*covariates, *locked.covariates]))
    subjects = read_predict_sheet(sheet, covariates=needed)
    design = check_subjects(subjects, locked, source=sheet, unseen_centre=unseen_centre,
                            min_subjects=min_subjects_per_centre)  # fmt: skip
    log.info("%d subject(s) to score from %s", len(subjects), sheet)
    encoder = {k: v for k, v in imaging["encoder"].items() if k != "checkpoint"}
    features, status = extract_features(
        ingest_rows(subjects),
        work_dir=out_work,
        ingest=imaging["ingest"],
        preprocess=imaging["preprocess"],
        params_file=params_file,
        checkpoint=checkpoint,
        encoder=encoder,
    )
    failed = status[status["status"] != "ok"]
    if len(failed) and not allow_exclusions:
        raise QCFailure(
            f"{len(failed)} subject(s) of the predict sheet failed quality control:\n"
            + "\n".join(
                f"- {where(subjects, row.subject_id, sheet)}: "
                + _sheet_words(row.reason).removeprefix(f"subject {row.subject_id}: ")
                for row in failed.itertuples()
            )
            + "\n(qc.allow_exclusions is false; set it to true to list these subjects as "
            "excluded and score the others)",
            step=str(failed["step"].iloc[0]),
        )
    centre = subjects.set_index("subject_id")["centre"].astype(str)
    ok = status.loc[status["status"] == "ok", "subject_id"].tolist()
    plan = [centre_plan(model, centre.loc[ok], min_subjects=min_subjects_per_centre)
            for model in locked.harmonisation.values()]  # fmt: skip
    Path(out_harmonisation).parent.mkdir(parents=True, exist_ok=True)
    pd.concat(plan, ignore_index=True).to_csv(out_harmonisation, sep="\t", index=False)
    scored = (
        score_subjects(
            {family: table.loc[ok] for family, table in features.items()},
            centre,
            design,
            locked,
            unseen_centre=unseen_centre,
            min_subjects=min_subjects_per_centre,
        )
        if ok
        else pd.DataFrame()
    )
    table = _predictions_table(subjects, status, scored, locked)
    table.to_csv(out_predictions, sep="\t", index=False)
    log.info("predictions:\n%s", table.to_string(index=False))
    return table


def _sheet_words(reason: str) -> str:
    """QC messages name the mri sheet; here the paths come from the predict sheet."""
    return str(reason).replace("of the mri sheet", "of the predict sheet")


def _predictions_table(
    subjects: pd.DataFrame, status: pd.DataFrame, scored: pd.DataFrame, locked: LockedModels
) -> pd.DataFrame:
    classes = locked.classes
    columns = list(PREDICTION_COLUMNS)
    at = columns.index("confidence") + 1
    columns[at:at] = [f"prob_{c}" for c in classes]
    table = subjects[["subject_id", "centre"]].merge(status, on="subject_id", how="left")
    table["reason"] = table["reason"].map(_sheet_words)
    if len(scored):
        table = table.merge(scored.reset_index(), on="subject_id", how="left")
    table["horizon_months"] = locked.horizon_months
    return table.reindex(columns=columns)
