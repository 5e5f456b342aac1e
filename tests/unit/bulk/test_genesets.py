"""Gene sets: GMT files, preranked GSEA finds a planted set, ESTIMATE scores as ESTIMATE's."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from rdls.bulk.genesets import (
    GSEA_COLUMNS,
    estimate_scores,
    prerank,
    rank_genes,
    read_gmt,
    ssgsea_scores,
)
from rdls.errors import InputError

GENESETS = Path(__file__).resolve().parents[3] / "resources" / "genesets"


def test_shipped_gene_sets_read_as_published():
    hallmark = read_gmt(GENESETS / "h.all.v2022.1.Hs.symbols.gmt")
    assert len(hallmark) == 50
    assert "HALLMARK_TGF_BETA_SIGNALING" in hallmark
    estimate = read_gmt(GENESETS / "SI_geneset.gmt")
    assert {k: len(v) for k, v in estimate.items()} == {"StromalSignature": 141,
                                                        "ImmuneSignature": 141}  # fmt: skip


def test_bad_gmt_lines_are_named(tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_text("A\tdesc\tG1\tG2\nB only-a-name\n")
    with pytest.raises(InputError, match=r"sets.gmt, line 2: .* has 1 field\(s\)"):
        read_gmt(path)
    path.write_text("A\tdesc\tG1\nA\tdesc\tG2\n")
    with pytest.raises(InputError, match=r"line 2: gene set 'A' is defined twice"):
        read_gmt(path)
    with pytest.raises(InputError, match="does not exist"):
        read_gmt(tmp_path / "missing.gmt")


def test_rankings():
    table = pd.DataFrame({"gene": ["a", "b", "c", "d"], "log2FoldChange": [1.0, -2.0, 0.5, 1.0],
                          "lfcSE": [0.5, 0.5, np.nan, 0.25],
                          "pvalue": [0.01, 0.001, 0.5, 0.0]})  # fmt: skip
    stat = rank_genes(table, by="stat")
    assert stat.index.tolist() == ["d", "a", "b"]  # c has no statistic
    assert stat.tolist() == [4.0, 2.0, -4.0]
    signed = rank_genes(table, by="signed_p")
    assert signed.index.tolist() == ["d", "a", "c", "b"]
    assert signed["d"] == pytest.approx(300.0)
    with pytest.raises(InputError, match="unknown GSEA ranking"):
        rank_genes(table, by="t")


def _ranking_with_planted_set(seed=0):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(1500)]
    metric = pd.Series(rng.normal(size=len(genes)), index=genes)
    planted = list(rng.choice(genes, 30, replace=False))
    metric[planted] += 2.0
    sets = {f"RANDOM_{k}": list(rng.choice(genes, 40, replace=False)) for k in range(15)}
    sets["PLANTED"] = planted
    sets["TOO_SMALL"] = genes[:5]
    return metric.sort_values(ascending=False), sets


def test_gsea_puts_the_planted_set_first_and_is_seeded():
    ranking, sets = _ranking_with_planted_set()
    result = prerank(ranking, sets, permutations=200, seed=3)
    assert list(result.columns) == list(GSEA_COLUMNS)
    top = result.iloc[0]
    assert top["term"] == "PLANTED"
    assert top["nes"] > 2 and top["fdr"] < 0.01 and top["size"] == 30
    assert set(top["leading_edge"].split(";")) <= set(sets["PLANTED"])
    assert "TOO_SMALL" not in set(result["term"])
    assert (result["fdr"].iloc[1:] > 0.05).mean() >= 0.8  # random sets mostly not enriched
    again = prerank(ranking, sets, permutations=200, seed=3)
    pd.testing.assert_frame_equal(result, again)


def test_gsea_without_usable_sets_is_empty():
    ranking, _ = _ranking_with_planted_set()
    assert prerank(ranking, {"X": ["nope"]}).empty


def _estimate_reference(expression, gene_sets):
    """ESTIMATE's estimateScore, transcribed from the R package (rank normalise, weight 0.25,
    ES = sum of the running-sum differences)."""
    ranks = np.apply_along_axis(rankdata, 0, expression.to_numpy()) * 10000 / len(expression)
    out = {}
    for name, members in gene_sets.items():
        tagged = expression.index.isin(members)
        scores = []
        for j in range(expression.shape[1]):
            order = np.argsort(-ranks[:, j], kind="stable")
            tag, weight = tagged[order], np.abs(ranks[order, j]) ** 0.25
            hits = np.cumsum(tag * weight / weight[tag].sum())
            misses = np.cumsum(~tag / (~tag).sum())
            scores.append(float((hits - misses).sum()))
        out[name] = scores
    return pd.DataFrame(out, index=expression.columns)


def test_ssgsea_equals_the_estimate_algorithm():
    rng = np.random.default_rng(1)
    genes = [f"G{i}" for i in range(400)]
    expression = pd.DataFrame(rng.lognormal(3, 1, (400, 6)), index=genes,
                              columns=[f"s{i}" for i in range(6)])  # fmt: skip
    sets = {"A": [*genes[:25], "ABSENT"], "B": list(rng.choice(genes, 30, replace=False))}
    found = ssgsea_scores(expression, sets)
    expected = _estimate_reference(expression, sets)
    np.testing.assert_allclose(found.to_numpy(), expected.to_numpy(), rtol=1e-8)


def test_estimate_scores_follow_planted_infiltration():
    rng = np.random.default_rng(2)
    genes = [f"G{i}" for i in range(600)]
    immune, stromal = genes[:40], genes[40:80]
    groups = np.repeat(["immune_rich", "stroma_rich", "neither"], 5)
    expression = pd.DataFrame(rng.lognormal(4, 1, (600, 15)), index=genes,
                              columns=[f"s{i}" for i in range(15)])  # fmt: skip
    expression.loc[immune, groups == "immune_rich"] *= 4
    expression.loc[stromal, groups == "stroma_rich"] *= 4
    sets = {"ImmuneSignature": immune, "StromalSignature": stromal}
    scores = estimate_scores(np.log2(expression + 1), sets)
    assert list(scores.columns) == ["immune_score", "stromal_score", "estimate_score"]
    means = scores.groupby(groups).mean()
    assert means["immune_score"].idxmax() == "immune_rich"
    assert means["stromal_score"].idxmax() == "stroma_rich"
    assert means["estimate_score"].idxmin() == "neither"
    np.testing.assert_allclose(scores["estimate_score"],
                               scores["immune_score"] + scores["stromal_score"])  # fmt: skip


def test_estimate_needs_its_sets_and_their_genes():
    expression = pd.DataFrame({"s1": [1.0, 2.0]}, index=["A", "B"])
    with pytest.raises(InputError, match=r"lacks set\(s\) 'ImmuneSignature'"):
        estimate_scores(expression, {"StromalSignature": ["A"]})
    sets = {"ImmuneSignature": ["A", "X"], "StromalSignature": ["B", "Y"]}
    with pytest.raises(InputError, match=r"fewer than 10 genes .*HGNC symbol"):
        estimate_scores(expression, sets)
