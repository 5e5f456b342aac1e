"""rdls.survival.nomogram: reading the chart gives the locked model's risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.errors import InputError
from rdls.survival.compare import compare_models, risk_from_locked
from rdls.survival.cox import design_matrix, make_design
from rdls.survival.nomogram import nomogram_axes, plot_nomogram, points, risk_from_points


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(2)
    n = 400
    frame = pd.DataFrame(
        {
            "age": rng.normal(62, 10, n).round(),
            "t_stage": rng.choice(["T2", "T3", "T4"], n, p=[0.3, 0.5, 0.2]),
            "cea": rng.lognormal(1.2, 0.8, n),
        }
    )
    hazard = 0.006 * np.exp(0.02 * (frame["age"] - 60) + 0.7 * (frame["t_stage"] == "T4"))
    events = rng.exponential(1 / hazard)
    censoring = rng.uniform(30, 120, n)
    design = make_design(frame, covariates=["age", "t_stage", "cea"], log2=["cea"])
    X = design_matrix(design, frame).assign(rrs=rng.normal(size=n))
    train = {"X": X, "time": pd.Series(np.minimum(events, censoring)),
             "event": pd.Series((events <= censoring).astype(int))}  # fmt: skip
    models = {"clinical + RRS": [*design.terms, "rrs"]}
    result = compare_models(train=train, cohorts={}, models=models, n_boot=0, seed=0)
    return result.locked["clinical + RRS"], design, X


def test_total_points_give_the_locked_models_risk(fitted):
    locked, design, X = fitted
    axes = nomogram_axes(locked, design, X)
    total = points(locked, axes, X)
    np.testing.assert_allclose(
        risk_from_points(locked, axes, total), risk_from_locked(locked, X), rtol=1e-10
    )
    assert total.min() >= -1e-9  # every subject lies on the drawn axes


def test_axes_cover_each_covariate_with_the_widest_at_100_points(fitted):
    locked, design, X = fitted
    axes = nomogram_axes(locked, design, X)
    assert list(dict.fromkeys(axes["covariate"])) == ["age", "t_stage", "cea", "rrs"]
    stage = axes[axes["covariate"] == "t_stage"].set_index("label")
    assert list(stage.index) == ["T2", "T3", "T4"] and stage.loc["T2", "contribution"] == 0
    spans = axes.groupby("covariate")["points"].agg(lambda p: p.max() - p.min())
    assert spans.max() == pytest.approx(100) and (axes["points"] >= -1e-9).all()
    cea = axes[axes["covariate"] == "cea"]["label"].astype(float)
    assert cea.min() < X["log2(cea)"].rpow(2).min() * 1.01  # labelled in ng/ml, not log2


def test_the_chart_is_drawn(fitted, tmp_path):
    locked, design, X = fitted
    axes = nomogram_axes(locked, design, X)
    plot_nomogram(locked, axes, title="clinical + RRS", png=tmp_path / "n.png",
                  svg=tmp_path / "n.svg")  # fmt: skip
    text = (tmp_path / "n.svg").read_text()
    assert "Total points" in text and "Risk by 60 months" in text and "t_stage" in text
    assert (tmp_path / "n.png").stat().st_size > 10_000


def test_a_table_without_the_model_columns_is_refused(fitted):
    locked, design, X = fitted
    with pytest.raises(InputError, match=r"lacks model column\(s\) \['rrs'\]"):
        nomogram_axes(locked, design, X.drop(columns="rrs"))
