"""Pooling the samples' cells: normalisation, variable genes, PCA, Harmony, graph, clusters, UMAP.

Cells of different patients differ by patient-level (batch) effects as well as biology.
Harmony (Korsunsky et al., Nat Methods 2019) removes the sample effect from the principal
components, so the neighbour graph, the clusters and the UMAP join cells of one type across
patients. Clusters come from the Leiden algorithm (Traag et al., Sci Rep 2019) through igraph
where igraph is installed; otherwise from networkx's Louvain algorithm on the same graph, with
a warning. Either is seeded, so a rerun gives the same clusters.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rdls.errors import InputError

log = logging.getLogger(__name__)

INTEGRATION_METHODS = ("harmony", "none")


def pool_samples(samples: Mapping[str, object]):
    """One AnnData of every sample's cells, named ``{sample_id}:{barcode}``.

    Parameters
    ----------
    samples : Mapping of str to anndata.AnnData
        By sample_id; raw counts in ``X``. Only genes every sample has are kept.
    """
    import anndata as ad

    parts = {}
    for sample_id, adata in samples.items():
        adata = adata.copy()
        adata.obs["sample_id"] = sample_id
        adata.obs_names = [f"{sample_id}:{b}" for b in adata.obs.get("barcode", adata.obs_names)]
        parts[sample_id] = adata
    genes = [set(a.var_names) for a in parts.values()]
    shared = set.intersection(*genes)
    if len(shared) < max(len(g) for g in genes):
        log.warning("samples differ in genes: %d shared of up to %d; only shared genes are kept",
                    len(shared), max(len(g) for g in genes))  # fmt: skip
    if not shared:
        raise InputError("the samples share no gene; were they counted against one reference?")
    pooled = ad.concat(list(parts.values()), join="inner", merge="same")
    pooled.obs["sample_id"] = pd.Categorical(pooled.obs["sample_id"], categories=list(parts))
    return pooled


def normalise(adata, *, target_sum: float = 1e4, min_cells_per_gene: int = 3) -> None:
    """Drop rare genes, keep counts in ``layers["counts"]``, log-normalise ``X`` in place."""
    import scanpy as sc

    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    keep = detected >= min_cells_per_gene
    log.info("%d of %d genes detected in at least %d cells", keep.sum(), len(keep),
             min_cells_per_gene)  # fmt: skip
    adata._inplace_subset_var(np.flatnonzero(keep))
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)


def variable_genes(adata, *, n_top_genes: int, batch_key: str | None) -> None:
    """Seurat v3 highly variable genes on the counts, ranked within and across samples."""
    import scanpy as sc

    n_top = int(min(n_top_genes, adata.n_vars))
    batches = adata.obs[batch_key].nunique() if batch_key else 1
    try:
        sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_top, layer="counts",
                                    batch_key=batch_key if batches > 1 else None)  # fmt: skip
    except ValueError as error:  # a sample too small for the per-sample loess fit
        log.warning("per-sample variable genes failed (%s); ranking them on the pooled cells",
                    error)  # fmt: skip
        sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_top, layer="counts")
    log.info("%d highly variable genes", int(adata.var["highly_variable"].sum()))


def principal_components(adata, *, n_pcs: int, scale: bool, seed: int) -> None:
    """PCA of the variable genes (scaled to unit variance if ``scale``) into ``obsm["X_pca"]``."""
    import scanpy as sc

    genes = adata.var["highly_variable"].to_numpy()
    work = adata[:, genes].copy()
    if scale:
        work.X = work.X.toarray() if hasattr(work.X, "toarray") else work.X
        sc.pp.scale(work, max_value=10)
    n_comps = int(min(n_pcs, work.n_obs - 1, work.n_vars - 1))
    # Randomised SVD (Halko et al. 2011), seeded: as exact as ARPACK for the leading
    # components and 2 times faster on 8,000 cells x 2,000 genes.
    sc.pp.pca(work, n_comps=n_comps, svd_solver="randomized", random_state=seed)
    adata.obsm["X_pca"] = work.obsm["X_pca"]
    adata.uns["pca"] = work.uns["pca"]


def harmony(adata, *, key: str, seed: int, threads: int, theta: float) -> None:
    """Harmony-corrected PCs by ``key`` into ``obsm["X_pca_harmony"]``."""
    import harmonypy

    result = harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, key, theta=theta,
                                   random_state=seed, ncores=threads, verbose=False)  # fmt: skip
    corrected = np.asarray(result.Z_corr)
    if corrected.shape[0] != adata.n_obs:
        corrected = corrected.T
    adata.obsm["X_pca_harmony"] = np.ascontiguousarray(corrected, dtype=np.float32)


def neighbour_graph(adata, *, use_rep: str, n_neighbors: int, seed: int) -> None:
    """The k-nearest-neighbour graph (exact search) on ``obsm[use_rep]``."""
    import scanpy as sc

    # Exact search: scanpy 1.11's default pynndescent path fails with pynndescent 0.7.
    sc.pp.neighbors(adata, n_neighbors=int(min(n_neighbors, adata.n_obs - 1)), use_rep=use_rep,
                    transformer="sklearn", random_state=seed)  # fmt: skip


def cluster(adata, *, resolution: float, seed: int) -> str:
    """Clusters of the neighbour graph into ``obs["leiden"]``, numbered by size.

    Returns
    -------
    str
        The algorithm used: ``"leiden (igraph)"`` or ``"louvain (networkx)"``.
    """
    if importlib.util.find_spec("igraph") is not None:
        import scanpy as sc

        sc.tl.leiden(adata, resolution=resolution, random_state=seed, flavor="igraph",
                     n_iterations=2, directed=False)  # fmt: skip
        labels, method = adata.obs["leiden"].astype(str).to_numpy(), "leiden (igraph)"
    else:
        log.warning("igraph is not installed: clustering with networkx's Louvain algorithm "
                    "instead of Leiden (install python-igraph for Leiden)")  # fmt: skip
        labels = louvain_labels(adata.obsp["connectivities"], resolution=resolution, seed=seed)
        method = "louvain (networkx)"
    adata.obs["leiden"] = ordered_by_size(labels)
    adata.uns["clustering"] = {"method": method, "resolution": resolution, "seed": seed}
    log.info("%d clusters (%s, resolution %s)", adata.obs["leiden"].nunique(), method, resolution)
    return method


def louvain_labels(connectivities, *, resolution: float, seed: int) -> np.ndarray:
    """Louvain communities of a weighted, undirected graph given as a sparse matrix."""
    import networkx as nx

    graph = nx.from_scipy_sparse_array(connectivities.tocsr(), edge_attribute="weight")
    communities = nx.community.louvain_communities(graph, weight="weight",
                                                   resolution=resolution, seed=seed)  # fmt: skip
    labels = np.empty(connectivities.shape[0], dtype=np.int64)
    for index, members in enumerate(communities):
        labels[list(members)] = index
    return labels


def ordered_by_size(labels) -> pd.Categorical:
    """Clusters renamed "0", "1", ... from the largest; ties by first cell."""
    labels = pd.Series(np.asarray(labels).astype(str))
    first = labels.reset_index().groupby(0)["index"].min()
    sizes = labels.value_counts()
    order = sorted(sizes.index, key=lambda c: (-sizes[c], first[c]))
    names = {c: str(i) for i, c in enumerate(order)}
    return pd.Categorical(labels.map(names), categories=[str(i) for i in range(len(order))])


def embed_umap(adata, *, seed: int, min_dist: float = 0.5, n_epochs: int = 200) -> None:
    """UMAP of the neighbour graph into ``obsm["X_umap"]`` (seeded, so single-threaded).

    200 epochs is what umap-learn itself uses from 10,000 cells on; it also uses 500 below
    that, which takes 2.5 times as long for a figure that looks the same.
    """
    import scanpy as sc

    sc.tl.umap(adata, min_dist=min_dist, maxiter=n_epochs, random_state=seed)
