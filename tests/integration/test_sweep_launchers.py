"""Sweeps under each launcher and sweeper land as one parent with its children, in one store."""
from pathlib import Path

import pytest

from integration_helpers import QUICK, lossexp, sweep_runs

pytestmark = pytest.mark.slow


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
    # digits has no val_mean_absolute_error: that job trains, then fails to report its objective
    quick = [o for o in QUICK if not o.startswith("data=")]
    result = lossexp(tmp_path, "train", "-m", *quick, "data=regression,digits",
                     "objective.metric=val_mean_absolute_error", "hydra/launcher=joblib")
    assert result.returncode != 0
    assert "objective.metric 'val_mean_absolute_error' was not recorded" in result.stderr
    [parent], children = sweep_runs(store_uri)
    status = {c.info.run_name: c.info.status for c in children}
    assert status == {"data=regression": "FINISHED", "data=digits": "FAILED"}
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "ObjectiveMissing" in failed.data.tags["error"]
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["sweep/failed"] == 1 and parent.data.metrics["sweep/finished"] == 1
