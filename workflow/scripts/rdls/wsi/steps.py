"""The whole-slide rules' work: files in, files out, around the modules of this package.

A slide that cannot be processed (unreadable, no microns per pixel, no tissue) is excluded
with its reason when the config allows it: its tile table is empty and its status row says
why, and every later step carries the reason on. Otherwise the job stops with the reason.
A slide whose full-resolution pixels fail to decode while its tiles are quantified is
excluded the same way: its metrics row carries the step and reason, which the summary adds
to the exclusions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import QCFailure

log = logging.getLogger(__name__)

STATUS_COLUMNS = ["slide_id", "status", "step", "reason", "mpp", "mpp_source", "tissue_mm2",
                  "qc_flags", "tiles"]  # fmt: skip
METRIC_COLUMNS = ["slide_id", "subject_id", "tissue_mm2", "tiles", "lymphocyte_density_mm2",
                  "intratumoral_lymphocyte_density_mm2", "stromal_lymphocyte_density_mm2",
                  "exclusion_index", "stroma_fraction", "tumour_stroma_ratio",
                  "qc_flags"]  # fmt: skip
# In a slide's metrics row only: why quantification excluded it (empty when it did not).
EXCLUSION_COLUMNS = ["excluded_step", "excluded_reason"]
QC_MPP = 2.0  # resolution of the image that blur and brightness are judged on (um/px)
_CHUNK = 64  # tiles per task handed to a worker process


def tissue_step(
    *,
    slide_id: str,
    path: str | Path,
    mpp: float | None,
    settings: Mapping,
    allow_exclusions: bool,
    out_tiles: str | Path,
    out_status: str | Path,
    out_thumbnail: str | Path,
) -> None:
    """Open one slide, find its tissue, judge its quality and lay out its tiles."""
    from rdls.wsi.slide import (
        TissueSettings,
        open_slide,
        plot_thumbnail,
        qc_flags,
        thumbnail,
        tile_grid,
        tissue_mask,
    )

    status = {"slide_id": slide_id, "status": "ok", "step": "", "reason": "", "qc_flags": ""}
    tiles = pd.DataFrame(columns=["tile_id", "x", "y", "size0", "tissue_fraction"])
    try:
        # The sheet's mpp is used only where the file records none; then the config's.
        fallback = mpp if mpp is not None else settings["mpp_fallback"]
        slide, info = open_slide(path, mpp_fallback=fallback)
        source = info.mpp_source
        if source == "fallback":
            source = "slides sheet" if mpp is not None else "wsi.mpp_fallback"
        status.update(mpp=info.mpp, mpp_source=source)
        tissue = settings["tissue"]
        thumb_mpp = tissue["thumbnail_mpp"]
        image = thumbnail(slide, info, mpp=thumb_mpp)
        mask = tissue_mask(
            image,
            mpp=thumb_mpp,
            settings=TissueSettings(method=tissue["method"], exclude_pen=tissue["exclude_pen"]),
        )
        detail = thumbnail(slide, info, mpp=QC_MPP)
        judged = qc_flags(
            detail,
            _resize_mask(mask, shape=detail.shape[:2]),
            mpp=QC_MPP,
            min_tissue_mm2=tissue["min_tissue_mm2"],
        )
        status.update(tissue_mm2=judged["tissue_mm2"], qc_flags=";".join(judged["flags"]))
        plot_thumbnail(image, mask, png=out_thumbnail, title=slide_id, flags=judged["flags"])
        if "too little tissue" in judged["flags"]:
            raise QCFailure(
                f"{path}: {judged['tissue_mm2']:.2f} mm2 of tissue found, below "
                f"wsi.tissue.min_tissue_mm2 = {tissue['min_tissue_mm2']}; check that the slide "
                "holds tissue, or lower the threshold.",
                step="wsi_tissue",
            )
        grid = settings["tiles"]
        tiles = tile_grid(mask, mask_mpp=thumb_mpp, info=info, tile_px=grid["size_px"],
                          tile_mpp=grid["mpp"], overlap_px=grid["overlap_px"],
                          min_tissue_fraction=grid["min_tissue_fraction"])  # fmt: skip
        log.info("%s: %.2f mm2 tissue, %d tiles, QC flags: %s", slide_id,
                 judged["tissue_mm2"], len(tiles), status["qc_flags"] or "none")  # fmt: skip
    except QCFailure as failure:
        if not allow_exclusions:
            raise
        log.warning("%s excluded: %s", slide_id, failure.reason)
        status.update(status="excluded", step=failure.step, reason=failure.reason)
        if not Path(out_thumbnail).exists():
            _blank_figure(out_thumbnail, f"{slide_id}: {failure.reason}")
    status["tiles"] = len(tiles)
    Path(out_tiles).parent.mkdir(parents=True, exist_ok=True)
    tiles.to_parquet(out_tiles, index=False)
    pd.DataFrame([status]).reindex(columns=STATUS_COLUMNS).to_csv(out_status, sep="\t", index=False)


def quantify_step(
    *,
    slide_id: str,
    path: str | Path,
    mpp: float | None,
    tiles: str | Path,
    status: str | Path,
    settings: Mapping,
    threads: int,
    out_tiles: str | Path,
    out_metrics: str | Path,
    out_heatmap: str | Path,
    allow_exclusions: bool = False,
) -> None:
    """Quantify every tile of one slide (in ``threads`` processes) and sum up the slide."""
    from rdls.wsi.metrics import slide_metrics

    state = pd.read_csv(status, sep="\t", keep_default_na=False).iloc[0]
    grid = pd.read_parquet(tiles)
    row = {"slide_id": slide_id, "qc_flags": state["qc_flags"]}

    def without_metrics(reason: str) -> None:
        pd.DataFrame(columns=grid.columns).to_parquet(out_tiles, index=False)
        pd.DataFrame([row]).reindex(columns=[*METRIC_COLUMNS, *EXCLUSION_COLUMNS]).to_csv(
            out_metrics, sep="\t", index=False
        )
        _blank_figure(out_heatmap, f"{slide_id}: {reason}")

    if state["status"] != "ok" or grid.empty:
        without_metrics(state["reason"] or "no tissue tiles")
        return
    tile = settings["tiles"]
    try:
        quantified = quantify_slide(path, grid, slide_mpp=float(state["mpp"]),
                                    tile_px=tile["size_px"], tile_mpp=tile["mpp"],
                                    settings=settings["quantify"], threads=threads)  # fmt: skip
    except QCFailure as failure:
        if not allow_exclusions:
            raise
        log.warning("%s excluded: %s", slide_id, failure.reason)
        row.update(excluded_step=failure.step, excluded_reason=failure.reason)
        without_metrics(failure.reason)
        return
    table = pd.concat([grid.rename(columns={"tissue_fraction": "grid_tissue_fraction"}),
                       quantified], axis=1)  # fmt: skip
    table.to_parquet(out_tiles, index=False)
    tile_mm2 = (tile["size_px"] * tile["mpp"] / 1000.0) ** 2
    metrics = slide_metrics(
        table,
        tile_mm2=tile_mm2,
        stroma_min_eosin_fraction=settings["quantify"]["stroma_min_eosin_fraction"],
    )
    row.update(metrics)
    pd.DataFrame([row]).reindex(columns=METRIC_COLUMNS).to_csv(out_metrics, sep="\t", index=False)
    plot_heatmaps(table, tile_mm2=tile_mm2, stride0=_stride0(table, tile),
                  title=slide_id, png=out_heatmap)  # fmt: skip


def quantify_slide(
    path,
    grid: pd.DataFrame,
    *,
    slide_mpp: float,
    tile_px: int,
    tile_mpp: float,
    settings: Mapping,
    threads: int = 1,
) -> pd.DataFrame:
    """One row of quantification per tile of ``grid``, in ``threads`` worker processes."""
    coordinates = grid[["x", "y"]].to_numpy()
    chunks = [coordinates[i : i + _CHUNK] for i in range(0, len(coordinates), _CHUNK)]
    job = {"path": str(path), "slide_mpp": slide_mpp, "tile_px": tile_px, "tile_mpp": tile_mpp,
           "settings": dict(settings)}  # fmt: skip
    started, done, parts = time.monotonic(), 0, []
    if threads > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            for part in pool.map(_quantify_chunk, [job] * len(chunks), chunks):
                parts.append(part)
                done = _progress(done + len(part), len(grid), started)
    else:
        for chunk in chunks:
            parts.append(_quantify_chunk(job, chunk))
            done = _progress(done + len(parts[-1]), len(grid), started)
    return pd.concat(parts, ignore_index=True)


def _quantify_chunk(job: Mapping, coordinates: np.ndarray) -> pd.DataFrame:
    from rdls.wsi.classifier import ClassifierSettings, classify_tiles
    from rdls.wsi.slide import open_slide, read_at_mpp
    from rdls.wsi.tiles import TileSettings, quantify_tiles

    slide, info = open_slide(job["path"], mpp_fallback=job["slide_mpp"])
    settings = TileSettings(stain_normalisation=job["settings"]["stain_normalisation"])
    classifier = ClassifierSettings.from_config(job["settings"].get("classifier"))
    images = [
        read_at_mpp(slide, info, x=int(x), y=int(y), size_px=job["tile_px"], mpp=job["tile_mpp"])
        for x, y in coordinates
    ]
    table = quantify_tiles(images, mpp=job["tile_mpp"], settings=settings)
    if classifier is not None:
        for column, values in classify_tiles(images, classifier).items():
            table[column] = values
    return table


def _progress(done: int, total: int, started: float) -> int:
    elapsed = max(time.monotonic() - started, 1e-9)
    log.info("tiles %d of %d done, %.1f tiles/s", done, total, done / elapsed)
    return done


def _stride0(table: pd.DataFrame, tile: Mapping) -> float:
    size0 = float(table["size0"].iloc[0])
    return size0 * (tile["size_px"] - tile["overlap_px"]) / tile["size_px"]


def plot_heatmaps(table: pd.DataFrame, *, tile_mm2: float, stride0: float, title: str, png) -> None:
    """Lymphocyte density and tile compartment over the slide, side by side."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from rdls.wsi.metrics import grid_index, heatmap_grids

    shape = (int(grid_index(table["y"].max(), stride0)) + 1,
             int(grid_index(table["x"].max(), stride0)) + 1)  # fmt: skip
    grids = heatmap_grids(table, tile_mm2=tile_mm2, shape=shape, step0=stride0)
    figure = Figure(figsize=(10, 4.5))
    left, right = figure.subplots(1, 2)
    image = left.imshow(grids["lymphocyte_density_mm2"], cmap="magma", interpolation="nearest")
    figure.colorbar(image, ax=left, label="lymphocytes per mm2")
    left.set_title("Lymphocyte density")
    compartment = np.ma.masked_less(grids["compartment"], 0)
    colours = ListedColormap(["#7b3294", "#f4a582", "#dddddd", "#92c5de"])
    right.imshow(compartment, cmap=colours, vmin=0, vmax=3, interpolation="nearest")
    right.set_title("Compartment: tumour (purple), stroma (pink), other (blue)")
    for axes in (left, right):
        axes.set_axis_off()
    figure.suptitle(title)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)


