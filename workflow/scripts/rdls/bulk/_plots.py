"""Figures of the bulk RNA-seq analyses.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state), saved as PNG at 150 dpi
for the report and as SVG with the same stem beside it for papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rdls.bulk.de import natural_key

# Okabe-Ito, safe for colour-blind readers; given to subtypes in natural sorted order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#F0E442")  # fmt: skip
UP, DOWN, FLAT = "#D55E00", "#0072B2", "#BBBBBB"


def save(figure: Figure, png: str | Path) -> None:
    """Write ``png`` and an SVG copy beside it (same stem)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    figure.savefig(png.with_suffix(".svg"))


def palette(groups) -> dict:
    levels = sorted({str(g) for g in groups}, key=natural_key)
    return {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(levels)}


def blank(png, text: str) -> None:
    """A figure that only says why there is nothing to show."""
    figure = Figure(figsize=(6, 2))
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
    save(figure, png)


def volcano(table: pd.DataFrame, *, alpha: float, title: str, png, label_top: int = 10) -> None:
    """log2 fold change against -log10 adjusted p-value; significant genes coloured."""
    data = table.dropna(subset=["log2FoldChange", "pvalue"])
    padj = data["padj"].fillna(1.0).to_numpy()
    y = -np.log10(np.clip(padj, 1e-300, 1.0))
    x = data["log2FoldChange"].to_numpy()
    figure = Figure(figsize=(6, 5))
    axes = figure.add_subplot()
    axes.scatter(x, y, s=6, c=_colours(x, padj, alpha), linewidths=0, rasterized=True)
    axes.axhline(-np.log10(alpha), color="#666666", lw=0.8, ls="--")
    for i in np.argsort(padj, kind="stable")[:label_top]:
        if padj[i] < alpha:
            axes.annotate(data["gene"].iloc[i], (x[i], y[i]), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")  # fmt: skip
    up, down = int(((padj < alpha) & (x > 0)).sum()), int(((padj < alpha) & (x < 0)).sum())
    axes.set_xlabel("log2 fold change")
    axes.set_ylabel("-log10 adjusted p-value")
    axes.set_title(f"{title}\n{up} up, {down} down at padj < {alpha:g}", fontsize=10)
    figure.tight_layout()
    save(figure, png)


def ma_plot(table: pd.DataFrame, *, alpha: float, title: str, png) -> None:
    """Mean of normalised counts (log scale) against log2 fold change."""
    data = table.dropna(subset=["log2FoldChange"])
    data = data[data["baseMean"] > 0]
    padj = data["padj"].fillna(1.0).to_numpy()
    x = data["log2FoldChange"].to_numpy()
    figure = Figure(figsize=(6, 4.5))
    axes = figure.add_subplot()
    axes.scatter(data["baseMean"], x, s=6, c=_colours(x, padj, alpha), linewidths=0,
                 rasterized=True)  # fmt: skip
    axes.axhline(0, color="#666666", lw=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("mean of normalised counts")
    axes.set_ylabel("log2 fold change")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save(figure, png)


def _colours(lfc: np.ndarray, padj: np.ndarray, alpha: float) -> list[str]:
    return [UP if p < alpha and v > 0 else DOWN if p < alpha else FLAT
            for v, p in zip(lfc, padj, strict=True)]  # fmt: skip


def pca(scores: np.ndarray, explained: np.ndarray, subtype: pd.Series, *, title: str, png) -> None:
    """First two principal components, samples coloured by subtype."""
    colours = palette(subtype.dropna())
    figure = Figure(figsize=(6, 5))
    axes = figure.add_subplot()
    labels = subtype.fillna("no subtype").astype(str).to_numpy()
    for level in [*colours, "no subtype"]:
        rows = labels == level
        if rows.any():
            axes.scatter(scores[rows, 0], scores[rows, 1], s=28, label=level,
                         color=colours.get(level, FLAT), edgecolors="white",
                         linewidths=0.5)  # fmt: skip
    axes.set_xlabel(f"PC1 ({100 * explained[0]:.1f}% of variance)")
    axes.set_ylabel(f"PC2 ({100 * explained[1]:.1f}% of variance)")
    axes.legend(frameon=False, fontsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save(figure, png)


def heatmap(z: pd.DataFrame, subtype: pd.Series, *, title: str, png) -> None:
    """Genes x samples z-scores, samples ordered by subtype, with a subtype colour bar."""
    from matplotlib.colors import ListedColormap

    colours = palette(subtype.dropna())
    order = sorted(range(len(subtype)), key=lambda i: (natural_key(subtype.iloc[i]), i))
    z = z.iloc[:, order]
    labels = subtype.iloc[order].fillna("no subtype").astype(str).to_numpy()
    levels = [*colours, "no subtype"]
    height = min(2.0 + 0.14 * len(z), 16.0)
    figure = Figure(figsize=(max(6.0, 0.12 * z.shape[1] + 3), height))
    bar, axes = figure.subplots(2, 1, height_ratios=[0.4, max(len(z), 1) * 0.14],
                                sharex=True)  # fmt: skip
    codes = np.array([levels.index(v) for v in labels])[None, :]
    bar.imshow(codes, aspect="auto", interpolation="nearest", vmin=0, vmax=len(levels) - 1,
               cmap=ListedColormap([colours.get(v, FLAT) for v in levels]))  # fmt: skip
    bar.set_yticks([])
    for level in colours:
        bar.plot([], [], "s", color=colours[level], label=level)
    bar.legend(ncol=len(colours), fontsize=7, frameon=False, loc="lower left",
               bbox_to_anchor=(0, 1.0))  # fmt: skip
    image = axes.imshow(np.clip(z.to_numpy(float), -3, 3), aspect="auto", cmap="RdBu_r",
                        vmin=-3, vmax=3, interpolation="nearest")  # fmt: skip
    axes.set_yticks(range(len(z)), z.index, fontsize=6 if len(z) > 40 else 7)
    axes.set_xticks([])
    axes.set_xlabel(f"{z.shape[1]} samples, by subtype")
    figure.colorbar(image, ax=axes, label="z-score of VST expression", shrink=0.6)
    figure.suptitle(title, fontsize=10)
    save(figure, png)


def gsea_bars(table: pd.DataFrame, *, top: int, fdr: float, title: str, png) -> None:
    """NES of the most significant gene sets, coloured by direction, faded where FDR >= fdr."""
    shown = table.head(top).iloc[::-1]
    figure = Figure(figsize=(7, 1.2 + 0.28 * max(len(shown), 1)))
    axes = figure.add_subplot()
    colours = [UP if n > 0 else DOWN for n in shown["nes"]]
    alphas = [1.0 if q < fdr else 0.35 for q in shown["fdr"].fillna(1.0)]
    bars = axes.barh(range(len(shown)), shown["nes"], color=colours)
    for patch, a in zip(bars, alphas, strict=True):
        patch.set_alpha(a)
    axes.set_yticks(range(len(shown)), [t.replace("HALLMARK_", "") for t in shown["term"]],
                    fontsize=7)  # fmt: skip
    axes.axvline(0, color="#666666", lw=0.8)
    axes.set_xlabel(f"normalised enrichment score (faded: FDR >= {fdr:g})")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save(figure, png)


def boxplots(
    table: pd.DataFrame, *, columns: Sequence[str], group: str, title: str, png,
    labels: Sequence[str] | None = None,
) -> None:  # fmt: skip
    """One panel per column: values by subtype, boxes with the samples on top."""
    data = table.dropna(subset=[group])
    groups = sorted(data[group].astype(str).unique(), key=natural_key)
    colours = palette(groups)
    per_row = min(len(columns), 5)
    n_rows = int(np.ceil(len(columns) / per_row))
    figure = Figure(figsize=(2.8 * per_row, 3.2 * n_rows))
    panels = np.atleast_1d(figure.subplots(n_rows, per_row, squeeze=False)).ravel()
    rng = np.random.default_rng(0)  # jitter of the points only
    for k, (axes, column) in enumerate(zip(panels, columns, strict=False)):
        values = [data.loc[data[group].astype(str) == g, column].dropna().to_numpy()
                  for g in groups]  # fmt: skip
        axes.boxplot(values, tick_labels=groups, showfliers=False, widths=0.6)
        for i, (v, g) in enumerate(zip(values, groups, strict=True)):
            axes.scatter(i + 1 + rng.uniform(-0.15, 0.15, len(v)), v, s=10,
                         color=colours[g], alpha=0.8, linewidths=0)  # fmt: skip
        axes.set_title((labels[k] if labels else column).replace("_", " "), fontsize=9)
        axes.tick_params(labelsize=7)
    for axes in panels[len(columns) :]:
        axes.set_axis_off()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save(figure, png)


def composition_bars(fractions: pd.DataFrame, subtype: pd.Series, *, title: str, png) -> None:
    """Stacked bars of each sample's cell-type fractions, samples grouped by subtype."""
    from matplotlib import colormaps

    order = sorted(range(len(fractions)),
                   key=lambda i: (natural_key(subtype.iloc[i]) if pd.notna(subtype.iloc[i])
                                  else (2,), i))  # fmt: skip
    data = fractions.iloc[order]
    groups = subtype.iloc[order].fillna("no subtype").astype(str).to_numpy()
    cmap = colormaps["tab20"]
    figure = Figure(figsize=(max(6.0, 0.15 * len(data) + 3.5), 4.5))
    axes = figure.add_subplot()
    bottom = np.zeros(len(data))
    for k, column in enumerate(data.columns):
        values = data[column].fillna(0).to_numpy()
        axes.bar(range(len(data)), values, bottom=bottom, width=0.9, color=cmap(k % 20),
                 label=column)  # fmt: skip
        bottom += values
    edges = [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
    for edge in edges:
        axes.axvline(edge - 0.5, color="black", lw=1)
    starts = [0, *edges]
    ends = [*edges, len(groups)]
    for start, end in zip(starts, ends, strict=True):
        axes.text((start + end - 1) / 2, 1.02, groups[start], ha="center", fontsize=8)
    axes.set_xticks([])
    axes.set_ylim(0, 1.08)
    axes.set_ylabel("fraction")
    axes.set_xlabel("samples")
    axes.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save(figure, png)
