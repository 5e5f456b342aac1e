"""Multiple imputation of missing covariates (chained equations, Rubin's rules): closer to the
full-data Cox fit than complete cases when being missing depends on the outcome, imputed values
are observed ones, reruns are identical, and the Cox table of the demo's sheet under both
settings of `survival.missing`."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rdls.errors import InputError
from rdls.survival.cox import fit_cox, make_design
from rdls.survival.imputation import impute_chained, pool_rubin
from rdls.survival.km import nelson_aalen_at

TIME, EVENT = "rfs_months", "rfs_event"


def cohort(n=600, seed=1):
    """x and stage carry the hazard; z is correlated with both and has no effect of its own."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    stage = np.where(z + rng.normal(size=n) > 0.3, "T3", "T2")
    x = 0.8 * z + rng.normal(scale=0.6, size=n)
    t = rng.exponential(1 / (0.1 * np.exp(0.7 * x + 0.8 * (stage == "T3"))))
    c = rng.uniform(2, 15, n)
    full = pd.DataFrame({"x": x, "stage": stage, "z": z, TIME: np.minimum(t, c),
                         EVENT: (t < c).astype(int)})  # fmt: skip
    holed = full.copy()
    # missing at random given the outcome: x is missing for half the recurrences
    holed.loc[rng.random(n) < np.where(full[EVENT] == 1, 0.5, 0.1), "x"] = np.nan
    holed.loc[rng.random(n) < 0.15, "stage"] = np.nan
    return full, holed


def imputed_fit(holed, design, *, m=10, seed=3):
    datasets = impute_chained(holed, covariates=design.covariates,
                              levels=design.categorical_levels, time=TIME, event=EVENT, m=m,
                              seed=seed)  # fmt: skip
    fits = [fit_cox(d, time=TIME, event=EVENT, design=design).table for d in datasets]
    pooled = pool_rubin(np.array([f["coef"] for f in fits]),
                        np.array([f["se"] ** 2 for f in fits]),
                        complete_df=len(holed) - len(design.terms))  # fmt: skip
    return datasets, pooled


def test_imputation_is_closer_to_the_full_data_than_complete_cases():
    full, holed = cohort()
    design = make_design(full, covariates=["x", "stage", "z"])
    truth = fit_cox(full, time=TIME, event=EVENT, design=design).table["coef"].to_numpy()
    complete = fit_cox(holed, time=TIME, event=EVENT, design=design).table
    _, pooled = imputed_fit(holed, design)
    error_cc = np.abs(complete["coef"].to_numpy() - truth)
    error_mi = np.abs(pooled["coef"].to_numpy() - truth)
    assert error_mi.sum() < 0.6 * error_cc.sum()
    # z has no effect: complete cases make one up (selection on the outcome), imputation not
    assert error_cc[2] > 0.15 and error_mi[2] < 0.05
    # imputation keeps the subjects complete cases drop: smaller standard errors
    assert (pooled["se"].to_numpy() < complete["se"].to_numpy()).all()
    # and the uncertainty of the imputation shows as missing information where x was missing
    assert 0.1 < pooled["fmi"][0] < 0.5


def test_imputed_values_are_observed_ones_and_the_observed_are_kept():
    full, holed = cohort(n=200, seed=2)
    design = make_design(full, covariates=["x", "stage", "z"])
    datasets, _ = imputed_fit(holed, design, m=5)
    observed_x = set(holed["x"].dropna())
    for data in datasets:
        assert data[["x", "stage"]].notna().all().all()
        assert set(data["x"]) <= observed_x and set(data["stage"]) <= {"T2", "T3"}
        kept = holed["x"].notna()
        assert (data.loc[kept, "x"] == holed.loc[kept, "x"]).all()
    # the imputations differ from one another (between-imputation variance is not zero)
    assert not datasets[0]["x"].equals(datasets[1]["x"])


def test_a_rerun_with_the_same_seed_is_identical():
    full, holed = cohort(n=150, seed=4)
    design = make_design(full, covariates=["x", "stage", "z"])
    first, pooled = imputed_fit(holed, design, m=5, seed=7)
    again, pooled_again = imputed_fit(holed, design, m=5, seed=7)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pooled, pooled_again)


