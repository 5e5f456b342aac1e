"""Synthetic single-cell RNA-seq samples in Cell Ranger's output formats.

Each sample is one patient's tumour: cells of nine microenvironment types in a composition
that depends on the patient's subtype, UMI counts drawn from per-type expression profiles with
gamma-Poisson noise, a patient-level batch effect, low-quality cells (few UMIs, many
mitochondrial reads) and doublets, written as Cell Ranger v3 writes a filtered matrix.

The per-type profiles are a fixed property of the simulated biology, the same in every sample:
they are derived from the gene names alone (see :func:`_type_profiles`), so samples drawn from
independent random streams still share one biology, as real patients do.
"""

from __future__ import annotations

import gzip
import io
import zlib
from functools import cache
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp
from scipy.special import ndtr

from rdls.demo._genes import (
    CELL_TYPE_MARKERS,
    CELL_TYPES,
    MITOCHONDRIAL_GENES,
    ensembl_like_ids,
)
from rdls.demo._plan import SUBTYPES

# Expected cell-type fractions per subtype. RDLS1 is immune-excluded (epithelium and myeloid
# cells dominate, few lymphocytes), RDLS2 lymphocyte-rich, RDLS3 stromal.
SUBTYPE_COMPOSITION: dict[str, dict[str, float]] = {
    "RDLS1": {"epithelial": 0.48, "T_NK": 0.07, "B": 0.02, "plasma": 0.04, "myeloid": 0.18,
              "mast": 0.02, "fibroblast": 0.09, "endothelial": 0.06, "pericyte": 0.04},
    "RDLS2": {"epithelial": 0.25, "T_NK": 0.30, "B": 0.10, "plasma": 0.10, "myeloid": 0.10,
              "mast": 0.02, "fibroblast": 0.07, "endothelial": 0.04, "pericyte": 0.02},
    "RDLS3": {"epithelial": 0.22, "T_NK": 0.08, "B": 0.03, "plasma": 0.05, "myeloid": 0.10,
              "mast": 0.03, "fibroblast": 0.28, "endothelial": 0.12, "pericyte": 0.09},
}  # fmt: skip
# Dirichlet concentration of a patient's composition around its subtype's expectation: a
# fraction of 0.3 varies by about +-0.05 between patients.
COMPOSITION_CONCENTRATION = 80.0

# UMIs per cell: log-normal around a 10x v3 median, scaled by cell type (epithelial, myeloid
# and plasma cells hold more RNA than lymphocytes).
MEDIAN_UMIS = 4000.0
LIBRARY_LOG_SD = 0.4
LIBRARY_SCALE = {"epithelial": 1.4, "T_NK": 0.7, "B": 0.8, "plasma": 1.5, "myeloid": 1.2,
                 "mast": 1.0, "fibroblast": 1.2, "endothelial": 1.0, "pericyte": 1.0}  # fmt: skip

DOUBLET_RATE = 0.04
LOW_QUALITY_RATE = 0.03
LOW_QUALITY_LIBRARY_SCALE = (0.1, 0.3)  # uniform range, times the healthy library size
LOW_QUALITY_MITO_FRACTION = (0.2, 0.4)  # uniform range
MITO_FRACTION_BETA = (9.0, 190.0)  # healthy cells: mean 4.5%, almost all within 2-8%

BACKGROUND_LOG_SD = 1.5  # spread of expression levels across genes, shared by all types
TYPE_LOG_SD = 0.5  # type-specific deviations beyond the markers
MARKER_FRACTION = (0.003, 0.012)  # share of a cell's non-mitochondrial UMIs per marker
MARKER_SPECIFICITY = 30.0  # a marker is at least this many times lower in other types
OVERDISPERSION = 0.1  # typical gamma-Poisson dispersion of a gene between cells of a type
PATIENT_LOG_SD = 0.2  # per-sample, gene-wise batch multipliers
# Relative abundance of the mitochondrial transcripts (CO1, CO2, CO3, ATP6 dominate).
MITO_WEIGHTS = {"MT-ND1": 4, "MT-ND2": 3, "MT-CO1": 10, "MT-CO2": 8, "MT-ATP8": 1,
                "MT-ATP6": 7, "MT-CO3": 8, "MT-ND3": 2, "MT-ND4L": 1, "MT-ND4": 5,
                "MT-ND5": 2, "MT-ND6": 1, "MT-CYB": 5}  # fmt: skip

FORMATS = ("10x_h5", "10x_mtx")
_PROFILE_SEED = 7919  # fixed: profiles are biology shared by every sample, not a random draw
_CHUNK_CELLS = 1000  # cells per block of dense rates, bounding memory at paper size
_BARCODE_LENGTH = 16


