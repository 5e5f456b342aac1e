"""The subtype rules' work: files in, files out, around the computing modules of this package.

Each ``*_step`` function is what one rule script calls. The features, clusters, names and
classifier are learned on the training cohort only; the other cohorts are assigned.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from rdls.errors import InputError
from rdls.sheets import read_subjects
from rdls.subtypes.cohorts import COHORT_ORDER, TRAINING

log = logging.getLogger(__name__)

ID_COLUMNS = ("subject_id", "cohort")
AGREEMENT_COLUMNS = ["cohort", "n", "k", "ari", "kappa", "note"]
# results/subtypes/assignments.tsv: these columns, then prob_<subtype> for every subtype (the
# classifier's calibrated probabilities; empty for training subjects, whose subtype is their
# consensus cluster's). ``uncertain``: confidence below subtypes.classifier.min_confidence
# (training subjects: their item consensus; empty without a confidence).
ASSIGNMENT_COLUMNS = ["subject_id", "cohort", "subtype", "confidence", "uncertain", "source"]
# Clinical columns of the subjects sheet that Table 1 describes besides the configured
# covariates (numbers are continuous, text categorical).
TABLE_ONE_EXTRA = ("centre", "distance_anal_verge_cm", "differentiation")


def features_step(
    *,
    feature_tables: Mapping[str, str | Path],
    subjects_sheet: str | Path,
    settings: Mapping,
    out_features: str | Path,
    out_selection: str | Path,
    out_table: str | Path,
) -> None:
    """Join the configured feature families, select and scale features on training."""
    from rdls.subtypes.selection import apply_selection, select_features

    features, family_of = read_feature_families(feature_tables)
    training = features[features["cohort"] == TRAINING]
    if training.empty:
        raise InputError(
            "no training subject has imaging features (all excluded by QC?); "
            "results/qc/exclusions.tsv lists why. Subtypes are discovered in training."
        )
    values = features.drop(columns=list(ID_COLUMNS))
    prognostic = None
    if settings["prognostic_filter"]:
        subjects = read_subjects(subjects_sheet).set_index("subject_id")
        prognostic = {
            "time": subjects["rfs_months"],
            "event": subjects["rfs_event"],
            "p_threshold": settings["prognostic_p"],
        }
    selection = select_features(
        values.loc[training.index],
        max_abs_correlation=settings["max_abs_correlation"],
        near_constant_fraction=settings["near_constant_fraction"],
        prognostic=prognostic,
    )
    scaled = apply_selection(selection, values)
    weights = family_weights(selection.columns, family_of, how=settings["family_weighting"])
    scaled = scaled * pd.Series({c: weights[family_of[c]] for c in scaled.columns})
    log.info("family weights: %s", weights)
    log.info(
        "%d of %d features kept for %d subjects (%d training)",
        len(selection.columns),
        values.shape[1],
        len(scaled),
        len(training),
    )
    out = pd.concat([features[list(ID_COLUMNS)], scaled], axis=1).reset_index(drop=True)
    _parent(out_features)
    out.to_parquet(out_features, index=False)
    Path(out_selection).write_text(
        json.dumps(
            {**selection.to_dict(), "family_of": family_of, "family_weights": weights}, indent=1
        )
    )
    table = selection.report.copy()
    table.insert(1, "family", table["feature"].map(family_of))
    table.to_csv(out_table, sep="\t", index=False)


def family_weights(columns: list[str], family_of: Mapping[str, str], *, how: str) -> dict:
    """Weight of each family's standardised features in distances.

    ``"equal"`` gives a family with p kept features the weight 1 / sqrt(p), so that its
    expected contribution to a squared Euclidean distance is the same as any other family's
    however many features it has (block scaling); ``"by_feature"`` weighs every feature 1.
    """
    counts = pd.Series([family_of[c] for c in columns]).value_counts()
    if how == "by_feature":
        return dict.fromkeys(sorted(counts.index), 1.0)
    if how != "equal":
        raise ValueError(f"family weighting must be 'equal' or 'by_feature', got {how!r}")
    return {family: float(1 / np.sqrt(counts[family])) for family in sorted(counts.index)}


def read_feature_families(tables: Mapping[str, str | Path]) -> tuple[pd.DataFrame, dict]:
    """Feature tables of several families side by side, indexed by subject_id.

    Returns the joined table (``cohort`` and the feature columns) and each feature's family.
    """
    joined = None
    family_of: dict[str, str] = {}
    for family, path in tables.items():
        frame = pd.read_parquet(path).set_index("subject_id")
        names = [c for c in frame.columns if c not in ("cohort", "centre")]
        clash = sorted(set(names) & set(family_of))
        if clash:
            raise InputError(
                f"{path}: feature column(s) {', '.join(clash[:5])} also occur in family "
                f"{family_of[clash[0]]}; feature names must be unique across families."
            )
        family_of.update(dict.fromkeys(names, family))
        if joined is None:
            joined = frame[["cohort", *names]]
        else:
            joined = joined.join(frame[names], how="inner")
    joined = joined.sort_index()
    joined.index.name = "subject_id"
    return joined.reset_index().set_index("subject_id", drop=False), family_of


def read_selected(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """The selected, scaled features (index subject_id) and each subject's cohort."""
    frame = pd.read_parquet(path).set_index("subject_id")
    return frame.drop(columns=["cohort"]), frame["cohort"]


