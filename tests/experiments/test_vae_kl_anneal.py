"""R2's VAE from the command line: ``experiment=vae_kl_anneal`` trains and logs ``weight/kl``
exactly on its configured schedule; ``model=vae`` trains on the default data with ``loss=kl``
(its bad inputs are rows of tests/test_bad_inputs.py)."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from lossexp.losses.weight_spec import parse_weight


def np_linear_warmup(t: int, start: float, end: float, steps: float, delay: float) -> float:
    """Linear warm-up, written independently of WeightSpec: start before ``delay``, end after ``delay + steps``."""
    return float(start + (end - start) * np.clip((t - delay) / steps, 0.0, 1.0))


@pytest.mark.slow
def test_experiment_logs_weight_kl_on_its_schedule(run_cli, store_uri, all_runs, tmp_path):
    result = run_cli("train", "experiment=vae_kl_anneal", "trainer.epochs=2", "data.n_samples=300",
                     "loss.kl.weight.steps=10", "loss.kl.weight.delay=2", "trainer.log_every_n_steps=3")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    assert run.info.status == "FINISHED" and run.info.run_name == "vae_kl_anneal·vae·kl"
    assert run.data.tags["model"] == "vae" and run.data.tags["loss"] == "kl"
    assert {"term/kl", "loss/kl", "val_term/kl", "val_loss/kl", "loss/task", "mean_absolute_error"} <= set(
        run.data.metrics)
    final = run.data.metrics
    assert final["loss"] == pytest.approx(final["loss/task"] + final["loss/kl"], rel=1e-4)

    client = MlflowClient(store_uri)
    config = OmegaConf.load(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
    weight = OmegaConf.to_container(config.loss.kl.weight)
    assert weight == {"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 10, "delay": 2}
    spec = parse_weight("loss.kl.weight", weight)
    logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "weight/kl"))
    steps_per_epoch = int(np.ceil(240 / 32))  # 300 rows, validation split 0.2, batch 32
    every_3_in_each_epoch = {base + k for base in (0, steps_per_epoch) for k in range(3, steps_per_epoch, 3)}
    assert [step for step, _ in logged] == sorted({0, *every_3_in_each_epoch, steps_per_epoch, 2 * steps_per_epoch})
    for step, value in logged:
        assert value == pytest.approx(spec.at_step(step), rel=1e-6, abs=1e-7), step
        assert value == pytest.approx(np_linear_warmup(step, 0.0, 1.0, 10, 2), rel=1e-6, abs=1e-7), step
    assert logged[0][1] == 0.0 and logged[-1][1] == 1.0  # from the start of the warm-up to its end


@pytest.mark.slow
def test_model_vae_trains_on_the_default_data_with_kl(run_cli, store_uri, all_runs):
    result = run_cli("train", "model=vae", "trainer.epochs=1", "data.n_samples=100")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    assert run.info.status == "FINISHED" and run.data.tags["loss"] == "kl" and run.data.tags["data"] == "digits"
    assert run.data.params["model.latent_dim"] == "8" and run.data.params["loss.kl.weight"] == "1.0"
    assert {"term/kl", "val_loss/kl", "loss/task"} <= set(run.data.metrics)
    assert "weight/kl" not in run.data.metrics  # a constant weight is not tracked
