"""Runs as table rows: what ``lossexp runs`` and ``lossexp compare`` show.

A row holds the run's name, status, loss composition (tag ``loss``), the key params (the keys a
sweep varied, else model, data, learning rate and epochs), the final ``val_loss``, the task
metric (accuracy or mean absolute error, validation first), the objective and the duration.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from lossexp.errors import ConfigError
from lossexp.tracking.params import run_params

DEFAULT_KEYS = ("model.name", "data.name", "optimizer.learning_rate", "trainer.epochs")
TASK_METRICS = ("val_accuracy", "val_mean_absolute_error", "accuracy", "mean_absolute_error")
PARENT_TAG = "mlflow.parentRunId"
#: characters of a run id shown by ``lossexp runs``; any unique prefix is accepted back
SHORT_ID = 8
FULL_ID = 32


@dataclass
class RunRow:
    run_id: str
    name: str
    status: str
    composition: str
    params: Dict[str, str]
    val_loss: Optional[float]
    task_metric: Optional[Tuple[str, float]]
    objective: Optional[float]
    duration_s: Optional[float]
    parent_id: Optional[str]
    component_losses: Dict[str, float] = field(default_factory=dict)
    start_time: int = 0
    #: a sweep child's job number (tag ``sweep.job``)
    job: Optional[int] = None

    @property
    def short_id(self) -> str:
        """The first :data:`SHORT_ID` characters of the run id (``lossexp compare`` takes them)."""
        return self.run_id[:SHORT_ID]

    def as_dict(self) -> Dict[str, Any]:
        """The row for ``--json``: plain JSON types, the full run id; a value that is not finite (a diverged
        run's NaN) is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, which JSON allows (the bare
        ``NaN`` it was is not JSON: JavaScript's ``JSON.parse`` refused the whole array) and which
        Python's ``float()`` and JavaScript's ``Number()`` read back."""
        task = {"name": self.task_metric[0], "value": _json_number(self.task_metric[1])} if self.task_metric else None
        return {"run_id": self.run_id, "name": self.name, "status": self.status, "parent_id": self.parent_id,
                "composition": self.composition, "params": self.params, "val_loss": _json_number(self.val_loss),
                "task_metric": task, "objective": _json_number(self.objective), "duration_s": self.duration_s,
                "component_losses": {k: _json_number(v) for k, v in self.component_losses.items()}}


def _json_number(value: Optional[float]) -> Union[None, float, str]:
    """``value`` for JSON: a finite number as it is, NaN and ±inf as the strings ``"NaN"``, ``"±Infinity"``."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def open_store(uri: Optional[str] = None):
    """(client, uri) for ``uri`` or the project's default store (as ``lossexp train`` resolves it).

    A server is checked first, before MLflow is imported (it answers, it takes the credentials):
    MLflow's own client would retry one that does not answer for minutes.
    """
    configured = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if configured and configured.startswith(("http://", "https://")):
        from lossexp.tracking.reachability import check_usable_server

        check_usable_server(configured, "--uri" if uri else "MLFLOW_TRACKING_URI")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from lossexp.tracking import store, store_file

    resolved = store.resolve_uri(uri, Path(os.getcwd()))
    if store.is_local_sqlite(resolved):
        path = Path(resolved[len("sqlite:///"):])
        if not path.exists():
            raise ConfigError(f"No runs yet: the store {resolved} does not exist "
                              "(run lossexp train first, or pass --uri)")
        store_file.check(path, resolved, store_file.key(uri))
    try:
        return MlflowClient(tracking_uri=resolved), resolved
    except MlflowException as error:
        raise store.unusable(error, resolved, "--uri" if uri else "MLFLOW_TRACKING_URI") from None


def param_value(run: Any, key: str) -> str:
    """A run's value for a config key (``loss`` is its composition tag; a group chosen by name,
    ``optimizer`` or ``model``, is its ``name``, not every option of the section)."""
    if key == "loss":
        return run.data.tags.get("loss", "")
    params = run_params(run)
    if key in params:
        return params[key]
    if f"{key}.name" in params:
        return params[f"{key}.name"]
    nested = {k[len(key) + 1:]: v for k, v in params.items() if k.startswith(key + ".")}
    return nested.get("value", ",".join(f"{k}={v}" for k, v in sorted(nested.items())))


def stored_value(value: float) -> float:
    """A metric as it was logged: MLflow's SQL store keeps ±inf as ±1.7976931348623157e308, the largest
    float (a diverged run's loss read back as 1.798e+308 in the table and in ``--json``)."""
    return math.copysign(math.inf, value) if abs(value) == sys.float_info.max else value


def to_row(run: Any, keys: Sequence[str]) -> RunRow:
    info, metrics = run.info, {key: stored_value(value) for key, value in run.data.metrics.items()}
    task = next(((name, metrics[name]) for name in TASK_METRICS if name in metrics), None)
    end = info.end_time or (int(time.time() * 1000) if info.status == "RUNNING" else None)
    components = {k[len("loss/"):]: v for k, v in metrics.items() if k.startswith("loss/") and k.count("/") == 1}
    job = run.data.tags.get("sweep.job", "")
    return RunRow(
        run_id=info.run_id, name=info.run_name or info.run_id, status=info.status,
        composition=run.data.tags.get("loss", ""), params={k: param_value(run, k) for k in keys},
        val_loss=metrics.get("val_loss"), task_metric=task, objective=metrics.get("objective"),
        duration_s=(end - info.start_time) / 1000 if end and info.start_time else None,
        parent_id=run.data.tags.get(PARENT_TAG), component_losses=components, start_time=info.start_time or 0,
        job=int(job) if job.isdigit() else None,
    )


def experiment_ids(client: Any, name: Optional[str]) -> List[str]:
    if name is None:
        return [e.experiment_id for e in client.search_experiments()]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = ", ".join(sorted(e.name for e in client.search_experiments())) or "(none)"
        raise ConfigError(f"Unknown experiment {name!r}: valid choices are {known}")
    return [experiment.experiment_id]


def search(client: Any, ids: List[str], filter_string: str = "", limit: int = 1000) -> List[Any]:
    runs = client.search_runs(ids, filter_string, max_results=limit, order_by=["attributes.start_time DESC"])
    return list(runs)


def resolve_run_id(client: Any, run_id: str) -> Optional[str]:
    """The full id of the run whose id is ``run_id`` or starts with it (None: no such run);
    a :class:`ConfigError` when a prefix matches several runs."""
    from mlflow.exceptions import MlflowException

    if len(run_id) >= FULL_ID:
        try:
            return client.get_run(run_id).info.run_id
        except MlflowException:
            return None
    if len(run_id) < 4:
        return None
    from lossexp.tracking.run_ids import ids_starting_with

    matches = ids_starting_with(client, run_id)
    if len(matches) > 1:
        raise ConfigError(f"Ambiguous run id {run_id!r}: it starts {len(matches)} run ids "
                          f"({', '.join(m[:SHORT_ID + 4] for m in matches[:5])}); give more characters")
    return matches[0] if matches else None


def get_parent(client: Any, parent_id: str) -> Any:
    resolved = resolve_run_id(client, parent_id)
    if resolved is None:
        raise ConfigError(f"Unknown sweep {parent_id!r}: no run with that id (lossexp runs lists them)")
    return client.get_run(resolved)


def sweep_keys(parent: Any) -> List[str]:
    return [k for k in parent.data.tags.get("sweep.keys", "").split(",") if k]


def sweep_children(client: Any, parent: Any, given: str) -> List[Any]:
    """All the parent's children (page by page: one search stopped at 1,000, the newest), in job order; a
    run without any (``given``, as the user named it) is not a sweep's parent: one line."""
    from lossexp.sweeps.parent import children

    runs = children(client, parent.info.run_id)
    if not runs:
        raise ConfigError(f"Run {given!r} is not a sweep's parent: it has no child runs")
    return sorted(runs, key=lambda r: (int(r.data.tags.get("sweep.job", "0") or 0), r.info.start_time))
