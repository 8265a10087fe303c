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


def test_a_runs_histories_are_read_in_one_query_from_a_local_store_as_mlflow_reads_them(tmp_path, monkeypatch):
    """A resumed run reads every metric's history (its plots, its last recorded step): through MLflow,
    one query per key and about 35 µs a point — 5.4–6.6 s at a 100-epoch run's 163,000 points, minutes at
    10⁶ steps. A local SQLite store is read in one query; the points are MLflow's (NaN, ±inf — stored
    as ±1.8e308 —, two values at one step), and MLflow's per-key reader is not used."""
    import math

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    run_id = store.start_run(client, store.ensure_experiment(client, "e", uri), "r", {})
    points = [("loss", 1.0, 0), ("loss", float("nan"), 10), ("loss", 0.5, 20), ("loss", 0.25, 20),
              ("term/a", float("inf"), 10), ("term/a", -float("inf"), 20), ("weight/a", 0.1, 0)]
    client.log_batch(run_id, metrics=[Metric(k, v, 1000 + i, s) for i, (k, v, s) in enumerate(points)])
    expected = {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
                for key in ("loss", "term/a", "weight/a")}
    monkeypatch.setattr(MlflowClient, "get_metric_history", lambda *a, **k: pytest.fail("read key by key"))
    histories = store.metric_histories(client, run_id, uri)
    assert set(histories) == set(expected)
    for key, series in expected.items():
        got = histories[key]
        assert [s for s, _ in got] == [s for s, _ in series]
        assert all((math.isnan(a) and math.isnan(b)) or a == b for (_, a), (_, b) in zip(got, series)), key
