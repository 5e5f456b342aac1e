"""DESeq2 for one contrast: R's results reproduced, planted effects found, contrasts named."""

import numpy as np
import pandas as pd
import pytest

from rdls.bulk.de import (
    RESULT_COLUMNS,
    SHRUNK_COLUMN,
    contrast_groups,
    contrasts,
    differential_expression,
    parse_contrast,
    variance_stabilised,
)
from rdls.errors import InputError

PYDESEQ2 = "bulk_rnaseq/pydeseq2_synthetic"


def test_contrasts_one_vs_rest_then_pairs_in_natural_order():
    assert contrasts(["RDLS10", "RDLS2", "RDLS1", "RDLS2", ""]) == [
        "RDLS1_vs_rest", "RDLS2_vs_rest", "RDLS10_vs_rest",
        "RDLS1_vs_RDLS2", "RDLS1_vs_RDLS10", "RDLS2_vs_RDLS10",
    ]  # fmt: skip
    assert contrasts(["A", "B", "C"], pairwise=False) == ["A_vs_rest", "B_vs_rest", "C_vs_rest"]
    assert contrasts(["A", "B", "C"], one_vs_rest=False) == ["A_vs_B", "A_vs_C", "B_vs_C"]
    # With two subtypes one-vs-rest is the pair itself, not repeated.
    assert contrasts(["B", "A"]) == ["A_vs_B"]
    assert contrasts(["A"]) == []


def test_parse_contrast_names_the_problem():
    assert parse_contrast("RDLS1_vs_rest", levels=["RDLS1", "RDLS2"]) == ("RDLS1", "rest")
    assert parse_contrast("RDLS2_vs_RDLS1") == ("RDLS2", "RDLS1")
    with pytest.raises(InputError, match="is not of the form"):
        parse_contrast("RDLS1-RDLS2")
    with pytest.raises(InputError, match="with itself"):
        parse_contrast("RDLS1_vs_RDLS1")
    with pytest.raises(InputError, match=r"names subtype\(s\) 'RDLS4'.*RDLS1_vs_rest"):
        parse_contrast("RDLS4_vs_rest", levels=["RDLS1", "RDLS2", "RDLS3"])


def test_contrast_groups_one_vs_rest_and_full_design():
    subtype = pd.Series(["A", "B", "C", "A"], index=["s1", "s2", "s3", "s4"])
    group, level, reference = contrast_groups(subtype, "A_vs_rest")
    assert group.tolist() == ["A", "rest", "rest", "A"]
    assert (level, reference) == ("A", "rest")
    group, level, reference = contrast_groups(subtype, "C_vs_B")
    assert group.tolist() == subtype.tolist()
    assert (level, reference) == ("C", "B")


def _reference(shared_data, design: str, name: str) -> pd.DataFrame:
    return pd.read_csv(shared_data / PYDESEQ2 / "data" / design / name, index_col=0)


@pytest.fixture(scope="module")
def synthetic(shared_data):
    counts = pd.read_csv(shared_data / PYDESEQ2 / "synthetic/test_counts.csv", index_col=0)
    metadata = pd.read_csv(shared_data / PYDESEQ2 / "synthetic/test_metadata.csv", index_col=0)
    return counts, metadata


@pytest.mark.parametrize(("design", "covariates"), [("single_factor", []),
                                                     ("multi_factor", ["group"])])  # fmt: skip
def test_deseq2_reproduces_r(shared_data, synthetic, design, covariates):
    """R DESeq2 1.34 on PyDESeq2's synthetic data (~condition, ~group + condition), B vs A."""
    counts, metadata = synthetic
    found = differential_expression(
        counts, metadata, group="condition", level="B", reference="A", covariates=covariates,
        lfc_shrink=True,
    ).set_index("gene")  # fmt: skip
    r = _reference(shared_data, design, "r_test_res.csv")
    relative = ((found["log2FoldChange"] - r["log2FoldChange"]) / r["log2FoldChange"]).abs()
    assert relative.max() <= 1e-4
    assert (found["padj"] - r["padj"]).abs().max() <= 1e-3
    assert (found["pvalue"] - r["pvalue"]).abs().max() <= 1e-3
    assert ((found["lfcSE"] - r["lfcSE"]) / r["lfcSE"]).abs().max() <= 1e-3
    assert np.allclose(found["baseMean"], r["baseMean"], rtol=1e-6)
    # apeGLM: PyDESeq2's optimiser lands within 2.5e-4 (absolute) of R's lfcShrink; relative
    # 1.3e-3 single-factor, 6e-3 multi-factor (on a gene shrunk to -0.009).
    shrunk = _reference(shared_data, design, "r_test_lfc_shrink_res.csv")
    assert (found[SHRUNK_COLUMN] - shrunk["log2FoldChange"]).abs().max() <= 5e-4


