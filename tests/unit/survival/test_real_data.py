"""rdls.survival on published data: R's coxph on the Rossi recidivism data, and the CMS4
relapse-free survival of the CRC Subtyping Consortium (Guinney et al., Nat Med 2015)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.survival.cox import fit_cox, make_design
from rdls.survival.km import check_survival, logrank, survival_at

# R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio), Efron ties,
# coefficient and se(coef) to five decimals (Fox and Weisberg, "Cox proportional-hazards
# regression for survival data in R", appendix to An R Companion to Applied Regression; the
# lifelines documentation prints the same numbers for its bundled copy). The CSV codes every
# binary covariate 0/1 with race 1 = black and mar 1 = married, so these are the indicators'
# coefficients; carData::Rossi's factors (raceother, marnot married) flip those two signs.
R_COXPH = {
    "fin": (-0.37942, 0.19138),
    "age": (-0.05744, 0.02200),
    "race": (0.31390, 0.30799),
    "wexp": (-0.14980, 0.21222),
    "mar": (-0.43370, 0.38187),
    "paro": (-0.08487, 0.19576),
    "prio": (0.09150, 0.02865),
}
R_LIKELIHOOD_RATIO = 33.27  # "Likelihood ratio test=33.27 on 7 df"
R_CONCORDANCE = 0.640


def _read(path: Path, **options) -> pd.DataFrame:
    if not path.is_file():
        pytest.skip(f"{path} not found (see DESIGN.md: validation data)")
    return pd.read_csv(path, **options)


def test_rossi_cox_matches_r_coxph_to_four_decimals(shared_data):
    rossi = _read(shared_data / "survival" / "sksurv_testdata" / "rossi.csv")
    assert rossi.columns.tolist() == ["week", "arrest", *R_COXPH]
    assert set(np.unique(rossi[["fin", "race", "wexp", "mar", "paro"]])) == {0, 1}
    assert (rossi["race"] == 1).sum() == 379  # black; 53 married
    assert (rossi["mar"] == 1).sum() == 53

    design = make_design(rossi, covariates=list(R_COXPH))
    result = fit_cox(rossi, time="week", event="arrest", design=design)

    table = result.table.set_index("term")
    # "To four decimals" as a distance: within half a unit of the fourth decimal of R's
    # five-decimal values (comparing rounded values could differ at a rounding boundary).
    for term, (coef, se) in R_COXPH.items():
        assert abs(table.loc[term, "coef"] - coef) < 5e-5, term
        assert abs(table.loc[term, "se"] - se) < 5e-5, term
    assert result.n == 432
    assert result.events == 114
    assert result.model.log_likelihood_ratio_test().test_statistic == pytest.approx(
        R_LIKELIHOOD_RATIO, abs=0.005
    )
    assert result.concordance == pytest.approx(R_CONCORDANCE, abs=0.0005)


@pytest.fixture(scope="module")
def cms(shared_data) -> pd.DataFrame:
    """Labelled samples with relapse-free follow-up (rfsMo in months, rfsStat 1 = relapse)."""
    table = _read(
        shared_data / "survival" / "cms_crcsc" / "clinical_molecular_public_all.txt", sep="\t"
    )
    assert len(table) == 2207
    labelled = table[table["cms_label"] != "NOLBL"]
    assert len(table) - len(labelled) == 232  # no consensus subtype
    followed = labelled.dropna(subset=["rfsMo", "rfsStat"], how="all")
    assert len(labelled) - len(followed) == 1152  # no relapse-free follow-up at all
    partial = followed["rfsMo"].notna() != followed["rfsStat"].notna()
    assert partial.sum() == 3  # a relapse time without its status (GSE39582)
    return followed.loc[~partial]


def test_cms_check_survival_names_the_samples_without_status(shared_data):
    table = _read(
        shared_data / "survival" / "cms_crcsc" / "clinical_molecular_public_all.txt", sep="\t"
    )
    with pytest.raises(
        InputError,
        match=r"'rfsMo' is given but 'rfsStat' is missing for 3 subjects "
        r"\(GSM971967, GSM972350, GSM972356\)",
    ):
        check_survival(table.set_index("sample"), time="rfsMo", event="rfsStat")


def test_cms4_has_the_worst_relapse_free_survival(cms):
    followed = check_survival(cms, time="rfsMo", event="rfsStat", where="CRCSC clinical")
    assert len(followed) == 820
    assert int(followed["rfsStat"].sum()) == 232
    time, event = followed["rfsMo"], followed["rfsStat"]

    overall, pairwise = logrank(time, event, followed["cms_label"])
    assert overall["df"] == 3
    assert overall["p_value"] < 1e-4
    versus_cms4 = pairwise[pairwise["group_b"] == "CMS4"]
    assert (versus_cms4["p_adjusted"] < 0.01).all()

    at_60 = survival_at(time, event, followed["cms_label"], horizon=60).set_index("group")
    assert at_60.index.tolist() == ["CMS1", "CMS2", "CMS3", "CMS4"]
    assert at_60["survival"].idxmin() == "CMS4"
    assert at_60.loc["CMS4", "survival"] == pytest.approx(0.56, abs=0.01)
    assert at_60.drop("CMS4")["survival"].min() > at_60.loc["CMS4", "ci_upper"]

    frame = followed.assign(cms4=np.where(followed["cms_label"] == "CMS4", "CMS4", "rest"))
    design = make_design(frame, covariates=["cms4"], reference={"cms4": "rest"})
    result = fit_cox(frame, time="rfsMo", event="rfsStat", design=design)
    cms4 = result.table.set_index("term").loc["cms4[CMS4]"]
    assert 1.5 < cms4["hazard_ratio"] < 2.6  # 2.03 (1.56 to 2.65)
    assert cms4["p_value"] < 0.001
    assert logrank(time, event, frame["cms4"])[0]["p_value"] < 0.001
