"""Figures of a consensus clustering: heatmaps per k, the CDFs, and the statistics of k."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from matplotlib.figure import Figure

from rdls.subtypes.consensus import ConsensusResult

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
    result: ConsensusResult, *, chosen_k: int, png: str | Path, svg: str | Path | None = None
) -> Figure:
    """Delta area, PAC and silhouette against k, the chosen k marked."""
    summary = result.summary.sort_values("k")
    figure = Figure(figsize=(11, 3.4), layout="constrained")
    axes = figure.subplots(1, 3)
    panels = (
        ("delta_area", "delta area (first k: the area)"),
        ("pac", "PAC (lower is clearer)"),
        ("silhouette", "silhouette of 1 - consensus"),
    )
    for ax, (column, title) in zip(axes, panels, strict=True):
        ax.plot(summary["k"], summary[column], marker="o", color="#08306b")
        chosen = summary[summary["k"] == chosen_k]
        ax.plot(chosen["k"], chosen[column], marker="o", markersize=12, linestyle="none",
                markerfacecolor="none", markeredgecolor="#d95f02",
                label=f"chosen k = {chosen_k}")  # fmt: skip
        ax.axvline(chosen_k, color="#d95f02", linewidth=0.8, linestyle=":")
        ax.set_xticks(summary["k"])
        ax.set_xlabel("k")
        ax.set_title(title)
    axes[1].legend(frameon=False, fontsize="small")
    _save(figure, png=png, svg=svg)
    return figure


def _save(figure: Figure, *, png, svg) -> None:
    for path in (png, svg):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    if svg is not None:
        figure.savefig(svg)
