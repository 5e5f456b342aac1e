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
                  "margin_lymphocyte_density_mm2", "exclusion_index", "lymphocyte_distance_um",
                  "stroma_fraction", "tumour_stroma_ratio", "immune_phenotype",
                  "qc_flags"]  # fmt: skip
# The per-nucleus table of a slide: its first columns (measurements follow).
NUCLEUS_OUTPUT_COLUMNS = ["slide_id", "x0", "y0", "tile", "nucleus_class", "compartment",
                          "distance_to_epithelium_um", "in_margin"]  # fmt: skip
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
            settings=TissueSettings(
                method=tissue["method"],
                exclude_pen=tissue["exclude_pen"],
                min_object_mm2=tissue["min_object_mm2"],
            ),
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
    out_nuclei: str | Path,
    out_metrics: str | Path,
    out_heatmap: str | Path,
    thumbnail_mpp: float | None = None,
    allow_exclusions: bool = False,
) -> None:
    """Quantify every tile of one slide (in ``threads`` processes) and sum up the slide.

    Writes the tile table, the nucleus table (one row per nucleus: level-0 centroid ``x0``,
    ``y0``, class, compartment, distance to the nearest epithelium and its measurements,
    so that users can re-threshold), the slide's metrics row and its heatmaps.
    """
    from rdls.wsi.compartments import assemble_mosaic, place_on_mosaic
    from rdls.wsi.metrics import PhenotypeSettings, slide_metrics

    state = pd.read_csv(status, sep="\t", keep_default_na=False).iloc[0]
    grid = pd.read_parquet(tiles)
    row = {"slide_id": slide_id, "qc_flags": state["qc_flags"]}

    def without_metrics(reason: str) -> None:
        pd.DataFrame(columns=grid.columns).to_parquet(out_tiles, index=False)
        pd.DataFrame(columns=NUCLEUS_OUTPUT_COLUMNS).to_parquet(out_nuclei, index=False)
        pd.DataFrame([row]).reindex(columns=[*METRIC_COLUMNS, *EXCLUSION_COLUMNS]).to_csv(
            out_metrics, sep="\t", index=False
        )
        _blank_figure(out_heatmap, f"{slide_id}: {reason}")

    if state["status"] != "ok" or grid.empty:
        without_metrics(state["reason"] or "no tissue tiles")
        return
    tile = settings["tiles"]
    quantify = settings["quantify"]
    slide_mpp = float(state["mpp"])
    try:
        quantified, nuclei, cells = quantify_slide(
            path, grid, slide_mpp=slide_mpp, tile_px=tile["size_px"], tile_mpp=tile["mpp"],
            settings=quantify, threads=threads,
        )  # fmt: skip
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
    compartments = _compartment_settings(quantify)
    # Nuclei to level-0 pixels (the tile's origin plus the centroid at the read resolution).
    scale = tile["mpp"] / slide_mpp
    tile_x = grid["x"].to_numpy(float)[nuclei["tile"].to_numpy(int)]
    tile_y = grid["y"].to_numpy(float)[nuclei["tile"].to_numpy(int)]
    nuclei.insert(1, "x0", tile_x + nuclei["col"].to_numpy(float) * scale)
    nuclei.insert(2, "y0", tile_y + nuclei["row"].to_numpy(float) * scale)
    mosaic, origin = assemble_mosaic(
        cells, grid[["x", "y"]].to_numpy(float) * slide_mpp, mosaic_um=compartments.mosaic_um
    )
    distance, in_margin, margin_mm2 = place_on_mosaic(
        nuclei["x0"] * slide_mpp, nuclei["y0"] * slide_mpp, mosaic, origin,
        mosaic_um=compartments.mosaic_um, margin_um=compartments.margin_um,
    )  # fmt: skip
    nuclei["distance_to_epithelium_um"] = np.where(
        nuclei["compartment"] == "epithelium", 0.0, distance
    )
    nuclei["in_margin"] = in_margin & (nuclei["compartment"] == "stroma").to_numpy()
    nuclei.insert(0, "slide_id", slide_id)
    nuclei.to_parquet(out_nuclei, index=False)
    phenotype = PhenotypeSettings(**settings.get("phenotype", {}))
    row.update(slide_metrics(table, nuclei, margin_mm2=margin_mm2, phenotype=phenotype))
    pd.DataFrame([row]).reindex(columns=METRIC_COLUMNS).to_csv(out_metrics, sep="\t", index=False)
    plot_heatmaps(table, mosaic, origin_um=origin, mosaic_um=compartments.mosaic_um,
                  slide_path=path, slide_mpp=slide_mpp, stride0=_stride0(table, tile),
                  thumbnail_mpp=thumbnail_mpp or compartments.mosaic_um * 4,
                  title=slide_id, png=out_heatmap)  # fmt: skip


