"""The bulk RNA-seq rules' work: files in, files out, around the modules of this package.

Every step reads the count matrix with :func:`rdls.bulk.counts.read_counts` (checked against
the bulk sheet) and joins each sample to its subject's subtype from
``results/subtypes/assignments.tsv``. Samples whose subject has no subtype are left out of
comparisons by subtype, with a log message naming them; the overview's PCA shows them in grey.

Settings are the config's blocks (``bulk.deseq2``, ``bulk.overview``, ``bulk.gsea``,
``bulk.scores``, ``bulk.deconvolution``); a key left out takes the default of the
``*_DEFAULTS`` dictionaries below, which the config schema repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

DESEQ2_DEFAULTS = {
    "covariates": [],  # bulk-sheet or subjects-sheet columns added to the design
    "min_count": 10,  # pre-filter: reads in at least the smallest group's number of samples
    "alpha": 0.05,
    "lfc_shrink": True,  # apeGLM, reported as log2FoldChange_shrunk
    "refit_cooks": True,
    "cooks_filter": True,
    "independent_filter": True,
    "fit_type": "parametric",
    "label_genes": 10,  # genes named in the volcano plot
}
OVERVIEW_DEFAULTS = {
    "min_count": 10,
    "pca_top_genes": 500,  # most variable VST genes in the PCA (DESeq2's plotPCA: 500)
    "heatmap_genes_per_contrast": 10,
    "alpha": 0.05,
}
GSEA_DEFAULTS = {
    "rank_by": "stat",  # "stat" (Wald statistic) or "signed_p" (sign(lfc) x -log10 p)
    "permutations": 1000,
    "min_size": 15,
    "max_size": 500,
    "plot_top": 20,
    "plot_fdr": 0.25,  # GSEA's customary FDR for a set worth a look
}
SCORES_DEFAULTS = {
    "immune_set": "ImmuneSignature",
    "stromal_set": "StromalSignature",
    "min_genes": 10,
}
DECONVOLUTION_DEFAULTS = {
    "cell_type_key": "cell_type",
    "exclude_cell_types": [],  # on top of doublets, unknown, unassigned, low-quality
    "min_cells": 10,
    "genes_per_type": 50,
    "min_fold_change": 4.0,
    "min_cpm": 10.0,
    "scale_genes": False,
}
SCORE_COLUMNS = ("immune_score", "stromal_score", "estimate_score")


def deseq2_step(
    *,
    counts: str | Path,
    sheet: str | Path | pd.DataFrame,
    assignments: str | Path | pd.DataFrame,
    contrast: str,
    settings: Mapping,
    threads: int,
    out_table: str | Path,
    out_volcano_png: str | Path,
    out_ma_png: str | Path,
    subjects: str | Path | pd.DataFrame | None = None,
) -> None:
    """DESeq2 for one contrast: the results table, a volcano and an MA plot.

    Parameters
    ----------
    counts
        The count matrix (config key sheets.bulk_counts).
    sheet
        The bulk sheet (path or frame): sample_id, subject_id, optional batch.
    assignments
        ``results/subtypes/assignments.tsv``: subject_id, subtype.
    contrast
        ``<subtype>_vs_rest`` (one against the others, a two-level design) or
        ``<subtype>_vs_<subtype>`` (from the full design over every subtype).
    settings
        ``bulk.deseq2``: see ``DESEQ2_DEFAULTS``.
    subjects
        The subjects sheet, needed only for covariates that are not bulk-sheet columns.
    out_table
        TSV with ``gene, baseMean, log2FoldChange, lfcSE, pvalue, padj`` and, with
        ``lfc_shrink``, ``log2FoldChange_shrunk``: one row per gene that passes the
        pre-filter. Empty (header only) when a side of the contrast has no sample.
    out_volcano_png, out_ma_png
        Figures; an SVG copy is written beside each.
    """
    from rdls.bulk import _plots
    from rdls.bulk.counts import filter_low_counts, read_counts
    from rdls.bulk.de import (
        REST,
        RESULT_COLUMNS,
        SHRUNK_COLUMN,
        contrast_groups,
        differential_expression,
        parse_contrast,
    )

    s = {**DESEQ2_DEFAULTS, **settings}
    covariates = list(s["covariates"])
    frame = _bulk_sheet(sheet)
    samples = sample_table(frame, assignments, subjects=subjects, covariates=covariates)
    matrix = read_counts(counts, sheet=frame)
    known = samples.dropna(subset=["subtype"])
    level, reference = parse_contrast(contrast)
    columns = [*RESULT_COLUMNS, *([SHRUNK_COLUMN] if s["lfc_shrink"] else [])]
    absent = [g for g in (level, reference) if g != REST and not (known["subtype"] == g).any()]
    if absent or len(known["subtype"].unique()) < 2:
        reason = (f"no sample with counts has subtype {some(absent)}" if absent
                  else "fewer than two subtypes among the samples with counts")  # fmt: skip
        log.warning("contrast %s not tested: %s", contrast, reason)
        Path(out_table).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(columns=columns).to_csv(out_table, sep="\t", index=False)
        for png in (out_volcano_png, out_ma_png):
            _plots.blank(png, f"{contrast}: not tested ({reason})")
        return
    group, level, reference = contrast_groups(known["subtype"], contrast)
    design = known.assign(contrast_group=group)
    sizes = group.value_counts()
    log.info("%s: %s", contrast, ", ".join(f"{k} {v} samples" for k, v in sizes.items()))
    kept = filter_low_counts(matrix[design.index], min_count=s["min_count"],
                             min_samples=int(sizes.min()))  # fmt: skip
    table = differential_expression(
        kept,
        design,
        group="contrast_group",
        level=level,
        reference=reference,
        covariates=covariates,
        alpha=s["alpha"],
        lfc_shrink=s["lfc_shrink"],
        refit_cooks=s["refit_cooks"],
        cooks_filter=s["cooks_filter"],
        independent_filter=s["independent_filter"],
        fit_type=s["fit_type"],
        threads=threads,
    )
    Path(out_table).parent.mkdir(parents=True, exist_ok=True)
    table[columns].to_csv(out_table, sep="\t", index=False)
    n_reference = len(group) - sizes[level] if reference == REST else sizes[reference]
    title = f"{level} vs {reference} ({sizes[level]} vs {n_reference} samples)"
    _plots.volcano(table, alpha=s["alpha"], title=title, png=out_volcano_png,
                   label_top=s["label_genes"])  # fmt: skip
    _plots.ma_plot(table, alpha=s["alpha"], title=title, png=out_ma_png)


def overview_step(
    *,
    counts: str | Path,
    sheet: str | Path | pd.DataFrame,
    assignments: str | Path | pd.DataFrame,
    settings: Mapping,
    out_vst: str | Path,
    out_pca_png: str | Path,
    out_heatmap_png: str | Path,
    de_tables: Mapping[str, str | Path] | Sequence[str | Path] = (),
    threads: int = 1,
) -> None:
    """VST of every sample, their PCA coloured by subtype, and a heatmap of top DE genes.

    Parameters
    ----------
    settings
        ``bulk.overview``: see ``OVERVIEW_DEFAULTS``.
    out_vst
        Parquet: column ``gene``, then one column per sample (DESeq2's blind VST of the
        genes that pass the pre-filter).
    out_pca_png
        PCA of the ``pca_top_genes`` most variable genes (as DESeq2's plotPCA).
    out_heatmap_png
        z-scored VST of the ``heatmap_genes_per_contrast`` genes with the smallest padj
        (below ``alpha``) of each DE table, samples ordered by subtype; the most variable
        genes when no table has a significant gene.
    de_tables
        Contrast name -> DE table (or a list of tables, named by their file stem).
    """
    from rdls.bulk import _plots
    from rdls.bulk.counts import filter_low_counts, read_counts
    from rdls.bulk.de import variance_stabilised
    from rdls.compare import nothing_to_compare, subtype_levels

    s = {**OVERVIEW_DEFAULTS, **settings}
    frame = _bulk_sheet(sheet)
    samples = sample_table(frame, assignments)
    matrix = read_counts(counts, sheet=frame)
    known = samples["subtype"][samples["subtype"].isin(subtype_levels(samples["subtype"]))]
    smallest = int(known.value_counts().min()) if len(known) else 1
    kept = filter_low_counts(matrix, min_count=s["min_count"], min_samples=smallest)
    vst = variance_stabilised(kept, threads=threads)
    Path(out_vst).parent.mkdir(parents=True, exist_ok=True)
    vst.rename_axis("gene").reset_index().to_parquet(out_vst, index=False)

    subtype = samples.loc[vst.columns, "subtype"]
    scores, explained = principal_components(vst, top_genes=s["pca_top_genes"])
    _plots.pca(scores, explained, subtype, png=out_pca_png,
               title=f"PCA of VST expression, {min(s['pca_top_genes'], len(vst))} most "
                     f"variable genes, {vst.shape[1]} samples")  # fmt: skip
    genes = top_de_genes(_named(de_tables), per_table=s["heatmap_genes_per_contrast"],
                         alpha=s["alpha"], genes=vst.index)  # fmt: skip
    what = "top DE genes of each contrast"
    if not genes:
        genes = list(vst.var(axis=1).sort_values(ascending=False).index[:50])
        what = "no significant DE gene: the 50 most variable genes"
        if note := nothing_to_compare(samples["subtype"].dropna()):
            what = f"no contrast ({note}): the 50 most variable genes"
    values = vst.loc[genes]
    spread = values.std(axis=1).replace(0, np.nan)
    z = values.sub(values.mean(axis=1), axis=0).div(spread, axis=0).fillna(0.0)
    _plots.heatmap(z, subtype, title=f"{what} ({len(genes)} genes)", png=out_heatmap_png)


def gsea_step(
    *,
    de_table: str | Path,
    gmt: str | Path,
    settings: Mapping,
    seed: int,
    threads: int,
    out_table: str | Path,
    out_png: str | Path,
) -> None:
    """Preranked GSEA of one contrast's DE table against the sets of one GMT file.

    Parameters
    ----------
    settings
        ``bulk.gsea``: see ``GSEA_DEFAULTS``.
    seed
        The workflow's seed: the permutations are drawn from it.
    out_table
        TSV: ``term, nes, pvalue, fdr, leading_edge, size``, by FDR then |NES|.
    out_png
        Bar chart of the NES of the ``plot_top`` first sets (SVG copy beside it).
    """
    from rdls.bulk import _plots
    from rdls.bulk.genesets import GSEA_COLUMNS, prerank, rank_genes, read_gmt

    s = {**GSEA_DEFAULTS, **settings}
    table = pd.read_csv(de_table, sep="\t")
    name = Path(de_table).stem
    ranking = rank_genes(table, by=s["rank_by"])
    if ranking.empty:
        log.warning("%s: no gene with a test statistic, GSEA skipped", de_table)
        Path(out_table).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(columns=list(GSEA_COLUMNS)).to_csv(out_table, sep="\t", index=False)
        _plots.blank(out_png, f"{name}: no tested genes, no GSEA")
        return
    result = prerank(ranking, read_gmt(gmt), permutations=s["permutations"],
                     min_size=s["min_size"], max_size=s["max_size"], seed=seed,
                     threads=threads)  # fmt: skip
    Path(out_table).parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out_table, sep="\t", index=False)
    n_sig = int((result["fdr"] < s["plot_fdr"]).sum())
    log.info("%s: %d gene sets tested, %d with FDR < %g", name, len(result), n_sig, s["plot_fdr"])
    if result.empty:
        _plots.blank(out_png, f"{name}: no gene set of {s['min_size']}-{s['max_size']} genes")
        return
    _plots.gsea_bars(result, top=s["plot_top"], fdr=s["plot_fdr"], png=out_png,
                     title=f"GSEA {name.replace('_vs_', ' vs ')} ({Path(gmt).stem})")  # fmt: skip


def scores_step(
    *,
    counts: str | Path,
    sheet: str | Path | pd.DataFrame,
    assignments: str | Path | pd.DataFrame,
    gmt: str | Path,
    settings: Mapping,
    out_scores: str | Path,
    out_tests: str | Path,
    out_png: str | Path,
    threads: int = 1,
) -> None:
    """ESTIMATE immune, stromal and ESTIMATE scores per sample, compared by subtype.

    Parameters
    ----------
    gmt
        The ESTIMATE gene sets (resources/genesets/SI_geneset.gmt).
    settings
        ``bulk.scores``: see ``SCORES_DEFAULTS``.
    out_scores
        TSV: ``sample_id, subject_id, subtype, immune_score, stromal_score,
        estimate_score`` (ssGSEA of log2(CPM + 1); see :mod:`rdls.bulk.genesets`).
    out_tests
        TSV: Kruskal-Wallis and pairwise Mann-Whitney (BH) per score; see
        :func:`rdls.compare.compare_by_subtype`.
    out_png
        Boxplots of the scores by subtype (SVG copy beside it).
    """
    from rdls.bulk import _plots
    from rdls.bulk.counts import counts_per_million, read_counts
    from rdls.bulk.genesets import estimate_scores, read_gmt
    from rdls.compare import compare_by_subtype, nothing_to_compare

    s = {**SCORES_DEFAULTS, **settings}
    frame = _bulk_sheet(sheet)
    samples = sample_table(frame, assignments)
    matrix = read_counts(counts, sheet=frame)
    expression = np.log2(counts_per_million(matrix) + 1.0)
    scores = estimate_scores(expression, read_gmt(gmt), immune_set=s["immune_set"],
                             stromal_set=s["stromal_set"], min_size=s["min_genes"],
                             threads=threads)  # fmt: skip
    table = samples[["subject_id", "subtype"]].join(scores).rename_axis("sample_id").reset_index()
    Path(out_scores).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_scores, sep="\t", index=False)
    tests = compare_by_subtype(table, columns=list(SCORE_COLUMNS))
    tests.to_csv(out_tests, sep="\t", index=False)
    if table["subtype"].notna().any():
        note = nothing_to_compare(table["subtype"].dropna())
        title = f"ESTIMATE scores, all samples ({note})" if note else "ESTIMATE scores by subtype"
        _plots.boxplots(table, columns=list(SCORE_COLUMNS), group="subtype", png=out_png,
                        title=f"{title} (ssGSEA)")  # fmt: skip
    else:
        _plots.blank(out_png, "no bulk sample has a subtype")


def deconvolve_step(
    *,
    counts: str | Path,
    sheet: str | Path | pd.DataFrame,
    assignments: str | Path | pd.DataFrame | None,
    annotated_h5ad: str | Path,
    settings: Mapping,
    out_signature: str | Path,
    out_fractions: str | Path,
    out_tests: str | Path,
    out_png: str | Path,
) -> None:
    """Cell-type fractions of each bulk sample from an scRNA-seq signature, by subtype.

    Parameters
    ----------
    annotated_h5ad
        Annotated single cells: raw counts in ``layers["counts"]`` (or ``.X``), cell types
        in ``obs[cell_type_key]``, gene symbols as ``var_names``. No subtype column needed.
    assignments
        Subtypes of the subjects; ``None`` for fractions without comparison.
    settings
        ``bulk.deconvolution``: see ``DECONVOLUTION_DEFAULTS`` and
        :mod:`rdls.bulk.deconvolution`.
    out_signature
        TSV: ``gene``, ``marker_of``, then the mean CPM of every cell type.
    out_fractions
        TSV: ``sample_id, subject_id, subtype``, then one column per cell type (fractions
        summing to 1). How well each sample is fitted (Pearson correlation of fitted and
        observed CPM over the signature genes) goes to the log.
    out_tests
        TSV: per cell type, Kruskal-Wallis and pairwise Mann-Whitney (BH) by subtype.
    out_png
        Stacked bars of the fractions, samples grouped by subtype (SVG copy beside it).
    """
    from rdls.bulk import _plots
    from rdls.bulk.counts import counts_per_million, read_counts
    from rdls.bulk.deconvolution import (
        NOT_A_CELL_TYPE,
        mean_cpm_by_type,
        nnls_fractions,
        read_annotated,
        select_markers,
    )
    from rdls.compare import compare_by_subtype, nothing_to_compare

    s = {**DECONVOLUTION_DEFAULTS, **settings}
    frame = _bulk_sheet(sheet)
    samples = sample_table(frame, assignments)
    matrix = read_counts(counts, sheet=frame)
    cells, labels, genes = read_annotated(annotated_h5ad, cell_type_key=s["cell_type_key"])
    excluded = {t.lower() for t in (*NOT_A_CELL_TYPE, *s["exclude_cell_types"])}
    keep = ~pd.Series(labels).str.strip().str.lower().isin(excluded).to_numpy()
    log.info("%d of %d cells of annotated cell types", keep.sum(), len(keep))
    shared = set(genes) & set(matrix.index)
    if len(shared) < 0.1 * min(len(genes), len(matrix)):
        raise InputError(
            f"{annotated_h5ad} and {counts} share {len(shared)} genes only (e.g. scRNA "
            f"{some(genes[:3])}, bulk {some(matrix.index[:3])}); name the genes the same way "
            "in both (HGNC symbols)."
        )
    mean = mean_cpm_by_type(cells[keep], labels[keep], genes=genes, min_cells=s["min_cells"])
    markers = select_markers(mean, genes_per_type=s["genes_per_type"],
                             min_fold_change=s["min_fold_change"], min_cpm=s["min_cpm"],
                             genes=matrix.index)  # fmt: skip
    if markers.empty:
        raise InputError(
            f"{annotated_h5ad}: no gene is {s['min_fold_change']}-fold more expressed in one "
            "cell type than in every other; lower bulk.deconvolution.min_fold_change."
        )
    signature = mean.loc[markers.index]
    out = signature.copy()
    out.insert(0, "marker_of", markers)
    Path(out_signature).parent.mkdir(parents=True, exist_ok=True)
    out.reset_index().to_csv(out_signature, sep="\t", index=False)

    fractions = nnls_fractions(counts_per_million(matrix), signature, scale_genes=s["scale_genes"])
    types = list(signature.columns)
    _log_fit(fractions["fit_correlation"])
    table = samples[["subject_id", "subtype"]].join(fractions[types]).rename_axis("sample_id")
    table = table.reset_index()
    table.to_csv(out_fractions, sep="\t", index=False)
    log.info("mean fractions: %s", ", ".join(f"{t} {table[t].mean():.3f}" for t in types))
    compare_by_subtype(table, columns=types).to_csv(out_tests, sep="\t", index=False)
    title = f"Cell-type fractions (NNLS on {len(signature)} marker genes)"
    if table["subtype"].notna().any() and (note := nothing_to_compare(table["subtype"].dropna())):
        title += f"\n{note}"
    _plots.composition_bars(table.set_index("sample_id")[types], table["subtype"], title=title,
                            png=out_png)  # fmt: skip


def de_summary_step(
    *,
    tables: Mapping[str, str | Path],
    alpha: float,
    out_summary: str | Path,
    top: int = 5,
    assignments: str | Path | pd.DataFrame | None = None,
) -> None:
    """Genes up and down in every contrast, in one table.

    Parameters
    ----------
    tables
        Contrast name -> DE table (``results/bulk/deseq2/<contrast>.tsv``).
    alpha
        Adjusted p-value below which a gene counts as up or down.
    out_summary
        TSV, one row per contrast: ``contrast``, ``genes_tested``, ``up``, ``down``,
        ``top_up`` and ``top_down`` (the ``top`` genes with the smallest padj, ``;``-joined).
        Without contrasts, one row whose ``note`` says why (:func:`no_contrast_note`).
    assignments
        The subtypes, which say why there is no contrast where there is none.
    """
    rows = []
    for name, path in _named(tables).items():
        table = pd.read_csv(path, sep="\t")
        significant = table[table["padj"] < alpha].sort_values(["padj", "pvalue"], kind="stable")
        up = significant[significant["log2FoldChange"] > 0]
        down = significant[significant["log2FoldChange"] < 0]
        rows.append({"contrast": name, "genes_tested": int(table["pvalue"].notna().sum()),
                     "up": len(up), "down": len(down),
                     "top_up": ";".join(up["gene"].astype(str).head(top)),
                     "top_down": ";".join(down["gene"].astype(str).head(top))})  # fmt: skip
        log.info("%s: %d up, %d down at padj < %g", name, len(up), len(down), alpha)
    columns = ["contrast", "genes_tested", "up", "down", "top_up", "top_down"]
    summary = pd.DataFrame(rows, columns=columns)
    if not rows:
        summary = _no_contrast_row(columns, assignments)
    Path(out_summary).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_summary, sep="\t", index=False)


def gsea_summary_step(
    *,
    tables: Mapping[str, str | Path],
    fdr: float,
    out_summary: str | Path,
    assignments: str | Path | pd.DataFrame | None = None,
) -> None:
    """The gene sets with FDR below ``fdr`` in every contrast, in one table.

    Parameters
    ----------
    tables
        Contrast name -> GSEA table (``results/bulk/gsea/<contrast>.tsv``).
    out_summary
        TSV, one row per contrast and set: ``contrast``, ``term``, ``direction`` (``up`` for
        a positive NES: higher in the contrast's first subtype), ``nes``, ``pvalue``, ``fdr``,
        ``size``; by contrast, then FDR. Without contrasts, one row whose ``note`` says why.
    assignments
        The subtypes, which say why there is no contrast where there is none.
    """
    columns = ["contrast", "term", "direction", "nes", "pvalue", "fdr", "size"]
    parts = []
    for name, path in _named(tables).items():
        table = pd.read_csv(path, sep="\t")
        chosen = table[table["fdr"] < fdr].assign(contrast=name)
        chosen["direction"] = np.where(chosen["nes"] > 0, "up", "down")
        log.info("%s: %d of %d sets with FDR < %g", name, len(chosen), len(table), fdr)
        parts.append(chosen.reindex(columns=columns))
    summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    if not parts:
        summary = _no_contrast_row(columns, assignments)
    Path(out_summary).parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_summary, sep="\t", index=False)


def sample_table(
    sheet: str | Path | pd.DataFrame,
    assignments: str | Path | pd.DataFrame | None,
    *,
    subjects: str | Path | pd.DataFrame | None = None,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per bulk sample: ``subject_id``, ``subtype`` (NaN without one), covariates.

    Covariates are taken from the bulk sheet, else from the subjects sheet.
    """
    frame = _bulk_sheet(sheet)
    table = frame.set_index("sample_id")[["subject_id"]].copy()
    subtype = _subtypes(assignments)
    table["subtype"] = table["subject_id"].map(subtype)
    missing = table.index[table["subtype"].isna()]
    if len(missing) and assignments is not None:
        log.info("%d of %d bulk samples have no subtype and are left out of comparisons by "
                 "subtype: %s", len(missing), len(table), some(missing, shown=10))  # fmt: skip
    people = None
    for column in covariates:
        if column in frame.columns:
            table[column] = frame.set_index("sample_id")[column]
            continue
        if people is None and subjects is not None:
            people = _sheet(subjects, name="subjects").set_index("subject_id")
        if people is None or column not in people.columns:
            raise InputError(
                f"covariate '{column}' (bulk.deseq2.covariates) is not a column of the bulk "
                "sheet"
                + ("" if subjects is None else " or of the subjects sheet")
                + f"; the bulk sheet has {some(list(frame.columns))}. Fix the name, or add "
                "the column."
            )
        table[column] = table["subject_id"].map(people[column])
    return table


def principal_components(vst: pd.DataFrame, *, top_genes: int = 500):
    """Sample scores on the first two principal components of the most variable genes.

    Returns
    -------
    scores, explained
        Samples x 2 array and the share of variance of each of the two components.
    """
    variance = vst.var(axis=1).to_numpy()
    rows = np.argsort(-variance, kind="stable")[:top_genes]
    data = vst.to_numpy(float)[rows].T
    data = data - data.mean(axis=0)
    u, singular, _ = np.linalg.svd(data, full_matrices=False)
    share = singular**2 / max(float((singular**2).sum()), 1e-12)
    scores = u[:, :2] * singular[:2]
    if scores.shape[1] < 2:
        scores = np.column_stack([scores, np.zeros(len(scores))])
        share = np.append(share, 0.0)
    # Signs of components are arbitrary; fix them so reruns draw the same picture.
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), range(2)])
    return scores * np.where(signs == 0, 1, signs), share[:2]


