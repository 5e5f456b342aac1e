"""The survival rules' work: files in, files out, around the computing modules of this package.

Every model is fitted on the training cohort and applied unchanged to the other cohorts: the
coding of the clinical covariates, the RRS coefficients and cut-off, the clinical models.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.compare import nothing_to_compare, subtype_levels
from rdls.errors import InputError
from rdls.sheets import read_subjects
from rdls.subtypes.cohorts import TRAINING

log = logging.getLogger(__name__)

TIME, EVENT = "rfs_months", "rfs_event"
REFERENCE_SUBTYPE = "RDLS1"
HIGH_RISK_SUBTYPE = "RDLS1"
COX_COLUMNS = ["cohort", "term", "coef", "se", "hazard_ratio", "ci_lower", "ci_upper", "p_value",
               "n", "events", "missing", "note"]  # fmt: skip
GROUP_COLUMNS = ["cohort", "n", "events", "n_high", "hazard_ratio", "ci_lower", "ci_upper",
                 "p_value", "logrank_p", "note"]  # fmt: skip
LOGRANK_COLUMNS = ["comparison", "statistic", "df", "p_value", "p_adjusted", "note"]
SCORE_COLUMNS = ["subject_id", "cohort", "rrs", "rrs_group"]
DIFFERENCE_COLUMNS = ["cohort", "model_a", "model_b", "difference", "ci_lower", "ci_upper",
                      "p_value", "se", "note"]  # fmt: skip
#: How a table says that subjects missing a covariate were left out of a cohort's model.
COMPLETE_CASES_NOTE = "complete cases: subjects missing a covariate left out"
#: What ``rdls.survival.cox.hazard_table`` needs, as Rubin's rules give it.
HAZARD_INPUTS = ("coef", "se", "ci_lower", "ci_upper", "p_value")
#: How a table says that a cohort's model was fitted by Firth's penalised likelihood.
FIRTH_NOTE = "Firth's penalised likelihood (profile-likelihood 95% CI and p)"
RRS_PALETTE = {"low": "#1b7837", "high": "#b2182b"}


def survival_frame(
    subjects_sheet: str | Path, *, covariates: Sequence[str] = (), subtypes: pd.Series | None
) -> pd.DataFrame:
    """Subjects with follow-up (and their subtype when given), indexed by subject_id."""
    subjects = read_subjects(subjects_sheet, covariates=list(covariates)).set_index("subject_id")
    if subtypes is not None:
        subjects = subjects.loc[subtypes.index].assign(subtype=subtypes)
    return subjects[subjects[TIME].notna()]


def at_risk_times(time: pd.Series, every: float) -> list[float]:
    """0, every, 2 * every, ... up to the longest follow-up."""
    return list(np.arange(0.0, float(time.max()) + 1e-9, every))


def km_step(
    *,
    cohort: str,
    assignments: str | Path,
    subjects_sheet: str | Path,
    settings: Mapping,
    out_figure: tuple[str, str],
    out_curves: str | Path,
    out_at_risk: str | Path,
    out_logrank: str | Path,
    out_summary: str | Path | None = None,
) -> None:
    """Kaplan-Meier by subtype in one cohort, numbers at risk and log-rank tests, and the
    median and horizon recurrence-free survival with their 95% intervals per subtype.

    Without subtypes (every subject "none": no significant subtypes) the curve is the whole
    cohort's and the log-rank table is one row whose ``note`` says why there is no test.
    """
    from rdls.subtypes.steps import read_assignments
    from rdls.survival._plots import plot_km
    from rdls.survival.km import at_risk_table, km_estimates, logrank, survival_at

    subtypes = read_assignments(assignments)
    subtypes = subtypes.loc[subtypes["cohort"] == cohort, "subtype"]
    frame = survival_frame(subjects_sheet, subtypes=subtypes)
    times = at_risk_times(frame[TIME], settings["at_risk_every_months"])
    time, event, group = frame[TIME], frame[EVENT], frame["subtype"]
    note = nothing_to_compare(group)
    title = f"Recurrence-free survival by subtype: {cohort} (n = {len(frame)})"
    if not subtype_levels(group):
        group = None  # the whole cohort, one curve
        title = f"Recurrence-free survival: {cohort} (n = {len(frame)}; no subtypes)"
    km_estimates(time, event, group).to_csv(out_curves, sep="\t", index=False)
    if out_summary is not None:
        summary = survival_at(time, event, group, horizon=settings["horizon_months"])
        summary.rename(columns={"group": "subtype"}).to_csv(out_summary, sep="\t", index=False)
    at_risk_table(time, event, group, times=times).to_csv(out_at_risk, sep="\t")
    rows, annotation = [], note or None
    if not note:
        overall, pairwise = logrank(time, event, group)
        annotation = f"log-rank p = {_format_p(overall['p_value'])}"
        rows.append(
            {
                "comparison": "overall",
                "statistic": overall["statistic"],
                "df": overall["df"],
                "p_value": overall["p_value"],
                "p_adjusted": np.nan,
            }
        )
        for pair in pairwise.itertuples(index=False):
            rows.append(
                {
                    "comparison": f"{pair.group_a} vs {pair.group_b}",
                    "statistic": pair.statistic,
                    "df": 1,
                    "p_value": pair.p_value,
                    "p_adjusted": pair.p_adjusted,
                }
            )
    else:
        log.warning("%s: no log-rank test: %s", cohort, note)
        rows.append({"comparison": "by subtype", "note": note})
    pd.DataFrame(rows, columns=LOGRANK_COLUMNS).to_csv(out_logrank, sep="\t", index=False)
    plot_km(
        time,
        event,
        group,
        title=title,
        png=out_figure[0],
        svg=out_figure[1],
        at_risk_times=times,
        annotation=annotation,
    )


def cox_step(
    *,
    assignments: str | Path,
    subjects_sheet: str | Path,
    covariates: Sequence[str],
    cohorts: Sequence[str],
    settings: Mapping,
    out_table: str | Path,
    out_ph_test: str | Path,
    out_forest: tuple[str, str],
    seed: int = 0,
) -> None:
    """Multivariable Cox model (subtype + clinical covariates) in each cohort.

    Without subtypes in training (no significant subtypes) the model is the clinical
    covariates alone, and every row's ``note`` says so. Subjects missing a covariate are
    left out (``survival.missing: complete_cases``) or their covariates are multiply
    imputed (``multiple_imputation``, :func:`fit_cox_imputed`); ``missing`` counts them.
    """
    from rdls.subtypes.steps import read_assignments
    from rdls.survival._plots import plot_forest, plot_message

    subtypes = read_assignments(assignments)
    frame = survival_frame(subjects_sheet, covariates=covariates, subtypes=subtypes["subtype"])
    frame = frame.assign(cohort=subtypes["cohort"])
    training = frame[frame["cohort"] == TRAINING]
    no_subtypes = nothing_to_compare(training["subtype"])
    if no_subtypes:
        no_subtypes = f"{no_subtypes}; the model has no subtype term"
        log.warning("Cox: %s", no_subtypes)
    terms = list(covariates) if no_subtypes else ["subtype", *covariates]
    design = clinical_design(training, covariates=terms, log2=settings["log2_covariates"],
                             level_map=settings.get("merge_levels"))  # fmt: skip
    tables, tests = [], []
    for cohort in cohorts:
        members = frame[frame["cohort"] == cohort]
        incomplete = int(members[design.covariates].isna().any(axis=1).sum())
        what = f"{cohort} cohort"
        if settings.get("missing", "complete_cases") == "multiple_imputation" and incomplete:
            result, note = fit_cox_imputed(
                members, design=design, what=what, m=settings["imputations"],
                seed=seed + cohorts.index(cohort), ph_transform=settings["ph_transform"],
            )  # fmt: skip
        else:
            result, note = fit_cox_or_note(members, design=design, what=what,
                                           ph_transform=settings["ph_transform"])  # fmt: skip
            if incomplete and result is not None:
                note = "; ".join(filter(None, [f"{COMPLETE_CASES_NOTE} ({incomplete} left out)",
                                               note]))  # fmt: skip
        if result is None:
            tables.append(pd.DataFrame({"term": design.terms, "note": note}).assign(cohort=cohort))
            continue
        table = result.table.assign(cohort=cohort, n=result.n, events=result.events,
                                    missing=incomplete, note=note)  # fmt: skip
        tables.append(table)
        tests.append(result.ph_test.assign(cohort=cohort))
        log.info("%s: n=%d, events=%d, C=%.3f", cohort, result.n, result.events,
                 result.concordance)  # fmt: skip
    table = pd.concat(tables, ignore_index=True).reindex(columns=COX_COLUMNS)
    if merged := "; ".join(design.merge_notes()):
        fits = table["note"].fillna("").astype(str)
        table["note"] = [f"{merged}; {n}" if n else merged for n in fits]
    if no_subtypes:
        fits = table["note"].fillna("").astype(str)
        table["note"] = [f"{no_subtypes}; {n}" if n else no_subtypes for n in fits]
    table.to_csv(out_table, sep="\t", index=False)
    ph = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame(columns=["cohort"])
    _cohort_first(ph).to_csv(out_ph_test, sep="\t", index=False)
    estimated = {
        cohort: part for cohort, part in table.groupby("cohort", sort=False)
        if part["hazard_ratio"].notna().any()
    }  # fmt: skip
    title = "Multivariable Cox model of recurrence-free survival"
    if no_subtypes:
        title += " (clinical covariates only: no subtypes to compare)"
    if estimated:
        plot_forest(estimated, png=out_forest[0], svg=out_forest[1], title=title)
    else:
        plot_message(
            f"No cohort has more events than the model's {len(design.terms)} terms; "
            "results/survival/cox/hazard_ratios.tsv says why for each.",
            title=title, png=out_forest[0], svg=out_forest[1],
        )  # fmt: skip


def clinical_design(
    training: pd.DataFrame,
    *,
    covariates: Sequence[str],
    log2: Sequence[str],
    level_map: Mapping[str, Mapping[str, str]] | None = None,
):
    """How covariates (and the subtype, reference RDLS1) are coded: learned on training.

    Levels are first merged as ``level_map`` (``survival.merge_levels``) says; then a clinical
    level without training events is merged with its neighbour (the subtype's levels never
    are), so that every model fitted with this design, the Cox tables and the locked models
    alike, has finite hazard ratios; ``design.merge_notes()`` says what was merged and why.
    """
    from rdls.survival.cox import make_design, merge_levels_as_set, merge_sparse_levels

    reference = {"subtype": REFERENCE_SUBTYPE} if "subtype" in covariates else None
    design = make_design(
        training,
        covariates=list(covariates),
        log2=[c for c in log2 if c in covariates],
        reference=reference,
    )
    if level_map:
        design = merge_levels_as_set(design, {c: dict(m) for c, m in level_map.items()})
    if EVENT in training.columns:
        design = merge_sparse_levels(design, training, event=EVENT)
        for note in design.merge_notes():
            log.warning("%s", note)
    return design


def unstable_rrs_note(frequency: pd.DataFrame) -> str:
    """A note where most repeated cross-validation splits keep no feature, else ``""``."""
    empty = frequency.loc[frequency["feature"] == "(none)"]
    if empty.empty or float(empty["frequency"].iloc[0]) < 0.5:
        return ""
    repeats = round(int(empty["selected"].iloc[0]) / float(empty["frequency"].iloc[0]))
    return (
        f"unstable: {int(empty['selected'].iloc[0])} of {repeats} repeated cross-validation "
        "splits keep no feature, so the locked features come from one split's choice and are "
        "not a stable finding (selection_frequency.tsv)"
    )


def fit_cox_or_note(frame: pd.DataFrame, *, design, what: str, ph_transform: str = "km"):
    """A Cox fit of one cohort, or None and the reason it cannot be estimated there.

    A small validation cohort may lack events in a covariate level (monotone likelihood):
    the model is then fitted by Firth's penalised likelihood, whose profile intervals stay
    honest (noted, with the reason), and given up only if that fails too.
    """
    from rdls.survival.cox import fit_cox

    if note := _too_few_events(frame, design=design, what=what):
        return None, note
    try:
        return fit_cox(frame, time=TIME, event=EVENT, design=design,
                       ph_transform=ph_transform), ""  # fmt: skip
    except InputError as error:
        reason = str(error).split(". ")[0]
        log.warning("%s: %s; refitting by Firth's penalised likelihood", what, reason)
    try:
        result = fit_cox(frame, time=TIME, event=EVENT, design=design, firth=True)
    except InputError as error:
        note = f"not estimated: {str(error).split('. ')[0]}"
        log.warning("%s: %s", what, note)
        return None, note
    return result, f"{FIRTH_NOTE} ({reason})"


def _too_few_events(frame: pd.DataFrame, *, design, what: str) -> str:
    """The note of a cohort with no more events than the model has terms, else ``""``."""
    events = int(frame[EVENT].sum())
    if events > len(design.terms):
        return ""
    note = f"not estimated: {events} events for {len(design.terms)} terms in the {what}"
    log.warning(note)
    return note


def fit_cox_imputed(
    frame: pd.DataFrame, *, design, what: str, m: int, seed: int, ph_transform: str = "km"
):
    """A Cox fit of one cohort whose missing covariates are multiply imputed.

    The ``m`` completed data sets (:func:`rdls.survival.imputation.impute_chained`, the
    outcome among the predictors) are each fitted, by Firth's penalised likelihood for all of
    them if any one has a level without events, and pooled by Rubin's rules. The
    proportional-hazards test, a diagnostic with no pooling rule, is that of the complete
    cases. Returns ``(result, note)`` as :func:`fit_cox_or_note`.
    """
    from rdls.survival.cox import CoxResult, fit_cox, hazard_table, merged_values
    from rdls.survival.imputation import impute_chained, pool_rubin

    if note := _too_few_events(frame, design=design, what=what):
        return None, note
    incomplete = int(frame[design.covariates].isna().any(axis=1).sum())
    datasets = impute_chained(
        merged_values(design, frame), covariates=design.covariates,
        levels=design.categorical_levels, time=TIME, event=EVENT, m=m, seed=seed,
    )  # fmt: skip
    notes = [f"{incomplete} subjects' missing covariates multiply imputed ({m} imputations by "
             "chained equations, pooled by Rubin's rules)"]  # fmt: skip
    try:
        fits = [fit_cox(data, time=TIME, event=EVENT, design=design, ph_transform=ph_transform)
                for data in datasets]  # fmt: skip
    except InputError as error:
        reason = str(error).split(". ")[0]
        log.warning("%s: %s; refitting every imputation by Firth's penalised likelihood",
                    what, reason)  # fmt: skip
        try:
            fits = [fit_cox(data, time=TIME, event=EVENT, design=design, firth=True)
                    for data in datasets]  # fmt: skip
        except InputError as error:
            note = f"not estimated: {str(error).split('. ')[0]}"
            log.warning("%s: %s", what, note)
            return None, note
        notes.append(f"{FIRTH_NOTE.split(' (')[0]} ({reason})")
    pooled = pool_rubin(
        np.array([fit.table["coef"].to_numpy() for fit in fits]),
        np.array([fit.table["se"].to_numpy() ** 2 for fit in fits]),
        complete_df=len(frame) - len(design.terms),
    )
    table = hazard_table(design.terms, **{c: pooled[c].to_numpy() for c in HAZARD_INPUTS})
    complete, _ = fit_cox_or_note(frame, design=design, what=f"{what} (complete cases)",
                                  ph_transform=ph_transform)  # fmt: skip
    ph_test = complete.ph_test if complete is not None else fits[0].ph_test.iloc[0:0]
    notes.append("proportional-hazards test on the complete cases")
    log.info("%s: %s", what, "; ".join(notes))
    result = CoxResult(
        table=table,
        ph_test=ph_test,
        n=fits[0].n,
        events=fits[0].events,
        dropped_missing=0,
        concordance=float(np.mean([fit.concordance for fit in fits])),
        model=None,
    )
    return result, "; ".join(notes)


def rrs_fit_step(
    *,
    features: str | Path,
    assignments: str | Path,
    subjects_sheet: str | Path,
    settings: Mapping,
    seed: int,
    out_model: str | Path,
    out_candidates: str | Path,
    out_coefficients: str | Path,
    out_cv: str | Path,
    out_cv_figure: tuple[str, str],
    out_cutoff_scan: str | Path,
    out_frequency: str | Path,
) -> None:
    """Fit the recurrence risk score on training and lock its coefficients and cut-off.

    The RRS screens the features of the high-risk subtype against the rest; without subtypes
    in training (no significant subtypes) there is nothing to screen, and every output says
    so: the model has no features (:meth:`RRSModel.without_features`), the tables are one note
    row, the figure the note.
    """
    from rdls.subtypes.steps import read_assignments, read_selected
    from rdls.survival._compare_plots import plot_cv_curve
    from rdls.survival._plots import plot_message
    from rdls.survival.rrs import (
        RRSModel,
        candidate_screen,
        choose_cutoff,
        cutoff_permutation_p,
        fit_rrs,
        high_risk_features,
        selection_frequency,
    )

    values, cohort = read_selected(features)
    subtypes = read_assignments(assignments)["subtype"]
    frame = survival_frame(subjects_sheet, subtypes=subtypes[cohort[cohort == TRAINING].index])
    training = values.loc[frame.index]
    columns = {out_candidates: ["feature", "effect", "p_value", "p_adjusted", "selected"],
               out_coefficients: ["feature", "coefficient"],
               out_cv: ["alpha", "mean_deviance", "se", "n_nonzero", "is_min", "is_1se",
                        "chosen"],
               out_cutoff_scan: ["cutoff", "statistic", "low_n", "high_n"],
               out_frequency: ["feature", "selected", "frequency"]}  # fmt: skip

    def without_rrs(reason: str, *, keep=()) -> None:
        log.warning("no RRS: %s", reason)
        Path(out_model).write_text(json.dumps(RRSModel.without_features(reason).to_dict()))
        for path, names in columns.items():
            if path not in keep:
                note = pd.DataFrame([{"note": reason}], columns=[*names, "note"])
                note.to_csv(path, sep="\t", index=False)
        if out_cv not in keep:
            plot_message(reason, title="Recurrence risk score", png=out_cv_figure[0],
                         svg=out_cv_figure[1])  # fmt: skip

    if reason := no_rrs_reason(frame["subtype"]):
        without_rrs(reason)
        return
    is_high = frame["subtype"] == HIGH_RISK_SUBTYPE
    candidates = high_risk_features(
        training, is_high, fdr=settings["fdr"], max_features=settings["max_features"]
    )
    candidates.to_csv(out_candidates, sep="\t", index=False)
    chosen = candidates.loc[candidates["selected"], "feature"].tolist()
    log.info("%d candidate features set %s apart", len(chosen), HIGH_RISK_SUBTYPE)
    if not chosen:
        without_rrs(
            f"empty RRS: no imaging feature sets {HIGH_RISK_SUBTYPE} apart from the other "
            f"subtypes at FDR {settings['fdr']}; the comparison is the clinical model alone",
            keep=(out_candidates,),
        )
        return
    # the screen is repeated inside every fold, so the deviance judges screen and LASSO alike
    screen = candidate_screen(training, is_high.loc[training.index], fdr=settings["fdr"],
                              max_features=settings["max_features"])  # fmt: skip
    options = {"l1_ratio": settings["l1_ratio"], "folds": settings["folds"],
               "rule": settings["penalty_rule"], "when_empty": settings["when_empty"],
               "screen": screen}  # fmt: skip
    model, cv = fit_rrs(training, frame[TIME], frame[EVENT], seed=seed, **options)
    cv.to_csv(out_cv, sep="\t", index=False)
    plot_cv_curve(cv, png=out_cv_figure[0], svg=out_cv_figure[1])
    frequency = selection_frequency(
        training, frame[TIME], frame[EVENT], repeats=settings["stability_repeats"],
        seed=seed, **options,
    )  # fmt: skip
    frequency.to_csv(out_frequency, sep="\t", index=False)
    log.info("selection over %d cross-validation splits:\n%s", settings["stability_repeats"],
             frequency.head(12).to_string())  # fmt: skip
    if not model.empty and (note := unstable_rrs_note(frequency)):
        log.warning("%s", note)
        model = replace(model, notes=[*model.notes, note])
    if model.empty:
        reason = "; ".join(model.notes)
        Path(out_model).write_text(json.dumps(model.to_dict(), indent=1))
        for path in (out_coefficients, out_cutoff_scan):
            pd.DataFrame([{"note": reason}], columns=[*columns[path], "note"]).to_csv(
                path, sep="\t", index=False
            )
        return
    scores = model.score(training)
    cutoff, scan = choose_cutoff(
        scores,
        frame[TIME],
        frame[EVENT],
        method=settings["cutoff"],
        min_group_fraction=settings["min_group_fraction"],
    )
    p_value = None
    if settings["cutoff"] == "maxstat":
        p_value = cutoff_permutation_p(
            scores, frame[TIME], frame[EVENT], min_group_fraction=settings["min_group_fraction"],
            seed=seed,
        )  # fmt: skip
        log.info("maximally selected log-rank statistic: permutation p = %.3g", p_value)
    model = model.with_cutoff(cutoff, settings["cutoff"], p_value)
    scan.to_csv(out_cutoff_scan, sep="\t", index=False)
    log.info("RRS: %d features, cut-off %.4f (%s)", len(model.coefficients), cutoff,
             settings["cutoff"])  # fmt: skip
    Path(out_model).write_text(json.dumps(model.to_dict(), indent=1))
    pd.DataFrame(
        {"feature": list(model.coefficients), "coefficient": list(model.coefficients.values())}
    ).to_csv(out_coefficients, sep="\t", index=False)


def no_rrs_reason(training_subtypes: pd.Series) -> str:
    """Why the RRS cannot be fitted on these training subtypes; ``""`` where it can.

    Its features are those that set the high-risk subtype apart from the rest, so it needs
    that subtype and at least one other.
    """
    note = nothing_to_compare(training_subtypes)
    if not note and HIGH_RISK_SUBTYPE not in subtype_levels(training_subtypes):
        note = f"no training subject has the high-risk subtype {HIGH_RISK_SUBTYPE}"
    if not note:
        return ""
    return (f"no RRS ({note}): its features are screened {HIGH_RISK_SUBTYPE} against the "
            "other subtypes; the model comparison is the clinical model alone")  # fmt: skip


def rrs_score_step(
    *,
    features: str | Path,
    model: str | Path,
    subjects_sheet: str | Path,
    cohorts: Sequence[str],
    out_scores: str | Path,
    out_groups: str | Path,
) -> None:
    """RRS and risk group of every subject; hazard ratio and log-rank of the groups.

    A model without features (no RRS: no significant subtypes) scores nobody: ``rrs`` and
    ``rrs_group`` stay empty and each cohort's row of the groups table says why.
    """
    from rdls.subtypes.steps import read_selected
    from rdls.survival.km import logrank
    from rdls.survival.rrs import RRSModel

    values, cohort = read_selected(features)
    rrs = RRSModel.from_dict(json.loads(Path(model).read_text()))
    if rrs.empty:
        scores, groups = pd.Series(np.nan, index=values.index), pd.Series(None, index=values.index)
        log.warning("%s", "; ".join(rrs.notes) or "the RRS has no features")
    else:
        scores = rrs.score(values)
        groups = rrs.group(scores)
    table = pd.DataFrame({"cohort": cohort, "rrs": scores, "rrs_group": groups}, index=values.index)
    table.index.name = "subject_id"
    # Full precision: a score equal to the cut-off must stay on its side of it when read back.
    table.reset_index()[SCORE_COLUMNS].to_csv(out_scores, sep="\t", index=False)
    frame = survival_frame(subjects_sheet, subtypes=None)
    rows = []
    for name in cohorts:
        members = frame.loc[frame.index.intersection(table.index[table["cohort"] == name])]
        group = table.loc[members.index, "rrs_group"]
        row = {"cohort": name, "n": len(members), "events": int(members[EVENT].sum()),
               "n_high": int((group == "high").sum())}  # fmt: skip
        if rrs.empty:
            row.update(n_high=np.nan, note="; ".join(rrs.notes))
        elif group.nunique() == 2:
            row.update(group_hazard_ratio(members, group))
            row["logrank_p"] = logrank(members[TIME], members[EVENT], group)[0]["p_value"]
        else:
            log.warning("%s: every subject in one RRS group; no comparison", name)
        rows.append(row)
    pd.DataFrame(rows).reindex(columns=GROUP_COLUMNS).to_csv(out_groups, sep="\t", index=False)


def rrs_km_step(
    *,
    cohort: str,
    scores: str | Path,
    groups: str | Path,
    subjects_sheet: str | Path,
    settings: Mapping,
    out_figure: tuple[str, str],
) -> None:
    """Kaplan-Meier curves of the RRS groups in one cohort, annotated with HR and log-rank.

    Without an RRS (no risk groups) the figure says why (the groups table's note).
    """
    from rdls.survival._plots import plot_km, plot_message

    risk = pd.read_csv(scores, sep="\t", dtype={"subject_id": str}).set_index("subject_id")
    risk = risk[risk["cohort"] == cohort]
    frame = survival_frame(subjects_sheet, subtypes=None)
    members = frame.loc[frame.index.intersection(risk.index)]
    summary = pd.read_csv(groups, sep="\t").set_index("cohort").loc[cohort]
    if risk.loc[members.index, "rrs_group"].isna().all():
        note = summary.get("note")
        plot_message(note if isinstance(note, str) and note else "no RRS groups",
                     title=f"Recurrence-free survival by RRS group: {cohort}", png=out_figure[0],
                     svg=out_figure[1])  # fmt: skip
        return
    annotation = None
    if pd.notna(summary["hazard_ratio"]):
        annotation = (
            f"HR (high vs low) {summary['hazard_ratio']:.2f} "
            f"({summary['ci_lower']:.2f}-{summary['ci_upper']:.2f}), "
            f"log-rank p = {_format_p(summary['logrank_p'])}"
        )
    plot_km(
        members[TIME],
        members[EVENT],
        risk.loc[members.index, "rrs_group"],
        title=f"Recurrence-free survival by RRS group: {cohort} (n = {len(members)})",
        png=out_figure[0],
        svg=out_figure[1],
        at_risk_times=at_risk_times(members[TIME], settings["at_risk_every_months"]),
        palette=RRS_PALETTE,
        annotation=annotation,
    )


def group_hazard_ratio(frame: pd.DataFrame, group: pd.Series) -> dict:
    """Univariable Cox hazard ratio of the high against the low RRS group.

    In a small cohort one group may have no events, so that its hazard ratio is not finite:
    as for the Cox models by subtype (:func:`fit_cox_or_note`) the model is then fitted by
    Firth's penalised likelihood, or given up, and ``note`` says which.
    """
    from rdls.survival.cox import make_design

    data = frame[[TIME, EVENT]].assign(rrs_group=group)
    design = make_design(data, covariates=["rrs_group"], reference={"rrs_group": "low"})
    result, note = fit_cox_or_note(data, design=design, what="RRS groups")
    if result is None:
        return {"note": note}
    row = result.table.iloc[0]
    keys = ("hazard_ratio", "ci_lower", "ci_upper", "p_value")
    return {**{key: float(row[key]) for key in keys}, "note": note}


def compare_step(
    *,
    scores: str | Path,
    subjects_sheet: str | Path,
    covariates: Sequence[str],
    cohorts: Sequence[str],
    settings: Mapping,
    seed: int,
    out_tables: Mapping[str, str | Path],
    out_locked: str | Path,
    out_figures: Mapping[str, tuple[str, str]],
    rrs_model: str | Path | None = None,
    features: str | Path | None = None,
    assignments: str | Path | None = None,
    radiomics: str | Path | None = None,
    threads: int = 1,
) -> None:
    """The clinical model against clinical + RRS, fitted in training, in every cohort.

    Without an RRS (nobody scored: no significant subtypes; ``rrs_model``, the RRS model file,
    says why) the comparison is the clinical model alone, and the table of AUC differences
    is a note row per cohort. With the imaging ``features`` and subtype ``assignments``, the
    training figures of clinical + RRS are optimism-corrected with the RRS refitted in every
    resample.

    Two comparators show what the RDLS1 screen adds, where their inputs are given: tumour
    volume alone (log2 of the unharmonised ``radiomics`` voxel volume), and the clinical model
    with a LASSO score fitted the RRS's way on every stable feature, without the screen.
    """
    from rdls.survival import _compare_plots as plots
    from rdls.survival.compare import compare_models
    from rdls.survival.cox import design_matrix
    from rdls.survival.nomogram import nomogram_axes, plot_nomogram

    risk = pd.read_csv(scores, sep="\t", dtype={"subject_id": str}).set_index("subject_id")
    frame = survival_frame(subjects_sheet, covariates=covariates, subtypes=None)
    frame = frame.loc[frame.index.intersection(risk.index)].assign(rrs=risk["rrs"])
    frame["cohort"] = risk.loc[frame.index, "cohort"]
    design = clinical_design(
        frame[frame["cohort"] == TRAINING], covariates=covariates,
        log2=settings["log2_covariates"], level_map=settings.get("merge_levels"),
    )  # fmt: skip
    no_rrs = _no_rrs_note(frame["rrs"], rrs_model)
    models = {"clinical": design.terms, "clinical + RRS": [*design.terms, "rrs"]}
    matrix = design_matrix(design, frame)
    if no_rrs:
        log.warning("%s", no_rrs)
        models.pop("clinical + RRS")
    else:
        matrix = matrix.assign(rrs=frame["rrs"])
    for name, column, values in _comparators(
        radiomics, features, frame, settings=settings["rrs"], seed=seed
    ):
        matrix[column] = values.reindex(matrix.index)
        models[name] = [column] if column == VOLUME else [*design.terms, column]
    complete = matrix.notna().all(axis=1)
    if (~complete).any():
        log.warning("%d subjects without a complete set of covariates left out (complete cases)",
                    (~complete).sum())  # fmt: skip
    left_out = (~complete).groupby(frame["cohort"]).sum()
    data = {}
    horizon = settings["horizon_months"]
    for name in cohorts:
        ids = frame.index[(frame["cohort"] == name) & complete]
        if name != TRAINING and len(ids) == 0:
            log.warning("%s: no subject with a complete set of covariates: left out of the "
                        "model comparison", name)  # fmt: skip
            continue
        data[name] = {"X": matrix.loc[ids], "time": frame.loc[ids, TIME],
                      "event": frame.loc[ids, EVENT]}  # fmt: skip
    comparison = settings["comparison"]
    result = compare_models(
        train=data[TRAINING],
        cohorts={name: part for name, part in data.items() if name != TRAINING},
        models=models,
        horizon=horizon,
        n_boot=comparison["bootstrap"],
        seed=seed,
        thresholds=np.round(np.arange(0.01, comparison["max_threshold"] + 1e-9, 0.01), 2),
        calibration_groups=comparison["calibration_groups"],
    )
    if no_rrs:
        notes = pd.DataFrame({"cohort": list(data), "model_a": "clinical", "note": no_rrs})
        pairs = result.auc_difference  # the comparators' differences, where there are any
        table = pd.concat([pairs, notes]) if len(pairs) else notes
        result = replace(result, auc_difference=table.reindex(columns=DIFFERENCE_COLUMNS))
    counts = result.auc["cohort"].map(left_out).fillna(0).astype(int)
    result = replace(result, auc=result.auc.assign(missing_covariates=counts))
    for name in ("auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc",
                 "calibration_summary", "calibration_curve"):  # fmt: skip
        getattr(result, name).to_csv(out_tables[name], sep="\t", index=False)
    procedure, inputs = None, None
    if not no_rrs and features is not None and assignments is not None:
        procedure, inputs = _rrs_chain_inputs(
            features, assignments, clinical=design.terms, settings=settings["rrs"], seed=seed
        )
    optimism = training_optimism(
        data[TRAINING], models=models, n_boot=comparison["optimism_resamples"], seed=seed,
        horizon=horizon, rrs_procedure=procedure, rrs_inputs=inputs, n_jobs=threads,
    )  # fmt: skip
    optimism.to_csv(out_tables["optimism"], sep="\t", index=False)
    log.info("training cohort, apparent and optimism-corrected:\n%s", optimism.to_string())
    model_notes = _model_notes(design, data[TRAINING], models, result.notes)
    if missing_training := int(left_out.get(TRAINING, 0)):
        model_notes = {
            name: "; ".join(filter(None, [note, f"complete cases: {missing_training} training "
                                                "subjects without every covariate left out"]))
            for name, note in model_notes.items()
        }  # fmt: skip
    result.coefficients.assign(note=result.coefficients["model"].map(model_notes)).to_csv(
        out_tables["models"], sep="\t", index=False
    )
    predictions = result.predictions.rename(columns={"subject": "subject_id"})
    predictions.to_csv(out_tables["predictions"], sep="\t", index=False)
    # The clinical models as fitted in training, for scoring new subjects: the covariate
    # coding, and per model its coefficients, centring and baseline hazard at the horizon.
    Path(out_locked).write_text(
        json.dumps({"design": design.to_dict(), "models": result.locked}, indent=1)
    )
    log.info("AUC at %s months:\n%s", settings["horizon_months"], result.auc.to_string())
    plots.plot_auc_comparison(result, png=out_figures["auc"][0], svg=out_figures["auc"][1])
    plots.plot_roc(result, png=out_figures["roc"][0], svg=out_figures["roc"][1])
    plots.plot_calibration(
        result, png=out_figures["calibration"][0], svg=out_figures["calibration"][1]
    )
    plots.plot_decision_curves(
        result, png=out_figures["decision_curve"][0], svg=out_figures["decision_curve"][1]
    )
    drawn = "clinical + RRS" if "clinical + RRS" in result.locked else "clinical"
    axes = nomogram_axes(result.locked[drawn], design, data[TRAINING]["X"])
    plot_nomogram(
        result.locked[drawn], axes, title=f"Nomogram of the locked {drawn} model",
        png=out_figures["nomogram"][0], svg=out_figures["nomogram"][1],
    )  # fmt: skip


VOLUME = "log2_tumour_volume"
LASSO_ALL = "lasso_all_features"
VOLUME_COLUMNS = ("original_shape_VoxelVolume", "original_shape_MeshVolume")


def _comparators(radiomics, features, frame: pd.DataFrame, *, settings: Mapping, seed: int):
    """``(model name, column, values)`` of the comparators whose inputs exist.

    Tumour volume: log2 of the unharmonised voxel volume (mm3). LASSO on all stable features:
    the RRS's Coxnet (same folds, rule and seed) on every selected feature, without the RDLS1
    screen, scored in every cohort; left out, with a log line, when its penalty keeps none.
    """
    from rdls.subtypes.steps import read_selected
    from rdls.survival.rrs import fit_rrs

    if radiomics is not None:
        table = pd.read_parquet(radiomics)
        column = next((c for c in VOLUME_COLUMNS if c in table.columns), None)
        if column is None:
            log.warning("no tumour volume among the radiomic features: no volume comparator")
        else:
            volume = table.set_index(table["subject_id"].astype(str))[column].astype(float)
            yield "tumour volume", VOLUME, np.log2(volume.where(volume > 0))
    if features is not None:
        values, cohort = read_selected(features)
        training = values.loc[cohort.index[cohort == TRAINING].intersection(frame.index)]
        outcome = frame.loc[training.index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = fit_rrs(
                training, outcome[TIME], outcome[EVENT], l1_ratio=settings["l1_ratio"],
                folds=settings["folds"], rule=settings["penalty_rule"], when_empty="empty",
                seed=seed,
            )  # fmt: skip
        if model.empty:
            log.info("LASSO on all stable features keeps none: no such comparator")
        else:
            log.info("LASSO on all %d stable features keeps %d", values.shape[1],
                     len(model.features))  # fmt: skip
            yield "clinical + LASSO (all features)", LASSO_ALL, model.score(values)


def _rrs_chain_inputs(features, assignments, *, clinical, settings: Mapping, seed: int):
    """The clinical + RRS procedure and its inputs (training features, high-risk flag)."""
    from rdls.subtypes.steps import read_assignments, read_selected
    from rdls.survival.rrs import rrs_chain

    values, cohort = read_selected(features)
    training = values.loc[cohort[cohort == TRAINING].index]
    subtype = read_assignments(assignments)["subtype"].reindex(training.index)
    flag = "__high_risk__"
    inputs = training.assign(**{flag: subtype == HIGH_RISK_SUBTYPE})
    procedure = rrs_chain(
        list(clinical), list(training.columns), high_risk=flag, fdr=settings["fdr"],
        max_features=settings["max_features"], seed=seed, l1_ratio=settings["l1_ratio"],
        folds=settings["folds"], rule=settings["penalty_rule"], when_empty=settings["when_empty"],
    )  # fmt: skip
    return procedure, inputs


def _model_notes(
    design, train: Mapping, models: Mapping[str, list[str]], fit_notes: Sequence[str] = ()
) -> dict[str, str]:
    """Per model: merged levels, a guard's penalty, too few events per variable (below 10)."""
    events = int(train["event"].sum())
    notes = {}
    for name, columns in models.items():
        parts = list(design.merge_notes())
        parts += [n.removeprefix(f"{name}: ") for n in fit_notes if n.startswith(f"{name}: ")]
        per_variable = events / max(len(columns), 1)
        if per_variable < 10:
            parts.append(
                f"{per_variable:.1f} training events per variable ({events} events, "
                f"{len(columns)} coefficients): below 10, expect overfitting; see the "
                "optimism-corrected figures"
            )
            log.warning("%s: %s", name, parts[-1])
        notes[name] = "; ".join(parts)
    return notes


RRS_NOT_CORRECTED = (
    "apparent only: without the imaging features and subtypes the RRS's feature screen and "
    "LASSO cannot be repeated inside the bootstrap, so no corrected figure is given (a "
    "correction that held the RRS fixed would understate its optimism)"
)
LASSO_NOT_CORRECTED = "apparent only: a comparator whose LASSO is not repeated inside the bootstrap"
RRS_CORRECTED = (
    "the RRS's candidate screen and cross-validated LASSO are repeated in every resample, "
    "then the Cox model of the clinical covariates and the RRS"
)


def training_optimism(
    train: Mapping,
    *,
    models: Mapping[str, list[str]],
    n_boot: int,
    seed: int,
    horizon: float,
    rrs_procedure=None,
    rrs_inputs: pd.DataFrame | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Apparent and optimism-corrected training performance of each model (rms validate).

    The clinical + RRS model is corrected by repeating its whole procedure in each resample
    when ``rrs_procedure`` (:func:`rdls.survival.rrs.rrs_chain`) and ``rrs_inputs`` (its
    feature and high-risk columns, indexed by subject) are given; otherwise it gets its
    apparent figures and a note saying why.
    """
    from rdls.survival.optimism import bootstrap_optimism, performance, refit_cox

    X, time, event = train["X"], train["time"].to_numpy(float), train["event"].to_numpy(int)
    tables = []
    for name, columns in models.items():
        if LASSO_ALL in columns:
            lp = refit_cox(list(columns))(X, time, event)(X)
            table = performance(lp, time, event, horizon=horizon).to_frame("apparent")
            table = table.assign(optimism=np.nan, corrected=np.nan, resamples=0,
                                 note=LASSO_NOT_CORRECTED)  # fmt: skip
        elif "rrs" in columns and rrs_procedure is not None and rrs_inputs is not None:
            # apparent: the locked model (its RRS fitted on every training subject); optimism:
            # the whole chain, screen and LASSO included, repeated in each resample
            locked = refit_cox(list(columns))(X, time, event)(X)
            table = bootstrap_optimism(
                rrs_procedure, X.join(rrs_inputs.drop(columns=X.columns, errors="ignore")),
                time, event, n_boot=n_boot, seed=seed, horizon=horizon, apparent_lp=locked,
                n_jobs=n_jobs,
            ).rename(columns={"n": "resamples"})  # fmt: skip
            table["note"] = RRS_CORRECTED
        elif "rrs" in columns:
            lp = refit_cox(list(columns))(X, time, event)(X)
            table = performance(lp, time, event, horizon=horizon).to_frame("apparent")
            table = table.assign(optimism=np.nan, corrected=np.nan, resamples=0,
                                 note=RRS_NOT_CORRECTED)  # fmt: skip
        else:
            table = bootstrap_optimism(
                refit_cox(list(columns)), X, time, event, n_boot=n_boot, seed=seed,
                horizon=horizon, n_jobs=n_jobs,
            ).rename(columns={"n": "resamples"})  # fmt: skip
            table["note"] = ""
        tables.append(table.rename_axis("measure").reset_index().assign(model=name))
    columns = ["model", "measure", "apparent", "optimism", "corrected", "resamples", "note"]
    return pd.concat(tables, ignore_index=True)[columns]


def _no_rrs_note(rrs: pd.Series, model: str | Path | None) -> str:
    """Why the comparison has no clinical + RRS model; ``""`` where every subject has a score.

    The reason is the RRS model's own note where it has none to give.
    """
    if rrs.notna().any():
        return ""
    notes = json.loads(Path(model).read_text()).get("notes", []) if model is not None else []
    return "; ".join(notes) or "no subject has an RRS: the comparison is the clinical model alone"


def _cohort_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["cohort", *[c for c in table.columns if c != "cohort"]]]


def _format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
