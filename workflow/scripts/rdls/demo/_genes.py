"""Gene universe and planted gene modules of the demo cohort's transcriptomes.

Plain data plus two small functions. Every name is a real human gene symbol: the filler genes
come from ``gene_symbols.txt`` (the union of the MSigDB Hallmark sets), the planted genes from
the lists below, so that gene-set analyses downstream (GSEA on Hallmark sets, ESTIMATE-like
scores, marker-based annotation) meet names they know.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

# Bulk RNA-seq modules: each is up in one subtype against the other two.
IMMUNE_GENES = (
    "CD3E", "CD3D", "CD3G", "CD2", "CD8A", "CD8B", "CD4", "GZMA", "GZMB", "GZMK", "GZMH",
    "PRF1", "NKG7", "CXCL9", "CXCL10", "CXCL13", "CCL5", "CCL19", "IFNG", "CD79A", "MS4A1",
    "CD19", "PTPRC", "LCK", "ZAP70", "ITK", "CD27", "CD38", "IL2RG", "TIGIT",
)  # fmt: skip
STROMAL_GENES = (
    "COL1A1", "COL1A2", "COL3A1", "COL5A1", "COL5A2", "COL6A3", "COL11A1", "FAP", "DCN",
    "LUM", "POSTN", "SPARC", "FN1", "THBS2", "VCAN", "PDGFRB", "ACTA2", "TAGLN", "MMP2",
    "MMP11", "FBN1", "ELN", "BGN", "CTHRC1", "INHBA", "SFRP2", "ASPN", "COMP", "PDPN", "THY1",
)  # fmt: skip
TGFB_EXCLUSION_GENES = (
    "TGFB1", "TGFB2", "TGFB3", "TGFBI", "SMAD7", "SERPINE1", "LTBP2", "ID1", "SKIL", "SMAD3",
    "JUNB", "TGFBR1", "TGFBR2", "BMPR2", "PMEPA1", "LTBP1", "FSTL3", "NOX4",
)  # fmt: skip

# Module name -> (subtype it is up in, genes).
BULK_MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "immune": ("RDLS2", IMMUNE_GENES),
    "stromal": ("RDLS3", STROMAL_GENES),
    "tgfb_exclusion": ("RDLS1", TGFB_EXCLUSION_GENES),
}

# Canonical markers of the colorectal tumour microenvironment, one entry per planted cell type.
CELL_TYPE_MARKERS: dict[str, tuple[str, ...]] = {
    "epithelial": ("EPCAM", "KRT8", "KRT18", "KRT19", "KRT20", "CDH1", "CEACAM5"),
    "T_NK": ("CD3D", "CD3E", "CD2", "TRAC", "NKG7", "GNLY", "CD8A", "IL7R"),
    "B": ("MS4A1", "CD79A", "CD19", "BANK1", "CD22"),
    "plasma": ("JCHAIN", "MZB1", "IGHG1", "IGKC", "SDC1", "XBP1"),
    "myeloid": ("CD68", "CD14", "LYZ", "FCGR3A", "CSF1R", "C1QA", "C1QB"),
    "mast": ("TPSAB1", "TPSB2", "CPA3", "KIT", "MS4A2"),
    "fibroblast": ("COL1A1", "COL1A2", "DCN", "LUM", "PDGFRA", "FAP"),
    "endothelial": ("PECAM1", "VWF", "CDH5", "CLDN5", "PLVAP"),
    "pericyte": ("RGS5", "PDGFRB", "ACTA2", "MCAM", "NOTCH3"),
}
CELL_TYPES = tuple(CELL_TYPE_MARKERS)

# The 13 protein-coding mitochondrial genes, in genome order, as 10x references name them.
MITOCHONDRIAL_GENES = (
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3",
    "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
)  # fmt: skip

# Fixed shuffle of the filler genes when no generator is given: a small universe then spans
# the whole alphabet instead of stopping early in the sorted symbol list.
_FILLER_ORDER_SEED = 20260101


def planted_genes() -> list[str]:
    """Every gene the demo plants on purpose: modules, cell-type markers, mitochondrial genes.

    Returns
    -------
    list of str
        Unique symbols in a fixed order (modules, then markers, then mitochondrial genes).
    """
    names = [g for _, genes in BULK_MODULES.values() for g in genes]
    names += [g for markers in CELL_TYPE_MARKERS.values() for g in markers]
    names += MITOCHONDRIAL_GENES
    return list(dict.fromkeys(names))


def gene_universe(n_genes: int, *, rng: np.random.Generator | None = None) -> list[str]:
    """Real gene symbols for a synthetic count matrix.

    The universe always holds every planted gene (:func:`planted_genes`), then filler genes
    from ``gene_symbols.txt`` up to ``n_genes``. Only about 4.4k real symbols ship, so a
    request for more (the paper scale asks 20000) returns all of them rather than invented
    names; a request for fewer than the planted genes returns the planted genes alone.

    Parameters
    ----------
    n_genes
        Number of genes wanted.
    rng
        Draws the filler genes; without it they follow a fixed order, so every caller that
        asks for the same size gets the same universe (scRNA samples must share one).

    Returns
    -------
    list of str
        Unique symbols, sorted alphabetically so that planted genes have no telltale position.
    """
    planted = planted_genes()
    planted_set = set(planted)
    filler = [g for g in _shipped_symbols() if g not in planted_set]
    order_rng = rng if rng is not None else np.random.default_rng(_FILLER_ORDER_SEED)
    n_filler = int(np.clip(n_genes - len(planted), 0, len(filler)))
    chosen = order_rng.permutation(len(filler))[:n_filler]
    return sorted(planted + [filler[i] for i in chosen])


def ensembl_like_ids(genes: list[str]) -> list[str]:
    """Stable fake Ensembl gene IDs (``ENSG`` + 11 digits) for real symbols.

    A symbol's ID is its position among all symbols the demo knows, so it is the same in every
    universe (bulk or scRNA, any size) and never collides with another symbol's.

    Parameters
    ----------
    genes
        Symbols from :func:`gene_universe`.

    Returns
    -------
    list of str
        One ID per symbol, in the order given.
    """
    position = {g: i for i, g in enumerate(_known_symbols())}
    unknown = [g for g in genes if g not in position]
    if unknown:
        raise ValueError(f"genes not in the demo's universe: {', '.join(unknown[:5])}")
    return [f"ENSG{position[g] + 1:011d}" for g in genes]


@cache
def _known_symbols() -> tuple[str, ...]:
    return tuple(sorted(set(_shipped_symbols()) | set(planted_genes())))


@cache
def _shipped_symbols() -> tuple[str, ...]:
    """The real symbols shipped beside this module, in file order."""
    text = Path(__file__).with_name("gene_symbols.txt").read_text()
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
