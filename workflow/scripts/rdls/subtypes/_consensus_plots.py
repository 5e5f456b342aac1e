"""Figures of a consensus clustering: heatmaps per k, the CDFs, and the statistics of k
(with the null reference: real against null PAC, RCSI and p-values)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.figure import Figure

from rdls.subtypes.consensus import ConsensusResult
from rdls.subtypes.structure import COMPARISON_COLUMNS, NullReference

CONSENSUS_CMAP = LinearSegmentedColormap.from_list("consensus", ["#ffffff", "#08306b"])
CLUSTER_COLOURS = (
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6",
)  # fmt: skip


def plot_consensus_heatmaps(
    result: ConsensusResult, *, png: str | Path, svg: str | Path | None = None
) -> Figure:
    """One consensus heatmap per k, items ordered by final label and linkage leaves.

    Consensus runs from white (never together) to dark blue (always together); the bars
    above and left of each panel colour the final clusters.
    """
    ks = list(result.ks)
    columns = min(3, len(ks))
    rows = math.ceil(len(ks) / columns)
    figure = Figure(figsize=(3.4 * columns + 0.8, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    image = None
    for ax, k in zip(axes.flat, ks, strict=False):
        order = result.order.get(k)
        if order is None:
            order = np.argsort(result.labels[k], kind="stable")
        matrix = result.consensus[k][np.ix_(order, order)]
        labels = result.labels[k][order]
        image = ax.imshow(
            matrix, cmap=CONSENSUS_CMAP, vmin=0, vmax=1, interpolation="nearest", aspect="auto"
        )
        colours = ListedColormap(CLUSTER_COLOURS[: max(int(labels.max()) + 1, 1)])
        top = ax.inset_axes([0, 1.02, 1, 0.05])
        top.imshow(labels[None, :], cmap=colours, aspect="auto", interpolation="nearest",
                   vmin=-0.5, vmax=colours.N - 0.5)  # fmt: skip
        left = ax.inset_axes([-0.07, 0, 0.05, 1])
        left.imshow(labels[:, None], cmap=colours, aspect="auto", interpolation="nearest",
                    vmin=-0.5, vmax=colours.N - 0.5)  # fmt: skip
        for bar in (top, left):
            bar.set_axis_off()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"k = {k}", pad=14)
    for ax in list(axes.flat)[len(ks) :]:
        ax.set_axis_off()
    if image is not None:
        figure.colorbar(image, ax=axes, shrink=0.6, label="consensus")
    _save(figure, png=png, svg=svg)
    return figure


def plot_cdf(result: ConsensusResult, *, png: str | Path, svg: str | Path | None = None) -> Figure:
    """The empirical CDF of the pairwise consensus, one curve per k."""
    figure = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = figure.subplots()
    for k, curve in result.cdf.groupby("k", sort=True):
        ax.step(curve["consensus_index"], curve["cdf"], where="post", label=f"k = {k}")
    lower, upper = result.settings.get("pac_interval", (0.1, 0.9))
    ax.axvspan(lower, upper, color="0.9", zorder=0, label="PAC interval")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("consensus index")
    ax.set_ylabel("CDF")
    ax.set_title("Consensus CDF")
    ax.legend(frameon=False, fontsize="small")
    _save(figure, png=png, svg=svg)
    return figure


def plot_k_selection(
    result: ConsensusResult,
    *,
    chosen_k: int | None,
    png: str | Path,
    svg: str | Path | None = None,
    comparison: pd.DataFrame | None = None,
    null: NullReference | None = None,
    alpha: float = 0.05,
) -> Figure:
    """Real against null PAC, RCSI with its p-values, delta area and silhouette against k.

    With ``comparison`` (:func:`rdls.subtypes.structure.compare_with_null`) and ``null``, the
    first panel shows the real PAC beside the null datasets' (each as a grey dot, their mean
    and one standard deviation as a band), the second the RCSI with its 95% Monte Carlo
    interval and each k's Holm-adjusted p-value, filled where it is below ``alpha``. The
    chosen k is ringed; without one (no significant subtypes) the title says so.
    """
    summary = result.summary.sort_values("k")
    with_null = comparison is not None
    figure = Figure(figsize=(10, 7) if with_null else (11, 3.4), layout="constrained")
    axes = list(figure.subplots(2, 2).flat if with_null else figure.subplots(1, 3))
    ks = summary["k"].to_numpy()
    if with_null:
        table = summary.merge(comparison[COMPARISON_COLUMNS], on="k")
        _plot_null_pac(axes[0], table, null)
        _plot_rcsi(axes[1], table, alpha=alpha)
        _mark_chosen(axes[0], table, "pac", chosen_k)
        _mark_chosen(axes[1], table, "rcsi", chosen_k)
        rest = axes[2:]
    else:
        rest = axes
    panels = (
        ("delta_area", "delta area (first k: the area)"),
        ("pac", "PAC (lower is clearer)"),
        ("silhouette", "silhouette of 1 - consensus"),
    )
    panels = [panel for panel in panels if not (with_null and panel[0] == "pac")]
    for ax, (column, title) in zip(rest, panels, strict=True):
        ax.plot(summary["k"], summary[column], marker="o", color="#08306b")
        _mark_chosen(ax, summary, column, chosen_k)
        ax.set_title(title)
    for ax in axes:
        ax.set_xticks(ks)
        ax.set_xlabel("k")
    axes[0 if with_null else 1].legend(frameon=False, fontsize="small")
    if chosen_k is None:
        figure.suptitle("No significant subtypes: no k beats the null reference", color="#b2182b")
    _save(figure, png=png, svg=svg)
    return figure


def _plot_null_pac(ax, table: pd.DataFrame, null: NullReference | None) -> None:
    ks = table["k"].to_numpy()
    mean, sd = table["null_pac_mean"].to_numpy(), table["null_pac_sd"].fillna(0).to_numpy()
    ax.fill_between(ks, mean - sd, mean + sd, color="0.85", label="null mean ± 1 sd")
    if null is not None:
        for j, k in enumerate(null.ks):
            ax.plot(np.full(len(null.pac), k), null.pac[:, j], ".", color="0.55", markersize=3)
    ax.plot(ks, mean, color="0.4", linestyle="--", label="null mean")
    ax.plot(ks, table["pac"], marker="o", color="#08306b", label="real")
    ax.set_title("PAC, real and null (lower is clearer)")


def _plot_rcsi(ax, table: pd.DataFrame, *, alpha: float) -> None:
    ks, rcsi = table["k"].to_numpy(), table["rcsi"].to_numpy()
    error = 1.96 * table["rcsi_se"].fillna(0).to_numpy()
    ax.errorbar(ks, rcsi, yerr=error, color="#08306b", capsize=3, zorder=1)
    significant = table["p_adjusted"].to_numpy() < alpha
    ax.scatter(ks[significant], rcsi[significant], color="#08306b", zorder=2,
               label=f"adjusted p < {alpha:g}")  # fmt: skip
    ax.scatter(ks[~significant], rcsi[~significant], facecolor="white", edgecolor="#08306b",
               zorder=2, label="not significant")  # fmt: skip
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.margins(y=0.15)  # room for the p-values above the points
    for k, value, p in zip(ks, rcsi, table["p_adjusted"], strict=True):
        text = f"adj. p {p:.2g}" if p >= 1e-3 else f"adj. p {p:.0e}"
        ax.annotate(text, (k, value), textcoords="offset points", xytext=(0, 8), ha="center",
                    fontsize="x-small")  # fmt: skip
    ax.set_title("RCSI = mean log(null PAC / real PAC)")
    ax.legend(frameon=False, fontsize="small")


def _mark_chosen(ax, table: pd.DataFrame, column: str, chosen_k: int | None) -> None:
    if chosen_k is None:
        return
    chosen = table[table["k"] == chosen_k]
    ax.plot(chosen["k"], chosen[column], marker="o", markersize=12, linestyle="none",
            markerfacecolor="none", markeredgecolor="#d95f02",
            label=f"chosen k = {chosen_k}")  # fmt: skip
    ax.axvline(chosen_k, color="#d95f02", linewidth=0.8, linestyle=":")


def _save(figure: Figure, *, png, svg) -> None:
    for path in (png, svg):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    if svg is not None:
        figure.savefig(svg)
