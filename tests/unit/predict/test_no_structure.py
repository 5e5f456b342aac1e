"""A run without significant subtypes: new subjects get subtype "none" and a note saying why,
no RRS, and the clinical model's recurrence probability alone."""

from __future__ import annotations

import json
from types import SimpleNamespace

import joblib
import numpy as np
import pandas as pd

from rdls.subtypes.no_structure import no_structure_model
from rdls.survival.compare import lock_model, risk_at
from rdls.survival.rrs import RRSModel
from tests.unit.no_structure import MESSAGE

from .conftest import HORIZON
from .test_steps import _predict


def test_new_subjects_are_none_with_the_runs_reason_and_the_clinical_risk(mini_run, tmp_path):
    joblib.dump(no_structure_model(MESSAGE), tmp_path / "classifier.joblib")
    no_rrs = RRSModel.without_features("no RRS (no significant subtypes)")
    (tmp_path / "rrs.json").write_text(json.dumps(no_rrs.to_dict()))
    clinical = json.loads(mini_run.paths["clinical_models"].read_text())
    fit = mini_run.fits["clinical"]
    clinical["models"] = {"clinical": lock_model(fit, horizon=HORIZON)}
    (tmp_path / "locked.json").write_text(json.dumps(clinical))
    paths = {**mini_run.paths, "classifier": tmp_path / "classifier.joblib",
             "rrs_model": tmp_path / "rrs.json",
             "clinical_models": tmp_path / "locked.json"}  # fmt: skip
    sheet = mini_run.write_sheet(mini_run.sheet_rows(mini_run.external()), "none.tsv")
    run = SimpleNamespace(paths=paths)
    table = _predict(run, sheet, tmp_path)  # the run's other locked files, as test_steps scores
    ids = mini_run.external()["subject_id"].tolist()
    table = table.set_index("subject_id").loc[ids]
    assert (table["status"] == "ok").all() and (table["subtype"] == "none").all()
    assert not [c for c in table.columns if c.startswith("prob_")]
    assert table["confidence"].isna().all() and table["rrs"].isna().all()
    assert table["rrs_group"].isna().all() and table["recurrence_probability"].isna().all()
    assert table["note"].str.contains(MESSAGE, regex=False).all()
    matrix = mini_run.design_matrix.loc[ids, list(fit.params_.index)]
    expected = risk_at(fit, matrix, horizon=HORIZON)
    np.testing.assert_allclose(table["recurrence_probability_clinical"], expected, rtol=1e-9)
    written = pd.read_csv(tmp_path / "predictions.tsv", sep="\t", keep_default_na=False)
    assert set(written["subtype"]) == {"none"}
    assert (table["horizon_months"] == HORIZON).all()
