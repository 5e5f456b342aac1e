"""Gene sets: GMT files, preranked GSEA of a DE table, and single-sample scores (ESTIMATE).

Gene sets are always handed to GSEApy as a dictionary read here, never as a name, so that
GSEApy never reaches for its online libraries.

The ESTIMATE immune and stromal scores (Yoshihara et al. 2013, Nat Commun 4:2612) are
single-sample GSEA enrichment scores of the ESTIMATE immune and stromal gene sets, with the
ESTIMATE package's settings: genes ranked within each sample (rank x 10000 / genes), weight
0.25, the score the sum of the running-sum differences (unnormalised). The ESTIMATE score
is their sum. ssGSEA depends on the order of the genes within a sample only, so raw counts,
CPM, log-CPM and VST values give the same scores (up to ties).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

GSEA_COLUMNS = ("term", "nes", "pvalue", "fdr", "leading_edge", "size")
RANKINGS = ("stat", "signed_p")
ESTIMATE_SETS = {"immune": "ImmuneSignature", "stromal": "StromalSignature"}
SSGSEA_WEIGHT = 0.25  # ESTIMATE's (and ssGSEA's) weight of the ranks


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Gene sets of a GMT file: name -> genes (order kept, duplicates and blanks dropped).

    Each line is the set's name, a description, then its genes, tab-separated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene set file '{path}' does not exist; point the config at a GMT file.")
    sets: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < 3 or not fields[0]:
            raise InputError(
                f"{path}, line {number}: a GMT line is the set's name, a description and its "
                "genes, separated by tabs; this one has "
                f"{len(fields)} field(s). Fix the line or remove it."
            )
        if fields[0] in sets:
            raise InputError(f"{path}, line {number}: gene set '{fields[0]}' is defined twice.")
        sets[fields[0]] = list(dict.fromkeys(g for g in fields[2:] if g))
    if not sets:
        raise InputError(f"{path}: holds no gene sets.")
    return sets


def rank_genes(table: pd.DataFrame, *, by: str = "stat") -> pd.Series:
    """The ranking metric of every gene of a DE table, highest first.

    Parameters
    ----------
    table
        A DE table with ``gene``, ``log2FoldChange``, ``lfcSE`` and ``pvalue``.
    by
        ``"stat"``: the Wald statistic log2FoldChange / lfcSE; ``"signed_p"``:
        sign(log2FoldChange) x -log10(pvalue) (p-values floored at 1e-300).

    Genes without the metric (no test: all-zero counts, outliers) are left out.
    """
    if by not in RANKINGS:
        raise InputError(f"unknown GSEA ranking '{by}'; use one of {some(RANKINGS)}.")
    missing = [c for c in ("gene", "log2FoldChange", "lfcSE", "pvalue") if c not in table]
    if missing:
        raise InputError(f"DE table lacks column(s) {some(missing)}.")
    lfc = table["log2FoldChange"].to_numpy(float)
    if by == "stat":
        with np.errstate(divide="ignore", invalid="ignore"):
            metric = lfc / table["lfcSE"].to_numpy(float)
    else:
        p = np.clip(table["pvalue"].to_numpy(float), 1e-300, 1.0)
        metric = np.sign(lfc) * -np.log10(p)
    ranking = pd.Series(metric, index=table["gene"].astype(str).to_numpy(), name=by)
    ranking = ranking[np.isfinite(ranking.to_numpy())]
    return ranking.sort_values(ascending=False, kind="mergesort")


def prerank(
    ranking: pd.Series,
    gene_sets: Mapping[str, list[str]],
    *,
    permutations: int = 1000,
    min_size: int = 15,
    max_size: int = 500,
    seed: int = 0,
    threads: int = 1,
) -> pd.DataFrame:
    """Preranked GSEA (GSEApy) with gene-set permutations.

    Parameters
    ----------
    ranking
        Metric per gene (index: gene), e.g. from :func:`rank_genes`.
    gene_sets
        Name -> genes; sets with fewer than ``min_size`` or more than ``max_size`` genes of
        the ranking are skipped.
    permutations, seed
        Gene-set permutations for the p-values and their random seed.

    Returns
    -------
    pandas.DataFrame
        ``term``, ``nes``, ``pvalue`` (nominal), ``fdr`` (q-value), ``leading_edge`` (genes
        joined by ``;``) and ``size`` (genes of the set in the ranking), by FDR then |NES|.
        Empty when no set has a size in range.
    """
    import gseapy

    genes = set(ranking.index)
    sizes = {name: sum(g in genes for g in members) for name, members in gene_sets.items()}
    usable = {n: list(m) for n, m in gene_sets.items() if min_size <= sizes[n] <= max_size}
    log.info("%d of %d gene sets have %d to %d genes of the %d ranked", len(usable),
             len(gene_sets), min_size, max_size, len(ranking))  # fmt: skip
    if not usable:
        return pd.DataFrame(columns=list(GSEA_COLUMNS))
    result = gseapy.prerank(
        rnk=ranking.astype(float),
        gene_sets=usable,
        permutation_num=int(permutations),
        min_size=int(min_size),
        max_size=int(max_size),
        seed=int(seed),
        threads=max(1, int(threads)),
        outdir=None,
        no_plot=True,
        verbose=False,
    ).res2d
    table = pd.DataFrame(
        {
            "term": result["Term"].astype(str),
            "nes": pd.to_numeric(result["NES"], errors="coerce"),
            "pvalue": pd.to_numeric(result["NOM p-val"], errors="coerce"),
            "fdr": pd.to_numeric(result["FDR q-val"], errors="coerce"),
            "leading_edge": result["Lead_genes"].astype(str),
        }
    )
    table["size"] = table["term"].map(sizes).astype(int)
    table = table.assign(_abs=-table["nes"].abs()).sort_values(["fdr", "_abs", "term"])
    return table.drop(columns="_abs").reset_index(drop=True)


def ssgsea_scores(
    expression: pd.DataFrame,
    gene_sets: Mapping[str, list[str]],
    *,
    min_size: int = 10,
    threads: int = 1,
) -> pd.DataFrame:
    """Single-sample GSEA enrichment scores (unnormalised, ESTIMATE's settings).

    Parameters
    ----------
    expression
        Genes x samples; only the order of genes within each sample matters.
    gene_sets
        Name -> genes; a set with fewer than ``min_size`` genes in ``expression`` is an
        error (a score from a handful of genes would mislead).

    Returns
    -------
    pandas.DataFrame
        Samples x gene sets (in the order given).
    """
    import gseapy

    present = set(expression.index)
    small = {n: sum(g in present for g in m) for n, m in gene_sets.items()}
    small = {n: k for n, k in small.items() if k < min_size}
    if small:
        raise InputError(
            f"gene set(s) {some([f'{n} ({k} genes)' for n, k in small.items()])} have fewer "
            f"than {min_size} genes in the count matrix; check that the matrix names genes by "
            "HGNC symbol, as the gene sets do."
        )
    result = gseapy.ssgsea(
        data=expression.astype(float),
        gene_sets={n: list(m) for n, m in gene_sets.items()},
        sample_norm_method="rank",
        correl_norm_type="rank",
        weight=SSGSEA_WEIGHT,
        min_size=1,
        max_size=max(len(m) for m in gene_sets.values()) + 1,
        permutation_num=0,
        threads=max(1, int(threads)),
        outdir=None,
        no_plot=True,
        verbose=False,
    ).res2d
    scores = result.pivot(index="Name", columns="Term", values="ES").astype(float)
    return scores.loc[[str(c) for c in expression.columns], list(gene_sets)]


def estimate_scores(
    expression: pd.DataFrame,
    gene_sets: Mapping[str, list[str]],
    *,
    immune_set: str = ESTIMATE_SETS["immune"],
    stromal_set: str = ESTIMATE_SETS["stromal"],
    min_size: int = 10,
    threads: int = 1,
) -> pd.DataFrame:
    """ESTIMATE immune, stromal and ESTIMATE scores of each sample.

    Returns
    -------
    pandas.DataFrame
        Index: samples; columns ``immune_score``, ``stromal_score``, ``estimate_score``.
    """
    missing = [s for s in (immune_set, stromal_set) if s not in gene_sets]
    if missing:
        raise InputError(
            f"the gene set file lacks set(s) {some(missing)} (it has "
            f"{some(list(gene_sets))}); use resources/genesets/SI_geneset.gmt or set "
            "bulk.scores.immune_set / stromal_set to the names in your file."
        )
    chosen = {"immune": gene_sets[immune_set], "stromal": gene_sets[stromal_set]}
    scores = ssgsea_scores(expression, chosen, min_size=min_size, threads=threads)
    table = pd.DataFrame({"immune_score": scores["immune"], "stromal_score": scores["stromal"]})
    table["estimate_score"] = table["immune_score"] + table["stromal_score"]
    table.index.name = "sample_id"
    return table
