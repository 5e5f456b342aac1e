"""rdls.survival against R on the CRCSC relapse-free survival cohort (783 subjects, 202 events).

Reference values computed by R 4.2.2 with survival 3.5.3 and timeROC 0.4.1 (the validation
data's ``survival/r_reference``): ``cox.zph`` of the clinical + CMS model with the "km" and
"identity" transforms, and ``timeROC(weighting = "marginal", iid = TRUE)`` with ``compare`` of
the clinical against the clinical + CMS linear predictor at 36 and 60 months.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.survival.cox import fit_cox, make_design
from rdls.survival.ph_test import cox_zph
from rdls.survival.td_auc import compare_auc, time_dependent_auc

TERMS = {
    "age": ["age"],
    "gender": ["gendermale"],
    "stage": ["stage2", "stage3", "stage4"],
    "cms": ["cmsCMS1", "cmsCMS3", "cmsCMS4"],
}


@pytest.fixture(scope="module")
def reference(shared_data):
    return shared_data / "survival" / "r_reference"


@pytest.fixture(scope="module")
def cohort(reference):
    return pd.read_csv(reference / "cms_complete.tsv", sep="\t")


@pytest.fixture(scope="module")
def r_coefficients(reference):
    table = pd.read_csv(reference / "cox_coefficients.tsv", sep="\t")
    return table[table["model"] == "clinical_cms"].set_index("term")["coef"]


def _r_design(cohort: pd.DataFrame) -> pd.DataFrame:
    """R's treatment coding: female, stage 1 and CMS2 are the references."""
    X = pd.DataFrame({"age": cohort["age"], "gendermale": (cohort["gender"] == "male") * 1.0})
    for stage in (2, 3, 4):
        X[f"stage{stage}"] = (cohort["stage"] == stage) * 1.0
    for cms in ("CMS1", "CMS3", "CMS4"):
        X[f"cms{cms}"] = (cohort["cms"] == cms) * 1.0
    return X


@pytest.mark.parametrize("transform", ["km", "identity"])
def test_cox_zph_equals_survival_3(reference, cohort, r_coefficients, transform):
    expected = pd.read_csv(reference / f"cox_zph_{transform}.tsv", sep="\t").set_index("term")
    X = _r_design(cohort)[r_coefficients.index]
    got = cox_zph(
        X, cohort["rfsMo"], cohort["rfsStat"], r_coefficients.to_numpy(), terms=TERMS,
        transform=transform,
    ).set_index("term")  # fmt: skip
    assert got.index.tolist() == expected.index.tolist()
    np.testing.assert_allclose(got["statistic"], expected["chisq"], atol=1e-6)
    np.testing.assert_array_equal(got["df"], expected["df"])
    np.testing.assert_allclose(got["p_value"], expected["p"], atol=1e-7)


@pytest.mark.parametrize("transform", ["km", "identity"])
def test_the_workflows_cox_fit_gives_rs_ph_test(reference, cohort, transform):
    """Through fit_cox: lifelines' coefficients, the design's own coding and term names."""
    expected = pd.read_csv(reference / f"cox_zph_{transform}.tsv", sep="\t").set_index("term")
    frame = cohort.assign(stage=cohort["stage"].astype(str))
    design = make_design(
        frame, covariates=["age", "gender", "stage", "cms"], categorical=["gender", "stage", "cms"],
        reference={"gender": "female", "stage": "1", "cms": "CMS2"},
    )  # fmt: skip
    result = fit_cox(frame, time="rfsMo", event="rfsStat", design=design, ph_transform=transform)
    got = result.ph_test.set_index("term")
    assert got.index.tolist() == ["age", "gender", "stage", "cms", "GLOBAL"]
    np.testing.assert_allclose(got["statistic"], expected["chisq"], atol=1e-3)
    np.testing.assert_allclose(got["p_value"], expected["p"], atol=1e-3)


def test_time_dependent_auc_equals_timeroc(reference, cohort):
    expected = pd.read_csv(reference / "timeroc_auc.tsv", sep="\t")
    markers = pd.read_csv(reference / "linear_predictors.tsv", sep="\t")
    assert (markers["sample"] == cohort["sample"]).all()
    for row in expected.itertuples():
        clinical = time_dependent_auc(
            cohort["rfsMo"], cohort["rfsStat"], markers["lp1"], horizon=row.time
        )
        with_cms = time_dependent_auc(
            cohort["rfsMo"], cohort["rfsStat"], markers["lp2"], horizon=row.time
        )
        test = compare_auc(clinical, with_cms)
        assert clinical.auc == pytest.approx(row.auc_clinical, abs=1e-9)
        assert with_cms.auc == pytest.approx(row.auc_clinical_cms, abs=1e-9)
        assert clinical.se == pytest.approx(row.se_clinical, abs=1e-9)
        assert with_cms.se == pytest.approx(row.se_clinical_cms, abs=1e-9)
        assert test["p_value"] == pytest.approx(row.p_difference, abs=1e-8)
    # At 36 months seven subjects have that time exactly (two recurred): neither cases nor
    # controls, as in timeROC.
    at_36 = time_dependent_auc(cohort["rfsMo"], cohort["rfsStat"], markers["lp1"], horizon=36)
    assert at_36.cases + at_36.controls + at_36.neither == len(cohort)
    assert at_36.cases == ((cohort["rfsMo"] < 36) & (cohort["rfsStat"] == 1)).sum()
