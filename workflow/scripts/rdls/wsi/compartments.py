"""Tissue compartments at the pixel level: tumour epithelium, stroma, lumen and background.

"Intratumoral" must mean inside tumour epithelium, not inside a 128 um tile that holds some
tumour: lymphocytes crowded at a nest's edge are stromal (peritumoral), and the difference is
the immune-excluded phenotype (Chen and Mellman, Nature 2017; Salgado et al., Ann Oncol 2015,
who score stromal and intraepithelial lymphocytes separately).

Epithelium is built from the nuclei classified as tumour (:mod:`rdls.wsi.nuclei`): tumour
cells sit packed in nests and glands, so the union of their nuclei, closed over the gaps
between neighbouring cells and grown by a rim of cytoplasm, is the nest. Isolated tumour-
looking nuclei (a few misclassified fibroblasts or plasma cells in the stroma) make no nest:
components smaller than a few cells are dropped. Glass enclosed by epithelium is a gland lumen,
not background. Every other tissue pixel is stroma. Sizes are in microns, so the same settings
hold at any resolution.

The margin band (stroma within ``margin_um`` of epithelium) spans tiles, so it is measured on
the slide's mosaic of coarse compartment cells (:func:`mosaic_cells`,
:func:`distance_to_epithelium_um`) rather than inside a tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rdls.errors import InputError

COMPARTMENTS = ("background", "epithelium", "stroma", "lumen", "other")
WORK_UM = 1.0  # the grid the nests are drawn on, in microns
BACKGROUND, EPITHELIUM, STROMA, LUMEN, OTHER = range(len(COMPARTMENTS))


@dataclass(frozen=True)
class CompartmentSettings:
    """How epithelium, lumen and the margin band are drawn; sizes in microns.

    Attributes
    ----------
    nest_gap_um : float
        Radius of the closing that joins neighbouring tumour nuclei into one nest. Tumour
        cells are 12-20 um across with nuclei of 9-14 um, so the gap between neighbouring
        nuclei is 3-10 um; 6 um bridges it without bridging nests that stroma separates
        (strands of stroma between nests are rarely thinner than 12 um).
    cytoplasm_um : float
        Rim of cytoplasm grown around the closed nuclei: a nest's edge lies about half a
        cell's cytoplasm (3-5 um) beyond its outer nuclei. Kept at the low end, so that a
        lymphocyte touching a nest from the stroma stays outside it.
    min_nest_um2 : float
        Epithelium components smaller than this are dropped: about four tumour cells; a lone
        tumour-looking nucleus in the stroma is not a nest.
    max_lumen_um2 : float
        Glass enclosed by epithelium up to this area is a gland lumen; larger enclosed glass
        (a tear, a vessel) stays background. Colorectal gland lumens are 10-100 um across.
    enclosed_gap_um : float
        Radius of the wider closing within which tumour nuclei enclose lymphocytes that
        infiltrate a nest (one or two lymphocytes, 7 um each, between tumour cells). Colour
        does not separate epithelial cytoplasm from stroma on real, unnormalised H&E (the
        haematoxylin share of nucleus-free tissue is ~0.65 near both tumour and stromal
        nuclei of BRCA-M2C), so nests are drawn from the nuclei alone.
    margin_um : float
        Width of the margin band: stroma within this distance of epithelium. Peritumoral
        lymphocytes of excluded tumours gather within a few cell diameters of the nest
        (Salgado et al. 2015 score stromal TILs "between carcinoma cells"; Hendry et al.,
        Adv Anat Pathol 2017, use the adjacent stroma); 30 um is three to four cells.
    mosaic_um : float
        Side of the coarse cells of the slide-wide compartment mosaic on which distances to
        epithelium and the margin band are measured.
    """

    nest_gap_um: float = 6.0
    cytoplasm_um: float = 4.0
    min_nest_um2: float = 300.0
    max_lumen_um2: float = 8000.0
    enclosed_gap_um: float = 12.0
    margin_um: float = 30.0
    mosaic_um: float = 2.0

    def __post_init__(self):
        for name in ("nest_gap_um", "cytoplasm_um", "min_nest_um2", "max_lumen_um2",
                     "enclosed_gap_um"):  # fmt: skip
            if getattr(self, name) < 0:
                raise InputError(
                    f"wsi compartments: {name} must be >= 0, got {getattr(self, name)}"
                )
        for name in ("margin_um", "mosaic_um"):
            if getattr(self, name) <= 0:
                raise InputError(f"wsi compartments: {name} must be > 0, got {getattr(self, name)}")
        if self.mosaic_um > self.margin_um:
            raise InputError(
                f"wsi compartments: mosaic_um ({self.mosaic_um}) must not exceed margin_um "
                f"({self.margin_um}), or the margin band is narrower than one mosaic cell"
            )


def compartment_map(tissue, tumour_nuclei, *, mpp, settings=None, lymphocytes=None) -> np.ndarray:
    """One compartment code per pixel (:data:`COMPARTMENTS`: 0 background ... 3 lumen).

    Parameters
    ----------
    tissue : numpy.ndarray
        Boolean tissue mask (stained pixels) of the tile.
    tumour_nuclei : numpy.ndarray
        Boolean mask of the pixels of nuclei classified as tumour.
    mpp : float
        Microns per pixel.
    settings : CompartmentSettings, optional
    lymphocytes : numpy.ndarray, optional
        Boolean mask of the pixels of nuclei classified as lymphocytes. Lymphocytes between
        tumour cells push them apart, so an infiltrated nest has gaps wider than
        ``nest_gap_um``; where tumour nuclei enclose them within ``enclosed_gap_um``, the
        lymphocytes and the gaps join the nest.

    Returns
    -------
    numpy.ndarray
        uint8 codes, same shape as ``tissue``.
    """
    settings = CompartmentSettings() if settings is None else settings
    tissue = np.asarray(tissue, dtype=bool)
    nuclei = np.asarray(tumour_nuclei, dtype=bool)
    if tissue.shape != nuclei.shape:
        raise ValueError(f"tissue {tissue.shape} and nuclei {nuclei.shape} masks differ in shape")
    codes = np.where(tissue, STROMA, BACKGROUND).astype(np.uint8)
    if not nuclei.any():
        return codes
    # The nests are drawn on a grid of about 1 um (their outline needs no finer detail), which
    # makes the distance transforms 4-16 times cheaper than at 0.25-0.5 um/px.
    step = max(1, int(WORK_UM / mpp))
    coarse_um = step * mpp
    small = _pooled(nuclei, step)
    nests = _closed(small, settings.nest_gap_um / coarse_um, settings.cytoplasm_um / coarse_um)
    nests = _without_small(nests, settings.min_nest_um2 / (coarse_um * coarse_um))
    if nests.any() and lymphocytes is not None and np.any(lymphocytes):
        # Lymphocytes inside a nest: enclosed by tumour nuclei at the wider gap, and packed
        # with them at the normal one. A band of lymphocytes along the nest's outside is not
        # enclosed, and a pink strand of stroma holds neither.
        wide = _closed(small, settings.enclosed_gap_um / coarse_um,
                       settings.cytoplasm_um / coarse_um)  # fmt: skip
        packed = small | _pooled(np.asarray(lymphocytes, dtype=bool), step)
        mixed = _closed(packed, settings.nest_gap_um / coarse_um, settings.cytoplasm_um / coarse_um)
        nests = ndimage.binary_propagation(nests, mask=nests | (wide & mixed))
    # Back to the tile's pixels (the coarse grid covers it, edge blocks padded).
    nests = np.repeat(np.repeat(nests, step, axis=0), step, axis=1)
    nests = nests[: tissue.shape[0], : tissue.shape[1]]
    filled = ndimage.binary_fill_holes(nests)
    holes, n_holes = ndimage.label(filled & ~nests)
    if n_holes:
        hole_um2 = np.bincount(holes.ravel()) * mpp * mpp
        glass = np.bincount(holes.ravel(), weights=~tissue.ravel()) * mpp * mpp
        # A hole is a lumen when it is small enough and mostly glass. Tissue in a hole smaller
        # than a nest (cytoplasm between nuclei too far apart to close) is epithelium; a
        # larger one is an island of stroma the nests surround.
        lumen = (hole_um2 <= settings.max_lumen_um2) & (glass >= 0.5 * hole_um2)
        cytoplasm = ~lumen & (hole_um2 < settings.min_nest_um2)
        lumen[0] = cytoplasm[0] = False
        is_lumen = lumen[holes]
        nests = nests | (cytoplasm[holes] & tissue)
        codes[is_lumen] = LUMEN
    codes[nests & tissue] = EPITHELIUM
    return codes


def _closed(mask: np.ndarray, gap_px: float, rim_px: float) -> np.ndarray:
    """Closing with a disc of ``gap_px``, then dilation by ``rim_px``, from distance maps.

    Euclidean distance transforms make each step cost the same whatever the radius (a disc
    structuring element of 24 px costs 30 times more). The mask is reflect-padded, so that a
    nest cut by the tile's edge is not eroded back from that edge.
    """
    pad = int(np.ceil(gap_px + rim_px)) + 1
    padded = np.pad(mask, pad, mode="reflect")
    if gap_px >= 1:
        grown = ndimage.distance_transform_edt(~padded) <= gap_px
        padded = ndimage.distance_transform_edt(grown) > gap_px
    if rim_px >= 1:
        padded = ndimage.distance_transform_edt(~padded) <= rim_px
    return padded[pad:-pad, pad:-pad]


def _pooled(mask: np.ndarray, step: int) -> np.ndarray:
    """Whether any pixel of each ``step`` x ``step`` block is set (edge blocks padded)."""
    if step == 1:
        return mask
    rows, cols = -(-mask.shape[0] // step), -(-mask.shape[1] // step)
    padded = np.zeros((rows * step, cols * step), dtype=bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(rows, step, cols, step).any(axis=(1, 3))


def _without_small(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel()).astype(float)
    sizes[0] = -1
    return (sizes >= min_pixels)[labels]


def code_at(codes: np.ndarray, rows, cols) -> np.ndarray:
    """Compartment code at each (row, col), rounded to the nearest pixel inside the map."""
    rows = np.clip(np.rint(np.asarray(rows, dtype=float)).astype(int), 0, codes.shape[0] - 1)
    cols = np.clip(np.rint(np.asarray(cols, dtype=float)).astype(int), 0, codes.shape[1] - 1)
    return codes[rows, cols]


def names(codes) -> np.ndarray:
    """Compartment names of codes."""
    return np.asarray(COMPARTMENTS, dtype=object)[np.asarray(codes, dtype=int)]


def mosaic_cells(codes: np.ndarray, *, mpp, mosaic_um) -> np.ndarray:
    """The tile's compartment map on mosaic cells of ``mosaic_um``: each cell's majority code."""
    step = max(1, round(mosaic_um / mpp))
    rows, cols = codes.shape[0] // step, codes.shape[1] // step
    if rows == 0 or cols == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    blocks = codes[: rows * step, : cols * step].reshape(rows, step, cols, step)
    counts = np.stack([(blocks == c).sum(axis=(1, 3)) for c in range(len(COMPARTMENTS))])
    return counts.argmax(axis=0).astype(np.uint8)


def assemble_mosaic(cells, origins_um, *, mosaic_um) -> tuple[np.ndarray, np.ndarray]:
    """Place every tile's mosaic cells on one slide-wide grid.

    Parameters
    ----------
    cells : sequence of numpy.ndarray
        Per tile, its :func:`mosaic_cells`.
    origins_um : numpy.ndarray
        ``(n_tiles, 2)`` top-left (x, y) of each tile in microns from the slide's origin.
    mosaic_um : float

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The mosaic (uint8 codes, background where no tile lies) and the (x, y) micron
        position of its cell (0, 0).
    """
    origins = np.asarray(origins_um, dtype=float).reshape(-1, 2)
    if len(cells) == 0:
        return np.zeros((0, 0), dtype=np.uint8), np.zeros(2)
    start = origins.min(axis=0)
    offsets = np.rint((origins - start) / mosaic_um).astype(int)
    height = max(o[1] + c.shape[0] for o, c in zip(offsets, cells, strict=True))
    width = max(o[0] + c.shape[1] for o, c in zip(offsets, cells, strict=True))
    mosaic = np.zeros((height, width), dtype=np.uint8)
    for (x, y), block in zip(offsets, cells, strict=True):
        mosaic[y : y + block.shape[0], x : x + block.shape[1]] = block
    return mosaic, start


def distance_to_epithelium_um(mosaic: np.ndarray, *, mosaic_um) -> np.ndarray:
    """Distance of each mosaic cell to the nearest epithelium cell in microns (inf: none)."""
    epithelium = mosaic == EPITHELIUM
    if not epithelium.any():
        return np.full(mosaic.shape, np.inf)
    return ndimage.distance_transform_edt(~epithelium) * mosaic_um


def margin_band(mosaic: np.ndarray, distance_um: np.ndarray, *, margin_um) -> np.ndarray:
    """Stroma cells of the mosaic within ``margin_um`` of epithelium."""
    return (mosaic == STROMA) & (distance_um <= margin_um)


def place_on_mosaic(
    x_um, y_um, mosaic: np.ndarray, origin_um, *, mosaic_um, margin_um
) -> tuple[np.ndarray, np.ndarray, float]:
    """Distance to the nearest epithelium and margin-band membership of points on the slide.

    Parameters
    ----------
    x_um, y_um : array-like
        Positions (microns from the slide's origin), e.g. nucleus centroids.
    mosaic : numpy.ndarray
        The slide's compartment mosaic (:func:`assemble_mosaic`).
    origin_um : array-like
        (x, y) micron position of the mosaic's cell (0, 0).
    mosaic_um, margin_um : float

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, float)
        Distance of each point to epithelium in microns (inf on a slide without epithelium),
        whether it lies within ``margin_um`` of epithelium, and the area of the margin band
        (stroma within ``margin_um``) in mm2.
    """
    x = np.asarray(x_um, dtype=float)
    y = np.asarray(y_um, dtype=float)
    if mosaic.size == 0:
        return np.full(x.shape, np.inf), np.zeros(x.shape, dtype=bool), 0.0
    distance = distance_to_epithelium_um(mosaic, mosaic_um=mosaic_um)
    cols = np.clip(((x - origin_um[0]) / mosaic_um).astype(int), 0, mosaic.shape[1] - 1)
    rows = np.clip(((y - origin_um[1]) / mosaic_um).astype(int), 0, mosaic.shape[0] - 1)
    at = distance[rows, cols]
    band = margin_band(mosaic, distance, margin_um=margin_um)
    return at, at <= margin_um, float(band.sum()) * (mosaic_um / 1000.0) ** 2


def override_by_tile(tiles, nuclei, cells, compartment) -> None:
    """Let a tile classifier's compartment overrule the pixel map of its tiles.

    Where the user's classifier (:mod:`rdls.wsi.classifier`) calls a tile stroma, its
    epithelium becomes stroma; where it calls a tile other tissue or background, neither its
    epithelium nor its stroma counts. Changed in place: the tile table's areas and lymphocyte
    counts, the nuclei's ``compartment`` and the tile's mosaic cells. A tile it calls tumour
    keeps its pixel map.
    """
    compartment = np.asarray(compartment, dtype=object)
    target = {"stroma": STROMA, "other": OTHER, "background": BACKGROUND}
    for index, kind in enumerate(compartment):
        if kind not in target:
            continue
        row = tiles.index[index]
        moved = ["epithelium"] if kind == "stroma" else ["epithelium", "stroma"]
        on_tile = (nuclei["tile"] == index) & nuclei["compartment"].isin(moved)
        nuclei.loc[on_tile, "compartment"] = kind
        for name in moved:
            cells[index][cells[index] == COMPARTMENTS.index(name)] = target[kind]
        if kind == "stroma":
            tiles.at[row, "stroma_mm2"] += tiles.at[row, "epithelium_mm2"]
            tiles.at[row, "n_lymphocytes_stroma"] += tiles.at[row, "n_lymphocytes_epithelium"]
        else:
            tiles.at[row, "stroma_mm2"] = 0.0
            tiles.at[row, "n_lymphocytes_stroma"] = 0
        tiles.at[row, "epithelium_mm2"] = 0.0
        tiles.at[row, "n_lymphocytes_epithelium"] = 0
        tiles.at[row, "tissue_mm2"] = tiles.at[row, "stroma_mm2"]  # no epithelium left