def top_de_genes(
    tables: Mapping[str, str | Path], *, per_table: int, alpha: float, genes=None
) -> list[str]:
    """The ``per_table`` genes with the smallest padj (< ``alpha``) of each DE table, once."""
    chosen: list[str] = []
    allowed = None if genes is None else set(genes)
    for name, path in tables.items():
        table = pd.read_csv(path, sep="\t")
        if table.empty:
            continue
        table = table[table["padj"] < alpha].sort_values(["padj", "pvalue"], kind="stable")
        if allowed is not None:
            table = table[table["gene"].isin(allowed)]
        picked = table["gene"].astype(str).head(per_table).tolist()
        log.info("heatmap: %d genes from %s", len(picked), name)
        chosen += picked
    return list(dict.fromkeys(chosen))


def no_contrast_note(assignments: str | Path | pd.DataFrame | None) -> str:
    """Why a run has no contrast between subtypes (fewer than two subtypes were found)."""
    from rdls.compare import nothing_to_compare

    if assignments is None:
        return "no contrast between subtypes"
    note = nothing_to_compare(_subtypes(assignments)) or "no contrast was configured"
    return f"no contrast between subtypes ({note})"


def _no_contrast_row(columns: Sequence[str], assignments) -> pd.DataFrame:
    note = no_contrast_note(assignments)
    log.warning("%s", note)
    return pd.DataFrame([{"note": note}], columns=[*columns, "note"])