def test_rubins_rules_by_hand():
    coefs = np.array([[0.50], [0.70], [0.60], [0.40], [0.80]])
    variances = np.full((5, 1), 0.04)
    pooled = pool_rubin(coefs, variances, complete_df=100).iloc[0]
    between = np.var(coefs, ddof=1)  # 0.025
    total = 0.04 + 1.2 * between
    assert pooled["coef"] == pytest.approx(0.6)
    assert pooled["se"] == pytest.approx(np.sqrt(total))
    share = 1.2 * between / total
    old = 4 / share**2
    observed = 101 / 103 * 100 * (1 - share)
    df = 1 / (1 / old + 1 / observed)  # Barnard & Rubin (1999)
    assert pooled["df"] == pytest.approx(df)
    assert pooled["p_value"] == pytest.approx(2 * stats.t.sf(0.6 / np.sqrt(total), df))
    assert pooled["fmi"] == pytest.approx(share)
    # without missing information the df is the complete data's, shrunk by Barnard & Rubin
    same = pool_rubin(np.full((5, 1), 0.6), variances, complete_df=100).iloc[0]
    assert same["df"] == pytest.approx(101 / 103 * 100) and same["fmi"] == 0


def test_nelson_aalen_counts_tied_events_together():
    time = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    event = np.array([1, 1, 0, 1, 0])
    # 1/5 at t=1; 1/4 at t=2 (one event, two at risk leave); 1/2 at t=3
    np.testing.assert_allclose(nelson_aalen_at(time, event), [0.2, 0.45, 0.45, 0.95, 0.95])


def test_bad_input_is_refused_with_the_column_named():
    full, holed = cohort(n=60)
    design = make_design(full, covariates=["x", "stage", "z"])
    args = {"covariates": design.covariates, "levels": design.categorical_levels,
            "time": TIME, "event": EVENT, "seed": 0}  # fmt: skip
    with pytest.raises(InputError, match="at least 2 imputations"):
        impute_chained(holed, m=1, **args)
    with pytest.raises(InputError, match="'x' has no observed value"):
        impute_chained(holed.assign(x=np.nan), m=5, **args)
    with pytest.raises(InputError, match=r"'stage' has value\(s\) \['T9'\] outside"):
        impute_chained(holed.assign(stage=holed["stage"].replace("T3", "T9")), m=5, **args)
    with pytest.raises(InputError, match="at least 2 imputations"):
        pool_rubin(np.ones((1, 2)), np.ones((1, 2)), complete_df=10)


@pytest.mark.parametrize("missing", ["complete_cases", "multiple_imputation"])
def test_the_demo_sheets_blank_values_in_the_cox_table(tmp_path, missing):
    from rdls.demo import plan_cohort, sheet_frames
    from rdls.survival.steps import COMPLETE_CASES_NOTE, cox_step

    plan = plan_cohort(scale="default", seed=42)
    sheets = sheet_frames(plan, root="demo")
    sheets["subjects"].to_csv(tmp_path / "subjects.tsv", sep="\t", index=False)
    truth = plan.truth_subjects[["subject_id", "cohort", "subtype"]]
    truth.to_csv(tmp_path / "assignments.tsv", sep="\t", index=False)
    settings = {"ph_transform": "km", "log2_covariates": ["cea_ng_ml"], "missing": missing,
                "imputations": 5}  # fmt: skip
    out = {"out_table": tmp_path / "hr.tsv", "out_ph_test": tmp_path / "ph.tsv",
           "out_forest": (tmp_path / "f.png", tmp_path / "f.svg")}  # fmt: skip
    cox_step(assignments=tmp_path / "assignments.tsv", subjects_sheet=tmp_path / "subjects.tsv",
             covariates=["age", "sex", "t_stage", "n_stage", "cea_ng_ml"],
             cohorts=["training", "external_validation"], settings=settings, seed=42,
             **out)  # fmt: skip
    table = pd.read_csv(tmp_path / "hr.tsv", sep="\t", keep_default_na=False)
    training = table[table["cohort"] == "training"]
    subjects = pd.read_csv(tmp_path / "subjects.tsv", sep="\t")
    blank = subjects.query("cohort == 'training'")[["cea_ng_ml", "n_stage"]]
    incomplete = int(blank.isna().any(axis=1).sum())
    assert incomplete >= 5 and (training["missing"] == incomplete).all()
    cohort_size = int((subjects["cohort"] == "training").sum())
    if missing == "complete_cases":
        assert (training["n"] == cohort_size - incomplete).all()
        expected = f"{COMPLETE_CASES_NOTE} ({incomplete} left out)"
        assert training["note"].str.contains(expected, regex=False).all()
    else:
        assert (training["n"] == cohort_size).all()
        expected = f"{incomplete} subjects' missing covariates multiply imputed (5 imputations"
        assert training["note"].str.contains(expected, regex=False).all()
    # the planted subtype effect holds either way
    rdls2 = training.set_index("term").loc["subtype[RDLS2]"]
    assert float(rdls2["hazard_ratio"]) < 1 and float(rdls2["ci_upper"]) < 1.3
