"""Faults as a user meets them, each in a real ``lossexp train`` process writing a real SQLite store:
a loss that blows up, Ctrl-C / SIGTERM in the middle of ``fit``, and a process killed outright
whose run the next run finds and marks FAILED."""
from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli_start
from lossexp.tracking import store

TINY = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=200",
        "tracking.plots=false", "tracking.log_model=false", "tracking.drift=false"]
#: SGD with momentum at 2 on the regression MLP with an activity penalty: finite for a few steps, then inf
BLOWS_UP = [*TINY, "loss=activity", "loss.activity.layers=[hidden_1]", "model.hidden_units=[64,32]",
            "optimizer=sgd", "optimizer.learning_rate=2.0", "optimizer.momentum=0.9", "trainer.epochs=3",
            "trainer.log_every_n_steps=1"]
#: an MLP that trains for minutes unless stopped: 50 steps an epoch, every step sampled
LONG = [*TINY, "loss=none", "trainer.epochs=100000", "trainer.batch_size=4", "trainer.validation_split=0",
        "trainer.log_every_n_steps=1", "trainer.verbose=0"]


def the_run(uri: str):
    client = store.open_client(uri)  # under the store's lock: the process may be creating it right now
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return client, runs


def finite_in_mlflow(value: float) -> bool:
    return math.isfinite(value) and abs(value) < sys.float_info.max


def history(client: MlflowClient, run_id: str, key: str):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def heartbeat(client: MlflowClient, run_id: str) -> float:
    """The run's last heartbeat (Unix seconds)."""
    return float(client.get_run(run_id).data.tags["lossexp.heartbeat"])


def start(tmp_path: Path, *overrides: str):
    """``lossexp train`` in the background (a child of the warm process, conftest.cli_start), with
    SIGINT handled as in a terminal; what a test calls on a ``subprocess.Popen``."""
    return cli_start(tmp_path, "train", *overrides)


def wait_for_epochs(uri: str, epochs: int, process, timeout: float = 240):
    """Poll the store until the process's run is RUNNING with ``epochs`` epochs logged."""
    deadline = time.monotonic() + timeout
    db = Path(uri[len("sqlite:///"):])
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        if db.exists():
            client, runs = the_run(uri)
            if runs and runs[0].info.status == "RUNNING":
                if len(history(client, runs[0].info.run_id, "epoch")) >= epochs:
                    return runs[0].info.run_id
        time.sleep(0.3)
    process.kill()
    raise AssertionError("the run never got going")


@pytest.mark.slow
def test_non_finite_loss_stops_training_and_fails_the_run(run_cli, store_uri):
    result = run_cli("train", *BLOWS_UP)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("lossexp: error:")]
    client, [run] = the_run(store_uri)
    tags = run.data.tags
    step = int(tags["nonfinite.step"])
    assert line == (f"lossexp: error: non-finite loss: {tags['nonfinite']} is {tags['nonfinite.value']} "
                    f"at step {step}; training stopped (the run ended FAILED)")
    assert run.info.status == "FAILED" and "NonFiniteLoss" in tags["error"]
    # the tag names the first of loss/task, loss/activity, loss that is not finite at that step
    at_step = {key: dict(history(client, run.info.run_id, key))[step] for key in ("loss/task", "loss/activity", "loss")}
    # (MLflow stores ±inf as ±sys.float_info.max)
    assert tags["nonfinite"] == next(key for key, value in at_step.items() if not finite_in_mlflow(value))
    # metrics so far are kept, and training stopped at the first sample that showed the NaN
    loss = history(client, run.info.run_id, "loss")
    assert loss[-1][0] == step and len(loss) >= 3
    assert all(finite_in_mlflow(value) for _, value in loss[:-1])
    assert step < 3 * 40  # long before the three epochs' 120 steps were done
    assert [a.path for a in client.list_artifacts(run.info.run_id, "error")] == ["error/traceback.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_during_fit_ends_the_run_killed_with_its_metrics(tmp_path, store_uri, signum, code):
    process = start(tmp_path, *LONG)
    run_id = wait_for_epochs(store_uri, 1, process)
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=180)  # a loaded machine: ending the run took over 60 s once
    finally:
        process.kill()  # never leave a 100,000-epoch run behind
    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    cause = "interrupted (SIGINT)" if signum == signal.SIGINT else "terminated by SIGTERM"
    # at least one epoch ended: its checkpoint continues the run, and the last line says how
    assert stderr.strip().splitlines()[-1] == (f"lossexp: {cause}; the run ended KILLED (continue it: "
                                               f"lossexp train --resume {run_id})")
    client, [run] = the_run(store_uri)
    assert run.info.run_id == run_id and run.info.status == "KILLED"
    # every sampled step up to the last one is there: nothing pending was lost
    steps = [step for step, _ in history(client, run_id, "loss")]
    epochs = len(history(client, run_id, "epoch"))
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] >= 50 * epochs >= 50


