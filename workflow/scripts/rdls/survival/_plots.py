"""Figures of survival analyses: Kaplan-Meier curves with numbers at risk, and forest plots.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state) saved as PNG at 150 dpi and,
where a path is given, as SVG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter

from rdls.survival.km import _arrays, _levels, at_risk_table, km_estimates

# Okabe-Ito, safe for colour-blind readers; assigned to groups in natural sorted order.
COLOURS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)


_HR_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 50, 100)


def group_palette(groups, palette: dict | None = None) -> dict:
    """Colour of each group: ``palette`` where it names the group, else a fixed colour by the
    group's place in natural sorted order (the same group gets the same colour in every plot
    of the same set of groups)."""
    levels = _levels(np.asarray(list(groups), dtype=object))
    chosen = dict(palette or {})
    return {level: chosen.get(level, COLOURS[i % len(COLOURS)]) for i, level in enumerate(levels)}


def plot_km(
    time,
    event,
    group=None,
    *,
    title: str,
    png,
    svg=None,
    at_risk_times=None,
    palette: dict | None = None,
    xlabel: str = "Months",
    ylabel: str = "Recurrence-free survival",
    annotation: str | None = None,
) -> Figure:
    """Kaplan-Meier curves by group, with 95% bands, censor ticks and numbers at risk.

    Parameters
    ----------
    time, event, group : array-like
        Follow-up, 0/1 events and group labels, aligned (``group`` None: one curve).
    title : str
    png, svg : path
        Where to write the figure (SVG only when given).
    at_risk_times : sequence of float, optional
        Times of the numbers-at-risk table and the x ticks; by default about six round
        times from 0 to the longest follow-up.
    palette : dict, optional
        Colour per group; groups it does not name get the fixed palette.
    annotation : str, optional
        Text in the lower left corner (``"log-rank p = 0.003"``).
    """
    t, e, g = _arrays(time, event, group)
    levels = _levels(g)
    colours = group_palette(levels, palette)
    if at_risk_times is None:
        at_risk_times = MaxNLocator(nbins=6, steps=[1, 2, 3, 6, 10]).tick_values(0, t.max())
        at_risk_times = [x for x in at_risk_times if 0 <= x <= t.max()]
    at_risk_times = [float(x) for x in at_risk_times]
    curves = km_estimates(t, e, g)
    counts = at_risk_table(t, e, g, times=at_risk_times)

    table_height = 0.3 + 0.22 * len(levels)
    figure = Figure(figsize=(7, 4.5 + table_height), layout="constrained")
    axes, table = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [4.5, table_height]}
    )
    for level in levels:
        curve = curves[curves["group"] == level]
        colour = colours[level]
        n = int((g == level).sum())
        label = f"{level} (n = {n})" if group is not None else f"n = {n}"
        axes.step(curve["time"], curve["survival"], where="post", color=colour, label=label)
        axes.fill_between(
            curve["time"],
            curve["ci_lower"],
            curve["ci_upper"],
            step="post",
            color=colour,
            alpha=0.15,
            linewidth=0,
        )
        censored = np.sort(t[(g == level) & (e == 0)])
        steps = curve["time"].to_numpy()
        at = np.searchsorted(steps, censored, side="right") - 1
        axes.plot(
            censored,
            curve["survival"].to_numpy()[at],
            linestyle="none",
            marker="|",
            markersize=7,
            color=colour,
        )
    axes.set_ylim(0, 1.02)
    right = max(t.max(), max(at_risk_times))
    axes.set_xlim(-0.04 * right, right * 1.03)  # room for the counts at time 0
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if group is not None:
        axes.legend(loc="upper right", frameon=False)
    if annotation:
        axes.text(0.02, 0.04, annotation, transform=axes.transAxes, ha="left", va="bottom")

    table.set_xticks(at_risk_times)
    table.set_xlabel(xlabel)
    table.set_ylim(-0.5, len(levels) - 0.5)
    table.set_yticks(range(len(levels)))
    table.set_yticklabels(levels if group is not None else ["at risk"])
    table.invert_yaxis()
    table.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    table.set_title("Number at risk", loc="left", fontsize="small")
    for row, level in enumerate(levels):
        table.get_yticklabels()[row].set_color(colours[level])
        for x in at_risk_times:
            table.text(
                x, row, str(counts.loc[level, x]), ha="center", va="center", fontsize="small"
            )
    _save(figure, png, svg)
    return figure


def plot_forest(tables: dict[str, pd.DataFrame], *, png, svg=None, title: str) -> Figure:
    """Hazard ratios with 95% intervals, one block of rows per cohort, on a log scale.

    Parameters
    ----------
    tables : dict
        Cohort name -> a ``CoxResult.table`` (``term``, ``hazard_ratio``, ``ci_lower``,
        ``ci_upper``, ``p_value``).
    png, svg : path
    title : str
    """
    rows = []  # (label, hr, lower, upper, p, is_header)
    for cohort, frame in tables.items():
        rows.append((str(cohort), np.nan, np.nan, np.nan, np.nan, True))
        for record in frame.itertuples(index=False):
            rows.append(
                (
                    f"  {record.term}",
                    record.hazard_ratio,
                    record.ci_lower,
                    record.ci_upper,
                    record.p_value,
                    False,
                )
            )
    figure = Figure(figsize=(8, 1.0 + 0.32 * len(rows)), layout="constrained")
    axes = figure.subplots()
    finite = [v for r in rows if not r[5] for v in (r[1], r[2], r[3]) if np.isfinite(v) and v > 0]
    low, high = (min(finite), max(finite)) if finite else (0.5, 2.0)
    low, high = min(low, 1.0) / 1.3, max(high, 1.0) * 1.3
    for y, (_, hr, lower, upper, p, header) in enumerate(rows):
        if header or not np.isfinite(hr):
            continue
        axes.plot([max(lower, low), min(upper, high)], [y, y], color="#333333", linewidth=1.2)
        axes.plot([hr], [y], marker="s", color="#0072B2", markersize=6)
        axes.text(
            1.02,
            y,
            f"{hr:.2f} ({lower:.2f}-{upper:.2f})  p {_p_text(p)}",
            transform=axes.get_yaxis_transform(),
            va="center",
            fontsize="small",
        )
    axes.axvline(1.0, color="#888888", linestyle="--", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlim(low, high)
    ticks = [x for x in _HR_TICKS if low <= x <= high]
    axes.xaxis.set_major_locator(FixedLocator(ticks))
    axes.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([r[0] for r in rows])
    for tick, row in zip(axes.get_yticklabels(), rows, strict=True):
        if row[5]:
            tick.set_fontweight("bold")
    axes.tick_params(axis="y", length=0)
    axes.set_xlabel("Hazard ratio (95% CI, log scale)")
    axes.text(
        1.02,
        1.0,
        "HR (95% CI)  p",
        transform=axes.transAxes,
        va="bottom",
        fontsize="small",
        fontweight="bold",
    )
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    _save(figure, png, svg)
    return figure


def plot_message(text: str, *, title: str, png, svg=None) -> Figure:
    """A figure that says why there is nothing to plot, where a report expects a plot."""
    figure = Figure(figsize=(7, 2.5))
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=axes.transAxes)
    _save(figure, png, svg)
    return figure


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _save(figure: Figure, png, svg) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    if svg is not None:
        Path(svg).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(svg)