def consensus_step(
    *,
    features: str | Path,
    subjects_sheet: str | Path,
    settings: Mapping,
    seed: int,
    out_summary: str | Path,
    out_cdf: str | Path,
    out_labels: str | Path,
    out_training: str | Path,
    out_rates: str | Path,
    out_stability: str | Path,
    out_structure: str | Path,
    out_figures: Mapping[str, tuple[str, str]],
    threads: int = 1,
) -> None:
    """Consensus clustering of the training cohort, tested against a null; k, names, stability.

    The real PAC of every k is compared with the same clustering of ``null_reps`` datasets
    without clusters (:mod:`rdls.subtypes.structure`); k follows ``k_rule`` (or the fixed
    ``k``). Without a significant k (rule ``rcsi``) there are no subtypes: every training
    subject gets subtype ``"none"`` (cluster 0, no confidence), ``subtype_rates.tsv`` one
    "none" row, no names are drawn and ``structure.json`` says why with the numbers. Otherwise
    the clusters are named by recurrence rate and each one's bootstrap stability is written
    (:mod:`rdls.subtypes.stability`).
    """
    from rdls.compare import NO_STRUCTURE
    from rdls.subtypes._consensus_plots import (
        plot_cdf,
        plot_consensus_heatmaps,
        plot_k_selection,
    )
    from rdls.subtypes.consensus import choose_k, consensus_cluster
    from rdls.subtypes.naming import incidence_rates, name_subtypes
    from rdls.subtypes.separation import separation_by_k, separation_summary
    from rdls.subtypes.stability import STABILITY_COLUMNS, bootstrap_stability
    from rdls.subtypes.structure import compare_with_null, null_reference, structure_report

    values, cohort = read_selected(features)
    training = values[cohort == TRAINING]
    options = {
        "ks": range(settings["k_min"], settings["k_max"] + 1),
        "item_fraction": settings["item_fraction"],
        "feature_fraction": settings["feature_fraction"],
        "algorithms": settings["algorithms"],
        "pac_interval": tuple(settings["pac_interval"]),
        "seed": seed,
    }
    result = consensus_cluster(training, reps=settings["reps"], **options)
    null = null_reference(
        training,
        reps=settings["null_resampling_reps"] or settings["reps"],
        null_reps=settings["null_reps"],
        covariance=settings["null_covariance"],
        threads=threads,
        **options,
    )
    summary = result.summary.merge(compare_with_null(result.summary, null), on="k")
    separation = separation_summary(separation_by_k(training, result.labels))
    summary = summary.merge(separation, on="k")
    min_size = max(2, math.ceil(settings["min_cluster_fraction"] * len(training)))
    fixed = settings["k"] is not None
    k = choose_k(
        summary,
        rule=settings["k_rule"],
        k=settings["k"],
        min_cluster_size=min_size,
        alpha=settings["alpha"],
        min_rcsi=settings["min_rcsi"],
        separated_only=settings["separated_only"],
    )
    structure = structure_report(
        summary,
        k=k,
        k_rule=settings["k_rule"],
        alpha=settings["alpha"],
        null_reps=settings["null_reps"],
        fixed=fixed,
        min_cluster_size=min_size,
        min_rcsi=settings["min_rcsi"],
        separated_only=settings["separated_only"],
    )
    (log.info if k is not None else log.warning)("%s", structure["message"])
    summary = summary.assign(
        eligible=summary["min_cluster_size"] >= min_size,
        significant=summary["p_adjusted"] < settings["alpha"],
        separated=summary["separation_p"] < settings["alpha"],
        chosen=summary["k"] == k,
    )
    summary.to_csv(out_summary, sep="\t", index=False)
    result.cdf.to_csv(out_cdf, sep="\t", index=False)
    pd.concat(
        [
            pd.DataFrame({"subject_id": result.item_ids, "k": each, "cluster": labels})
            for each, labels in result.labels.items()
        ]
    ).to_csv(out_labels, sep="\t", index=False)

    subjects = read_subjects(subjects_sheet).set_index("subject_id").loc[result.item_ids]
    if k is None:
        # No subtypes: one group, not named (its name would claim a risk ranking).
        clusters = np.zeros(len(result.item_ids), dtype=np.int64)
        names = {0: NO_STRUCTURE}
        confidence = np.full(len(clusters), np.nan)
        stability = pd.DataFrame(
            [{"cluster": 0, "n": len(clusters), "verdict": "no subtypes"}]
        ).reindex(columns=STABILITY_COLUMNS)
    else:
        clusters = result.labels[k]
        names = name_subtypes(clusters, subjects["rfs_months"], subjects["rfs_event"])
        confidence = item_consensus(result.consensus[k], clusters)
        stability = bootstrap_stability(
            training,
            clusters,
            algorithms=settings["algorithms"],
            reps=settings["stability_reps"],
            seed=seed,
        )
    rates = incidence_rates(clusters, subjects["rfs_months"], subjects["rfs_event"])
    rates.insert(1, "subtype", rates["cluster"].map(names))
    rates.sort_values("subtype").to_csv(out_rates, sep="\t", index=False)
    log.info("subtypes by recurrence rate:\n%s", rates.sort_values("subtype").to_string())
    stability.insert(0, "subtype", stability["cluster"].map(names))
    stability = stability.drop(columns="cluster").sort_values("subtype")
    stability.to_csv(out_stability, sep="\t", index=False, float_format="%.4f")
    log.info("bootstrap stability (Jaccard, clusterboot):\n%s", stability.to_string())
    pd.DataFrame(
        {
            "subject_id": result.item_ids,
            "cluster": clusters,
            "subtype": pd.Series(clusters).map(names).to_numpy(),
            "confidence": confidence,
        }
    ).to_csv(out_training, sep="\t", index=False)
    Path(out_structure).write_text(json.dumps(structure, indent=1, allow_nan=False) + "\n")
    plot_consensus_heatmaps(result, png=out_figures["heatmaps"][0], svg=out_figures["heatmaps"][1])
    plot_cdf(result, png=out_figures["cdf"][0], svg=out_figures["cdf"][1])
    plot_k_selection(
        result,
        chosen_k=k,
        comparison=summary,
        null=null,
        alpha=settings["alpha"],
        png=out_figures["k_selection"][0],
        svg=out_figures["k_selection"][1],
    )


