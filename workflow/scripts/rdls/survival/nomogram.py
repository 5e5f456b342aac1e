"""A nomogram of a locked Cox model: points per covariate, total points to risk by the horizon.

Each covariate's contribution to the linear predictor, ``b_j x_j``, is put on a common points
scale: the covariate whose contribution spans the widest range over the training cohort gets
0 to 100 points, the others proportionally, each starting at 0 at its lowest contribution.
A subject's total points are thus an affine function of the linear predictor,
``lp = sum_j min_j + total * width / 100`` (``width`` the widest span), and the bottom axis
turns the total into the risk of recurrence by the horizon with the locked Breslow baseline,
``1 - exp(-H0 exp(lp - lp_mean))``: reading the chart gives exactly the locked model's risk
(:func:`points` and :func:`risk_from_points` reproduce :func:`rdls.survival.compare.
risk_from_locked` to rounding; tested). Categorical covariates show a tick per level; a log2
covariate is labelled in its own units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rdls.errors import InputError

RISK_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def nomogram_axes(locked: dict, design, X_train: pd.DataFrame) -> pd.DataFrame:
    """The covariate axes: one row per tick.

    Parameters
    ----------
    locked : dict
        A locked model (:func:`rdls.survival.compare.lock_model`).
    design : rdls.survival.cox.CoxDesign
        The clinical design the model's columns come from; columns that are not the design's
        (the RRS) are numeric covariates of their own.
    X_train : pandas.DataFrame
        The training cohort's design matrix (every model column), for the numeric ranges.

    Returns
    -------
    pandas.DataFrame
        ``covariate``, ``label`` (the value shown), ``contribution`` (``b x``), ``points``.
    """
    coefficients = locked["coefficients"]
    missing = [c for c in locked["covariates"] if c not in X_train.columns]
    if missing:
        raise InputError(f"nomogram: the training table lacks model column(s) {missing}.")
    rows = []
    for name, columns in _groups(locked["covariates"], design).items():
        if len(columns) > 1 or name in design.categorical_levels:
            levels = design.categorical_levels[name]
            reference = design.reference[name]
            for level in levels:
                column = f"{name}[{level}]"
                value = 0.0 if level == reference else coefficients.get(column, 0.0)
                rows.append({"covariate": name, "label": level, "contribution": value})
            continue
        column = columns[0]
        values = X_train[column].astype(float)
        ticks = _nice_ticks(values.min(), values.max())
        if column.startswith("log2("):
            labels = [f"{2**v:g}" for v in ticks]
            name = column[5:-1]
        else:
            labels = [f"{v:g}" for v in ticks]
        for value, label in zip(ticks, labels, strict=True):
            rows.append({"covariate": name, "label": label,
                         "contribution": coefficients[column] * value})  # fmt: skip
    table = pd.DataFrame(rows)
    span = table.groupby("covariate", sort=False)["contribution"].agg(["min", "max"])
    width = float((span["max"] - span["min"]).max())
    if width <= 0:
        raise InputError("nomogram: every covariate's contribution is constant; nothing to draw.")
    table["points"] = 100 * (table["contribution"] - table["covariate"].map(span["min"])) / width
    table.attrs["width"] = width
    table.attrs["lowest"] = float(span["min"].sum())
    return table


def points(locked: dict, axes: pd.DataFrame, X: pd.DataFrame) -> pd.Series:
    """Each subject's total points (the linear predictor on the nomogram's scale)."""
    beta = np.array([locked["coefficients"][c] for c in locked["covariates"]])
    lp = X[locked["covariates"]].to_numpy(dtype=float) @ beta
    return pd.Series(100 * (lp - axes.attrs["lowest"]) / axes.attrs["width"], index=X.index)


def risk_from_points(locked: dict, axes: pd.DataFrame, total) -> np.ndarray:
    """Risk by the locked horizon for total points ``total``."""
    beta = np.array([locked["coefficients"][c] for c in locked["covariates"]])
    centre = float(np.array([locked["means"][c] for c in locked["covariates"]]) @ beta)
    lp = axes.attrs["lowest"] + np.asarray(total, dtype=float) * axes.attrs["width"] / 100
    return -np.expm1(-locked["baseline_cumulative_hazard"] * np.exp(lp - centre))


def plot_nomogram(
    locked: dict, axes: pd.DataFrame, *, title: str, png: str | Path, svg: str | Path | None
) -> Figure:
    """Points, one axis per covariate, total points and the risk by the horizon."""
    covariates = list(dict.fromkeys(axes["covariate"]))
    total_max = float(axes.groupby("covariate")["points"].max().sum())
    n_rows = len(covariates) + 3
    figure = Figure(figsize=(8.5, 0.55 * n_rows + 1.0), layout="constrained")
    ax = figure.add_subplot()
    ax.set_xlim(-2, 102)
    ax.set_ylim(n_rows - 0.5, -0.8)
    ax.axis("off")

    def scale(row: int, positions, labels, name: str, extent=None) -> None:
        positions = np.asarray(positions, dtype=float)
        low, high = extent or (positions.min(), positions.max())
        ax.plot([low, high], [row, row], color="0.2", lw=0.8)
        for x, label in zip(positions, labels, strict=True):
            ax.plot([x, x], [row, row - 0.12], color="0.2", lw=0.8)
            ax.text(x, row - 0.18, label, ha="center", va="bottom", fontsize=7)
        ax.text(-3, row, name, ha="right", va="center", fontsize=8)

    scale(0, np.arange(0, 101, 10), [str(v) for v in range(0, 101, 10)], "Points")
    for row, name in enumerate(covariates, start=1):
        ticks = axes[axes["covariate"] == name]
        scale(row, ticks["points"], ticks["label"], name)
    total_ticks = _nice_ticks(0, total_max)
    total_ticks = total_ticks[total_ticks <= total_max * (1 + 1e-9)]
    to_axis = 100 / total_max
    scale(len(covariates) + 1, total_ticks * to_axis, [f"{v:g}" for v in total_ticks],
          "Total points", extent=(0, 100))  # fmt: skip
    grid = np.linspace(0, total_max, 2001)
    risk = risk_from_points(locked, axes, grid)
    shown = [r for r in RISK_TICKS if risk.min() <= r <= risk.max()]
    where = np.interp(shown, risk, grid) * to_axis if shown else []
    if shown:
        scale(len(covariates) + 2, where, [f"{r:g}" for r in shown],
              f"Risk by {locked['horizon']:g} months")  # fmt: skip
    figure.suptitle(title, fontsize=10)
    figure.savefig(png, dpi=150)
    if svg is not None:
        figure.savefig(svg)
    return figure


def _groups(columns: list[str], design) -> dict[str, list[str]]:
    """Model columns by covariate: a categorical's dummies together, anything else alone."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        owner = next((c for c in design.categorical_levels if column.startswith(f"{c}[")), column)
        groups.setdefault(owner, []).append(column)
    return groups


def _nice_ticks(low: float, high: float, count: int = 6) -> np.ndarray:
    if high <= low:
        return np.array([low])
    step = (high - low) / count
    magnitude = 10 ** np.floor(np.log10(step))
    step = min(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)
    start, stop = np.floor(low / step) * step, np.ceil(high / step) * step
    return np.arange(start, stop + step * 1e-9, step).round(10)  # covers every value
