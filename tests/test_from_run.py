"""``lossexp train --from-run RUN_ID`` trains exactly the logged config again: every metric history
of the re-run equals the original's, bit for bit; overrides apply on top and change only what
they name; a bad run id is one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import lossexp_env

ORIGINAL = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=120", "loss=hist_avg+coef",
            "loss.coef.penalty=prediction_mean", "trainer.epochs=2", "trainer.batch_size=16", "trainer.seed=7",
            "trainer.log_every_n_steps=2", "optimizer=sgd", "optimizer.learning_rate=0.01",
            "tracking.plots=false", "tracking.log_model=false"]


def lossexp(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossexp.cli", *args], cwd=cwd, env=lossexp_env(),
                          capture_output=True, text=True, timeout=300)


def histories(client: MlflowClient, run) -> dict:
    keys = [key for key in run.data.metrics if key != "startup_seconds"]  # wall-clock time
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)) for key in keys}


def rerun(cwd: Path, client: MlflowClient, run, *args: str):
    """The run that ``lossexp train --from-run RUN_ID ARGS`` adds to the store."""
    experiment = [run.info.experiment_id]
    before = {r.info.run_id for r in client.search_runs(experiment)}
    result = lossexp(cwd, "train", "--from-run", run.info.run_id, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    [new] = [r for r in client.search_runs(experiment) if r.info.run_id not in before]
    assert new.info.status == "FINISHED" and new.data.tags["lossexp.from_run"] == run.info.run_id
    return new


@pytest.mark.slow
def test_from_run_reproduces_the_logged_run_and_overrides_apply_on_top(tmp_path):
    """One test, so that the original is trained once whatever the xdist scheduling."""
    result = lossexp(tmp_path, "train", *ORIGINAL)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    expected = histories(client, run)

    # nothing on the command line but the run id: the config comes from the run's config.yaml artifact
    again = rerun(tmp_path, client, run)
    assert again.data.params == run.data.params
    assert len(expected) > 10 and histories(client, again) == expected

    # an override changes its key and nothing else
    reseeded = rerun(tmp_path, client, run, "trainer.seed=1")
    changed = {key for key in run.data.params if reseeded.data.params.get(key) != run.data.params[key]}
    assert set(reseeded.data.params) == set(run.data.params) and changed == {"trainer.seed"}
    assert (run.data.params["trainer.seed"], reseeded.data.params["trainer.seed"]) == ("7", "1")
    got = histories(client, reseeded)
    assert set(got) == set(expected)
    assert [step for step, _ in got["loss"]] == [step for step, _ in expected["loss"]]  # the same schedule
    assert got["loss"] != expected["loss"] and got["val_loss"] != expected["val_loss"]  # another seed


def test_from_run_with_an_unknown_run_is_one_line(run_cli, store_uri):
    result = run_cli("train", "--from-run", "0123abcd", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lossexp: error: Unknown run '0123abcd' for --from-run: no such run in {store_uri}"]