def _compartment_settings(quantify: Mapping):
    from rdls.wsi.compartments import CompartmentSettings

    return CompartmentSettings(**quantify.get("compartments", {}))


def quantify_slide(
    path,
    grid: pd.DataFrame,
    *,
    slide_mpp: float,
    tile_px: int,
    tile_mpp: float,
    settings: Mapping,
    threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, list[np.ndarray]]:
    """Tile table, nucleus table and mosaic cells of every tile of ``grid``.

    The work runs in ``threads`` worker processes, ``_CHUNK`` tiles at a time; nuclei keep
    the index of their tile in ``grid``.
    """
    coordinates = grid[["x", "y"]].to_numpy()
    starts = range(0, len(coordinates), _CHUNK)
    chunks = [coordinates[i : i + _CHUNK] for i in starts]
    job = {"path": str(path), "slide_mpp": slide_mpp, "tile_px": tile_px, "tile_mpp": tile_mpp,
           "settings": dict(settings)}  # fmt: skip
    started, done, parts = time.monotonic(), 0, []
    if threads > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=threads) as pool:
            for part in pool.map(_quantify_chunk, [job] * len(chunks), chunks):
                parts.append(part)
                done = _progress(done + len(part[0]), len(grid), started)
    else:
        for chunk in chunks:
            parts.append(_quantify_chunk(job, chunk))
            done = _progress(done + len(parts[-1][0]), len(grid), started)
    nuclei = []
    for start, (_, part_nuclei, _) in zip(starts, parts, strict=True):
        part_nuclei["tile"] += start
        nuclei.append(part_nuclei)
    tables = pd.concat([p[0] for p in parts], ignore_index=True)
    tables["tile"] = np.arange(len(tables))
    cells = [c for p in parts for c in p[2]]
    return tables, pd.concat(nuclei, ignore_index=True), cells


def tile_settings(quantify: Mapping):
    """:class:`rdls.wsi.tiles.TileSettings` from the config's ``wsi.quantify`` block."""
    from rdls.wsi.nuclei import NucleusSettings
    from rdls.wsi.tiles import TileSettings

    return TileSettings(
        stain_normalisation=quantify["stain_normalisation"],
        nuclei=NucleusSettings(**quantify.get("nuclei", {})),
        compartments=_compartment_settings(quantify),
    )


def _quantify_chunk(job: Mapping, coordinates: np.ndarray):
    from rdls.wsi.classifier import ClassifierSettings, classify_tiles
    from rdls.wsi.compartments import override_by_tile
    from rdls.wsi.slide import open_slide, read_at_mpp
    from rdls.wsi.tiles import quantify_tiles_detail

    slide, info = open_slide(job["path"], mpp_fallback=job["slide_mpp"])
    settings = tile_settings(job["settings"])
    classifier = ClassifierSettings.from_config(job["settings"].get("classifier"))
    images = [
        read_at_mpp(slide, info, x=int(x), y=int(y), size_px=job["tile_px"], mpp=job["tile_mpp"])
        for x, y in coordinates
    ]
    table, nuclei, cells = quantify_tiles_detail(images, mpp=job["tile_mpp"], settings=settings)
    if classifier is not None:
        for column, values in classify_tiles(images, classifier).items():
            table[column] = values
        override_by_tile(table, nuclei, cells, table["compartment"])
    return table, nuclei, cells


def _progress(done: int, total: int, started: float) -> int:
    elapsed = max(time.monotonic() - started, 1e-9)
    log.info("tiles %d of %d done, %.1f tiles/s", done, total, done / elapsed)
    return done


def _stride0(table: pd.DataFrame, tile: Mapping) -> float:
    size0 = float(table["size0"].iloc[0])
    return size0 * (tile["size_px"] - tile["overlap_px"]) / tile["size_px"]


