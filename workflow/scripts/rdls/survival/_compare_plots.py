"""Figures of the model comparison and of the RRS penalty choice (one panel per cohort).

Each function draws a ``matplotlib.figure.Figure`` (no pyplot state), saves it as PNG at 150
dpi and, when ``svg`` is given, as SVG, and returns the figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_REFERENCE = {"treat all": ("0.45", "--"), "treat none": ("0.2", ":")}


def plot_roc(result, *, png: str | Path, svg: str | Path | None = None) -> Figure:
    """ROC curves at the horizon, one panel per cohort, one line per model with its AUC."""
    cohorts = list(dict.fromkeys(result.roc["cohort"]))
    if not cohorts:
        figure = Figure(figsize=(5.0, 2.0), layout="constrained")
        figure.text(0.5, 0.5, "No cohort has an AUC at the horizon (auc.tsv says why).",
                    ha="center", va="center")  # fmt: skip
        return _save(figure, png, svg)
    figure, axes = _panels(len(cohorts))
    auc = result.auc.set_index(["cohort", "model"])["auc"]
    for ax, cohort in zip(axes, cohorts, strict=False):
        for model, curve in result.roc[result.roc["cohort"] == cohort].groupby("model", sort=False):
            label = f"{model} (AUC {auc.loc[(cohort, model)]:.2f})"
            ax.plot(curve["fpr"], curve["tpr"], drawstyle="default", label=label)
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        ax.set(
            title=cohort,
            xlabel="1 - specificity",
            ylabel="sensitivity",
            xlim=(0, 1),
            ylim=(0, 1),
            aspect="equal",
        )
        ax.legend(fontsize="small", loc="lower right")
    figure.suptitle(f"ROC at {result.horizon:g} months")
    return _save(figure, png, svg)


def plot_calibration(result, *, png: str | Path, svg: str | Path | None = None) -> Figure:
    """Observed against predicted risk: risk groups (1 - Kaplan-Meier with its interval), the
    smoothed calibration curve with its ICI, and the predicted risks' histogram below."""
    cal = result.calibration
    curves = result.calibration_curve
    summary = result.calibration_summary.set_index(["cohort", "model"])
    predictions = result.predictions
    cohorts = list(dict.fromkeys(cal["cohort"]))
    figure, axes = _panels(len(cohorts))
    top = float(np.nanmax(cal[["predicted", "observed", "observed_ci_upper"]].to_numpy()))
    top = min(1.0, max(0.1, top * 1.05))
    for ax, cohort in zip(axes, cohorts, strict=False):
        histogram = ax.twinx()
        for k, (model, groups) in enumerate(
            cal[cal["cohort"] == cohort].groupby("model", sort=False)
        ):
            colour = f"C{k}"
            curve = curves[(curves["cohort"] == cohort) & (curves["model"] == model)]
            ici = summary["ici"].get((cohort, model), np.nan)
            if len(curve):
                ax.plot(curve["predicted"], curve["observed"], color=colour, lw=1,
                        label=f"{model}, smoothed (ICI {ici:.3f})")  # fmt: skip
            risks = predictions.loc[
                (predictions["cohort"] == cohort) & (predictions["model"] == model), "risk"
            ]
            histogram.hist(risks, bins=40, range=(0, top), color=colour, alpha=0.25)
            err = np.vstack(
                [
                    (groups["observed"] - groups["observed_ci_lower"]).clip(lower=0),
                    (groups["observed_ci_upper"] - groups["observed"]).clip(lower=0),
                ]
            )
            ax.errorbar(
                groups["predicted"],
                groups["observed"],
                yerr=np.nan_to_num(err),
                marker="o",
                ls="none",
                color=colour,
                capsize=2,
                label=f"{model}, risk groups",
            )
        # the histogram takes the bottom fifth of the panel, out of the curves' way
        histogram.set_ylim(0, histogram.get_ylim()[1] * 5)
        histogram.set_yticks([])
        ax.plot([0, top], [0, top], color="0.6", lw=0.8, ls="--")
        ax.set(
            title=cohort,
            xlabel="predicted risk",
            ylabel="observed risk (1 - KM)",
            xlim=(0, top),
            ylim=(0, top),
        )
        ax.set_box_aspect(1)  # square without fixing the data aspect, which the twin axis shares
        ax.legend(fontsize="small", loc="upper left")
    figure.suptitle(f"Calibration at {result.horizon:g} months")
    return _save(figure, png, svg)


