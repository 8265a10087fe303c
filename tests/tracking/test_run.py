"""A run ends with the status that tells the truth, in a real SQLite store."""
import signal

import pytest
from mlflow.tracking import MlflowClient

from lossexp.config import LossexpConfig, Selection, TrainerConfig, TrackingConfig
from lossexp.errors import Terminated
from lossexp.tracking import store
from lossexp.tracking.run import TrackedRun
from test_termination import masked_by_cleanup


def config(uri):
    return LossexpConfig(Selection("mlp"), Selection("digits"), Selection("adam"), {}, TrainerConfig(),
                         TrackingConfig(uri=uri, experiment="t"))


@pytest.mark.parametrize("error, status", [(None, "FINISHED"), (RuntimeError("boom"), "FAILED"),
                                           (KeyboardInterrupt(), "KILLED"),
                                           # a SIGTERM's exception that a library's cleanup hid as it unwound
                                           (masked_by_cleanup(Terminated(signal.SIGTERM)), "KILLED")])
def test_status_follows_how_the_block_ended(tmp_path, error, status):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(type(error)) if error else _nothing():
        with TrackedRun(config(uri), "r", {"loss": "none"}, tmp_path) as run:
            run.sink.add({"loss": 1.5}, step=3)
            if error:
                raise error
            run.sink.close()
    client = MlflowClient(uri)
    got = client.get_run(run.run_id)
    assert got.info.status == status
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "loss")] == [(3, 1.5)]
    if status == "FAILED":
        assert "boom" in got.data.tags["error"]
        traceback = client.download_artifacts(run.run_id, "error/traceback.txt", str(tmp_path))
        text = open(traceback).read()
        assert text.startswith("Traceback (most recent call last):") and text.rstrip().endswith("RuntimeError: boom")
    else:
        assert not client.list_artifacts(run.run_id, "error")
    assert float(got.data.tags["lossexp.heartbeat"]) > 0


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_default_uri_is_absolute_sqlite_under_outputs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = store.resolve_uri(None, tmp_path)
    assert uri == f"sqlite:///{(tmp_path / 'outputs' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert store.resolve_uri(None, tmp_path) == "http://127.0.0.1:5999"
    assert store.resolve_uri("sqlite:////x.db", tmp_path) == "sqlite:////x.db"


def test_flatten_and_chunked_params(tmp_path):
    flat = store.flatten({"loss": {"hist_avg": {"weight": 0.1, "layers": None}}, "a": {}})
    assert flat == {"loss.hist_avg.weight": 0.1, "loss.hist_avg.layers": None, "a": "{}"}
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = store.open_client(uri)
    exp = store.ensure_experiment(client, "p", uri)
    run_id = store.start_run(client, exp, "p", {})
    store.log_params(client, run_id, {f"k{i}": i for i in range(250)})
    assert len(client.get_run(run_id).data.params) == 250


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped exception
def test_a_sigterm_dropped_during_the_run_ends_it_killed_and_is_raised(tmp_path):
    import os
    import signal

    from lossexp.errors import Terminated

    class Dropping:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10 ** 6):  # the handler raises inside __del__, where Python drops it
                pass

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(Terminated):
        with TrackedRun(config(uri), "r", {"loss": "none"}, tmp_path) as run:
            Dropping()
    got = MlflowClient(uri).get_run(run.run_id)
    assert got.info.status == "KILLED" and "SIGTERM" in got.data.tags["error"]


def test_a_signal_once_the_run_exists_but_before_the_block_ends_it_killed(tmp_path, monkeypatch):
    """Ctrl-C while the run is set up (its metric writer starting; a resumed run reading its history):
    the run ended KILLED, where it stayed RUNNING until a later run reaped it."""
    import lossexp.tracking.run as run_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "MetricSink", interrupted)  # a fault injected at that point, the store real
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with pytest.raises(KeyboardInterrupt):
        with TrackedRun(config(uri), "r", {"loss": "none"}, tmp_path):
            pass
    client = MlflowClient(uri)
    [got] = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert got.info.status == "KILLED"


def test_a_new_run_is_created_with_its_heartbeat_in_one_write(tmp_path):
    """The heartbeat's interval, process and first beat are tags of the run's creation: the store
    sees one transaction for them, not the creation and three tags (17 ms of commit each)."""
    import sqlalchemy

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with TrackedRun(config(uri), "first", {}, tmp_path):  # the store and experiment exist from here on
        pass
    commits = []

    def count(connection):
        commits.append(connection)

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", count)
    try:
        with TrackedRun(config(uri), "r", {"loss": "none"}, tmp_path) as run:
            opened = len(commits)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", count)
    tags = MlflowClient(uri).get_run(run.run_id).data.tags
    assert float(tags["lossexp.heartbeat"]) > 0 and tags["lossexp.heartbeat_interval_s"] == "30.0"
    assert tags["lossexp.process"].endswith(f":{__import__('os').getpid()}")
    assert opened <= 5  # 8 when the heartbeat set its three tags after the run's creation