def _log_fit(correlation: pd.Series) -> None:
    """How well the signature explains each sample, and which samples it does not."""
    log.info("fit of the signature (Pearson r, fitted vs observed): median %.3f, min %.3f",
             correlation.median(), correlation.min())  # fmt: skip
    poor = correlation[~(correlation >= 0.5)]
    if len(poor):
        listed = some([f"{k} ({v:.2f})" for k, v in poor.items()], quote=False)
        log.warning("samples the signature fits poorly (r < 0.5): %s; their fractions are "
                    "doubtful", listed)  # fmt: skip


def _named(tables) -> dict[str, str | Path]:
    if isinstance(tables, Mapping):
        return dict(tables)
    if isinstance(tables, str | Path):
        tables = [tables]
    return {Path(p).stem: p for p in tables}


def _bulk_sheet(sheet) -> pd.DataFrame:
    frame = _sheet(sheet, name="bulk")
    missing = [c for c in ("sample_id", "subject_id") if c not in frame.columns]
    if missing:
        raise InputError(f"bulk sheet lacks column(s) {some(missing)} (config/README.md).")
    return frame


def _sheet(sheet, *, name: str) -> pd.DataFrame:
    """A sheet as text, as the user wrote it (validated at parse time; read again here
    without rdls.sheets, whose schema checks need libraries the bulk env does not hold)."""
    if isinstance(sheet, pd.DataFrame):
        return sheet
    if not Path(sheet).is_file():
        raise InputError(f"{name} sheet '{sheet}' does not exist; set the config key "
                         f"sheets.{name} to its path.")  # fmt: skip
    frame = pd.read_csv(sheet, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def _subtypes(assignments) -> pd.Series:
    """Subject -> subtype; subjects with an empty subtype are absent."""
    if assignments is None:
        return pd.Series(dtype=object)
    if isinstance(assignments, pd.DataFrame):
        table = assignments.astype({"subject_id": str})
    else:
        table = pd.read_csv(assignments, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("subject_id", "subtype") if c not in table.columns]
    if missing:
        raise InputError(
            f"subtype assignments {'' if isinstance(assignments, pd.DataFrame) else assignments}"
            f" lack column(s) {some(missing)}; they come from the rule subtype_assign."
        )
    table = table[table["subtype"].notna() & (table["subtype"].astype(str).str.strip() != "")]
    return table.set_index("subject_id")["subtype"].astype(str)
