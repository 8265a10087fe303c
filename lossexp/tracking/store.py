"""Where runs go and how a run starts and ends.

The default store is SQLite at an absolute path, ``<dir lossexp runs from>/outputs/mlflow.db``,
with artifacts beside it in ``outputs/mlartifacts``; ``tracking.uri`` or ``$MLFLOW_TRACKING_URI``
point elsewhere (e.g. a tracking server). Runs are driven through ``MlflowClient`` rather than
the fluent API, so no global "active run" exists for MLflow's ``atexit`` hook to mark FINISHED
after a crash: the run ends FINISHED, FAILED or KILLED exactly as training ended.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

#: log_batch accepts at most this many params / metrics per call.
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000


def default_uri(base_dir: Path) -> str:
    return f"sqlite:///{(base_dir / 'outputs' / 'mlflow.db').resolve()}"


def resolve_uri(configured: Optional[str], base_dir: Path) -> str:
    """``tracking.uri`` > ``$MLFLOW_TRACKING_URI`` > SQLite under ``base_dir/outputs``.

    A relative SQLite path is made absolute against ``base_dir`` (the directory lossexp was
    started from), so a job that Hydra moved into its output directory writes the same store."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(base_dir)
    if is_local_sqlite(uri) and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(base_dir / uri[len('sqlite:///'):]).resolve()}"
    return uri


def is_local_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The experiment's id, creating it (with artifacts beside a local SQLite store) if needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if is_local_sqlite(uri):
        db_path = Path(uri[len("sqlite:///"):])
        artifact_location = (db_path.parent / "mlartifacts").resolve().as_uri()
        db_path.parent.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifact_location)


def open_client(uri: str) -> MlflowClient:
    if is_local_sqlite(uri):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """``{"loss": {"hist_avg": {"weight": 0.01}}}`` → ``{"loss.hist_avg.weight": 0.01}``."""
    if isinstance(tree, dict):
        out: Dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        if not tree and prefix:
            out[prefix[:-1]] = "{}"
        return out
    return {prefix[:-1]: tree}


def _chunks(items: List[Any], size: int) -> Iterator[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def log_params(client: MlflowClient, run_id: str, params: Dict[str, Any]) -> None:
    entries = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in sorted(params.items())]
    for chunk in _chunks(entries, MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=chunk)


def metric_entries(points: Iterable[Tuple[str, float, int]]) -> List[Metric]:
    now = int(time.time() * 1000)
    return [Metric(key, float(value), now, int(step)) for key, value, step in points]


def log_metrics(client: MlflowClient, run_id: str, points: List[Tuple[str, float, int]], synchronous: bool = True) -> List[Any]:
    """Log ``(key, value, step)`` points in as few calls as MLflow allows; returns async handles."""
    handles = []
    for chunk in _chunks(metric_entries(points), MAX_METRICS_PER_BATCH):
        handles.append(client.log_batch(run_id, metrics=chunk, synchronous=synchronous))
    return [h for h in handles if h is not None]


def start_run(client: MlflowClient, experiment_id: str, run_name: str, tags: Dict[str, str]) -> str:
    run = client.create_run(experiment_id, run_name=run_name, tags=tags)
    return run.info.run_id


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    client.set_terminated(run_id, status=status)