def item_consensus(consensus: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each item's mean consensus with the other members of its own cluster (Monti 2003).

    An item alone in its cluster gets 1.
    """
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    members = same.sum(axis=1)
    total = np.where(same, consensus, 0.0).sum(axis=1)
    return np.where(members > 0, total / np.maximum(members, 1), 1.0)


def read_training_subtypes(path: str | Path) -> pd.Series:
    """The consensus subtype of each training subject."""
    table = pd.read_csv(path, sep="\t", dtype={"subject_id": str})
    return table.set_index("subject_id")["subtype"]


def classifier_step(
    *,
    features: str | Path,
    training_subtypes: str | Path,
    settings: Mapping,
    seed: int,
    out_model: str | Path,
    out_cv: str | Path,
    structure: str | Path | None = None,
    out_calibration: str | Path | None = None,
    out_reliability: str | Path | None = None,
    out_reliability_figure: str | Path | None = None,
    out_reliability_vector: str | Path | None = None,
) -> None:
    """Fit the subtype classifier on training, chosen among candidates by cross-validation.

    Its probabilities are calibrated on the out-of-fold scores (``settings["calibration"]``)
    and the calibration's outputs written where their paths are given: ``out_calibration``
    (:meth:`~rdls.subtypes.classifier.AssignmentModel.calibration_table`), ``out_reliability``
    (its bins) and the reliability diagram (PNG and vector copy).

    With fewer than two training subtypes (no significant subtypes: ``structure``, the
    consensus step's structure.json, says why) nothing is fitted: the model file records
    "no structure" and the reason (:mod:`rdls.subtypes.no_structure`).
    """
    from rdls.subtypes import no_structure
    from rdls.subtypes.classifier import fit_assignment_model

    values, _ = read_selected(features)
    labels = read_training_subtypes(training_subtypes)
    if not no_structure.has_subtypes(labels):
        message = no_structure.no_structure_message(no_structure.read_structure(structure), labels)
        log.warning("no classifier fitted: %s", message)
        no_structure.write_no_classifier(message=message, out_model=out_model, out_cv=out_cv)
        _write_calibration(None, out_calibration, out_reliability, out_reliability_figure,
                           out_reliability_vector, message=message)  # fmt: skip
        return
    model = fit_assignment_model(
        values.loc[labels.index],
        labels,
        candidates=settings["candidates"],
        folds=settings["folds"],
        calibration=settings["calibration"],
        min_confidence=settings["min_confidence"],
        seed=seed,
    )
    log.info("classifier chosen by cross-validation: %s", model.name)
    model.cv.to_csv(out_cv, sep="\t", index=False)
    joblib.dump(model, out_model)
    _write_calibration(model, out_calibration, out_reliability, out_reliability_figure,
                       out_reliability_vector)  # fmt: skip


CALIBRATION_COLUMNS = [
    "classifier", "stage", "method", "temperature", "folds", "min_confidence", "n", "accuracy",
    "balanced_accuracy", "mean_confidence", "brier", "log_loss", "ece", "n_uncertain",
    "accuracy_uncertain", "accuracy_confident", "note",
]  # fmt: skip
RELIABILITY_COLUMNS = ["stage", "bin", "lower", "upper", "n", "mean_confidence", "accuracy"]


def _write_calibration(model, table, bins, figure, vector, *, message: str = "") -> None:
    """The calibration table, its reliability bins and diagram; a note where no model is."""
    from rdls.subtypes._classifier_plots import plot_reliability

    if model is None:
        calibration = pd.DataFrame([{"note": f"no classifier fitted: {message}"}])
        reliability = pd.DataFrame(columns=RELIABILITY_COLUMNS)
        min_confidence = float("nan")
    else:
        calibration, reliability = model.calibration_table(), model.reliability_table()
        min_confidence = model.min_confidence
        after = calibration.set_index("stage").loc["calibrated"]
        log.info(
            "out of fold: Brier %.3f -> %.3f, log-loss %.3f -> %.3f, ECE %.3f -> %.3f; "
            "%d of %d below min_confidence %g (accuracy %.3f there, %.3f above)",
            *calibration[["brier", "log_loss", "ece"]].to_numpy().T.ravel(),
            after["n_uncertain"],
            after["n"],
            min_confidence,
            after["accuracy_uncertain"],
            after["accuracy_confident"],
        )
    if table is not None:
        calibration.reindex(columns=CALIBRATION_COLUMNS).to_csv(
            table, sep="\t", index=False, float_format="%.6g"
        )
    if bins is not None:
        reliability.reindex(columns=RELIABILITY_COLUMNS).to_csv(
            bins, sep="\t", index=False, float_format="%.6g"
        )
    if figure is not None:
        plot_reliability(
            reliability,
            calibration=None if model is None else calibration,
            min_confidence=min_confidence,
            png=figure,
            svg=vector,
            message=f"no classifier fitted: {message}" if model is None else "",
        )


def assign_step(
    *,
    features: str | Path,
    training_subtypes: str | Path,
    model: str | Path,
    consensus_settings: Mapping,
    reps: int,
    seed: int,
    out_assignments: str | Path,
    out_agreement: str | Path,
    out_igp: str | Path,
) -> None:
    """Subtype of every subject, and how well the classifier agrees with fresh clustering.

    Without subtypes (the classifier file records "no structure") every subject's subtype is
    "none" and the agreement and in-group-proportion tables carry a note row per cohort.
    """
    from rdls.subtypes import no_structure
    from rdls.subtypes.classifier import agreement, assign, in_group_proportion
    from rdls.subtypes.consensus import consensus_cluster

    values, cohort = read_selected(features)
    training = pd.read_csv(training_subtypes, sep="\t", dtype={"subject_id": str})
    training = training.set_index("subject_id")
    fitted = joblib.load(model)
    if no_structure.is_no_structure(fitted):
        log.warning("every subject's subtype is 'none': %s", fitted["message"])
        assignments = _in_cohort_order(no_structure.no_structure_assignments(cohort))
        assignments = assignments.reindex(columns=ASSIGNMENT_COLUMNS)  # uncertain: empty
        assignments.to_csv(out_assignments, sep="\t", index=False, float_format="%.4f")
        agreement_notes, igp_notes = no_structure.note_tables(
            assignments, message=fitted["message"], training=TRAINING
        )
        agreement_notes.reindex(columns=AGREEMENT_COLUMNS).to_csv(out_agreement, sep="\t",
                                                                  index=False)  # fmt: skip
        igp_notes.to_csv(out_igp, sep="\t", index=False)
        return
    k = training["subtype"].nunique()

    parts = [
        pd.DataFrame(
            {
                "subtype": training["subtype"],
                "confidence": training["confidence"],
                # the item consensus against the same threshold as the classifier's probability
                "uncertain": training["confidence"] < fitted.min_confidence,
                "source": "consensus",
            }
        )
    ]
    others = values.index[(cohort != TRAINING).to_numpy()]
    if len(others):
        assigned = assign(fitted, values.loc[others])
        parts.append(assigned.assign(source="classifier"))
    assignments = pd.concat(parts)
    assignments.index.name = "subject_id"
    assignments.insert(0, "cohort", cohort.loc[assignments.index])
    columns = [*ASSIGNMENT_COLUMNS, *[f"prob_{c}" for c in fitted.classes]]
    assignments = _in_cohort_order(assignments.reset_index()).reindex(columns=columns)
    log.info(
        "uncertain (confidence below %g) by cohort:\n%s",
        fitted.min_confidence,
        assignments.groupby("cohort", sort=False)["uncertain"].agg(["sum", "size"]).to_string(),
    )
    assignments.to_csv(out_assignments, sep="\t", index=False, float_format="%.4f")

    agreements, igps = [], []
    for name, members in assignments.groupby("cohort", sort=False):
        ids = members["subject_id"].to_numpy()
        labels = members.set_index("subject_id")["subtype"]
        igp = in_group_proportion(values.loc[ids], labels)
        igps.append(igp.assign(cohort=name))
        if name == TRAINING:
            continue
        row = {"cohort": name, "n": len(ids), "k": k, "ari": np.nan, "kappa": np.nan, "note": ""}
        if len(ids) < 2 * k:
            row["note"] = f"fewer than {2 * k} subjects: no consensus clustering at k = {k}"
            log.warning("%s: %s", name, row["note"])
        else:
            result = consensus_cluster(
                values.loc[ids],
                ks=[k],
                reps=reps,
                item_fraction=consensus_settings["item_fraction"],
                feature_fraction=consensus_settings["feature_fraction"],
                algorithms=consensus_settings["algorithms"],
                seed=seed,
                pac_interval=tuple(consensus_settings["pac_interval"]),
            )
            clusters = pd.Series(result.labels[k], index=result.item_ids)
            found = agreement(values.loc[ids], labels, clusters)
            row.update(ari=found["ari"], kappa=found["kappa"])
            log.info("%s: ARI %.3f, kappa %.3f", name, found["ari"], found["kappa"])
        agreements.append(row)
    pd.DataFrame(agreements, columns=AGREEMENT_COLUMNS).to_csv(
        out_agreement, sep="\t", index=False, float_format="%.4f"
    )
    igp_table = pd.concat(igps)
    igp_table = igp_table[["cohort", *[c for c in igp_table.columns if c != "cohort"]]]
    igp_table.to_csv(out_igp, sep="\t", index=False, float_format="%.4f")


def _in_cohort_order(table: pd.DataFrame) -> pd.DataFrame:
    rank = table["cohort"].map({name: i for i, name in enumerate(COHORT_ORDER)})
    return table.assign(_rank=rank).sort_values(["_rank", "subject_id"]).drop(columns="_rank")


def read_assignments(path: str | Path) -> pd.DataFrame:
    """results/subtypes/assignments.tsv, indexed by subject_id."""
    table = pd.read_csv(path, sep="\t", dtype={"subject_id": str, "subtype": str})
    return table.set_index("subject_id")


def table_one_step(
    *,
    assignments: str | Path,
    subjects_sheet: str | Path,
    covariates: list[str],
    out_table: str | Path,
    out_html: str | Path,
) -> None:
    """Table 1 by subtype in each cohort, as TSV and as a rendered HTML page.

    With fewer than two subtypes (no significant subtypes) only the overall column is shown
    and each variable's ``test`` says why nothing is compared.
    """
    from rdls.compare import nothing_to_compare
    from rdls.subtypes.table_one import FIXED_COLUMNS, TEST_COLUMNS, render_table_one, table_one

    subjects = read_subjects(subjects_sheet, covariates=covariates).set_index("subject_id")
    subtypes = read_assignments(assignments)
    frame = subjects.loc[subtypes.index].assign(subtype=subtypes["subtype"])
    variables = [*covariates, *[c for c in TABLE_ONE_EXTRA if c not in covariates]]
    variables = [v for v in variables if v in frame.columns and frame[v].notna().any()]
    continuous = [v for v in variables if pd.api.types.is_numeric_dtype(frame[v])]
    categorical = [v for v in variables if v not in continuous]
    table = table_one(frame.reset_index(), continuous=continuous, categorical=categorical)
    note = nothing_to_compare(frame["subtype"])
    heading = "Clinical characteristics by subtype"
    if note:
        log.warning("Table 1: %s; overall column only", note)
        table = table[[*FIXED_COLUMNS, *TEST_COLUMNS]].copy()
        table.loc[table["variable"] != "n", "test"] = f"not tested: {note}"
        heading = f"Clinical characteristics ({note})"
    table.to_csv(out_table, sep="\t", index=False)
    Path(out_html).write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Table 1</title>"
        "<style>body{font-family:sans-serif} table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>"
        f"<h1>{heading}</h1>{render_table_one(table)}</body></html>\n"
    )


def _parent(path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