def expected_composition(subtype: str) -> dict[str, float]:
    """Expected cell-type fractions of a tumour of one subtype.

    Parameters
    ----------
    subtype
        One of ``SUBTYPES``.

    Returns
    -------
    dict of str to float
        Fraction per cell type (``CELL_TYPES`` order), summing to 1.
    """
    if subtype not in SUBTYPE_COMPOSITION:
        raise ValueError(f"unknown subtype {subtype!r}; use one of {', '.join(SUBTYPES)}")
    return dict(SUBTYPE_COMPOSITION[subtype])


def write_scrna_sample(
    *,
    out_path: str | Path,
    fmt: str,
    sample_id: str,
    subtype: str,
    n_cells: int,
    genes: list[str],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Write one patient's filtered feature-barcode matrix in a 10x Genomics format.

    Parameters
    ----------
    out_path
        ``filtered_feature_bc_matrix.h5`` file for ``fmt="10x_h5"``; folder for
        ``fmt="10x_mtx"`` (``barcodes.tsv.gz``, ``features.tsv.gz``, ``matrix.mtx.gz``).
    fmt
        ``"10x_h5"`` or ``"10x_mtx"``.
    sample_id
        Written into the truth table and the HDF5 file's ``library_ids``.
    subtype
        Planted subtype of the patient; sets the expected composition.
    n_cells
        Cells (barcodes) in the matrix, doublets and low-quality cells included.
    genes
        Feature names, from :func:`rdls.demo._genes.gene_universe`; must hold every cell-type
        marker and mitochondrial gene. Pass the same list for every sample of a cohort.
    rng
        The only source of randomness: the same generator state gives the same files.

    Returns
    -------
    pandas.DataFrame
        One row per cell in matrix order: ``sample_id``, ``barcode`` (as written, with the
        ``-1`` suffix), ``cell_type`` (planted type, or ``doublet``), ``doublet_types`` (the
        two types joined by ``+`` for doublets, empty otherwise) and ``low_quality``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown scRNA format {fmt!r}; use one of {', '.join(FORMATS)}")
    genes = list(genes)
    _check_genes(genes)
    profiles, mito_profile, dispersion = _type_profiles(tuple(genes))
    profiles = _patient_profiles(profiles, rng)
    cells = _draw_cells(subtype=subtype, n_cells=n_cells, rng=rng)
    counts = _draw_counts(cells, profiles, mito_profile, dispersion, rng)
    barcodes = _draw_barcodes(n_cells, rng)

    ids = ensembl_like_ids(genes)
    if fmt == "10x_h5":
        _write_10x_h5(Path(out_path), counts, barcodes, ids, genes, sample_id)
    else:
        _write_10x_mtx(Path(out_path), counts, barcodes, ids, genes)

    return _truth_table(sample_id, barcodes, cells)


def _check_genes(genes: list[str]) -> None:
    needed = [g for m in CELL_TYPE_MARKERS.values() for g in m] + list(MITOCHONDRIAL_GENES)
    missing = sorted(set(needed) - set(genes))
    if missing:
        raise ValueError(
            f"scRNA genes lack planted gene(s) {', '.join(missing[:5])}; "
            "build the list with rdls.demo._genes.gene_universe"
        )
    if len(set(genes)) != len(genes):
        raise ValueError("scRNA genes hold duplicate symbols")


@cache
def _type_profiles(genes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expression profile of every cell type, the mitochondrial profile, gene dispersions.

    Each gene's draws come from a stream keyed by its name, so a gene behaves the same in
    every sample and in universes of any size.

    Returns
    -------
    profiles
        Types x genes; each row sums to 1 over the nuclear genes, 0 on mitochondrial genes.
    mito_profile
        Genes; sums to 1 over the mitochondrial genes, 0 elsewhere.
    dispersion
        Genes; gamma-Poisson dispersion between cells of one type.
    """
    n_types = len(CELL_TYPES)
    draws = np.array(
        [
            np.random.default_rng([_PROFILE_SEED, zlib.crc32(g.encode())]).standard_normal(
                n_types + 2
            )
            for g in genes
        ]
    )
    index = {g: i for i, g in enumerate(genes)}
    mito = np.array([index[g] for g in MITOCHONDRIAL_GENES])

    log_weight = BACKGROUND_LOG_SD * draws[:, :1] + TYPE_LOG_SD * draws[:, 1 : n_types + 1]
    profiles = np.exp(log_weight).T
    profiles[:, mito] = 0.0
    profiles /= profiles.sum(axis=1, keepdims=True)

    # Markers get a fixed share of UMIs in their own type and are capped well below it
    # elsewhere, so that each type is recognisable by its canonical markers.
    low, high = MARKER_FRACTION
    marker_share = low + (high - low) * ndtr(draws[:, -1])
    for t, markers in enumerate(CELL_TYPE_MARKERS.values()):
        rows = np.array([index[g] for g in markers])
        others = np.arange(n_types) != t
        cap = marker_share[rows] / MARKER_SPECIFICITY
        profiles[np.ix_(others, rows)] = np.minimum(profiles[np.ix_(others, rows)], cap)
        profiles[t, rows] = marker_share[rows]
    profiles /= profiles.sum(axis=1, keepdims=True)

    mito_profile = np.zeros(len(genes))
    mito_profile[mito] = [MITO_WEIGHTS[g] for g in MITOCHONDRIAL_GENES]
    mito_profile /= mito_profile.sum()
    dispersion = OVERDISPERSION * np.exp(0.5 * draws[:, n_types + 1])
    for shared in (profiles, mito_profile, dispersion):
        shared.flags.writeable = False  # cached for every sample: no caller may alter them
    return profiles, mito_profile, dispersion


def _patient_profiles(profiles: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The shared profiles under this patient's gene-wise batch multipliers."""
    multipliers = np.exp(rng.normal(0.0, PATIENT_LOG_SD, profiles.shape[1]))
    patient = profiles * multipliers
    return patient / patient.sum(axis=1, keepdims=True)


def _draw_cells(*, subtype: str, n_cells: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Type, doublet partner (-1 for singlets), quality, UMIs and mitochondrial share per cell."""
    expected = np.array(list(expected_composition(subtype).values()))
    composition = rng.dirichlet(COMPOSITION_CONCENTRATION * expected)
    cell_type = rng.choice(len(CELL_TYPES), size=n_cells, p=composition)

    partner = np.full(n_cells, -1)
    doublets = rng.choice(n_cells, size=rng.binomial(n_cells, DOUBLET_RATE), replace=False)
    for cell in np.sort(doublets):
        # A doublet pairs two different types: same-type doublets look like one big cell.
        p = composition.copy()
        p[cell_type[cell]] = 0.0
        partner[cell] = rng.choice(len(CELL_TYPES), p=p / p.sum())
    low_quality = (partner < 0) & (rng.random(n_cells) < LOW_QUALITY_RATE)

    scale = np.array([LIBRARY_SCALE[t] for t in CELL_TYPES])
    umis = MEDIAN_UMIS * scale[cell_type] * np.exp(rng.normal(0.0, LIBRARY_LOG_SD, n_cells))
    partner_umis = np.where(
        partner >= 0,
        MEDIAN_UMIS * scale[partner] * np.exp(rng.normal(0.0, LIBRARY_LOG_SD, n_cells)),
        0.0,
    )
    umis[low_quality] *= rng.uniform(*LOW_QUALITY_LIBRARY_SCALE, low_quality.sum())
    mito_fraction = rng.beta(*MITO_FRACTION_BETA, n_cells)
    mito_fraction[low_quality] = rng.uniform(*LOW_QUALITY_MITO_FRACTION, low_quality.sum())
    return {
        "cell_type": cell_type,
        "partner": partner,
        "low_quality": low_quality,
        "umis": umis,
        "partner_umis": partner_umis,
        "mito_fraction": mito_fraction,
    }


def _truth_table(
    sample_id: str, barcodes: np.ndarray, cells: dict[str, np.ndarray]
) -> pd.DataFrame:
    names = np.array(CELL_TYPES)
    doublet = cells["partner"] >= 0
    first = names[cells["cell_type"]]
    second = names[np.where(doublet, cells["partner"], 0)]
    return pd.DataFrame(
        {
            "sample_id": sample_id,
            "barcode": barcodes,
            "cell_type": np.where(doublet, "doublet", first),
            "doublet_types": np.where(doublet, np.char.add(np.char.add(first, "+"), second), ""),
            "low_quality": cells["low_quality"],
        }
    )


def _draw_counts(
    cells: dict[str, np.ndarray],
    profiles: np.ndarray,
    mito_profile: np.ndarray,
    dispersion: np.ndarray,
    rng: np.random.Generator,
) -> sp.csr_matrix:
    """Cells x genes UMI counts (int32), gamma-Poisson around each cell's expected profile."""
    n_cells = len(cells["cell_type"])
    rows = np.arange(n_cells)
    nuclear_umis = np.zeros((n_cells, len(CELL_TYPES)))
    nuclear_umis[rows, cells["cell_type"]] = cells["umis"]
    doublet = cells["partner"] >= 0
    nuclear_umis[rows[doublet], cells["partner"][doublet]] += cells["partner_umis"][doublet]
    total_umis = nuclear_umis.sum(axis=1)
    nuclear_umis *= (1.0 - cells["mito_fraction"])[:, None]
    mito_umis = total_umis * cells["mito_fraction"]

    shape = 1.0 / dispersion
    blocks = []
    for start in range(0, n_cells, _CHUNK_CELLS):
        block = slice(start, start + _CHUNK_CELLS)
        rate = nuclear_umis[block] @ profiles + mito_umis[block, None] * mito_profile
        rate *= rng.gamma(shape, dispersion, size=rate.shape)
        blocks.append(sp.csr_matrix(rng.poisson(rate).astype(np.int32)))
    return sp.vstack(blocks, format="csr")


def _draw_barcodes(n_cells: int, rng: np.random.Generator) -> np.ndarray:
    """Unique random 16-mer cell barcodes with Cell Ranger's ``-1`` suffix, sorted as it does."""
    codes = np.unique(rng.integers(0, 4**_BARCODE_LENGTH, size=n_cells, dtype=np.int64))
    while len(codes) < n_cells:
        extra = rng.integers(0, 4**_BARCODE_LENGTH, size=n_cells - len(codes), dtype=np.int64)
        codes = np.unique(np.concatenate([codes, extra]))
    shifts = 2 * np.arange(_BARCODE_LENGTH - 1, -1, -1)
    digits = (codes[:, None] >> shifts) & 3
    letters = np.frombuffer(b"ACGT", dtype="S1")[digits]
    return np.char.add(letters.view(f"S{_BARCODE_LENGTH}").ravel().astype(str), "-1")


def _write_10x_h5(
    path: Path,
    counts: sp.csr_matrix,
    barcodes: np.ndarray,
    ids: list[str],
    genes: list[str],
    sample_id: str,
) -> None:
    """Cell Ranger v3 HDF5: a genes x cells CSC matrix, i.e. the cells x genes CSR arrays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["version"] = 2
        f.attrs["library_ids"] = np.array([sample_id], dtype="S")
        f.attrs["chemistry_description"] = "Single Cell 3' v3"
        matrix = f.create_group("matrix")
        matrix.create_dataset("barcodes", data=barcodes.astype("S"))
        matrix.create_dataset("data", data=counts.data.astype(np.int32), compression="gzip")
        matrix.create_dataset("indices", data=counts.indices.astype(np.int64), compression="gzip")
        matrix.create_dataset("indptr", data=counts.indptr.astype(np.int64), compression="gzip")
        matrix.create_dataset("shape", data=np.array(counts.shape[::-1], dtype=np.int32))
        features = matrix.create_group("features")
        features.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        features.create_dataset("id", data=np.array(ids, dtype="S"))
        features.create_dataset("name", data=np.array(genes, dtype="S"))
        features.create_dataset(
            "feature_type", data=np.full(len(genes), b"Gene Expression", dtype="S15")
        )
        features.create_dataset("genome", data=np.full(len(genes), b"GRCh38", dtype="S6"))


def _write_10x_mtx(
    folder: Path, counts: sp.csr_matrix, barcodes: np.ndarray, ids: list[str], genes: list[str]
) -> None:
    """Cell Ranger v3 folder: gzipped barcodes, features and a genes x cells Matrix Market."""
    folder.mkdir(parents=True, exist_ok=True)
    features = "".join(f"{i}\t{g}\tGene Expression\n" for i, g in zip(ids, genes, strict=True))
    matrix = io.BytesIO()
    scipy.io.mmwrite(matrix, counts.T.tocoo(), field="integer", symmetry="general")
    _write_gzip(folder / "barcodes.tsv.gz", "".join(f"{b}\n" for b in barcodes).encode())
    _write_gzip(folder / "features.tsv.gz", features.encode())
    _write_gzip(folder / "matrix.mtx.gz", matrix.getvalue())


def _write_gzip(path: Path, content: bytes) -> None:
    # One write of the whole text at the fastest level: the matrix is tens of MB of text and
    # gzip's default level costs seconds for little gain. A zero header timestamp keeps the
    # files byte-identical across runs.
    with gzip.GzipFile(path, mode="wb", compresslevel=1, mtime=0) as out:
        out.write(content)
