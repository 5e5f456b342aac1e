"""The scRNA rules' work: files in, files out, around the modules of this package.

``qc_step`` runs once per sample; ``integrate_step``, ``annotate_step`` and
``by_subtype_step`` once per cohort. A sample with too few cells left after QC is excluded
with its reason when the config allows it: its AnnData is empty, its metrics row says why, and
integration leaves it out. Otherwise the job stops with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, QCFailure
from rdls.scrna._settings import (
    ANNOTATE_DEFAULTS,
    BY_SUBTYPE_DEFAULTS,
    INTEGRATE_DEFAULTS,
    QC_DEFAULTS,
    merged,
)

log = logging.getLogger(__name__)

QC_COLUMNS = ["sample_id", "subject_id", "status", "step", "reason", "cells_in",
              "cells_low_quality", "cells_low_counts", "cells_low_genes", "cells_high_mito",
              "doublets", "cells_kept", "genes", "method", "min_counts", "min_genes",
              "max_mito_fraction", "doublet_threshold", "median_counts", "median_genes",
              "median_mito_fraction"]  # fmt: skip
CELL_TYPE_COLUMNS = ["leiden", "cell_type", "cells", "confidence", "second_type",
                     "second_share", "top_markers"]  # fmt: skip
OBS_QC = ["sample_id", "subject_id", "barcode", "total_counts", "n_genes", "mito_fraction",
          "doublet_score"]  # fmt: skip


def qc_step(
    *,
    sample_id: str,
    subject_id: str,
    path: str | Path,
    fmt: str,
    settings: Mapping,
    seed: int,
    allow_exclusions: bool,
    out_h5ad: str | Path,
    out_metrics: str | Path,
    out_png: str | Path,
) -> None:
    """Read one sample, remove low-quality cells and doublets, and plot its QC.

    Parameters
    ----------
    sample_id, subject_id : str
        The scrna sheet's row; both are written to every cell's ``obs``.
    path, fmt : str or Path, str
        The count matrix and its format (``10x_h5``, ``10x_mtx`` or ``h5ad``).
    settings : Mapping
        ``config["scrna"]["qc"]``; keys and defaults in ``rdls.scrna._settings.QC_DEFAULTS``.
    seed : int
        Seeds Scrublet.
    allow_exclusions : bool
        A sample with fewer than ``min_cells_after_qc`` good cells is excluded (empty
        AnnData, status "excluded") when True; otherwise :class:`rdls.errors.QCFailure`.
    out_h5ad : str or Path
        The kept cells: raw counts in ``X`` and ``layers["counts"]``; ``obs`` with
        ``OBS_QC``; ``uns["qc"]`` with the bounds used.
    out_metrics : str or Path
        One-row TSV with ``QC_COLUMNS``.
    out_png : str or Path
        QC figure (an SVG copy is written beside it).
    """
    from rdls.scrna import _plots
    from rdls.scrna._io import read_counts
    from rdls.scrna.qc import call_doublets, low_quality, qc_metrics, qc_thresholds

    settings = merged(settings, QC_DEFAULTS, name="scrna.qc")
    adata = read_counts(path, fmt=fmt, sample_id=sample_id)
    metrics = qc_metrics(adata.X, adata.var_names, mito_prefix=settings["mito_prefix"])
    metrics.index = adata.obs_names
    bounds = qc_thresholds(metrics, method=settings["method"], n_mads=settings["n_mads"],
                           min_counts=settings["min_counts"], min_genes=settings["min_genes"],
                           max_mito_fraction=settings["max_mito_fraction"])  # fmt: skip
    bad = low_quality(metrics, bounds).to_numpy()
    status = np.where(bad, "low quality", "kept").astype(object)
    metrics["doublet_score"] = np.nan
    threshold = np.nan
    passing = np.flatnonzero(~bad)
    if settings["doublets"] and len(passing) >= max(settings["min_cells_after_qc"], 30):
        scores, predicted, threshold = call_doublets(
            adata[passing], expected_rate=settings["expected_doublet_rate"], seed=seed
        )
        metrics.iloc[passing, metrics.columns.get_loc("doublet_score")] = scores
        status[passing[predicted]] = "doublet"
    kept = status == "kept"
    row = {"sample_id": sample_id, "subject_id": subject_id, "status": "ok", "step": "",
           "reason": "", "cells_in": adata.n_obs, "cells_low_quality": int(bad.sum()),
           "cells_low_counts": int((metrics["total_counts"] < bounds["min_counts"]).sum()),
           "cells_low_genes": int((metrics["n_genes"] < bounds["min_genes"]).sum()),
           "cells_high_mito": int((metrics["mito_fraction"] > bounds["max_mito_fraction"]).sum()),
           "doublets": int((status == "doublet").sum()), "cells_kept": int(kept.sum()),
           "genes": adata.n_vars, "method": settings["method"], **bounds,
           "doublet_threshold": threshold,
           "median_counts": float(metrics["total_counts"].median()),
           "median_genes": float(metrics["n_genes"].median()),
           "median_mito_fraction": float(metrics["mito_fraction"].median())}  # fmt: skip
    log.info("%s: %d cells in, %d low quality, %d doublets, %d kept; bounds %s", sample_id,
             adata.n_obs, row["cells_low_quality"], row["doublets"], row["cells_kept"],
             bounds)  # fmt: skip
    title = (f"{sample_id}: {row['cells_kept']} of {adata.n_obs} cells pass "
             f"({row['cells_low_quality']} low quality, {row['doublets']} doublets)")  # fmt: skip
    try:
        if row["cells_kept"] < settings["min_cells_after_qc"]:
            raise QCFailure(
                f"{path}: {row['cells_kept']} of {adata.n_obs} cells pass QC "
                f"({row['cells_low_counts']} with too few UMIs, {row['cells_low_genes']} too "
                f"few genes, {row['cells_high_mito']} too many mitochondrial reads, "
                f"{row['doublets']} doublets), fewer than scrna.qc.min_cells_after_qc = "
                f"{settings['min_cells_after_qc']}; check the sample's library, or relax "
                "the thresholds.",
                step="scrna_qc",
            )
    except QCFailure as failure:
        if not allow_exclusions:
            raise
        log.warning("%s excluded: %s", sample_id, failure.reason)
        row.update(status="excluded", step=failure.step, reason=failure.reason, cells_kept=0)
        kept[:] = False
        title += f"; sample EXCLUDED (fewer than {settings['min_cells_after_qc']})"
    _plots.qc_figure(metrics.assign(status=status), bounds, png=out_png, title=title)
    out = adata[kept].copy()
    out.layers["counts"] = out.X.copy()
    out.obs = metrics.loc[kept, ["total_counts", "n_genes", "mito_fraction", "doublet_score"]]
    out.obs.insert(0, "barcode", out.obs_names.to_numpy())
    out.obs.insert(0, "subject_id", str(subject_id))
    out.obs.insert(0, "sample_id", str(sample_id))
    out.uns["qc"] = {"sample_id": str(sample_id), "subject_id": str(subject_id),
                     "status": row["status"], "reason": row["reason"],
                     **{k: float(v) for k, v in bounds.items()}}  # fmt: skip
    Path(out_h5ad).parent.mkdir(parents=True, exist_ok=True)
    out.write_h5ad(out_h5ad, compression="gzip")
    Path(out_metrics).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([row]).reindex(columns=QC_COLUMNS).to_csv(out_metrics, sep="\t", index=False)


def integrate_step(
    *,
    samples: Mapping[str, str | Path] | Sequence[str | Path],
    settings: Mapping,
    seed: int,
    threads: int,
    out_h5ad: str | Path,
    out_umap_png: str | Path,
) -> None:
    """Pool the samples' QC'd cells, correct the sample effect, cluster and embed them.

    Parameters
    ----------
    samples : Mapping of sample_id to path, or sequence of paths
        The ``qc_step`` AnnData files; empty ones (samples excluded at QC) are left out.
        Without ids, each file's own ``sample_id`` is used; a sample id twice is an error.
    settings : Mapping
        ``config["scrna"]["integrate"]``; keys and defaults in ``INTEGRATE_DEFAULTS``.
    seed, threads : int
        Seed of PCA, Harmony, clustering and UMAP; CPU threads.
    out_h5ad : str or Path
        All cells: log-normalised ``X``, counts in ``layers["counts"]``, ``obs`` sample_id,
        subject_id, QC columns and ``leiden``; ``var["highly_variable"]``; ``obsm`` X_pca,
        X_pca_harmony (when Harmony ran) and X_umap; ``uns["integration"]``.
    out_umap_png : str or Path
        UMAP by sample and by cluster (an SVG copy beside it).
    """
    from rdls.scrna import _plots
    from rdls.scrna.integrate import (
        INTEGRATION_METHODS,
        cluster,
        embed_umap,
        harmony,
        neighbour_graph,
        normalise,
        pool_samples,
        principal_components,
        variable_genes,
    )

    settings = merged(settings, INTEGRATE_DEFAULTS, name="scrna.integrate")
    if settings["method"] not in INTEGRATION_METHODS:
        raise InputError(f"config scrna.integrate.method: {settings['method']!r} is not one "
                         f"of {', '.join(INTEGRATION_METHODS)}")  # fmt: skip
    _use_threads(threads)
    adatas, excluded = read_qc_samples(samples)
    adata = pool_samples(adatas)
    log.info("%d cells of %d samples (%d excluded at QC: %s)", adata.n_obs, len(adatas),
             len(excluded), ", ".join(excluded) or "none")  # fmt: skip
    normalise(adata, target_sum=settings["target_sum"],
              min_cells_per_gene=settings["min_cells_per_gene"])  # fmt: skip
    variable_genes(adata, n_top_genes=settings["n_top_genes"], batch_key="sample_id")
    principal_components(adata, n_pcs=settings["n_pcs"], scale=settings["scale"], seed=seed)
    use_rep, method = "X_pca", "none"
    if settings["method"] == "harmony" and len(adatas) > 1:
        harmony(adata, key="sample_id", seed=seed, threads=threads,
                theta=settings["harmony_theta"])  # fmt: skip
        use_rep, method = "X_pca_harmony", "harmony"
    elif settings["method"] == "harmony":
        log.info("one sample: nothing to integrate, the graph is built on the PCs")
    neighbour_graph(adata, use_rep=use_rep, n_neighbors=settings["n_neighbors"], seed=seed)
    cluster(adata, resolution=settings["resolution"], seed=seed)
    embed_umap(
        adata, seed=seed, min_dist=settings["umap_min_dist"], n_epochs=settings["umap_n_epochs"]
    )
    adata.uns["integration"] = {"method": method, "use_rep": use_rep, "seed": seed,
                                "samples": list(adatas), "excluded": excluded}  # fmt: skip
    Path(out_h5ad).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(out_h5ad, compression="gzip")
    _plots.umap_figure(adata.obsm["X_umap"], {"sample": adata.obs["sample_id"],
                                              "cluster": adata.obs["leiden"]},
                       png=out_umap_png)  # fmt: skip


def read_qc_samples(samples) -> tuple[dict, list[str]]:
    """The non-empty ``qc_step`` AnnData files by sample_id, and the ids of the empty ones."""
    import anndata as ad

    items = (list(samples.items()) if isinstance(samples, Mapping)
             else [(None, path) for path in samples])  # fmt: skip
    if not items:
        raise InputError("scrna integration got no sample; the scrna sheet lists none?")
    adatas, excluded, source = {}, [], {}
    for key, path in items:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"QC'd sample {key or ''} {path} does not exist; run scrna_qc "
                             "for it first.")  # fmt: skip
        adata = ad.read_h5ad(path)
        ids = set(adata.obs["sample_id"].astype(str)) if "sample_id" in adata.obs else set()
        ids = ids or {str(adata.uns.get("qc", {}).get("sample_id", key or path.stem))}
        if len(ids) != 1:
            raise InputError(f"{path} holds cells of several samples ({sorted(ids)}); pass "
                             "the per-sample files that scrna_qc writes.")  # fmt: skip
        sample_id = ids.pop()
        if key is not None and str(key) != sample_id:
            raise InputError(f"{path} holds sample {sample_id!r} but is passed as sample "
                             f"{key!r}; check the scrna sheet's sample_id and paths.")  # fmt: skip
        if sample_id in source:
            raise InputError(f"sample id {sample_id!r} is given twice ({source[sample_id]} and "
                             f"{path}); every scrna sample needs its own sample_id.")  # fmt: skip
        source[sample_id] = path
        if adata.n_obs == 0:
            excluded.append(sample_id)
            continue
        adatas[sample_id] = adata
    if not adatas:
        raise InputError(f"every scrna sample was excluded at QC ({', '.join(excluded)}); "
                         "results/qc/exclusions.tsv says why.")  # fmt: skip
    return adatas, excluded


def annotate_step(
    *,
    integrated_h5ad: str | Path,
    markers: str | Path,
    assignments: str | Path | None,
    settings: Mapping,
    out_h5ad: str | Path,
    out_cell_types: str | Path,
    out_dotplot_png: str | Path,
    seed: int = 0,
) -> None:
    """Name every cluster's cell type from marker genes and attach each subject's subtype.

    Parameters
    ----------
    integrated_h5ad : str or Path
        From :func:`integrate_step`.
    markers : str or Path
        TSV with columns ``cell_type`` and ``gene`` (resources/markers/crc_tme_markers.tsv).
    assignments : str or Path or None
        results/subtypes/assignments.tsv (``subject_id``, ``subtype``); cells of subjects
        without one, or all cells without the file, get subtype "unassigned".
    settings : Mapping
        ``config["scrna"]["annotate"]``; keys and defaults in ``ANNOTATE_DEFAULTS``.
    out_h5ad : str or Path
        results/scrna/annotated.h5ad: the integrated AnnData plus ``obs`` ``cell_type``,
        ``cell_type_confidence`` (see :mod:`rdls.scrna.annotate`), ``cell_type_cell`` (the
        cell's own best type) and ``subtype``; ``obsm["marker_scores"]``; counts kept in
        ``layers["counts"]``.
    out_cell_types : str or Path
        One row per cluster with ``CELL_TYPE_COLUMNS``.
    out_dotplot_png : str or Path
        Markers by cell type (an SVG copy beside it).
    seed : int
        Seeds the control genes of the marker scores.
    """
    import anndata as ad

    from rdls.scrna.annotate import (
        UNASSIGNED,
        best_types,
        cluster_labels,
        marker_scores,
        markers_in_data,
        read_assignments,
        read_markers,
        top_markers,
    )

    settings = merged(settings, ANNOTATE_DEFAULTS, name="scrna.annotate")
    wanted = read_markers(markers)
    subtypes = read_assignments(assignments)
    adata = ad.read_h5ad(integrated_h5ad)
    missing = [k for k in ("sample_id", "subject_id", "leiden") if k not in adata.obs]
    if missing or "counts" not in adata.layers:
        raise InputError(f"{integrated_h5ad} lacks {missing or ['layers[counts]']}; it must "
                         "come from scrna_integrate.")  # fmt: skip
    present = markers_in_data(wanted, adata.var_names, source=markers)
    scores = marker_scores(adata, present, seed=seed, ctrl_size=settings["ctrl_size"],
                           n_bins=settings["n_bins"])  # fmt: skip
    best = best_types(scores, min_score=settings["min_score"])
    clusters = adata.obs["leiden"].astype(str)
    labels = cluster_labels(best, clusters)
    adata.obs["cell_type"] = pd.Categorical(clusters.map(labels["cell_type"]))
    adata.obs["cell_type_confidence"] = clusters.map(labels["confidence"]).astype(float)
    adata.obs["cell_type_cell"] = pd.Categorical(best)
    subject = adata.obs["subject_id"].astype(str)
    adata.obs["subtype"] = pd.Categorical(subject.map(subtypes).fillna(UNASSIGNED))
    adata.obsm["marker_scores"] = scores
    adata.uns["annotation"] = {"markers": str(markers), "seed": seed,
                               **{k: v for k, v in settings.items()}}  # fmt: skip
    no_subtype = sorted(set(subject[adata.obs["subtype"] == UNASSIGNED]))
    if no_subtype and assignments is not None:
        log.warning("subject(s) without a subtype: %s", ", ".join(no_subtype))
    Path(out_h5ad).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(out_h5ad, compression="gzip")

    table = labels.rename_axis("leiden").reset_index()
    table["top_markers"] = table["leiden"].map(top_markers(adata, present, clusters))
    table = table.sort_values("leiden", key=lambda c: c.astype(int), ignore_index=True)
    table[CELL_TYPE_COLUMNS].to_csv(out_cell_types, sep="\t", index=False)
    log.info("cell types: %s", adata.obs["cell_type"].value_counts().to_dict())
    _dotplot(adata, present, per_type=settings["dotplot_genes_per_type"], png=out_dotplot_png)


def _dotplot(adata, markers: dict[str, list[str]], *, per_type: int, png) -> None:
    from rdls.scrna import _plots
    from rdls.scrna.annotate import UNASSIGNED

    groups = {t: genes[:per_type] for t, genes in markers.items()}
    genes = list(dict.fromkeys(g for gs in groups.values() for g in gs))
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    types = [t for t in markers if t in set(labels)] + sorted(set(labels) - set(markers))
    types = [t for t in types if t != UNASSIGNED] + ([UNASSIGNED] if UNASSIGNED in labels else [])
    counts = adata[:, genes].layers["counts"]
    values = adata[:, genes].X
    fraction = pd.DataFrame([np.asarray((counts[labels == t] > 0).mean(axis=0)).ravel()
                             for t in types], index=types, columns=genes)  # fmt: skip
    mean = pd.DataFrame([np.asarray(values[labels == t].mean(axis=0)).ravel() for t in types],
                        index=types, columns=genes)  # fmt: skip
    _plots.dotplot(fraction, mean, groups, png=png)


def by_subtype_step(
    *,
    annotated_h5ad: str | Path,
    signatures: Mapping[str, str | Path],
    settings: Mapping,
    out_composition: str | Path,
    out_tests: str | Path,
    out_bars_png: str | Path,
    out_signature_scores: str | Path,
    out_signature_png: str | Path,
    seed: int = 0,
) -> None:
    """Cell-type composition compared by subtype, and bulk subtype signatures by cell type.

    Parameters
    ----------
    annotated_h5ad : str or Path
        results/scrna/annotated.h5ad from :func:`annotate_step`.
    signatures : Mapping of contrast name to path
        Bulk DESeq2 tables (``gene``, ``log2FoldChange``, ``padj``) by contrast; those named
        ``{subtype}_vs_rest`` are scored, others are ignored. May be empty.
    settings : Mapping
        ``config["scrna"]["by_subtype"]``; keys and defaults in ``BY_SUBTYPE_DEFAULTS``.
    out_composition : str or Path
        ``COMPOSITION_COLUMNS``: one row per sample and cell type, zeros included.
    out_tests : str or Path
        One row per cell type: ``cell_type``, ``test``, ``statistic``, ``pvalue``, ``padj``,
        ``n_samples``, ``note``, ``mean_fraction_{subtype}``.
    out_bars_png : str or Path
        Stacked composition bars per sample, grouped by subtype (an SVG copy beside it).
    out_signature_scores : str or Path
        ``SIGNATURE_COLUMNS``: one row per signature and cell type.
    out_signature_png : str or Path
        Heatmap of the mean signature scores (an SVG copy beside it).
    seed : int
        Seeds the control genes of the signature scores.
    """
    import anndata as ad

    from rdls.compare import nothing_to_compare
    from rdls.scrna import _plots
    from rdls.scrna.composition import (
        SIGNATURE_COLUMNS,
        VS_REST,
        compare_composition,
        composition,
        read_signature,
        score_signatures,
        signature_genes,
    )

    settings = merged(settings, BY_SUBTYPE_DEFAULTS, name="scrna.by_subtype")
    adata = ad.read_h5ad(annotated_h5ad)
    missing = [c for c in ("sample_id", "subject_id", "subtype", "cell_type") if c not in adata.obs]
    if missing:
        raise InputError(f"{annotated_h5ad} lacks obs column(s) {missing}; it must come from "
                         "scrna_annotate.")  # fmt: skip
    table = composition(adata.obs)
    table.to_csv(out_composition, sep="\t", index=False)
    compare_composition(table).to_csv(out_tests, sep="\t", index=False)
    # No significant subtypes: the samples are shown, with the reason there is no comparison.
    note = nothing_to_compare(table["subtype"])
    _plots.composition_bars(table, png=out_bars_png, title=note or None)

    genes = {}
    for name, path in dict(signatures or {}).items():
        if not str(name).endswith(VS_REST):
            log.info("signature %s is not a subtype-vs-rest contrast: not scored", name)
            continue
        genes[name] = signature_genes(read_signature(path, name=name),
                                      max_padj=settings["max_padj"],
                                      min_log2fc=settings["min_log2fc"],
                                      top_genes=settings["top_genes"])  # fmt: skip
    scores = (score_signatures(adata, genes, seed=seed,
                               min_signature_genes=settings["min_signature_genes"])
              if genes else pd.DataFrame(columns=SIGNATURE_COLUMNS))  # fmt: skip
    scores.to_csv(out_signature_scores, sep="\t", index=False)
    if scores["mean_score"].notna().any():
        _plots.signature_heatmap(scores, png=out_signature_png)
    elif note and not genes:
        _plots.blank(out_signature_png, f"no bulk subtype signature to score: {note}")
    else:
        _plots.blank(out_signature_png, "no bulk subtype signature to score "
                     "(none given, or too few of their genes in the single-cell data)")  # fmt: skip


def _use_threads(threads: int) -> None:
    import scanpy as sc

    sc.settings.n_jobs = max(int(threads), 1)
    try:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba comes with scanpy
        pass


def qc_summary_step(
    *, metrics: Sequence[str | Path], out_summary: str | Path, out_exclusions: str | Path
) -> None:
    """Every sample's QC row in one table, and the samples QC excluded, with their reasons.

    Parameters
    ----------
    metrics
        The ``qc_step`` one-row metrics tables.
    out_summary
        All rows, in the order given.
    out_exclusions
        ``item_id``, ``kind`` ("scrna_sample"), ``step`` and ``reason`` of each excluded
        sample, for ``results/qc/exclusions.tsv``.
    """
    rows = pd.concat(
        [pd.read_csv(path, sep="\t", keep_default_na=False) for path in metrics],
        ignore_index=True,
    )
    Path(out_summary).parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out_summary, sep="\t", index=False)
    excluded = rows[rows["status"] != "ok"]
    pd.DataFrame(
        {
            "item_id": excluded["sample_id"],
            "kind": "scrna_sample",
            "step": excluded["step"],
            "reason": excluded["reason"],
        }
    ).to_csv(out_exclusions, sep="\t", index=False)
    log.info("%d samples, %d excluded at QC", len(rows), len(excluded))
