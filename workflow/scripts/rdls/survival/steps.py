"""The survival rules' work: files in, files out, around the computing modules of this package.

Every model is fitted on the training cohort and applied unchanged to the other cohorts: the
coding of the clinical covariates, the RRS coefficients and cut-off, the clinical models.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError
from rdls.sheets import read_subjects
from rdls.subtypes.cohorts import TRAINING

log = logging.getLogger(__name__)

TIME, EVENT = "rfs_months", "rfs_event"
REFERENCE_SUBTYPE = "RDLS1"
HIGH_RISK_SUBTYPE = "RDLS1"
COX_COLUMNS = ["cohort", "term", "coef", "se", "hazard_ratio", "ci_lower", "ci_upper", "p_value",
               "n", "events", "note"]  # fmt: skip
GROUP_COLUMNS = ["cohort", "n", "events", "n_high", "hazard_ratio", "ci_lower", "ci_upper",
                 "p_value", "logrank_p"]  # fmt: skip
SCORE_COLUMNS = ["subject_id", "cohort", "rrs", "rrs_group"]
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
) -> None:
    """Kaplan-Meier by subtype in one cohort, numbers at risk and log-rank tests."""
    from rdls.subtypes.steps import read_assignments
    from rdls.survival._plots import plot_km
    from rdls.survival.km import at_risk_table, km_estimates, logrank

    subtypes = read_assignments(assignments)
    subtypes = subtypes.loc[subtypes["cohort"] == cohort, "subtype"]
    frame = survival_frame(subjects_sheet, subtypes=subtypes)
    times = at_risk_times(frame[TIME], settings["at_risk_every_months"])
    time, event, group = frame[TIME], frame[EVENT], frame["subtype"]
    km_estimates(time, event, group).to_csv(out_curves, sep="\t", index=False)
    at_risk_table(time, event, group, times=times).to_csv(out_at_risk, sep="\t")
    rows, annotation = [], None
    if group.nunique() > 1:
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
        log.warning("%s: one subtype only; no log-rank test", cohort)
    columns = ["comparison", "statistic", "df", "p_value", "p_adjusted"]
    pd.DataFrame(rows, columns=columns).to_csv(out_logrank, sep="\t", index=False)
    plot_km(
        time,
        event,
        group,
        title=f"Recurrence-free survival by subtype: {cohort} (n = {len(frame)})",
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
) -> None:
    """Multivariable Cox model (subtype + clinical covariates) in each cohort."""
    from rdls.subtypes.steps import read_assignments
    from rdls.survival._plots import plot_forest, plot_message

    subtypes = read_assignments(assignments)
    frame = survival_frame(subjects_sheet, covariates=covariates, subtypes=subtypes["subtype"])
    frame = frame.assign(cohort=subtypes["cohort"])
    design = clinical_design(
        frame[frame["cohort"] == TRAINING],
        covariates=["subtype", *covariates],
        log2=settings["log2_covariates"],
    )
    tables, tests = [], []
    for cohort in cohorts:
        members = frame[frame["cohort"] == cohort]
        result, note = fit_cox_or_note(members, design=design, what=f"{cohort} cohort")
        if result is None:
            tables.append(pd.DataFrame({"term": design.terms, "note": note}).assign(cohort=cohort))
            continue
        table = result.table.assign(cohort=cohort, n=result.n, events=result.events, note=note)
        tables.append(table)
        tests.append(result.ph_test.assign(cohort=cohort))
        log.info("%s: n=%d, events=%d, C=%.3f", cohort, result.n, result.events,
                 result.concordance)  # fmt: skip
    table = pd.concat(tables, ignore_index=True).reindex(columns=COX_COLUMNS)
    table.to_csv(out_table, sep="\t", index=False)
    ph = pd.concat(tests, ignore_index=True) if tests else pd.DataFrame(columns=["cohort"])
    _cohort_first(ph).to_csv(out_ph_test, sep="\t", index=False)
    estimated = {
        cohort: part for cohort, part in table.groupby("cohort", sort=False)
        if part["hazard_ratio"].notna().any()
    }  # fmt: skip
    title = "Multivariable Cox model of recurrence-free survival"
    if estimated:
        plot_forest(estimated, png=out_forest[0], svg=out_forest[1], title=title)
    else:
        plot_message(
            f"No cohort has more events than the model's {len(design.terms)} terms; "
            "results/survival/cox/hazard_ratios.tsv says why for each.",
            title=title, png=out_forest[0], svg=out_forest[1],
        )  # fmt: skip


def clinical_design(training: pd.DataFrame, *, covariates: Sequence[str], log2: Sequence[str]):
    """How covariates (and the subtype, reference RDLS1) are coded: learned on training."""
    from rdls.survival.cox import make_design

    reference = {"subtype": REFERENCE_SUBTYPE} if "subtype" in covariates else None
    return make_design(
        training,
        covariates=list(covariates),
        log2=[c for c in log2 if c in covariates],
        reference=reference,
    )


def fit_cox_or_note(frame: pd.DataFrame, *, design, what: str):
    """A Cox fit of one cohort, or None and the reason it cannot be estimated there.

    A small validation cohort may lack events in a covariate level: the model is then
    refitted with a small ridge penalty (noted), and given up only if that fails too.
    """
    from rdls.survival.cox import fit_cox

    events = int(frame[EVENT].sum())
    if events <= len(design.terms):
        note = f"not estimated: {events} events for {len(design.terms)} terms in the {what}"
        log.warning(note)
        return None, note
    try:
        return fit_cox(frame, time=TIME, event=EVENT, design=design), ""
    except InputError as error:
        reason = str(error).split(". ")[0]
        log.warning("%s: %s; refitting with ridge penalty 0.01", what, reason)
    try:
        result = fit_cox(frame, time=TIME, event=EVENT, design=design, penalizer=0.01)
    except InputError as error:
        note = f"not estimated: {str(error).split('. ')[0]}"
        log.warning("%s: %s", what, note)
        return None, note
    return result, f"ridge penalty 0.01 ({reason})"


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
) -> None:
    """Fit the recurrence risk score on training and lock its coefficients and cut-off."""
    from rdls.subtypes.steps import read_assignments, read_selected
    from rdls.survival._compare_plots import plot_cv_curve
    from rdls.survival.rrs import choose_cutoff, fit_rrs, high_risk_features

    values, cohort = read_selected(features)
    subtypes = read_assignments(assignments)["subtype"]
    frame = survival_frame(subjects_sheet, subtypes=subtypes[cohort[cohort == TRAINING].index])
    training = values.loc[frame.index]
    is_high = frame["subtype"] == HIGH_RISK_SUBTYPE
    candidates = high_risk_features(
        training, is_high, fdr=settings["fdr"], max_features=settings["max_features"]
    )
    candidates.to_csv(out_candidates, sep="\t", index=False)
    chosen = candidates.loc[candidates["selected"], "feature"].tolist()
    log.info("%d candidate features set %s apart", len(chosen), HIGH_RISK_SUBTYPE)
    model, cv = fit_rrs(
        training[chosen],
        frame[TIME],
        frame[EVENT],
        l1_ratio=settings["l1_ratio"],
        folds=settings["folds"],
        rule=settings["penalty_rule"],
        seed=seed,
    )
    cv.to_csv(out_cv, sep="\t", index=False)
    plot_cv_curve(cv, png=out_cv_figure[0], svg=out_cv_figure[1])
    scores = model.score(training)
    cutoff, scan = choose_cutoff(
        scores,
        frame[TIME],
        frame[EVENT],
        method=settings["cutoff"],
        min_group_fraction=settings["min_group_fraction"],
    )
    model = model.with_cutoff(cutoff, settings["cutoff"])
    scan.to_csv(out_cutoff_scan, sep="\t", index=False)
    log.info("RRS: %d features, cut-off %.4f (%s)", len(model.coefficients), cutoff,
             settings["cutoff"])  # fmt: skip
    Path(out_model).write_text(json.dumps(model.to_dict(), indent=1))
    pd.DataFrame(
        {"feature": list(model.coefficients), "coefficient": list(model.coefficients.values())}
    ).to_csv(out_coefficients, sep="\t", index=False)


def rrs_score_step(
    *,
    features: str | Path,
    model: str | Path,
    subjects_sheet: str | Path,
    cohorts: Sequence[str],
    out_scores: str | Path,
    out_groups: str | Path,
) -> None:
    """RRS and risk group of every subject; hazard ratio and log-rank of the groups."""
    from rdls.subtypes.steps import read_selected
    from rdls.survival.km import logrank
    from rdls.survival.rrs import RRSModel

    values, cohort = read_selected(features)
    rrs = RRSModel.from_dict(json.loads(Path(model).read_text()))
    scores = rrs.score(values)
    table = pd.DataFrame(
        {"cohort": cohort, "rrs": scores, "rrs_group": rrs.group(scores)}, index=values.index
    )
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
        if group.nunique() == 2:
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
    """Kaplan-Meier curves of the RRS groups in one cohort, annotated with HR and log-rank."""
    from rdls.survival._plots import plot_km

    risk = pd.read_csv(scores, sep="\t", dtype={"subject_id": str}).set_index("subject_id")
    risk = risk[risk["cohort"] == cohort]
    frame = survival_frame(subjects_sheet, subtypes=None)
    members = frame.loc[frame.index.intersection(risk.index)]
    summary = pd.read_csv(groups, sep="\t").set_index("cohort").loc[cohort]
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
    """Univariable Cox hazard ratio of the high against the low RRS group."""
    from rdls.survival.cox import fit_cox, make_design

    data = frame[[TIME, EVENT]].assign(rrs_group=group)
    design = make_design(data, covariates=["rrs_group"], reference={"rrs_group": "low"})
    row = fit_cox(data, time=TIME, event=EVENT, design=design).table.iloc[0]
    return {key: float(row[key]) for key in ("hazard_ratio", "ci_lower", "ci_upper", "p_value")}


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
) -> None:
    """The clinical model against clinical + RRS, fitted in training, in every cohort."""
    from rdls.survival import _compare_plots as plots
    from rdls.survival.compare import compare_models
    from rdls.survival.cox import design_matrix

    risk = pd.read_csv(scores, sep="\t", dtype={"subject_id": str}).set_index("subject_id")
    frame = survival_frame(subjects_sheet, covariates=covariates, subtypes=None)
    frame = frame.loc[frame.index.intersection(risk.index)].assign(rrs=risk["rrs"])
    frame["cohort"] = risk.loc[frame.index, "cohort"]
    design = clinical_design(
        frame[frame["cohort"] == TRAINING], covariates=covariates,
        log2=settings["log2_covariates"],
    )  # fmt: skip
    matrix = design_matrix(design, frame).assign(rrs=frame["rrs"])
    complete = matrix.notna().all(axis=1)
    if (~complete).any():
        log.info("%d subjects without a complete set of covariates left out", (~complete).sum())
    data = {}
    horizon = settings["horizon_months"]
    for name in cohorts:
        ids = frame.index[(frame["cohort"] == name) & complete]
        time, event = frame.loc[ids, TIME], frame.loc[ids, EVENT]
        cases, controls = int(((time <= horizon) & (event == 1)).sum()), int((time > horizon).sum())
        if name != TRAINING and not (cases and controls):
            # The time-dependent AUC is undefined without both; the cohort is left out here
            # and its Kaplan-Meier and Cox results still stand.
            log.warning("%s: %d events by %g months and %d subjects followed beyond: left out "
                        "of the model comparison", name, cases, horizon, controls)  # fmt: skip
            continue
        data[name] = {"X": matrix.loc[ids], "time": time, "event": event}
    comparison = settings["comparison"]
    result = compare_models(
        train=data[TRAINING],
        cohorts={name: part for name, part in data.items() if name != TRAINING},
        models={"clinical": design.terms, "clinical + RRS": [*design.terms, "rrs"]},
        horizon=horizon,
        n_boot=comparison["bootstrap"],
        seed=seed,
        thresholds=np.round(np.arange(0.01, comparison["max_threshold"] + 1e-9, 0.01), 2),
        calibration_groups=comparison["calibration_groups"],
    )
    for name in ("auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc"):
        getattr(result, name).to_csv(out_tables[name], sep="\t", index=False)
    result.coefficients.to_csv(out_tables["models"], sep="\t", index=False)
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


def _cohort_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["cohort", *[c for c in table.columns if c != "cohort"]]]


def _format_p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
