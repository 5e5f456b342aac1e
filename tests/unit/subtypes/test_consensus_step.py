"""The subtype_consensus rule's step: its files with subtypes, and without (the "none" contract
that the classifier, survival and biology steps read)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from rdls.config import validate_config
from rdls.subtypes.steps import consensus_step
from tests.unit import no_structure as fixture

# Small and fast, otherwise the defaults of the config schema.
SMALL = {"k_max": 4, "reps": 15, "null_reps": 8, "stability_reps": 10}


def _settings(**overrides) -> dict:
    return {**validate_config({})["subtypes"]["consensus"], **SMALL, **overrides}


def _run(tmp_path, features: pd.DataFrame, subjects: pd.DataFrame, **overrides) -> dict:
    """Run the step; return its tables (and the structure) by name."""
    features_path = tmp_path / "selected.parquet"
    features.to_parquet(features_path, index=False)
    sheet = fixture.write_subjects(tmp_path / "subjects.tsv", subjects)
    out = {name: tmp_path / f"{name}.tsv" for name in
           ("summary", "cdf", "labels", "training", "rates", "stability")}  # fmt: skip
    figures = {
        name: (tmp_path / f"{name}.png", tmp_path / f"{name}.svg")
        for name in ("heatmaps", "cdf_figure", "k_selection")
    }
    consensus_step(
        features=features_path,
        subjects_sheet=sheet,
        settings=_settings(**overrides),
        seed=3,
        out_summary=out["summary"],
        out_cdf=out["cdf"],
        out_labels=out["labels"],
        out_training=out["training"],
        out_rates=out["rates"],
        out_stability=out["stability"],
        out_structure=tmp_path / "structure.json",
        out_figures={
            "heatmaps": figures["heatmaps"],
            "cdf": figures["cdf_figure"],
            "k_selection": figures["k_selection"],
        },
    )
    for png, svg in figures.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert svg.read_text().rstrip().endswith("</svg>")
    tables = {
        name: pd.read_csv(path, sep="\t", dtype={"subject_id": str, "subtype": str})
        for name, path in out.items()
    }
    tables["structure"] = json.loads((tmp_path / "structure.json").read_text())
    return tables


def _features(subjects: pd.DataFrame, *, planted: bool) -> pd.DataFrame:
    """Training subjects in three separated groups (or one Gaussian), the others noise."""
    table = fixture.features(subjects, n_features=8)
    if planted:
        training = (subjects["cohort"] == "training").to_numpy()
        group = np.arange(training.sum()) % 3
        values = table.loc[training, "f00":"f02"].to_numpy()
        table.loc[training, "f00":"f02"] = values + 8.0 * np.eye(3)[group]
    return table


def test_planted_subtypes_are_found_named_and_judged_stable(tmp_path):
    subjects = fixture.subjects()

    tables = _run(tmp_path, _features(subjects, planted=True), subjects)

    summary, structure = tables["summary"], tables["structure"]
    for column in ("pac", "null_pac_mean", "null_pac_sd", "rcsi", "rcsi_se", "p_value",
                   "p_monte_carlo", "p_adjusted", "eligible", "significant", "chosen"):  # fmt: skip
        assert column in summary.columns
    assert summary["k"].tolist() == [2, 3, 4]
    assert summary.loc[summary["chosen"], "k"].tolist() == [3]
    assert structure["structure"] is True and structure["k"] == 3
    assert structure["k_rule"] == "rcsi" and structure["alpha"] == 0.05
    assert structure["p_values"]["3"] < 0.01
    assert set(structure["rcsi"]) == {"2", "3", "4"}
    assert structure["message"].startswith("3 subtypes: k = 3 has the largest RCSI")
    training = tables["training"]
    assert set(training["subtype"]) == {"RDLS1", "RDLS2", "RDLS3"}
    assert training["confidence"].between(0.9, 1).all()
    stability = tables["stability"]
    assert list(stability.columns) == [
        "subtype", "n", "jaccard_mean", "jaccard_sd", "dissolved", "verdict"
    ]  # fmt: skip
    assert stability["subtype"].tolist() == ["RDLS1", "RDLS2", "RDLS3"]
    assert stability["n"].sum() == 60
    assert (stability["jaccard_mean"] > 0.85).all()


def test_without_structure_every_training_subject_is_none_and_nothing_is_named(tmp_path):
    subjects = fixture.subjects()
    # No recurrence in training: naming would refuse, so this also shows naming is skipped.
    subjects.loc[subjects["cohort"] == "training", "rfs_event"] = 0.0

    tables = _run(tmp_path, _features(subjects, planted=False), subjects)

    structure = tables["structure"]
    assert structure["structure"] is False and structure["k"] is None
    assert structure["message"].startswith("No significant subtypes: the lowest p-value over ")
    assert "against 8 null datasets." in structure["message"]
    assert not tables["summary"]["chosen"].any()
    training = tables["training"]
    ids = subjects.loc[subjects["cohort"] == "training", "subject_id"]
    assert sorted(training["subject_id"]) == sorted(ids)
    assert (training["subtype"] == "none").all()
    assert (training["cluster"] == 0).all()
    assert training["confidence"].isna().all()
    rates = tables["rates"]
    assert rates["subtype"].tolist() == ["none"]
    assert rates[["n", "events"]].iloc[0].tolist() == [60, 0]
    stability = tables["stability"]
    assert stability["subtype"].tolist() == ["none"]
    assert stability["verdict"].tolist() == ["no subtypes"]
    assert stability["jaccard_mean"].isna().all()


def test_the_pac_rule_chooses_and_the_null_is_still_reported(tmp_path):
    subjects = fixture.subjects()

    tables = _run(tmp_path, _features(subjects, planted=True), subjects, k_rule="pac")

    assert tables["structure"]["k"] == 3
    assert tables["structure"]["message"].startswith("3 subtypes (chosen by the pac rule)")
    assert tables["structure"]["message"].endswith("; significant at alpha 0.05.")
    assert tables["summary"]["p_adjusted"].notna().all()
