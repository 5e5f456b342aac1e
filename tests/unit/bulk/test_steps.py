"""The bulk steps end to end on small planted cohorts: files, columns, messages."""

import logging
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from rdls.bulk import steps
from rdls.errors import InputError

from .conftest import write_cohort
from .test_deconvolution import TYPES, bulk, profiles, single_cells

DE_COLUMNS = ["gene", "baseMean", "log2FoldChange", "lfcSE", "pvalue", "padj"]
GSEA_COLUMNS = ["term", "nes", "pvalue", "fdr", "leading_edge", "size"]
GMT = Path(__file__).resolve().parents[3] / "resources/genesets/h.all.v2022.1.Hs.symbols.gmt"


def figures(png):
    return png.exists() and png.with_suffix(".svg").exists()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, planted):
    counts, sheet, assignments = planted
    # One subject without a subtype: left out of every comparison.
    assignments = assignments.assign(subtype=assignments["subtype"].where(
        assignments["subject_id"] != "P18", ""))  # fmt: skip
    return write_cohort(tmp_path_factory.mktemp("bulk"), counts, sheet, assignments)


@pytest.fixture(scope="module")
def de_result(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("de")
    paths = {"out_table": out / "RDLS1_vs_rest.tsv", "out_volcano_png": out / "volcano.png",
             "out_ma_png": out / "ma.png"}  # fmt: skip
    logger = logging.getLogger("rdls.bulk")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        steps.deseq2_step(**cohort, contrast="RDLS1_vs_rest", settings={"covariates": ["batch"]},
                          threads=1, **paths)  # fmt: skip
    finally:
        logger.removeHandler(handler)
    return paths, [r.getMessage() for r in records]


def test_deseq2_step_writes_the_contract_table_and_figures(de_result):
    paths, messages = de_result
    table = pd.read_csv(paths["out_table"], sep="\t")
    assert list(table.columns) == [*DE_COLUMNS, "log2FoldChange_shrunk"]
    up = table["gene"].str.startswith("UP")
    assert ((table["padj"] < 0.05) & (table["log2FoldChange"] > 0))[up].mean() >= 0.9
    assert figures(paths["out_volcano_png"]) and figures(paths["out_ma_png"])
    assert any("have no subtype" in m and "B18" in m for m in messages)
    assert any("RDLS1 6 samples" in m and "rest 11 samples" in m for m in messages)


def test_deseq2_step_without_a_side_writes_an_empty_table(cohort, tmp_path):
    out = {"out_table": tmp_path / "t.tsv", "out_volcano_png": tmp_path / "v.png",
           "out_ma_png": tmp_path / "m.png"}  # fmt: skip
    steps.deseq2_step(**cohort, contrast="RDLS4_vs_rest", settings={"lfc_shrink": False},
                      threads=1, **out)  # fmt: skip
    assert list(pd.read_csv(out["out_table"], sep="\t").columns) == DE_COLUMNS
    assert figures(out["out_volcano_png"])
    gsea = {"out_table": tmp_path / "gsea.tsv", "out_png": tmp_path / "gsea.png"}
    steps.gsea_step(de_table=out["out_table"], gmt=GMT, settings={}, seed=1, threads=1, **gsea)
    assert list(pd.read_csv(gsea["out_table"], sep="\t").columns) == GSEA_COLUMNS
    assert figures(gsea["out_png"])
    with pytest.raises(InputError, match="is not of the form"):
        steps.deseq2_step(**cohort, contrast="RDLS1-RDLS2", settings={}, threads=1, **out)


def test_covariates_come_from_either_sheet(cohort, planted):
    _, sheet, assignments = planted
    subjects = pd.DataFrame({"subject_id": sheet["subject_id"],
                             "age": np.linspace(40, 80, len(sheet)).astype(str)})  # fmt: skip
    table = steps.sample_table(cohort["sheet"], assignments, subjects=subjects,
                               covariates=["batch", "age"])  # fmt: skip
    assert table.loc["B01", "batch"] == "b0" and table.loc["B18", "age"] == "80.0"
    with pytest.raises(InputError, match=r"covariate 'site' .* not a column of the bulk sheet"):
        steps.sample_table(cohort["sheet"], assignments, covariates=["site"])


@pytest.mark.filterwarnings("ignore:The dispersion trend curve fitting did not converge")
def test_overview_step(cohort, de_result, tmp_path):
    paths, _ = de_result
    out = {"out_vst": tmp_path / "vst.parquet", "out_pca_png": tmp_path / "pca.png",
           "out_heatmap_png": tmp_path / "heatmap.png"}  # fmt: skip
    steps.overview_step(**cohort, settings={}, de_tables={"RDLS1_vs_rest": paths["out_table"]},
                        **out)  # fmt: skip
    vst = pd.read_parquet(out["out_vst"])
    assert vst.columns[0] == "gene" and len(vst.columns) == 19
    assert figures(out["out_pca_png"]) and figures(out["out_heatmap_png"])
    genes = steps.top_de_genes({"x": paths["out_table"]}, per_table=5, alpha=0.05)
    assert len(genes) == 5 and all(g.startswith("UP") for g in genes)


def test_principal_components_separate_a_planted_group():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(100, 10))
    values[:20, :5] += 4
    scores, explained = steps.principal_components(pd.DataFrame(values), top_genes=50)
    assert scores.shape == (10, 2) and explained[0] > explained[1]
    assert np.sign(scores[:5, 0]).tolist() != np.sign(scores[5:, 0]).tolist()
    assert abs(scores[:5, 0].mean() - scores[5:, 0].mean()) > 5