def plot_decision_curves(result, *, png: str | Path, svg: str | Path | None = None) -> Figure:
    """Net benefit against threshold risk, with the treat-all and treat-none references."""
    dca = result.decision_curve
    cohorts = list(dict.fromkeys(dca["cohort"]))
    figure, axes = _panels(len(cohorts))
    for ax, cohort in zip(axes, cohorts, strict=False):
        rows = dca[dca["cohort"] == cohort]
        for model, curve in rows.groupby("model", sort=False):
            color, style = _REFERENCE.get(model, (None, "-"))
            ax.plot(curve["threshold"], curve["net_benefit"], color=color, ls=style, label=model)
        models = rows[~rows["model"].isin(list(_REFERENCE))]["net_benefit"]
        best = max(float(rows["net_benefit"].max()), 0.01)
        low = min(float(models.min()) if len(models) else 0.0, 0.0)
        ax.set(
            title=cohort,
            xlabel="threshold risk",
            ylabel="net benefit",
            ylim=(max(low, -0.1 * best) - 0.02 * best, best * 1.1),
        )
        ax.axhline(0, color="0.8", lw=0.5)
        ax.legend(fontsize="small", loc="upper right")
    figure.suptitle(f"Decision curves at {result.horizon:g} months")
    return _save(figure, png, svg)


def plot_auc_comparison(result, *, png: str | Path, svg: str | Path | None = None) -> Figure:
    """AUC with its 95% interval per cohort (x) and model (colour); "no AUC" where none."""
    auc = result.auc
    cohorts = list(dict.fromkeys(auc["cohort"]))
    models = list(dict.fromkeys(auc["model"]))
    figure = Figure(figsize=(max(4.0, 1.4 * len(cohorts) + 2), 3.6), layout="constrained")
    ax = figure.add_subplot()
    width = 0.7 / max(len(models), 1)
    for k, model in enumerate(models):
        rows = auc[auc["model"] == model].set_index("cohort").reindex(cohorts)
        x = np.arange(len(cohorts)) + (k - (len(models) - 1) / 2) * width
        err = np.vstack(
            [
                (rows["auc"] - rows["ci_lower"]).clip(lower=0),
                (rows["ci_upper"] - rows["auc"]).clip(lower=0),
            ]
        )
        ax.errorbar(x, rows["auc"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=model)
    diff = result.auc_difference
    for i, cohort in enumerate(cohorts):
        p = diff.loc[diff["cohort"] == cohort, "p_value"]
        if len(p) == 1 and np.isfinite(p.iloc[0]):
            ax.annotate(f"p = {p.iloc[0]:.2g}", (i, 1.0), ha="center", va="top", fontsize="small")
        if auc.loc[auc["cohort"] == cohort, "auc"].isna().all():
            ax.annotate("no AUC", (i, 0.45), ha="center", va="bottom", fontsize="small")
    ax.axhline(0.5, color="0.7", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(cohorts)), cohorts)
    ax.set(ylabel=f"AUC at {result.horizon:g} months", ylim=(0.4, 1.02))
    ax.legend(fontsize="small", loc="lower right")
    return _save(figure, png, svg)


def plot_cv_curve(cv_table: pd.DataFrame, *, png: str | Path, svg: str | Path | None = None):
    """Cross-validated partial-likelihood deviance (mean +- SE) against log(alpha)."""
    figure = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = figure.add_subplot()
    x = np.log(cv_table["alpha"].to_numpy())
    ax.errorbar(
        x, cv_table["mean_deviance"], yerr=cv_table["se"], fmt="o", ms=3, color="C3", ecolor="0.6"
    )
    for flag, style, label in (("is_min", "--", "minimum"), ("is_1se", ":", "1 SE")):
        chosen = cv_table.loc[cv_table[flag], "alpha"]
        if len(chosen):
            ax.axvline(np.log(chosen.iloc[0]), color="0.3", ls=style, label=f"alpha {label}")
    top = ax.secondary_xaxis("top")
    top.set_xticks(
        x[:: max(1, len(x) // 8)], cv_table["n_nonzero"].to_numpy()[:: max(1, len(x) // 8)]
    )
    top.set_xlabel("features kept")
    ax.set(xlabel="log(alpha)", ylabel="partial-likelihood deviance (per event)")
    ax.legend(fontsize="small")
    return _save(figure, png, svg)


def _panels(n: int):
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(3.8 * columns, 3.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes[:n]


def _save(figure: Figure, png, svg) -> Figure:
    figure.savefig(png, dpi=150)
    if svg is not None:
        figure.savefig(svg)
    return figure
