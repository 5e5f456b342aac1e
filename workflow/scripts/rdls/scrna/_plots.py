"""The scRNA figures: each written as PNG (for the report) and SVG (for papers), same stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

STATUS_COLOURS = {"kept": "#4c72b0", "low quality": "#dd8452", "doublet": "#c44e52"}


def save(figure, png: str | Path) -> None:
    """Write ``figure`` to ``png`` and to the SVG beside it."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)
    figure.savefig(png.with_suffix(".svg"))


def blank(png: str | Path, text: str) -> None:
    """A figure that says why there is nothing to show."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2))
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
    save(figure, png)


def qc_figure(metrics: pd.DataFrame, bounds: dict, *, title: str, png: str | Path) -> None:
    """Distributions of UMIs, genes and mitochondrial share with the bounds, and UMIs vs genes.

    ``metrics`` has ``total_counts``, ``n_genes``, ``mito_fraction`` and ``status`` (one of
    ``STATUS_COLOURS``).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 3.6), layout="constrained")
    panels = figure.subplots(1, 4)
    rng = np.random.default_rng(0)  # jitter only
    jitter = rng.uniform(-0.15, 0.15, len(metrics))
    colours = metrics["status"].map(STATUS_COLOURS).fillna("grey").to_numpy()
    columns = (("total_counts", "UMIs per cell", "min_counts", True),
               ("n_genes", "genes per cell", "min_genes", True),
               ("mito_fraction", "mitochondrial fraction", "max_mito_fraction", False))  # fmt: skip
    for axes, (column, label, bound, logged) in zip(panels, columns, strict=False):
        values = metrics[column].to_numpy(float)
        shown = np.log10(np.maximum(values, 1)) if logged else values
        if len(values) > 1 and np.ptp(shown) > 0:
            axes.violinplot(shown, positions=[0], showextrema=False)
        axes.scatter(jitter, shown, s=2, c=colours, alpha=0.6, linewidths=0, rasterized=True)
        limit = bounds[bound]
        axes.axhline(np.log10(max(limit, 1)) if logged else limit, color="black", ls="--", lw=1)
        axes.set_xticks([])
        axes.set_ylabel(f"log10 {label}" if logged else label)
        axes.set_title(f"{label}\n{bound} = {limit:.3g}", fontsize=9)
    axes = panels[3]
    axes.scatter(
        metrics["total_counts"], metrics["n_genes"], s=2, c=colours, linewidths=0, rasterized=True
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("UMIs per cell")
    axes.set_ylabel("genes per cell")
    for status, colour in STATUS_COLOURS.items():
        n = int((metrics["status"] == status).sum())
        axes.scatter([], [], c=colour, s=10, label=f"{status} ({n})")
    axes.legend(fontsize=7, loc="lower right")
    figure.suptitle(title)
    save(figure, png)


def umap_figure(coordinates: np.ndarray, colourings: dict[str, pd.Series], *, png) -> None:
    """One UMAP panel per colouring (e.g. sample, cluster, cell type), legends beside."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.2 * len(colourings), 5), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(colourings)))
    for axes, (name, labels) in zip(panels, colourings.items(), strict=True):
        labels = pd.Series(np.asarray(labels).astype(str))
        categories = _natural_order(labels.unique())
        palette = colormaps["tab20"] if len(categories) > 10 else colormaps["tab10"]
        for index, category in enumerate(categories):
            inside = (labels == category).to_numpy()
            axes.scatter(coordinates[inside, 0], coordinates[inside, 1], s=3, linewidths=0,
                         color=palette(index % palette.N), label=category,
                         rasterized=True)  # fmt: skip
        axes.set_title(name)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_xlabel("UMAP 1")
        axes.set_ylabel("UMAP 2")
        axes.legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5),
                    ncols=1 + len(categories) // 20, frameon=False)  # fmt: skip
    save(figure, png)


def dotplot(fraction: pd.DataFrame, mean: pd.DataFrame, gene_groups: dict[str, list[str]], *,
            png) -> None:  # fmt: skip
    """Markers (columns, grouped by their type) by cell type (rows).

    Dot size is the share of the type's cells that express the gene, colour its mean log
    expression scaled to the gene's maximum over types.
    """
    from matplotlib.figure import Figure

    genes = list(fraction.columns)
    types = list(fraction.index)
    scaled = mean / mean.max(axis=0).replace(0, 1)
    figure = Figure(figsize=(max(6, 0.28 * len(genes) + 3), max(3, 0.4 * len(types) + 2)),
                    layout="constrained")  # fmt: skip
    axes = figure.add_subplot()
    x, y = np.meshgrid(np.arange(len(genes)), np.arange(len(types)))
    points = axes.scatter(x.ravel(), y.ravel(), s=(fraction.to_numpy().ravel() * 120) + 0.5,
                          c=scaled.to_numpy().ravel(), cmap="Reds", vmin=0, vmax=1,
                          edgecolors="grey", linewidths=0.3)  # fmt: skip
    axes.set_xticks(range(len(genes)), genes, rotation=90, fontsize=7)
    axes.set_yticks(range(len(types)), types, fontsize=8)
    axes.set_ylim(len(types) - 0.5, -0.5)
    start = 0
    for group, members in gene_groups.items():
        axes.annotate(group, xy=((start + start + len(members) - 1) / 2, -0.9), ha="center",
                      fontsize=7, annotation_clip=False)  # fmt: skip
        if start:
            axes.axvline(start - 0.5, color="lightgrey", lw=0.8)
        start += len(members)
    figure.colorbar(points, ax=axes, label="mean expression (scaled)", shrink=0.5,
                    anchor=(0.0, 0.0))  # fmt: skip
    for share in (0.25, 0.5, 1.0):
        axes.scatter([], [], s=share * 120, c="grey", label=f"{share:.0%} expressing")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    save(figure, png)


def composition_bars(table: pd.DataFrame, *, png, title: str | None = None) -> None:
    """Stacked cell-type fractions, one bar per sample, samples grouped by subtype."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    wide = table.pivot_table(index=["subtype", "sample_id"], columns="cell_type",
                             values="fraction", fill_value=0.0).sort_index()  # fmt: skip
    figure = Figure(figsize=(max(5, 0.5 * len(wide) + 3), 4.5), layout="constrained")
    axes = figure.add_subplot()
    palette = colormaps["tab20"] if wide.shape[1] > 10 else colormaps["tab10"]
    bottom = np.zeros(len(wide))
    for index, cell_type in enumerate(wide.columns):
        axes.bar(range(len(wide)), wide[cell_type], bottom=bottom, label=cell_type,
                 color=palette(index % palette.N), width=0.8)  # fmt: skip
        bottom += wide[cell_type].to_numpy()
    axes.set_xticks(range(len(wide)), [s for _, s in wide.index], rotation=90, fontsize=8)
    subtypes = [s for s, _ in wide.index]
    for subtype in dict.fromkeys(subtypes):
        where = [i for i, s in enumerate(subtypes) if s == subtype]
        axes.annotate(subtype, xy=(np.mean(where), 1.02), ha="center", fontsize=9,
                      annotation_clip=False)  # fmt: skip
        if where[0]:
            axes.axvline(where[0] - 0.5, color="black", lw=1)
    axes.set_ylim(0, 1)
    axes.set_ylabel("fraction of the sample's cells")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    if title:
        figure.suptitle(title, fontsize=9)
    save(figure, png)


def signature_heatmap(table: pd.DataFrame, *, png) -> None:
    """Mean signature score by cell type (rows) and subtype signature (columns)."""
    from matplotlib.figure import Figure

    wide = table.pivot_table(index="cell_type", columns="signature", values="mean_score")
    figure = Figure(figsize=(2 + 1.2 * wide.shape[1], 1.5 + 0.35 * wide.shape[0]),
                    layout="constrained")  # fmt: skip
    axes = figure.add_subplot()
    limit = float(np.nanmax(np.abs(wide.to_numpy()))) if wide.notna().any().any() else 1.0
    image = axes.imshow(wide.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_xticks(range(wide.shape[1]), wide.columns, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(wide.shape[0]), wide.index, fontsize=8)
    figure.colorbar(image, ax=axes, label="mean signature score")
    save(figure, png)


def _natural_order(values) -> list[str]:
    values = [str(v) for v in values]
    return sorted(values, key=lambda v: (0, int(v), "") if v.isdigit() else (1, 0, v))