def test_gsea_step_finds_the_planted_genes(de_result, tmp_path):
    paths, _ = de_result
    genes = pd.read_csv(paths["out_table"], sep="\t")["gene"]
    rng = np.random.default_rng(0)
    lines = ["PLANTED_UP\tplanted\t" + "\t".join(g for g in genes if g.startswith("UP"))]
    lines += [f"RANDOM_{k}\trandom\t" + "\t".join(rng.choice(genes, 25, replace=False))
              for k in range(5)]  # fmt: skip
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("\n".join(lines) + "\n")
    out = {"out_table": tmp_path / "gsea.tsv", "out_png": tmp_path / "gsea.png"}
    steps.gsea_step(de_table=paths["out_table"], gmt=gmt, settings={"permutations": 200},
                    seed=1, threads=1, **out)  # fmt: skip
    result = pd.read_csv(out["out_table"], sep="\t")
    assert list(result.columns) == GSEA_COLUMNS
    assert result.iloc[0]["term"] == "PLANTED_UP" and result.iloc[0]["nes"] > 0
    assert figures(out["out_png"])


def test_scores_step_orders_subtypes(cohort, planted, tmp_path):
    counts, _, _ = planted
    others = [g for g in counts.index if not g.startswith("UP")]
    gmt = tmp_path / "estimate.gmt"
    gmt.write_text("ImmuneSignature\tx\t" + "\t".join(counts.index[:20]) + "\n"
                   "StromalSignature\tx\t" + "\t".join(others[:20]) + "\n")  # fmt: skip
    out = {"out_scores": tmp_path / "scores.tsv", "out_tests": tmp_path / "tests.tsv",
           "out_png": tmp_path / "scores.png"}  # fmt: skip
    steps.scores_step(**cohort, gmt=gmt, settings={}, **out)
    scores = pd.read_csv(out["out_scores"], sep="\t")
    assert list(scores.columns) == ["sample_id", "subject_id", "subtype", "immune_score",
                                    "stromal_score", "estimate_score"]  # fmt: skip
    assert scores.groupby("subtype")["immune_score"].mean().idxmax() == "RDLS1"
    assert scores["subtype"].isna().sum() == 1
    tests = pd.read_csv(out["out_tests"], sep="\t")
    first = tests[(tests["metric"] == "immune_score") & (tests["comparison"] == "all")].iloc[0]
    assert first["p_value"] < 0.01 and first["median_RDLS1"] > first["median_RDLS2"]
    assert set(tests["comparison"]) == {"all", "RDLS1 vs RDLS2", "RDLS1 vs RDLS3",
                                        "RDLS2 vs RDLS3"}  # fmt: skip
    assert figures(out["out_png"])


