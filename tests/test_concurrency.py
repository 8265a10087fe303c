"""Four ``lossexp train`` processes started at once into one fresh SQLite store: every run and every
metric point each of them should have logged is there (the store's creation races on its schema
migration and on the experiment; writes meet ``database is locked``: see lossexp/tracking/store.py)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import cli_together, logged_steps

JOBS = 4
N_SAMPLES, SPLIT, BATCH, EVERY = 200, 0.25, 16, 3
STEPS = math.ceil(N_SAMPLES * (1 - SPLIT) / BATCH)  # 10 steps in the one epoch


@pytest.mark.slow
def test_four_parallel_runs_into_a_fresh_store_lose_nothing(tmp_path):
    # one process each, forked at once from the warm lossexp process (conftest.cli_together)
    results = cli_together(tmp_path, *[
        ["train", "model=mlp", "model.hidden_units=[8]", "data=regression", f"data.n_samples={N_SAMPLES}",
         "loss=none", "trainer.epochs=1", f"trainer.validation_split={SPLIT}", f"trainer.batch_size={BATCH}",
         f"trainer.log_every_n_steps={EVERY}", f"trainer.seed={job}", f"tracking.run_name=job{job}",
         "tracking.plots=false", "tracking.log_model=false"]
        for job in range(JOBS)
    ])
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "database is locked" not in result.stderr and "Traceback" not in result.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lossexp")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == [f"job{job}" for job in range(JOBS)]
    for run in runs:
        assert run.info.status == "FINISHED"
        keys = set(run.data.metrics)
        assert {"loss", "loss/task", "val_loss", "epoch", "mean_absolute_error",
                "weight_drift/from_init/hidden_1"} <= keys
        for key in keys:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == logged_steps(key, EVERY, STEPS), (run.info.run_name, key)
        assert run.data.params["trainer.seed"] == run.info.run_name[len("job"):]
        # started in the same second, each has a directory of its own: its config, its checkpoint
        logged = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text())
        assert logged["tracking"]["run_name"] == run.info.run_name
    assert len({run.data.tags["lossexp.checkpoint"] for run in runs}) == JOBS
