"""A 4-job sweep at ``n_jobs=2`` against a real ``mlflow server`` on loopback (SQLite backend,
artifacts served by the server), started and stopped by the test."""
from pathlib import Path

import pytest

from integration_helpers import QUICK, lossexp, sweep_runs

pytestmark = pytest.mark.slow


def test_four_job_sweep_at_two_jobs_lands_on_the_server(tmp_path: Path, mlflow_server: str):
    from mlflow.tracking import MlflowClient

    work = tmp_path / "work"
    work.mkdir()
    result = lossexp(work, "train", "-m", *QUICK, "loss=hist_avg,coef", "optimizer.learning_rate=0.001,0.01",
                     "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"tracking.uri={mlflow_server}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (work / "outputs" / "mlflow.db").exists()  # nothing went to a local store
    [parent], children = sweep_runs(mlflow_server)
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == [
        "loss=coef,optimizer.learning_rate=0.001", "loss=coef,optimizer.learning_rate=0.01",
        "loss=hist_avg,optimizer.learning_rate=0.001", "loss=hist_avg,optimizer.learning_rate=0.01"]
    client = MlflowClient(mlflow_server)
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["config.yaml"]
    served = list((tmp_path / "server" / "artifacts").rglob("config.yaml"))
    assert len(served) == 4  # the server stored every child's artifact
    assert parent.data.metrics["sweep/finished"] == 4
