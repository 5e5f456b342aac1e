"""Overview of a cohort as its sheets describe it: sizes, modalities, events, follow-up."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from rdls.sheets import Cohort, load_cohort

log = logging.getLogger(__name__)

COHORT_ORDER = ("training", "internal_validation", "external_validation", "biological")
HORIZON_MONTHS = 60.0


def summarise_cohort(cohort: Cohort) -> pd.DataFrame:
    """One row per cohort and one for all subjects.

    Columns: subjects, centres, subjects with MRI, slides, scRNA-seq and bulk samples,
    subjects with follow-up, events, median follow-up (reverse Kaplan-Meier, so that early
    events do not shorten it) and the Kaplan-Meier recurrence-free survival at 60 months.
    """
    subjects = cohort.subjects
    groups = [(name, subjects[subjects["cohort"] == name]) for name in COHORT_ORDER]
    groups = [(name, frame) for name, frame in groups if len(frame)] + [("all", subjects)]
    rows = []
    for name, frame in groups:
        ids = set(frame["subject_id"])
        followed = frame.dropna(subset=["rfs_months", "rfs_event"])
        times = followed["rfs_months"].to_numpy(float)
        events = followed["rfs_event"].to_numpy(int)
        rows.append(
            {
                "cohort": name,
                "subjects": len(frame),
                "centres": ",".join(sorted(frame["centre"].unique())),
                "with_mri": int(cohort.mri["subject_id"].isin(ids).sum()),
                "slides": int(cohort.slides["subject_id"].isin(ids).sum()),
                "scrna_samples": int(cohort.scrna["subject_id"].isin(ids).sum()),
                "bulk_samples": int(cohort.bulk["subject_id"].isin(ids).sum()),
                "with_follow_up": len(followed),
                "events": int(events.sum()),
                "median_follow_up_months": _median_time(times, 1 - events),
                "rfs_at_60_months": _survival_at(times, events, HORIZON_MONTHS),
            }
        )
    return pd.DataFrame(rows)


def write_overview(
    *,
    sheets: Mapping[str, str],
    covariates: list[str],
    out_table: str | Path,
    out_figure: str | Path,
    out_figure_vector: str | Path,
) -> pd.DataFrame:
    """Summarise the cohort of ``sheets`` into a table and a two-panel figure."""
    cohort = load_cohort(sheets, covariates=covariates, check_files=False)
    table = summarise_cohort(cohort)
    table.to_csv(out_table, sep="\t", index=False, float_format="%.4g")
    log.info("cohort overview:\n%s", table.to_string(index=False))
    figure = _overview_figure(cohort, table)
    figure.savefig(out_figure, dpi=150)
    figure.savefig(out_figure_vector)
    return table


def _kaplan_meier(times: np.ndarray, events: np.ndarray, label: str = "") -> KaplanMeierFitter:
    return KaplanMeierFitter(label=label).fit(times, event_observed=events)


def _survival_at(times: np.ndarray, events: np.ndarray, horizon: float) -> float:
    if len(times) == 0 or times.max() < horizon:
        return float("nan")
    return float(_kaplan_meier(times, events).predict(horizon))


def _median_time(times: np.ndarray, events: np.ndarray) -> float:
    if len(times) == 0:
        return float("nan")
    return float(_kaplan_meier(times, events).median_survival_time_)


def _overview_figure(cohort: Cohort, table: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_cohort = table[table["cohort"] != "all"].set_index("cohort")
    columns = ["subjects", "with_mri", "slides", "bulk_samples", "scrna_samples"]
    labels = ["subjects", "MRI", "slides", "bulk RNA-seq", "scRNA-seq"]
    figure, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    x = np.arange(len(per_cohort))
    width = 0.8 / len(columns)
    for k, (column, label) in enumerate(zip(columns, labels, strict=True)):
        bars.bar(x + k * width, per_cohort[column], width, label=label)
    bars.set_xticks(x + 0.4 - width / 2, [c.replace("_", "\n") for c in per_cohort.index])
    bars.set_ylabel("count")
    bars.set_title("Subjects and samples per cohort")
    bars.legend(frameon=False, fontsize=8)

    subjects = cohort.subjects.dropna(subset=["rfs_months", "rfs_event"])
    for name in per_cohort.index:
        frame = subjects[subjects["cohort"] == name]
        if frame.empty:
            continue
        label = f"{name} (n={len(frame)}, events={int(frame['rfs_event'].sum())})"
        fitter = _kaplan_meier(frame["rfs_months"], frame["rfs_event"], label=label)
        fitter.plot_survival_function(ax=curves, ci_show=False)
    curves.set_xlabel("months")
    curves.set_ylabel("recurrence-free survival")
    curves.set_ylim(0, 1.02)
    curves.set_title("Recurrence-free survival per cohort (Kaplan-Meier)")
    curves.legend(frameon=False, fontsize=8)
    return figure
