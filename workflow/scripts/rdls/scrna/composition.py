"""Cell-type composition by subtype, and the bulk subtype signatures scored on single cells.

A sample's composition is the fraction of its annotated cells of each type. The fractions of
one cell type are compared across subtypes with a Kruskal-Wallis test (one value per sample:
cells of one patient are not independent), Benjamini-Hochberg adjusted over cell types. A
subtype's bulk signature is the genes most up-regulated in it against the rest (DESeq2
``X_vs_rest``); scoring them on every cell and averaging by cell type says which cells
express what the bulk tumours of that subtype over-express.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rdls.compare import nothing_to_compare, subtype_levels
from rdls.errors import InputError, some

log = logging.getLogger(__name__)

COMPOSITION_COLUMNS = ["sample_id", "subject_id", "subtype", "cell_type", "cells", "fraction"]
SIGNATURE_COLUMNS = ["signature", "subtype", "cell_type", "cells", "genes_used", "mean_score",
                     "note"]  # fmt: skip
DE_COLUMNS = ("gene", "log2FoldChange", "padj")
VS_REST = "_vs_rest"
NO_SUBTYPE = "unassigned"


def composition(obs: pd.DataFrame) -> pd.DataFrame:
    """Cells and fraction of every cell type in every sample, zeros included.

    Parameters
    ----------
    obs : pandas.DataFrame
        One row per cell with ``sample_id``, ``subject_id``, ``subtype`` and ``cell_type``.
    """
    obs = obs.astype({c: str for c in ("sample_id", "subject_id", "subtype", "cell_type")})
    samples = obs.groupby("sample_id", sort=True)[["subject_id", "subtype"]].first()
    counts = pd.crosstab(obs["sample_id"], obs["cell_type"]).reindex(samples.index, fill_value=0)
    long = counts.stack().rename("cells").reset_index()
    long = long.join(samples, on="sample_id")
    long["fraction"] = long["cells"] / long.groupby("sample_id")["cells"].transform("sum")
    return long[COMPOSITION_COLUMNS].sort_values(["sample_id", "cell_type"], ignore_index=True)


def compare_composition(table: pd.DataFrame) -> pd.DataFrame:
    """Kruskal-Wallis across subtypes of each cell type's per-sample fraction, BH-adjusted.

    Samples without a subtype ("unassigned", or "none" where consensus clustering found no
    significant subtypes) are left out. Where the test cannot be computed (fewer than two
    subtypes, or one sample per subtype, so that there is no variation within subtypes) the
    row says why in ``note`` and its statistic and p-values are empty; without subtypes every
    cell type still gets its row, with ``n_samples`` counting all samples.

    Returns
    -------
    pandas.DataFrame
        ``cell_type``, ``test``, ``statistic``, ``pvalue``, ``padj``, ``n_samples``, ``note``
        and ``mean_fraction_{subtype}`` per subtype.
    """
    subtypes = subtype_levels(table["subtype"])
    typed = table[table["subtype"].isin(subtypes)]
    too_few = nothing_to_compare(table["subtype"])
    rows = []
    for cell_type, group in (typed if subtypes else table).groupby("cell_type", sort=True):
        values = [group.loc[group["subtype"] == s, "fraction"].to_numpy(float) for s in subtypes]
        n_samples = int(sum(len(v) for v in values)) if subtypes else len(group)
        row = {"cell_type": cell_type, "test": "Kruskal-Wallis", "statistic": np.nan,
               "pvalue": np.nan, "n_samples": n_samples, "note": ""}  # fmt: skip
        means = zip(subtypes, values, strict=True)
        row.update({f"mean_fraction_{s}": float(v.mean()) for s, v in means})
        if len(subtypes) < 2:
            row["note"] = f"not computable: {too_few}"
        elif row["n_samples"] <= len(subtypes):
            row["note"] = "not computable: one sample per subtype, no variation within subtypes"
        elif np.ptp(np.concatenate(values)) == 0:
            row["note"] = "not computable: the fraction is the same in every sample"
        else:
            result = stats.kruskal(*values)
            row.update(statistic=float(result.statistic), pvalue=float(result.pvalue))
        rows.append(row)
    result = pd.DataFrame(rows)
    if result.empty:
        return pd.DataFrame(columns=["cell_type", "test", "statistic", "pvalue", "padj",
                                     "n_samples", "note"])  # fmt: skip
    result.insert(4, "padj", bh_adjust(result["pvalue"].to_numpy(float)))
    return result


def bh_adjust(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and does not count."""
    pvalues = np.asarray(pvalues, float)
    adjusted = np.full(pvalues.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(pvalues))
    if finite.size:
        order = finite[np.argsort(pvalues[finite], kind="stable")]
        ranked = pvalues[order] * finite.size / np.arange(1, finite.size + 1)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return adjusted