def test_deconvolve_step_with_and_without_subtypes(tmp_path):
    shares = profiles()
    genes = [f"G{i}" for i in range(shares.shape[1])]
    cells, labels = single_cells(shares)
    labels = labels.astype(object)
    labels[:3] = "doublet"
    adata = anndata.AnnData(X=sp.csr_matrix(cells, dtype=np.float32),
                            obs=pd.DataFrame({"cell_type": labels},
                                             index=[f"c{i}" for i in range(len(labels))]),
                            var=pd.DataFrame(index=genes))  # fmt: skip
    adata.write_h5ad(tmp_path / "annotated.h5ad")
    fractions = np.random.default_rng(3).dirichlet(np.full(len(TYPES), 2.0), size=9)
    counts = bulk(shares, fractions).set_axis(pd.Index(genes, name="gene"))
    samples = list(counts.columns)
    sheet = pd.DataFrame({"sample_id": samples, "subject_id": [f"P{s}" for s in samples]})
    assignments = pd.DataFrame({"subject_id": sheet["subject_id"],
                                "subtype": np.repeat(["A", "B", "C"], 3)})  # fmt: skip
    paths = write_cohort(tmp_path, counts, sheet, assignments)
    for given in (paths["assignments"], None):
        out = {k: tmp_path / f"{k}.{'png' if k == 'out_png' else 'tsv'}"
               for k in ("out_signature", "out_fractions", "out_tests", "out_png")}  # fmt: skip
        steps.deconvolve_step(counts=paths["counts"], sheet=paths["sheet"], assignments=given,
                              annotated_h5ad=tmp_path / "annotated.h5ad",
                              settings={"genes_per_type": 10}, **out)  # fmt: skip
        signature = pd.read_csv(out["out_signature"], sep="\t")
        assert list(signature.columns[:2]) == ["gene", "marker_of"] and len(signature) == 40
        found = pd.read_csv(out["out_fractions"], sep="\t").set_index("sample_id")
        assert list(found.columns) == ["subject_id", "subtype", *sorted(TYPES)]
        estimated = found[list(TYPES)].to_numpy()
        assert np.abs(estimated - fractions).max() <= 0.05
        tests = pd.read_csv(out["out_tests"], sep="\t")
        assert (len(tests) > 0) == (given is not None)
        assert figures(out["out_png"])


def test_summaries_of_de_and_gsea(de_result, tmp_path):
    paths, _ = de_result
    out = tmp_path / "de_summary.tsv"
    steps.de_summary_step(tables={"RDLS1_vs_rest": paths["out_table"]}, alpha=0.05,
                          out_summary=out)  # fmt: skip
    summary = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert list(summary.columns) == ["contrast", "genes_tested", "up", "down", "top_up",
                                     "top_down"]  # fmt: skip
    row = summary.iloc[0]
    table = pd.read_csv(paths["out_table"], sep="\t")
    significant = table[table["padj"] < 0.05]
    assert row["contrast"] == "RDLS1_vs_rest" and row["up"] >= 18
    assert row["down"] == (significant["log2FoldChange"] < 0).sum()
    assert row["genes_tested"] == table["pvalue"].notna().sum()
    assert all(g.startswith("UP") for g in row["top_up"].split(";"))
    gsea = tmp_path / "gsea.tsv"
    pd.DataFrame({"term": ["A", "B", "C"], "nes": [2.0, -1.8, 0.3], "pvalue": [0.0, 0.01, 0.8],
                  "fdr": [0.0, 0.1, 0.9], "leading_edge": ["x", "y", "z"],
                  "size": [20, 30, 40]}).to_csv(gsea, sep="\t", index=False)  # fmt: skip
    steps.gsea_summary_step(tables=[gsea], fdr=0.25, out_summary=tmp_path / "g.tsv")
    found = pd.read_csv(tmp_path / "g.tsv", sep="\t")
    assert found["term"].tolist() == ["A", "B"]
    assert found["direction"].tolist() == ["up", "down"] and set(found["contrast"]) == {"gsea"}
