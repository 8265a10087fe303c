"""Sweeps under each launcher and sweeper land as one parent with its children, in one store."""
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from integration_helpers import QUICK, lossexp, sweep_runs

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_chdir_true_and_false_write_one_store(tmp_path: Path, store_uri: str):
    for chdir in ("true", "false"):
        result = lossexp(tmp_path, "train", "-m", *QUICK, "loss=hist_avg", f"hydra.job.chdir={chdir}")
        assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in tmp_path.rglob("*.db")] == ["mlflow.db"]
    parents, children = sweep_runs(store_uri)
    assert len(parents) == 2 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {p.info.run_id for p in parents}
    assert {r.info.status for r in parents + children} == {"FINISHED"}


def test_optuna_tunes_weights_through_submitit_local(tmp_path: Path, store_uri: str):
    result = lossexp(tmp_path, "train", "-m", *QUICK, "hparams_search=optuna_weights", "hydra.sweeper.n_trials=2",
                     "hydra/launcher=submitit_local")
    assert result.returncode == 0, result.stderr[-3000:]
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.sweeper"] == "OptunaSweeper"
    assert parent.data.tags["sweep.launcher"] == "LocalLauncher"
    assert sorted(c.info.run_name.split(" ")[0] for c in children) == ["#0", "#1"]
    for child in children:
        assert child.info.status == "FINISHED"
        assert 1e-4 <= float(child.data.params["loss.hist_avg.weight"]) <= 1.0
        assert 1e-5 <= float(child.data.params["loss.activity.weight"]) <= 0.1
        assert child.data.metrics["objective"] == child.data.metrics["val_loss"]
    best = min(children, key=lambda c: c.data.metrics["objective"])
    assert parent.data.metrics["sweep/best_objective"] == best.data.metrics["objective"]
    assert parent.data.tags["sweep.best_run_id"] == best.info.run_id


def test_a_failing_job_fails_the_parent_not_its_siblings(tmp_path: Path, store_uri: str):
    # SGD (momentum 0.9) at a learning rate of 2.0 on this MLP blows up (a non-finite loss within a few steps, as
    # tests/tracking/test_faults.py's BLOWS_UP; at 0.3 the loss reached 1e10 and stayed finite); at 0.01 it trains
    result = lossexp(tmp_path, "train", "-m", *QUICK, "data.n_samples=200", "model.hidden_units=[64,32]",
                     "loss=activity", "loss.activity.layers=[hidden_1]", "optimizer=sgd", "optimizer.momentum=0.9",
                     "trainer.epochs=3",
                     "trainer.log_every_n_steps=2", "optimizer.learning_rate=0.01,2.0", "hydra/launcher=joblib")
    assert result.returncode != 0
    assert "non-finite loss" in result.stderr
    [parent], children = sweep_runs(store_uri)
    status = {c.info.run_name: c.info.status for c in children}
    assert status == {"optimizer.learning_rate=0.01": "FINISHED", "optimizer.learning_rate=2.0": "FAILED"}
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "NonFiniteLoss" in failed.data.tags["error"]
    client = MlflowClient(store_uri)
    [traceback] = client.list_artifacts(failed.info.run_id, "error")
    assert traceback.path == "error/traceback.txt"
    text = Path(client.download_artifacts(failed.info.run_id, traceback.path, str(tmp_path))).read_text()
    assert "Traceback" in text and "NonFiniteLoss" in text
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/failed"] == 1 and parent.data.metrics["sweep/finished"] == 1
