"""Runs that someone else logged on a shared store, as a replaying user finds them: a run whose
``config.yaml`` artifact was written by hand (crafted), created with ``MlflowClient`` alone (no
training), for the ``--from-run`` and ``lossexp evaluate`` tests."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Sequence

import yaml

from lossexp import CONF_DIR

#: a small job: an MLP on the regression data, one short epoch, no plots or model
SMALL = ("model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=100", "loss=hist_avg",
         "trainer.epochs=1", "trainer.verbose=0", "tracking.plots=false", "tracking.log_model=false")


def composed_config(overrides: Sequence[str] = SMALL) -> Dict[str, Any]:
    """The config ``lossexp train OVERRIDES`` logs as ``config.yaml`` (composed and resolved)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="crafted"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def crafted_run(uri: str, config_text: str, experiment: str = "lossexp") -> str:
    """A FINISHED run in the store at ``uri`` whose ``config.yaml`` artifact is ``config_text``; its id."""
    from mlflow.tracking import MlflowClient

    from lossexp.tracking import store

    client = store.open_client(uri)
    experiment_id = store.ensure_experiment(client, experiment, uri)
    run_id = client.create_run(experiment_id, run_name="crafted").info.run_id
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "config.yaml"
        path.write_text(config_text)
        MlflowClient(uri).log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def dump(config: Dict[str, Any]) -> str:
    """YAML as a person would write it by hand (``${…}`` left as typed)."""
    return yaml.safe_dump(config, sort_keys=False)