def summary_step(
    *,
    metrics: Sequence[str | Path],
    status: Sequence[str | Path],
    slides_sheet: str | Path,
    out_metrics: str | Path,
    out_exclusions: str | Path,
) -> None:
    """results/wsi/slide_metrics.tsv and the slides excluded by QC."""
    from rdls.sheets import read_sheet

    sheet = read_sheet(slides_sheet, name="slides").set_index("slide_id")
    table = pd.concat([pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""])
                       for p in metrics], ignore_index=True)  # fmt: skip
    table["subject_id"] = table["slide_id"].map(sheet["subject_id"])
    table[METRIC_COLUMNS].to_csv(out_metrics, sep="\t", index=False)
    states = pd.concat([pd.read_csv(p, sep="\t", keep_default_na=False) for p in status])
    states = states.set_index("slide_id", drop=False)
    if "excluded_reason" in table:
        late = table[table["excluded_reason"].notna()].set_index("slide_id")
        states.loc[late.index, "status"] = "excluded"
        states.loc[late.index, "step"] = late["excluded_step"]
        states.loc[late.index, "reason"] = late["excluded_reason"]
    excluded = states[states["status"] != "ok"]
    pd.DataFrame({"item_id": excluded["slide_id"], "kind": "slide", "step": excluded["step"],
                  "reason": excluded["reason"]}).to_csv(out_exclusions, sep="\t",
                                                         index=False)  # fmt: skip
    log.info("%d slides, %d excluded", len(states), len(excluded))


