"""Defaults of every step's settings, and their merge with the configured ones."""

from __future__ import annotations

from collections.abc import Mapping

from rdls.errors import InputError, some

QC_DEFAULTS = {
    "method": "mad",  # "mad": outliers from the sample's medians; "fixed": the bounds alone
    "n_mads": 5.0,  # median absolute deviations: log counts and log genes below, mito above
    "min_counts": 500,  # UMIs per cell, a floor under both methods
    "min_genes": 200,  # detected genes per cell, a floor under both methods
    "max_mito_fraction": 0.2,  # mitochondrial share of a cell's UMIs, a ceiling under both
    "mito_prefix": "MT-",  # gene-symbol prefix of mitochondrial genes (case-insensitive)
    "doublets": True,  # call doublets with Scrublet and remove them
    "expected_doublet_rate": 0.06,  # Scrublet's prior; 10x: about 0.8% per 1000 cells recovered
    "min_cells_after_qc": 50,  # fewer cells left: the sample is a QC exclusion
}
INTEGRATE_DEFAULTS = {
    "method": "harmony",  # "harmony" (harmonypy on the PCs, by sample) or "none"
    "min_cells_per_gene": 3,  # genes detected in fewer of the pooled cells are dropped
    "target_sum": 1e4,  # UMIs per cell after normalisation, before log1p
    "n_top_genes": 2000,  # highly variable genes (Seurat v3 on counts, by sample)
    "scale": True,  # scale the variable genes to unit variance (clipped at 10) before PCA
    "n_pcs": 30,  # principal components
    "harmony_theta": 2.0,  # Harmony's diversity penalty
    "n_neighbors": 15,  # neighbours of the cell graph
    "resolution": 1.0,  # Leiden (or Louvain, without igraph) resolution
    "umap_min_dist": 0.5,  # UMAP's minimum distance between embedded points
    "umap_n_epochs": 200,  # UMAP optimisation epochs
}
ANNOTATE_DEFAULTS = {
    "min_score": 0.0,  # a cell whose best marker score is at most this has no marker evidence
    "ctrl_size": 50,  # control genes per marker gene in score_genes
    "n_bins": 25,  # expression bins for control genes in score_genes
    "dotplot_genes_per_type": 5,  # markers per cell type shown in the dot plot
}
BY_SUBTYPE_DEFAULTS = {
    "max_padj": 0.05,  # signature genes: adjusted p-value below this
    "min_log2fc": 1.0,  # and log2 fold change above this (up in the subtype)
    "top_genes": 50,  # the most up-regulated of those
    "min_signature_genes": 3,  # fewer found in the single-cell data: the signature is skipped
}


def merged(settings: Mapping | None, defaults: Mapping, *, name: str) -> dict:
    """The configured settings over the defaults; an unknown key is an error.

    Parameters
    ----------
    settings : Mapping or None
        The config block, e.g. ``config["scrna"]["qc"]``.
    defaults : Mapping
        One of the ``*_DEFAULTS`` of this module.
    name : str
        The config block's name, for the message.
    """
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise InputError(
            f"config {name}: unknown setting(s) {some(unknown)}; the known ones are "
            f"{some(sorted(defaults), shown=20)}. Fix the spelling or remove the key."
        )
    return {**defaults, **settings}
