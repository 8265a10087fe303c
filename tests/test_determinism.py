"""Same config and seed → bitwise-identical metric histories on CPU; another seed → different ones.

Three runs in one process (as a sweep's reused worker would run them), through the product's own
``run(cfg)``, each recorded in a real SQLite store; every metric history is compared, value by
value (``==`` on floats), except start-up time, which is a wall-clock measurement.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from conftest import assert_same_histories
from lossexp import CONF_DIR

CONFIG = ["model=mlp", "model.hidden_units=[16,8]", "data=regression", "data.n_samples=160",
          "loss=[hist_avg,activity,coef]", "loss.activity.layers=[hidden_1]", "trainer.epochs=2",
          "trainer.batch_size=16", "trainer.log_every_n_steps=2", "trainer.verbose=0",
          "tracking.plots=false", "tracking.log_model=false"]
TIMING = ("startup_seconds",)


def histories(uri: str, run_id: str) -> Dict[str, List[Tuple[int, float]]]:
    client = MlflowClient(uri)
    keys = [key for key in client.get_run(run_id).data.metrics if not key.startswith(TIMING)]
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}


def train(tmp_path, seed: int) -> Dict[str, List[Tuple[int, float]]]:
    """The run's histories; its process keeps no earlier run's train step (``released_gradients``)."""
    from lossexp.train import run
    from lossexp.training.released_gradients import all_reduce_gradient_names

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*CONFIG, f"trainer.seed={seed}", f"tracking.uri={uri}",
                                            f"tracking.run_name=seed{seed}"])
    run(cfg)
    assert len(all_reduce_gradient_names()) <= 2  # this run's Keras train step only
    client = MlflowClient(uri)
    latest = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id],
                                order_by=["attributes.start_time DESC"], max_results=1)[0]
    return histories(uri, latest.info.run_id)


@pytest.mark.slow
def test_same_seed_same_histories_bit_for_bit_other_seed_differs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, again, other = train(tmp_path, 0), train(tmp_path, 0), train(tmp_path, 1)
    assert len(first) > 20 and {"loss", "loss/hist_avg", "weight/coef/coef", "val_loss"} <= set(first)
    assert sum(len(points) for points in first.values()) > 150
    assert_same_histories(again, first)
    assert set(other) == set(first)
    assert other["loss"] != first["loss"] and other["val_loss"] != first["val_loss"]