def by_subtype_step(
    *,
    metrics: str | Path,
    assignments: str | Path,
    out_table: str | Path,
    out_figure: tuple[str, str],
) -> None:
    """Slide metrics compared by subtype, with boxplots.

    With fewer than two subtypes (no significant subtypes: every subject "none") the table is
    a note row per metric and the figure shows all slides as one group, titled with the note.
    """
    from matplotlib.figure import Figure

    from rdls.compare import nothing_to_compare
    from rdls.wsi.metrics import SLIDE_METRICS, compare_by_subtype

    table = pd.read_csv(metrics, sep="\t", dtype={"subject_id": str})
    subtypes = pd.read_csv(assignments, sep="\t", dtype=str).set_index("subject_id")["subtype"]
    table = table[table["subject_id"].isin(subtypes.index)].dropna(subset=["tissue_mm2"])
    table["subtype"] = table["subject_id"].map(subtypes)
    columns = SLIDE_METRICS[2:]
    compare_by_subtype(table, columns=columns).to_csv(out_table, sep="\t", index=False)
    groups = sorted(table["subtype"].unique())
    figure = Figure(figsize=(3.2 * len(columns), 3.6))
    for axes, column in zip(figure.subplots(1, len(columns)), columns, strict=True):
        values = [table.loc[table["subtype"] == g, column].dropna() for g in groups]
        axes.boxplot(values, tick_labels=groups)
        axes.set_title(column.replace("_", " "), fontsize=9)
        if "density" in column or "index" in column:
            axes.set_yscale("symlog")
    if note := nothing_to_compare(table["subtype"]):
        figure.suptitle(f"All slides: {note}", fontsize=10)
    figure.tight_layout()
    for path in out_figure:
        figure.savefig(path, dpi=150)


def _resize_mask(mask: np.ndarray, *, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a mask to ``shape`` (both cover the whole slide)."""
    rows = np.minimum((np.arange(shape[0]) * mask.shape[0]) // shape[0], mask.shape[0] - 1)
    cols = np.minimum((np.arange(shape[1]) * mask.shape[1]) // shape[1], mask.shape[1] - 1)
    return mask[rows][:, cols]


def _blank_figure(png, text: str) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2))
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
