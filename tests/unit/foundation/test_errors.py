"""The error types survive the trip through a worker process."""

import pickle

from rdls.errors import QCFailure


def test_qc_failure_keeps_its_reason_and_step_through_pickling():
    failure = pickle.loads(pickle.dumps(QCFailure("slide file 'x.svs': corrupt", step="wsi_read")))
    assert isinstance(failure, QCFailure)
    assert (failure.reason, failure.step, str(failure)) == (
        "slide file 'x.svs': corrupt",
        "wsi_read",
        "slide file 'x.svs': corrupt",
    )
