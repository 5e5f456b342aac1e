"""Predictions carry calibrated subtype probabilities and the run's uncertain flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdls.subtypes.classifier import assign

from .test_steps import _predict


@pytest.fixture(scope="module")
def predicted(mini_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated")
    sheet = mini_run.write_sheet(mini_run.sheet_rows(mini_run.external()), "external.tsv")
    _predict(mini_run, sheet, out)
    return pd.read_csv(out / "predictions.tsv", sep="\t").set_index("subject_id")


def test_subtype_probabilities_are_calibrated_not_vanishing(mini_run, predicted):
    classes = mini_run.classifier.classes
    probabilities = predicted[[f"prob_{c}" for c in classes]]
    # the classifier's own probabilities for the same subjects go down to 1e-50
    own = mini_run.classifier.estimator.predict_proba(mini_run.selected.loc[predicted.index])
    assert own.min() < 1e-20
    assert probabilities.min().min() >= 1e-6
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-9)
    np.testing.assert_allclose(predicted["confidence"], probabilities.max(axis=1))
    expected = assign(mini_run.classifier, mini_run.selected.loc[predicted.index])
    np.testing.assert_allclose(probabilities, expected[probabilities.columns], atol=1e-9)


def test_uncertain_is_the_runs_threshold_on_the_confidence(mini_run, predicted):
    threshold = mini_run.classifier.min_confidence
    assert predicted["uncertain"].dtype == bool
    assert (predicted["uncertain"] == (predicted["confidence"] < threshold)).all()
    columns = predicted.reset_index().columns.tolist()
    assert columns.index("uncertain") == columns.index("confidence") + 1 + len(
        mini_run.classifier.classes
    )