def test_vst_reproduces_r_blind_vst(shared_data, synthetic):
    counts, _ = synthetic
    expected = _reference(shared_data, "single_factor", "r_vst.csv")
    found = variance_stabilised(counts)
    assert np.abs(found.to_numpy() - expected.loc[found.index, found.columns].to_numpy()).max() \
        <= 1e-3  # fmt: skip


def _design(sheet, assignments):
    design = sheet.set_index("sample_id")
    return design.assign(subtype=assignments["subtype"].to_numpy())


def test_planted_genes_are_found_in_their_direction(planted):
    counts, sheet, assignments = planted
    design = _design(sheet, assignments)
    group, level, reference = contrast_groups(design["subtype"], "RDLS1_vs_rest")
    result = differential_expression(
        counts, design.assign(g=group), group="g", level=level, reference=reference,
        covariates=["batch"],
    ).set_index("gene")  # fmt: skip
    assert list(result.reset_index().columns) == list(RESULT_COLUMNS)
    up = result.index.str.startswith("UP")
    found = (result["padj"] < 0.05) & (result["log2FoldChange"] > 0)
    assert found[up].mean() >= 0.9
    assert (result.loc[~up, "padj"] < 0.05).mean() <= 0.05
    assert result.loc[up, "log2FoldChange"].median() == pytest.approx(2.0, abs=0.3)


def test_pairwise_contrast_sign_and_shrinkage(planted):
    counts, sheet, assignments = planted
    design = _design(sheet, assignments)
    kwargs = {"group": "subtype", "lfc_shrink": True}
    forward = differential_expression(counts, design, level="RDLS1", reference="RDLS2", **kwargs)
    backward = differential_expression(counts, design, level="RDLS2", reference="RDLS1", **kwargs)
    assert np.allclose(forward["log2FoldChange"], -backward["log2FoldChange"], atol=1e-6)
    assert np.allclose(forward[SHRUNK_COLUMN], -backward[SHRUNK_COLUMN], atol=5e-3)
    up = forward["gene"].str.startswith("UP")
    assert (forward.loc[up, "log2FoldChange"] > 1).all()
    # Shrinkage pulls the noisy null genes towards 0, and more than the planted ones.
    kept = {name: forward.loc[rows, SHRUNK_COLUMN].abs().sum()
            / forward.loc[rows, "log2FoldChange"].abs().sum()
            for name, rows in (("null", ~up), ("planted", up))}  # fmt: skip
    assert kept["null"] < 0.9
    assert kept["planted"] > kept["null"]


def test_confounded_or_empty_covariates_are_refused(planted):
    counts, sheet, assignments = planted
    design = _design(sheet, assignments)
    confounded = design.assign(site=design["subtype"].map({"RDLS1": "x", "RDLS2": "y",
                                                           "RDLS3": "y"}))  # fmt: skip
    group, level, reference = contrast_groups(design["subtype"], "RDLS1_vs_rest")
    with pytest.raises(InputError, match=r"not of full rank.*Drop that covariate"):
        differential_expression(counts.head(30), confounded.assign(g=group), group="g",
                                level=level, reference=reference, covariates=["site"])  # fmt: skip
    holes = design.assign(batch=design["batch"].where(design.index != "B03", ""))
    with pytest.raises(InputError, match=r"covariate 'batch' is empty for sample\(s\) 'B03'"):
        differential_expression(counts.head(30), holes, group="subtype", level="RDLS1",
                                reference="RDLS2", covariates=["batch"])  # fmt: skip


def test_a_design_without_replicates_is_refused(planted):
    counts, sheet, assignments = planted
    design = _design(sheet, assignments).iloc[[0, 6, 12]]
    with pytest.raises(InputError, match=r"3 samples for a design of 3 coefficients"):
        differential_expression(counts[design.index], design, group="subtype", level="RDLS1",
                                reference="RDLS2")  # fmt: skip
