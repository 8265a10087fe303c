"""The store's defences against other writers: retries of transient errors only, and a lock under
which a fresh SQLite store and its experiment are created once."""
from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from lossexp.tracking import store


def flaky(errors):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "done"

    return call, calls


@pytest.mark.parametrize("error", [
    MlflowException("(sqlite3.OperationalError) database is locked"),
    MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE),
    MlflowException("(sqlite3.OperationalError) duplicate column name: step"),
], ids=["locked", "temporarily-unavailable", "migration-race"])
def test_transient_errors_are_retried(error):
    call, calls = flaky([error, error])
    assert store.retrying(call, first_delay=0.001) == "done" and len(calls) == 3


def test_other_errors_and_exhausted_retries_raise():
    call, calls = flaky([MlflowException("bad key", error_code=INVALID_PARAMETER_VALUE)])
    with pytest.raises(MlflowException, match="bad key"):
        store.retrying(call, first_delay=0.001)
    assert len(calls) == 1
    call, calls = flaky([MlflowException("database is locked")] * 10)
    with pytest.raises(MlflowException, match="locked"):
        store.retrying(call, attempts=3, first_delay=0.001)
    assert len(calls) == 3


def test_the_background_writer_hands_back_the_gil_often_and_restores_the_interval():
    """A batch sent in the background runs with a short thread switch interval (the training thread
    waits less for the GIL), and the interpreter's own interval is back once it is sent."""
    import sys

    seen = []
    before = sys.getswitchinterval()
    assert store.handing_back_the_gil(lambda: seen.append(sys.getswitchinterval()) or "sent")() == "sent"
    assert seen == [min(before, store.WRITER_SWITCH_INTERVAL)] and sys.getswitchinterval() == before

    def failing():
        raise MlflowException("bad key", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException, match="bad key"):
        store.handing_back_the_gil(failing)()
    assert sys.getswitchinterval() == before


def test_ensure_experiment_creates_one_experiment_beside_a_lock_file(tmp_path):
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    ids = {store.ensure_experiment(store.open_client(uri), "e", uri) for _ in range(3)}
    assert len(ids) == 1
    assert (tmp_path / "outputs" / "mlflow.db.lock").exists()
    experiment = store.open_client(uri).get_experiment(ids.pop())
    assert experiment.artifact_location == (tmp_path / "outputs" / "mlartifacts").as_uri()
