"""Per-cell quality control of one sample: metrics, thresholds, low-quality cells, doublets.

A cell is low quality when it has too few UMIs or detected genes (an empty droplet or a
broken cell) or too large a mitochondrial share (a dying cell whose cytoplasmic RNA leaked).
With ``method="mad"`` the bounds adapt to the sample: more than ``n_mads`` median absolute
deviations below the median of log UMIs and of log genes, or above the median mitochondrial
fraction (Germain et al., Genome Biology 2020; Heumos et al., Nat Rev Genet 2023). The fixed
``min_counts``, ``min_genes`` and ``max_mito_fraction`` hold under both methods, so a sample of
mostly broken cells is not judged by its own broken median. Doublets are called by Scrublet
(Wolock et al., Cell Systems 2019) on the cells that pass.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from rdls.errors import InputError

log = logging.getLogger(__name__)

METHODS = ("mad", "fixed")
# Simulated doublets per observed cell. Scrublet's default of 2 leaves its automatic threshold
# unstable in small samples: on the tiny demo (about 380 cells per sample) 5 catches 77-79%
# of the planted doublets against 58-68% (three seeds), calling 0.6-1.3% of the good cells
# against 0.2-0.7%; on the default demo (1500 cells per sample) both catch 90-94%.
SIM_DOUBLET_RATIO = 5.0


def qc_metrics(counts: sp.spmatrix, genes, *, mito_prefix: str = "MT-") -> pd.DataFrame:
    """UMIs, detected genes and mitochondrial fraction of every cell.

    Parameters
    ----------
    counts : scipy.sparse matrix
        Cells x genes raw UMI counts.
    genes : sequence of str
        Gene symbols, in column order.
    mito_prefix : str
        Symbol prefix of mitochondrial genes, matched case-insensitively (``MT-`` in human,
        ``mt-`` in mouse references).

    Returns
    -------
    pandas.DataFrame
        ``total_counts``, ``n_genes`` and ``mito_fraction`` (0 for a cell without UMIs).
    """
    counts = sp.csr_matrix(counts)
    mito = pd.Index(genes).str.upper().str.startswith(mito_prefix.upper())
    if not mito.any():
        log.warning("no gene starts with %r: every mitochondrial fraction is 0", mito_prefix)
    total = np.asarray(counts.sum(axis=1)).ravel()
    mito_total = np.asarray(counts[:, np.flatnonzero(mito)].sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(total > 0, mito_total / total, 0.0)
    return pd.DataFrame({"total_counts": total, "n_genes": np.diff(counts.indptr),
                         "mito_fraction": fraction})  # fmt: skip


def mad(values) -> float:
    """Median absolute deviation from the median (unscaled)."""
    values = np.asarray(values, float)
    return float(np.median(np.abs(values - np.median(values)))) if values.size else 0.0


def qc_thresholds(
    metrics: pd.DataFrame,
    *,
    method: str = "mad",
    n_mads: float = 5.0,
    min_counts: float = 500,
    min_genes: float = 200,
    max_mito_fraction: float = 0.2,
) -> dict[str, float]:
    """The sample's bounds on UMIs, genes and mitochondrial fraction.

    Parameters
    ----------
    metrics : pandas.DataFrame
        From :func:`qc_metrics`.
    method : {"mad", "fixed"}
        ``"fixed"``: the three bounds as given. ``"mad"``: the stricter of each bound and
        ``n_mads`` median absolute deviations from the median (log scale for counts and genes,
        lower side; linear for the mitochondrial fraction, upper side).

    Returns
    -------
    dict
        ``min_counts``, ``min_genes``, ``max_mito_fraction``.
    """
    if method not in METHODS:
        raise InputError(f"config scrna.qc.method: {method!r} is not one of {', '.join(METHODS)}")
    bounds = {"min_counts": float(min_counts), "min_genes": float(min_genes),
              "max_mito_fraction": float(max_mito_fraction)}  # fmt: skip
    if method != "mad" or not len(metrics):
        return bounds
    # A metric without spread (MAD 0: e.g. most cells without any mitochondrial read when the
    # matrix lacks the MT genes) gives no adaptive bound; the fixed one then holds alone.
    for column, key in (("total_counts", "min_counts"), ("n_genes", "min_genes")):
        logged = np.log1p(metrics[column].to_numpy(float))
        if mad(logged) > 0:
            adaptive = float(np.expm1(np.median(logged) - n_mads * mad(logged)))
            bounds[key] = max(bounds[key], adaptive)
    fraction = metrics["mito_fraction"].to_numpy(float)
    if mad(fraction) > 0:
        adaptive = float(np.median(fraction) + n_mads * mad(fraction))
        bounds["max_mito_fraction"] = min(bounds["max_mito_fraction"], adaptive)
    return bounds


def low_quality(metrics: pd.DataFrame, bounds: dict[str, float]) -> pd.Series:
    """True for cells outside the bounds of :func:`qc_thresholds`."""
    return (
        (metrics["total_counts"] < bounds["min_counts"])
        | (metrics["n_genes"] < bounds["min_genes"])
        | (metrics["mito_fraction"] > bounds["max_mito_fraction"])
    )


def call_doublets(
    adata, *, expected_rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Scrublet doublet scores and calls for the cells of one sample.

    Parameters
    ----------
    adata : anndata.AnnData
        Raw counts in ``X``; one sample (Scrublet simulates doublets within a sample).
    expected_rate : float
        Expected doublet fraction (Scrublet's prior).
    seed : int
        Seeds the simulated doublets and the embedding.

    Returns
    -------
    scores, predicted, threshold
        Per-cell doublet score, per-cell call, and the score threshold Scrublet chose
        (NaN when it found none: then no cell is called).
    """
    import scanpy as sc

    work = adata.copy()
    n_pcs = int(min(30, work.n_obs - 1, work.n_vars - 1))
    # The exact neighbour search: scanpy 1.11's approximate one fails with pynndescent 0.7.
    sc.pp.scrublet(work, expected_doublet_rate=expected_rate, n_prin_comps=n_pcs,
                   sim_doublet_ratio=SIM_DOUBLET_RATIO, use_approx_neighbors=False,
                   random_state=seed, verbose=False)  # fmt: skip
    scores = work.obs["doublet_score"].to_numpy(float)
    threshold = float(work.uns.get("scrublet", {}).get("threshold", np.nan))
    predicted = work.obs["predicted_doublet"].fillna(False).to_numpy(bool)
    if not np.isfinite(threshold):
        log.warning("Scrublet found no doublet-score threshold: no cell is called a doublet")
        predicted[:] = False
    return scores, predicted, threshold