def plot_heatmaps(
    table: pd.DataFrame,
    mosaic: np.ndarray,
    *,
    origin_um,
    mosaic_um: float,
    slide_path,
    slide_mpp: float,
    stride0: float,
    thumbnail_mpp: float,
    title: str,
    png,
) -> None:
    """Lymphocyte density per tile and the pixel-level compartments, over the thumbnail.

    Both panels lie over the slide's thumbnail in slide microns, with a scale bar, so that
    every tile is drawn where it lies.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from rdls.wsi.compartments import COMPARTMENTS
    from rdls.wsi.metrics import density_grid, grid_index
    from rdls.wsi.slide import open_slide, thumbnail

    slide, info = open_slide(slide_path, mpp_fallback=slide_mpp)
    image = thumbnail(slide, info, mpp=thumbnail_mpp)
    width_um, height_um = image.shape[1] * thumbnail_mpp, image.shape[0] * thumbnail_mpp
    shape = (int(grid_index(table["y"].max(), stride0)) + 1,
             int(grid_index(table["x"].max(), stride0)) + 1)  # fmt: skip
    density = density_grid(table, shape=shape, step0=stride0)
    step_um = stride0 * slide_mpp
    first_x = float(table["x"].min()) * slide_mpp - grid_index(table["x"].min(), stride0) * step_um
    first_y = float(table["y"].min()) * slide_mpp - grid_index(table["y"].min(), stride0) * step_um
    grid_extent = (first_x, first_x + shape[1] * step_um, first_y + shape[0] * step_um, first_y)
    mosaic_extent = (origin_um[0], origin_um[0] + mosaic.shape[1] * mosaic_um,
                     origin_um[1] + mosaic.shape[0] * mosaic_um, origin_um[1])  # fmt: skip
    figure = Figure(figsize=(11, 4.8))
    left, right = figure.subplots(1, 2)
    for axes in (left, right):
        axes.imshow(image, extent=(0, width_um, height_um, 0), interpolation="bilinear")
    shown = left.imshow(density, cmap="magma", interpolation="nearest", alpha=0.75,
                        extent=grid_extent)  # fmt: skip
    figure.colorbar(shown, ax=left, label="lymphocytes per mm2 of tissue", shrink=0.8)
    left.set_title("Lymphocyte density per tile")
    colours = ["#7b3294", "#f4a582", "#92c5de", "#bababa"]  # epithelium, stroma, lumen, other
    labelled = np.ma.masked_equal(mosaic.astype(int), COMPARTMENTS.index("background"))
    right.imshow(labelled, cmap=ListedColormap(colours), vmin=1, vmax=4, alpha=0.8,
                 interpolation="nearest", extent=mosaic_extent)  # fmt: skip
    right.set_title("Epithelium (purple), stroma (pink), lumen (blue)", fontsize=10)
    bar_um = _scale_bar_um(width_um)
    for axes in (left, right):
        axes.set_xlim(0, width_um)
        axes.set_ylim(height_um, 0)
        axes.set_axis_off()
        x0, y0 = 0.04 * width_um, 0.95 * height_um
        axes.plot([x0, x0 + bar_um], [y0, y0], color="black", linewidth=3)
        axes.text(x0 + bar_um / 2, y0 - 0.02 * height_um, _length_label(bar_um),
                  ha="center", va="bottom", fontsize=8)  # fmt: skip
    figure.suptitle(title)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150)


def _scale_bar_um(width_um: float) -> float:
    """A round length near a fifth of the image's width (1, 2 or 5 times a power of ten)."""
    target = width_um / 5
    power = 10 ** np.floor(np.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def _length_label(um: float) -> str:
    return f"{um / 1000:g} mm" if um >= 1000 else f"{um:g} um"


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
    from rdls.wsi.metrics import SLIDE_METRICS, compare_by_subtype, phenotype_by_subtype

    table = pd.read_csv(metrics, sep="\t", dtype={"subject_id": str, "immune_phenotype": str})
    subtypes = pd.read_csv(assignments, sep="\t", dtype=str).set_index("subject_id")["subtype"]
    table = table[table["subject_id"].isin(subtypes.index)].dropna(subset=["tissue_mm2"])
    table["subtype"] = table["subject_id"].map(subtypes)
    columns = SLIDE_METRICS[2:]
    compared = compare_by_subtype(table, columns=columns)
    if not nothing_to_compare(table["subtype"]):
        compared = pd.concat([compared, pd.DataFrame([phenotype_by_subtype(table)])])
    compared.to_csv(out_table, sep="\t", index=False)
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
