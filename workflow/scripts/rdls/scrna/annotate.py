"""Cell types from canonical marker genes, decided per cluster.

Every cell gets one score per cell type: the mean log-normalised expression of the type's
markers minus that of expression-matched control genes (``scanpy.tl.score_genes``, Satija et
al., Nat Biotechnol 2015; Tirosh et al., Science 2016). Its *own* best type is the type with
the highest score, or "unassigned" when no score exceeds ``min_score`` (no marker evidence).
A cluster's label is the most common own best type of its cells, and every cell of the
cluster carries it: single cells are noisy, clusters are not. ``cell_type_confidence`` is the
share of the cell's cluster whose own best type agrees with the cluster's label (1: every cell
agrees; near 1/number of types: the cluster is a mixture and its label is a guess).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rdls.errors import InputError, some

log = logging.getLogger(__name__)

UNASSIGNED = "unassigned"
MARKER_COLUMNS = ("cell_type", "gene")


def read_markers(path: str | Path) -> dict[str, list[str]]:
    """Marker genes by cell type, in the file's order, from a ``cell_type``/``gene`` TSV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"marker file {path} does not exist; point scrna.annotate's markers "
                         "at a TSV with columns cell_type and gene.")  # fmt: skip
    table = pd.read_csv(path, sep="\t", dtype=str, comment="#")
    missing = [c for c in MARKER_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"marker file {path} lacks column(s) {some(missing)} (it has "
                         f"{some(table.columns)}); it needs one row per marker with columns "
                         "cell_type and gene, tab-separated.")  # fmt: skip
    table = table.dropna(subset=list(MARKER_COLUMNS))
    table = table.assign(cell_type=table["cell_type"].str.strip(), gene=table["gene"].str.strip())
    if table.empty:
        raise InputError(f"marker file {path} lists no marker; add rows of cell_type and gene.")
    if (table["cell_type"] == UNASSIGNED).any():
        raise InputError(f"marker file {path}: {UNASSIGNED!r} is reserved for cells without "
                         "marker evidence; rename that cell type.")  # fmt: skip
    return {t: list(dict.fromkeys(g)) for t, g in table.groupby("cell_type", sort=False)["gene"]}


def markers_in_data(markers: dict[str, list[str]], genes, *, source: str) -> dict[str, list[str]]:
    """The markers measured in the data; types without any are dropped with a warning."""
    genes = set(genes)
    present = {t: [g for g in markers[t] if g in genes] for t in markers}
    absent = [g for t in markers for g in markers[t] if g not in genes]
    if absent:
        log.warning("%d marker(s) not in the data: %s", len(absent), some(absent, shown=10))
    empty = [t for t, g in present.items() if not g]
    if len(empty) == len(present):
        raise InputError(
            f"marker file {source}: none of its {len(absent)} marker genes is in the "
            f"single-cell data ({some(absent)}); do the data use gene symbols of the same "
            "species, and is this the right marker file?"
        )
    if empty:
        log.warning("no marker of cell type(s) %s in the data: they cannot be assigned",
                    some(empty))  # fmt: skip
    return {t: g for t, g in present.items() if g}


def marker_scores(adata, markers: dict[str, list[str]], *, seed: int, ctrl_size: int = 50,
                  n_bins: int = 25) -> pd.DataFrame:  # fmt: skip
    """Cells x cell types: ``score_genes`` of each type's markers on the log-normalised ``X``."""
    import scanpy as sc

    scores = {}
    for cell_type, genes in markers.items():
        work = sc.tl.score_genes(adata, genes, ctrl_size=ctrl_size, n_bins=n_bins,
                                 random_state=seed, copy=True, use_raw=False)  # fmt: skip
        scores[cell_type] = work.obs["score"].to_numpy(float)
    return pd.DataFrame(scores, index=adata.obs_names)


def best_types(scores: pd.DataFrame, *, min_score: float = 0.0) -> pd.Series:
    """Each cell's own best type, or ``"unassigned"`` where no score exceeds ``min_score``."""
    values = scores.to_numpy(float)
    best = np.asarray(scores.columns)[np.argmax(values, axis=1)]
    evidence = values.max(axis=1) > min_score
    return pd.Series(np.where(evidence, best, UNASSIGNED), index=scores.index, name="best")


def cluster_labels(best: pd.Series, clusters: pd.Series) -> pd.DataFrame:
    """Per cluster: its label (the most common own best type), cells and agreement.

    Returns
    -------
    pandas.DataFrame
        Indexed by cluster: ``cell_type``, ``cells``, ``confidence`` (share of the cluster's
        cells whose own best type is the label), ``second_type`` and ``second_share``. Ties go
        to the type that comes first in alphabetical order, so reruns agree.
    """
    table = pd.crosstab(pd.Series(np.asarray(clusters), name="cluster"),
                        pd.Series(np.asarray(best), name="best"))  # fmt: skip
    table = table.reindex(columns=sorted(table.columns))
    shares = table.div(table.sum(axis=1), axis=0)
    rows = {}
    for cluster, share in shares.iterrows():
        ranked = share.sort_values(ascending=False, kind="stable")
        second = ranked.index[1] if len(ranked) > 1 and ranked.iloc[1] > 0 else ""
        rows[cluster] = {"cell_type": ranked.index[0], "cells": int(table.loc[cluster].sum()),
                         "confidence": float(ranked.iloc[0]), "second_type": second,
                         "second_share": float(ranked.iloc[1]) if second else 0.0}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def top_markers(adata, markers: dict[str, list[str]], clusters: pd.Series, *,
                n: int = 5) -> pd.Series:  # fmt: skip
    """Per cluster, the markers most raised in it over the other cells (mean log expression)."""
    genes = list(dict.fromkeys(g for gs in markers.values() for g in gs))
    expression = _dense(adata[:, genes].X)
    labels = np.asarray(clusters)
    result = {}
    for cluster in pd.unique(labels):
        inside = labels == cluster
        lift = expression[inside].mean(axis=0) - (
            expression[~inside].mean(axis=0) if (~inside).any() else 0.0
        )
        order = np.argsort(-lift, kind="stable")[:n]
        result[cluster] = ",".join(genes[i] for i in order if lift[i] > 0)
    return pd.Series(result)


def read_assignments(path: str | Path | None) -> pd.Series:
    """Subtype by subject_id from results/subtypes/assignments.tsv (empty without a file)."""
    if path is None:
        return pd.Series(dtype=str)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"subtype assignments {path} do not exist; run the subtype rules "
                         "first or leave the assignments out.")  # fmt: skip
    table = pd.read_csv(path, sep="\t", dtype=str)
    missing = [c for c in ("subject_id", "subtype") if c not in table.columns]
    if missing:
        raise InputError(f"subtype assignments {path} lack column(s) {some(missing)}; they "
                         "must come from the subtype_assign rule.")  # fmt: skip
    return (
        table.dropna(subset=["subtype"])
        .drop_duplicates("subject_id")
        .set_index("subject_id")["subtype"]
    )


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)
