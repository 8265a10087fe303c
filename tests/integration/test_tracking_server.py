"""A 4-job sweep at ``n_jobs=2`` against a real ``mlflow server`` on loopback (SQLite backend,
artifacts served by the server), started and stopped by the test."""
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import lossexp_env
from integration_helpers import QUICK, free_port, lossexp, stop_group, sweep_runs, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, artifacts served by the server) on 127.0.0.1."""
    port = free_port()
    root = tmp_path / "server"
    root.mkdir()
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
         "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=lossexp_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)
        log.close()


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
    # the 8 characters lossexp runs shows name a run of the server for --from-run (and evaluate) as for compare
    shown = lossexp(work, "train", "--from-run", children[0].info.run_id[:8], f"tracking.uri={mlflow_server}",
                    "--cfg", "job")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"learning_rate: {children[0].data.params['optimizer.learning_rate']}" in shown.stdout
