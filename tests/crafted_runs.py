"""Runs that someone else logged on a shared store, as a replaying user finds them: a run whose
``config.yaml`` artifact was written by hand (crafted), created with ``MlflowClient`` alone (no
training), for the ``--from-run``, ``lossexp evaluate`` and resumed-sweep tests."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

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


def crafted_sweep(uri: str, status: str, task_overrides: Optional[Sequence[str]], **tags: str) -> str:
    """A grid sweep's parent run ended ``status`` (left RUNNING for ``RUNNING``), recorded as the sweep
    callback records one, with ``task_overrides`` (None: recorded before that tag was); its id."""
    from lossexp.sweeps.resume_sweep import TASK_OVERRIDES_TAG
    from lossexp.tracking import store

    client = store.open_client(uri)
    experiment = store.ensure_experiment(client, "lossexp", uri)
    if task_overrides is not None:
        tags[TASK_OVERRIDES_TAG] = json.dumps(list(task_overrides))
    parent = client.create_run(experiment, run_name="sweep", tags={
        "lossexp.role": "sweep", "sweep.sweeper": "BasicSweeper", "sweep.launcher": "BasicLauncher", **tags}).info.run_id
    if status != "RUNNING":
        client.set_terminated(parent, status)
    return parent


def crafted_child(uri: str, parent: str, status: str, job: Sequence[str], **tags: str) -> str:
    """A child of sweep ``parent`` for the job of overrides ``job``, ended ``status``; its id."""
    from lossexp.sweeps.grid import job_digest
    from lossexp.tracking import store

    client = store.open_client(uri)
    run_id = client.create_run(client.get_run(parent).info.experiment_id, run_name=job[-1] if job else "job", tags={
        "mlflow.parentRunId": parent, "sweep.job_key": job_digest(job), **tags}).info.run_id
    if status != "RUNNING":
        client.set_terminated(run_id, status)
    return run_id
