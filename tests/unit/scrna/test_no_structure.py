"""No significant subtypes: the composition by subtype is written for every sample and cell
type, with a note instead of a test, and the figures say why."""

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from rdls.compare import NO_SUBTYPES_NOTE
from rdls.scrna.composition import compare_composition
from rdls.scrna.steps import by_subtype_step

TYPES = ("T_NK", "fibroblast", "epithelial")


def annotated(path, subtype="none"):
    """Four samples of 30 cells whose T/NK share grows from sample to sample."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(4):
        t_nk = 5 + 5 * s
        labels = ["T_NK"] * t_nk + ["fibroblast"] * 10 + ["epithelial"] * (20 - t_nk)
        rows += [{"sample_id": f"SC{s}", "subject_id": f"P{s}", "subtype": subtype,
                  "cell_type": label} for label in labels]  # fmt: skip
    obs = pd.DataFrame(rows, index=[f"c{i}" for i in range(len(rows))])
    x = sp.csr_matrix(rng.poisson(1.0, size=(len(obs), 20)).astype(np.float32))
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(20)]))
    adata.layers["counts"] = x.copy()
    adata.write_h5ad(path)
    return path


def test_every_cell_type_gets_a_row_that_says_why_there_is_no_test(tmp_path):
    out = {"out_composition": tmp_path / "composition.tsv", "out_tests": tmp_path / "tests.tsv",
           "out_bars_png": tmp_path / "bars.png",
           "out_signature_scores": tmp_path / "scores.tsv",
           "out_signature_png": tmp_path / "signature.png"}  # fmt: skip
    by_subtype_step(annotated_h5ad=annotated(tmp_path / "a.h5ad"), signatures={}, settings={},
                    **out)  # fmt: skip
    composition = pd.read_csv(out["out_composition"], sep="\t")
    assert set(composition["subtype"]) == {"none"} and len(composition) == 4 * len(TYPES)
    t_nk = composition[composition["cell_type"] == "T_NK"].set_index("sample_id")["fraction"]
    np.testing.assert_allclose(t_nk, [5 / 30, 10 / 30, 15 / 30, 20 / 30])
    tests = pd.read_csv(out["out_tests"], sep="\t")
    assert tests["cell_type"].tolist() == sorted(TYPES)
    assert (tests["note"] == f"not computable: {NO_SUBTYPES_NOTE}").all()
    assert tests["pvalue"].isna().all() and (tests["n_samples"] == 4).all()
    assert not [c for c in tests.columns if c.startswith("mean_fraction_")]
    assert NO_SUBTYPES_NOTE in (tmp_path / "bars.svg").read_text()
    assert NO_SUBTYPES_NOTE in (tmp_path / "signature.svg").read_text()


def test_one_real_subtype_is_named_in_the_note():
    table = pd.DataFrame({"sample_id": ["a", "b"], "subject_id": ["p", "q"],
                          "subtype": ["RDLS1", "unassigned"], "cell_type": "T_NK",
                          "cells": 1, "fraction": [0.2, 0.3]})  # fmt: skip
    tests = compare_composition(table)
    assert tests["note"].item() == (
        "not computable: one subtype only (RDLS1): nothing to compare by subtype"
    )
    assert tests["n_samples"].item() == 1 and tests["mean_fraction_RDLS1"].item() == 0.2
