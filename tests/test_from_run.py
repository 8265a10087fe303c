"""``lossexp train --from-run RUN_ID`` trains exactly the logged config again: every metric history
of the re-run equals the original's, bit for bit; overrides apply on top; a bad run id is one line."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

ORIGINAL = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=120", "loss=hist_avg+coef",
            "loss.coef.penalty=prediction_mean", "trainer.epochs=2", "trainer.batch_size=16", "trainer.seed=7",
            "trainer.log_every_n_steps=2", "optimizer=sgd", "optimizer.learning_rate=0.01",
            "tracking.plots=false", "tracking.log_model=false"]


def histories(client: MlflowClient, run) -> dict:
    keys = [key for key in run.data.metrics if key != "startup_seconds"]  # wall-clock time
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)) for key in keys}


@pytest.mark.slow
def test_from_run_reproduces_the_logged_run(run_cli, store_uri):
    assert run_cli("train", *ORIGINAL).returncode == 0
    client = MlflowClient(store_uri)
    [original] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    # from another directory's point of view nothing is on the command line but the run id
    result = run_cli("train", "--from-run", original.info.run_id)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = client.search_runs([original.info.experiment_id], order_by=["attributes.start_time ASC"])
    rerun = runs[-1]
    assert len(runs) == 2 and rerun.info.status == "FINISHED"
    assert rerun.data.tags["lossexp.from_run"] == original.info.run_id
    assert rerun.data.params == original.data.params
    expected, got = histories(client, original), histories(client, rerun)
    assert len(expected) > 10 and got == expected


def test_from_run_with_an_unknown_run_is_one_line(run_cli, store_uri):
    result = run_cli("train", "--from-run", "0123abcd", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lossexp: error: Unknown run '0123abcd' for --from-run: no such run in {store_uri}"]
