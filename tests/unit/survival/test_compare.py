"""rdls.survival.compare: locked Cox models compared by AUC, concordance, calibration, DCA.

Synthetic cohorts from a known Cox model: hazard 0.005/month x exp(x + 0.3 g), x standard
normal and prognostic, g binary, z pure noise; uniform censoring. The discrimination measures
must agree with scikit-survival's (concordance, on the sample and on a bootstrap resample) and
with rdls.survival.td_auc (the AUC, itself checked against timeROC in test_td_auc.py).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from rdls.errors import InputError
from rdls.survival._compare_plots import (
    plot_auc_comparison,
    plot_calibration,
    plot_decision_curves,
    plot_roc,
)
from rdls.survival.compare import (
    _concordance,
    compare_models,
    fit_survival_model,
    risk_at,
)
from rdls.survival.td_auc import compare_auc, time_dependent_auc

HORIZON = 60.0
MODELS = {"noise": ["z", "g"], "prognostic": ["z", "g", "x"]}
N_BOOT = 100


def _cohort(n: int, seed: int, *, max_censoring: float = 120.0, prefix: str = "S") -> dict:
    rng = np.random.default_rng(seed)
    index = pd.Index([f"{prefix}{i:04d}" for i in range(n)], name="subject_id")
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "g": rng.integers(0, 2, n).astype(float),
        },
        index=index,
    )
    survival = rng.exponential(1 / (0.005 * np.exp(X["x"] + 0.3 * X["g"])))
    censoring = rng.uniform(20, max_censoring, n)
    time = pd.Series(np.minimum(survival, censoring), index, name="rfs_months")
    event = pd.Series((survival <= censoring).astype(int), index, name="rfs_event")
    return {"X": X, "time": time, "event": event}


@pytest.fixture(scope="module")
def cohorts():
    return _cohort(600, 1, prefix="T"), {"validation": _cohort(600, 2, prefix="V")}


@pytest.fixture(scope="module")
def result(cohorts):
    train, others = cohorts
    return compare_models(
        train=train, cohorts=others, models=MODELS, horizon=HORIZON, n_boot=N_BOOT, seed=4
    )


def _surv(d: dict, clip: float | None = None):
    time, event = d["time"].to_numpy(), d["event"].to_numpy() == 1
    if clip is not None:  # scikit-survival needs test times within the training follow-up
        event = event & (time <= clip)
        time = np.minimum(time, clip)
    return Surv.from_arrays(event=event, time=time)


def _row(table, cohort, model):
    return table[(table["cohort"] == cohort) & (table["model"] == model)]


# --- discrimination --------------------------------------------------------------------------


def test_prognostic_model_beats_noise_and_the_paired_interval_excludes_zero(result):
    for cohort in ("training", "validation"):
        auc = result.auc[result.auc["cohort"] == cohort].set_index("model")["auc"]
        assert auc["prognostic"] > 0.75
        assert auc["noise"] < 0.62
        diff = result.auc_difference[result.auc_difference["cohort"] == cohort].iloc[0]
        assert (diff["model_a"], diff["model_b"]) == ("noise", "prognostic")
        assert diff["difference"] == pytest.approx(auc["prognostic"] - auc["noise"])
        assert diff["ci_lower"] > 0.1
        assert diff["p_value"] < 1e-6


def test_auc_is_each_cohorts_own_time_dependent_auc(cohorts, result):
    """Censoring weights, standard error and paired test come from the cohort itself."""
    train, others = cohorts
    for name, d in {"training": train, **others}.items():
        estimates = {}
        for model, columns in MODELS.items():
            fit = fit_survival_model(train["X"][columns], train["time"], train["event"])
            risk = risk_at(fit, d["X"], horizon=HORIZON).to_numpy()
            own = time_dependent_auc(d["time"], d["event"], risk, horizon=HORIZON)
            estimates[model] = own
            row = _row(result.auc, name, model).iloc[0]
            assert row["auc"] == pytest.approx(own.auc, abs=1e-12)
            assert row["se"] == pytest.approx(own.se, abs=1e-12)
            assert (row["ci_lower"], row["ci_upper"]) == pytest.approx(own.interval(0.95))
            assert row["events_by_horizon"] == ((d["time"] < HORIZON) & (d["event"] == 1)).sum()
            assert row["note"] == ""
        test = compare_auc(estimates["noise"], estimates["prognostic"])
        diff = result.auc_difference[result.auc_difference["cohort"] == name].iloc[0]
        assert diff["p_value"] == pytest.approx(test["p_value"], rel=1e-9, abs=1e-300)
        assert diff["ci_lower"] == pytest.approx(test["difference"] - 1.959964 * test["se"])


def test_concordance_agrees_with_scikit_survival(cohorts, result):
    train, others = cohorts
    d = others["validation"]
    fit = fit_survival_model(train["X"][MODELS["prognostic"]], train["time"], train["event"])
    risk = risk_at(fit, d["X"], horizon=HORIZON).to_numpy()
    row = _row(result.cindex, "validation", "prognostic").iloc[0]
    harrell = concordance_index_censored(d["event"].to_numpy() == 1, d["time"].to_numpy(), risk)
    uno = concordance_index_ipcw(_surv(d), _surv(d), risk, tau=HORIZON)  # own censoring
    assert row["harrell"] == pytest.approx(harrell[0], abs=1e-12)
    assert row["uno"] == pytest.approx(uno[0], abs=1e-12)
    assert row["harrell_ci_lower"] < row["harrell"] < row["harrell_ci_upper"]
    assert row["uno_ci_lower"] < row["uno"] < row["uno_ci_upper"]


def test_bootstrap_counts_give_scikit_survivals_values_on_the_resample(cohorts):
    """The closed forms in per-subject counts equal recomputing on the resampled subjects."""
    train, _ = cohorts
    fit = fit_survival_model(train["X"][MODELS["prognostic"]], train["time"], train["event"])
    risk = risk_at(fit, train["X"], horizon=HORIZON).to_numpy()
    risk[:40] = risk[40:80]  # plant tied risks
    t, e = train["time"].to_numpy(), train["event"].to_numpy() == 1
    idx = np.random.default_rng(9).integers(0, len(t), len(t))
    counts = np.bincount(idx, minlength=len(t))[None, :].astype(float)
    _, harrell_boot = _concordance(risk, t, e, e.astype(float), counts)
    expected = concordance_index_censored(e[idx], t[idx], risk[idx])[0]
    assert harrell_boot[0] == pytest.approx(expected, abs=1e-12)


def test_roc_area_equals_the_auc(result):
    for (cohort, model), curve in result.roc.groupby(["cohort", "model"]):
        assert curve["threshold"].iloc[0] == np.inf
        assert (curve["fpr"].iloc[0], curve["tpr"].iloc[0]) == (0.0, 0.0)
        assert (curve["fpr"].iloc[-1], curve["tpr"].iloc[-1]) == pytest.approx((1.0, 1.0))
        assert curve["fpr"].is_monotonic_increasing and curve["tpr"].is_monotonic_increasing
        area = np.trapezoid(curve["tpr"], curve["fpr"])
        assert area == pytest.approx(_row(result.auc, cohort, model)["auc"].item(), abs=1e-9)


def test_validation_follow_up_beyond_the_training_follow_up_is_a_control(cohorts):
    train, _ = cohorts
    late = _cohort(400, 6, max_censoring=300.0, prefix="L")
    assert late["time"].max() > train["time"].max()
    res = compare_models(
        train=train, cohorts={"late": late}, models=MODELS, horizon=HORIZON, n_boot=0, seed=1
    )
    fit = fit_survival_model(train["X"][MODELS["prognostic"]], train["time"], train["event"])
    risk = risk_at(fit, late["X"], horizon=HORIZON).to_numpy()
    expected = time_dependent_auc(late["time"], late["event"], risk, horizon=HORIZON)
    row = _row(res.auc, "late", "prognostic").iloc[0]
    assert row["auc"] == pytest.approx(expected.auc)
    assert row["controls"] == (late["time"] > HORIZON).sum()
    assert np.isnan(_row(res.cindex, "late", "prognostic")["harrell_ci_lower"].item())  # n_boot 0


def test_rerun_with_the_same_seed_is_identical(cohorts, result):
    train, others = cohorts
    again = compare_models(
        train=train, cohorts=others, models=MODELS, horizon=HORIZON, n_boot=N_BOOT, seed=4
    )
    for name in ("auc", "auc_difference", "cindex", "calibration", "decision_curve", "roc"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(result, name))


def test_tables_have_the_documented_columns(result):
    assert list(result.auc.columns[:8]) == [
        "cohort",
        "model",
        "horizon",
        "auc",
        "ci_lower",
        "ci_upper",
        "n",
        "events_by_horizon",
    ]
    assert list(result.auc_difference.columns[:7]) == [
        "cohort",
        "model_a",
        "model_b",
        "difference",
        "ci_lower",
        "ci_upper",
        "p_value",
    ]
    assert list(result.cindex.columns[:8]) == [
        "cohort",
        "model",
        "harrell",
        "harrell_ci_lower",
        "harrell_ci_upper",
        "uno",
        "uno_ci_lower",
        "uno_ci_upper",
    ]
    assert set(result.decision_curve["model"]) == {*MODELS, "treat all", "treat none"}
    assert set(result.coefficients["model"]) == set(MODELS)
    assert result.auc["cohort"].tolist() == ["training"] * 2 + ["validation"] * 2
    summary = result.calibration_summary.set_index(["cohort", "model"])
    assert len(summary) == 4 and summary["slope"].notna().all()
    # apparent: the prognostic model's own training cohort is calibrated by construction
    assert summary.loc[("training", "prognostic"), "slope"] == pytest.approx(1.0, abs=0.01)
    assert result.calibration_curve.groupby(["cohort", "model"]).size().max() <= 101


# --- calibration and decision curves ---------------------------------------------------------


def test_a_correctly_specified_model_is_calibrated():
    train, validation = _cohort(2000, 11), _cohort(2000, 12, prefix="V")
    res = compare_models(
        train=train,
        cohorts={"validation": validation},
        models={"true": ["x", "g"]},
        horizon=HORIZON,
        n_boot=0,
        seed=0,
    )
    cal = res.calibration[res.calibration["cohort"] == "validation"]
    assert len(cal) == 5 and (cal["n"] == 400).all()
    assert cal["predicted"].is_monotonic_increasing
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.06  # 400 per group
    summary = res.calibration_summary.set_index("cohort").loc["validation"]
    assert summary["slope_ci_lower"] < 1 < summary["slope_ci_upper"]
    assert summary["oe_ci_lower"] < 1 < summary["oe_ci_upper"]
    assert summary["ici"] < 0.02


def test_net_benefit_references_and_a_model_by_hand(cohorts, result):
    _, others = cohorts
    d = others["validation"]
    time, event = d["time"].to_numpy(), d["event"].to_numpy()
    dca = result.decision_curve[result.decision_curve["cohort"] == "validation"]
    none = dca[dca["model"] == "treat none"]
    assert (none["net_benefit"] == 0).all()
    s = KaplanMeierFitter().fit(time, event).survival_function_at_times(HORIZON).item()
    treat_all = dca[dca["model"] == "treat all"]
    pt = treat_all["threshold"].to_numpy()
    np.testing.assert_allclose(treat_all["net_benefit"], (1 - s) - s * pt / (1 - pt), atol=1e-12)
    # the prognostic model at a 30% threshold, written out
    risk = result.predictions[
        (result.predictions["cohort"] == "validation")
        & (result.predictions["model"] == "prognostic")
    ]["risk"].to_numpy()
    row = dca[(dca["model"] == "prognostic") & np.isclose(dca["threshold"], 0.3)].iloc[0]
    treated = risk >= row["threshold"]
    s_t = KaplanMeierFitter().fit(time[treated], event[treated]).predict(HORIZON)
    odds = row["threshold"] / (1 - row["threshold"])
    expected = treated.mean() * ((1 - s_t) - s_t * odds)
    assert row["net_benefit"] == pytest.approx(expected, abs=1e-12)
    assert row["net_benefit"] > treat_all[np.isclose(pt, 0.3)]["net_benefit"].item()


def test_risk_at_is_one_minus_lifelines_survival_at_an_event_time(cohorts):
    train, _ = cohorts
    fit = fit_survival_model(train["X"][["x", "g"]], train["time"], train["event"])
    at = float(np.sort(train["time"][train["event"] == 1])[150])
    expected = 1 - fit.predict_survival_function(train["X"][["x", "g"]], times=[at]).iloc[0]
    np.testing.assert_allclose(risk_at(fit, train["X"], horizon=at), expected, atol=1e-10)


# --- errors ----------------------------------------------------------------------------------


def _with(d: dict, **changes) -> dict:
    out = {k: v.copy() for k, v in d.items()}
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "nan_x",
            r"cohort 'validation': missing or non-finite values for subjects V0007 in "
            r"column\(s\) 'x'",
        ),
        ("missing_column", r"cohort 'validation': model column\(s\) 'x' are missing"),
        ("nan_time", r"cohort 'validation': follow-up time or event missing for subjects V0003"),
        ("reserved", r"cohort name 'training' is reserved"),
    ],
)
def test_compare_models_rejects_bad_cohorts(cohorts, case, message):
    train, others = cohorts
    v = others["validation"]
    if case == "nan_x":
        X = v["X"].copy()
        X.loc["V0007", "x"] = np.nan
        bad = {"validation": _with(v, X=X)}
    elif case == "missing_column":
        bad = {"validation": _with(v, X=v["X"].drop(columns="x"))}
    elif case == "nan_time":
        time = v["time"].copy()
        time.loc["V0003"] = np.nan
        bad = {"validation": _with(v, time=time)}
    else:
        bad = {"training": v}
    with pytest.raises(InputError, match=message):
        compare_models(train=train, cohorts=bad, models=MODELS, n_boot=0, seed=0)


@pytest.mark.parametrize("case", ["no_events", "short_follow_up"])
def test_a_cohort_without_an_auc_is_reported_not_estimable_and_the_rest_stands(cohorts, case):
    train, others = cohorts
    v = others["validation"]
    if case == "no_events":
        changed = _with(v, event=v["event"].where(v["time"] > HORIZON, 0))
        reason = "no event before 60"
    else:
        changed = _with(v, time=v["time"].clip(upper=HORIZON))
        reason = "nobody event-free beyond 60"
    res = compare_models(
        train=train, cohorts={"validation": changed}, models=MODELS, n_boot=20, seed=0
    )
    rows = res.auc[res.auc["cohort"] == "validation"]
    assert rows["auc"].isna().all() and rows["se"].isna().all()
    assert rows["note"].str.startswith(reason).all()
    assert (
        res.auc_difference.set_index("cohort").loc["validation", "p_value"]
        != (res.auc_difference.set_index("cohort").loc["validation", "p_value"])
    )  # NaN
    assert any(note.startswith("validation: no AUC at the horizon") for note in res.notes)
    assert "validation" not in set(res.roc["cohort"])
    cindex = res.cindex.set_index(["cohort", "model"]).loc[("validation", "prognostic")]
    assert np.isfinite(cindex["harrell"])
    assert set(res.calibration["cohort"]) == {"training", "validation"}


def test_horizon_beyond_the_training_follow_up_is_rejected(cohorts):
    train, others = cohorts
    with pytest.raises(InputError, match=r"horizon 500 months is not below the training"):
        compare_models(train=train, cohorts=others, models=MODELS, horizon=500, n_boot=0, seed=0)
    fit = fit_survival_model(train["X"][["x"]], train["time"], train["event"])
    with pytest.raises(InputError, match="beyond the training cohort's longest follow-up"):
        risk_at(fit, train["X"], horizon=500)


# --- figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plot", [plot_roc, plot_calibration, plot_decision_curves, plot_auc_comparison]
)
def test_figures_are_written(result, tmp_path, plot):
    figure = plot(result, png=tmp_path / "f.png", svg=tmp_path / "f.svg")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert (tmp_path / "f.svg").stat().st_size > 10_000
    assert figure.dpi > 0


def test_a_locked_model_predicts_what_the_fitted_one_does():
    from rdls.survival.compare import fit_survival_model, lock_model, risk_at, risk_from_locked

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.binomial(1, 0.4, 300).astype(float)})
    time = rng.exponential(60 / np.exp(0.7 * X["a"] + 0.5 * X["b"]))
    event = (time < 90).astype(int)
    model = fit_survival_model(X, np.minimum(time, 90), event)
    locked = lock_model(model, horizon=36)
    assert json.loads(json.dumps(locked)) == locked  # JSON-ready
    np.testing.assert_allclose(
        risk_from_locked(locked, X), risk_at(model, X, horizon=36), rtol=1e-10
    )
    with pytest.raises(InputError):
        risk_from_locked(locked, X.drop(columns="b"))


def test_figures_are_drawn_when_a_cohort_has_no_auc(cohorts, tmp_path):
    train, others = cohorts
    v = others["validation"]
    res = compare_models(
        train=train,
        cohorts={"validation": _with(v, event=v["event"].where(v["time"] > HORIZON, 0))},
        models=MODELS,
        n_boot=0,
        seed=0,
    )
    for plot in (plot_roc, plot_auc_comparison, plot_calibration, plot_decision_curves):
        plot(res, png=tmp_path / f"{plot.__name__}.png", svg=tmp_path / f"{plot.__name__}.svg")
    assert "no AUC" in (tmp_path / "plot_auc_comparison.svg").read_text()
    nothing = replace(res, roc=res.roc.iloc[:0])
    plot_roc(nothing, png=tmp_path / "empty.png", svg=tmp_path / "empty.svg")
    assert "No cohort has an AUC" in (tmp_path / "empty.svg").read_text()


def _sparse(train: dict) -> dict:
    X = train["X"].assign(level=0.0)
    X.iloc[:40, X.columns.get_loc("level")] = 1.0  # a level without events: its HR runs off
    event = train["event"].copy()
    event.iloc[:40] = 0
    return _with(train, X=X, event=event)


def test_absurd_training_risks_are_shrunk_by_a_ridge_penalty_and_noted(cohorts):
    train, _ = cohorts
    res = compare_models(
        train=_sparse(train), cohorts={}, models={"sparse": ["x", "level"]}, n_boot=0, seed=0
    )
    assert res.penalties["sparse"] > 0
    note = next(n for n in res.notes if n.startswith("sparse: fitted with ridge penalty"))
    assert "4" in note and "training subjects" in note and "not ordinary Wald" in note
    risks = res.predictions["risk"]
    assert ((risks < 0.001) | (risks > 0.999)).mean() <= 0.01


def test_a_model_no_penalty_rescues_is_refused(cohorts, monkeypatch):
    from rdls.survival import compare

    monkeypatch.setattr(compare, "GUARD_PENALTIES", ())
    train, _ = cohorts
    with pytest.raises(InputError, match=r"model 'sparse' is refused: model 'sparse': 4\d of 600"):
        compare_models(
            train=_sparse(train), cohorts={}, models={"sparse": ["x", "level"]}, n_boot=0, seed=0
        )


def test_merging_the_sparse_level_makes_the_same_model_acceptable(cohorts):
    from rdls.survival.cox import design_matrix, make_design, merge_sparse_levels

    train, _ = cohorts
    frame = train["X"].assign(
        stage=np.where(np.arange(600) < 40, "T1", np.where(np.arange(600) % 2, "T2", "T3")),
        rfs_event=train["event"].to_numpy(),
    )
    frame.loc[frame["stage"] == "T1", "rfs_event"] = 0
    design = merge_sparse_levels(
        make_design(frame, covariates=["x", "stage"]), frame, event="rfs_event"
    )
    assert design.merged == {"stage": {"T1": "T1+T2", "T2": "T1+T2"}}
    assert design.merge_notes() == ["stage: T1 and T2 merged into T1+T2 (too few training events)"]
    X = design_matrix(design, frame)
    assert list(X.columns) == ["x", "stage[T3]"]
    result = compare_models(
        train={"X": X, "time": train["time"], "event": frame["rfs_event"]}, cohorts={},
        models={"merged": list(X.columns)}, n_boot=0, seed=0,
    )  # fmt: skip
    assert result.auc["auc"].notna().all()