@pytest.mark.slow
def test_sigkilled_run_is_reaped_failed_by_the_next_run(tmp_path, store_uri, run_cli):
    process = start(tmp_path, *LONG, "tracking.heartbeat_s=0.5")
    try:
        dead = wait_for_epochs(store_uri, 1, process)
        client = MlflowClient(store_uri)
        first = heartbeat(client, dead)
        # the heartbeat moves while the process lives (a beat every 0.5 s; a loaded machine may delay it)
        deadline = time.monotonic() + 60
        while heartbeat(client, dead) <= first:
            assert time.monotonic() < deadline, "no newer heartbeat within 60 s"
            assert process.poll() is None, process.communicate()[1][-3000:]
            time.sleep(0.1)
    finally:
        process.kill()
        process.communicate()
    assert client.get_run(dead).info.status == "RUNNING"  # SIGKILL: nothing could end it
    stale_after = 2.0  # > 3 heartbeat intervals: the limit the next run applies
    time.sleep(max(0.0, heartbeat(client, dead) + stale_after + 0.1 - time.time()))  # the dead run is stale now
    result = run_cli("train", *TINY, "loss=none", "trainer.epochs=1", "tracking.heartbeat_s=0.5",
                     f"tracking.stale_after_s={stale_after:g}")
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = the_run(store_uri)
    status = {run.info.run_id: run.info.status for run in runs}
    assert status.pop(dead) == "FAILED" and list(status.values()) == ["FINISHED"]
    tags = client.get_run(dead).data.tags
    assert tags["lossexp.reaped"].startswith("no heartbeat for ") and "process died" in tags["lossexp.reaped"]
    assert tags["error"].startswith("reaped: ")


#: a project data source that says it is loading (a marker file) and takes a minute to do it
SLOW_DATA = '''
import time
from pathlib import Path

import numpy as np
import lossexp


@lossexp.register_data("slow", task="regression")
def slow():
    Path("loading").write_text("")
    time.sleep(60)
    return np.zeros((40, 3), "float32"), np.zeros((40, 1), "float32")
'''


#: a project module that says it is importing (a marker file) and takes a minute to do it
SLOW_MODULE = '''
import time
from pathlib import Path

Path("loading").write_text("")
time.sleep(60)
'''


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, cause", [(signal.SIGINT, 130, "interrupted (SIGINT)"),
                                                 (signal.SIGTERM, 143, "terminated by SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module, overrides", [("slow_data", SLOW_DATA), ("slow_module", SLOW_MODULE)],
                         ids=["building-the-data", "importing-the-project"])
def test_a_signal_before_the_run_started_says_nothing_was_recorded(tmp_path, store_uri, signum, code, cause,
                                                                   module, overrides):
    """Before the run exists — the project's modules importing, the data being built — a signal ends
    the process with one line (a SIGTERM ended it silently: its handler came with the run)."""
    (tmp_path / "pyproject.toml").write_text(f'[tool.lossexp]\nmodules = ["{module}"]\n')
    (tmp_path / f"{module}.py").write_text(overrides)
    process = start(tmp_path, "model=mlp", *(["data=slow"] if module == "slow_data" else []))
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "loading").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.1)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=180)  # a loaded machine: ending the run took over 60 s once
    finally:
        process.kill()
    assert process.returncode == code and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"lossexp: {cause}; stopped before its run started: nothing was recorded"
    assert not Path(store_uri[len("sqlite:///"):]).exists() or not the_run(store_uri)[1]