def read_signature(path: str | Path, *, name: str) -> pd.DataFrame:
    """One DESeq2 result table (``gene``, ``log2FoldChange``, ``padj``), checked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"bulk signature {name!r}: {path} does not exist; run the bulk "
                         "DESeq2 rule first or leave the signature out.")  # fmt: skip
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in DE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"bulk signature {name!r}: {path} lacks column(s) {some(missing)}; it "
                         "must be a DESeq2 result with gene, log2FoldChange and padj.")  # fmt: skip
    return table


def signature_genes(table: pd.DataFrame, *, max_padj: float = 0.05, min_log2fc: float = 1.0,
                    top_genes: int = 50) -> list[str]:  # fmt: skip
    """The ``top_genes`` most up-regulated significant genes (largest log2 fold change)."""
    table = table.dropna(subset=list(DE_COLUMNS))
    up = table[(table["padj"] < max_padj) & (table["log2FoldChange"] > min_log2fc)]
    up = up.sort_values(["log2FoldChange", "gene"], ascending=[False, True], kind="stable")
    return list(dict.fromkeys(up["gene"].astype(str)))[:top_genes]


def score_signatures(adata, signatures: dict[str, list[str]], *, seed: int,
                     min_signature_genes: int = 3) -> pd.DataFrame:  # fmt: skip
    """Mean ``score_genes`` score of each signature in each cell type.

    Parameters
    ----------
    adata : anndata.AnnData
        Log-normalised ``X`` and ``obs["cell_type"]``.
    signatures : dict of str to list of str
        Genes by contrast name (``RDLS2_vs_rest``).
    """
    import scanpy as sc

    rows = []
    cell_types = adata.obs["cell_type"].astype(str)
    for name, genes in signatures.items():
        subtype = name[: -len(VS_REST)] if name.endswith(VS_REST) else name
        used = [g for g in genes if g in adata.var_names]
        base = {"signature": name, "subtype": subtype, "genes_used": len(used)}
        if len(used) < min_signature_genes:
            note = (f"skipped: {len(used)} of {len(genes)} signature genes in the single-cell "
                    f"data, needs {min_signature_genes}")  # fmt: skip
            log.warning("signature %s %s", name, note)
            sizes = cell_types.value_counts().sort_index()
            rows.extend({**base, "cell_type": t, "cells": int(n), "mean_score": np.nan,
                         "note": note} for t, n in sizes.items())  # fmt: skip
            continue
        work = sc.tl.score_genes(adata, used, random_state=seed, copy=True, use_raw=False)
        scores = pd.Series(work.obs["score"].to_numpy(float), index=cell_types.to_numpy())
        for cell_type, values in scores.groupby(level=0, sort=True):
            rows.append({**base, "cell_type": cell_type, "cells": len(values),
                         "mean_score": float(values.mean()), "note": ""})  # fmt: skip
    return pd.DataFrame(rows, columns=SIGNATURE_COLUMNS)
