"""The user's own MLflow session around ``lossexp.fit``: a run they started, autologging they enabled.

lossexp drives its runs through ``MlflowClient`` and never through MLflow's fluent API, so a run the
user started with ``mlflow.start_run()`` is theirs to end. A fit inside it used to end it (the
sweep job's clean-up of stale fluent runs: the user's run FINISHED mid-block, their next
``mlflow.log_metric`` opened a new run nobody ended), and recorded its own run elsewhere, unrelated.
Now the fit's run is the child of the user's run (tag ``mlflow.parentRunId``), in its store and, unless
``tracking.experiment`` is given, its experiment — as a sweep's jobs are children of its parent — and
the user's run stays active. ``mlflow.autolog()`` of the user's would log lossexp's training a second
time (Keras' ``fit`` patched: a run of its own, or the user's run filled with lossexp's metrics and
model); :func:`autologging_off` keeps it out of lossexp's run. The experiment a notebook chose with
``mlflow.set_experiment`` (MLflow keeps it as ``$MLFLOW_EXPERIMENT_ID``) is where its fits record, as
its own runs would be (:func:`follow_users_experiment`).
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from lossexp.errors import ConfigError
from lossexp.tracking import store


def active_run() -> Any:
    """The fluent API's active run of this thread (None without one, or when MLflow is not imported:
    nobody can have started one)."""
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    return mlflow.active_run()


def nest_in_users_run(config: Any, resolved: Dict[str, Any], experiment_given: bool, base_dir: Path) -> Optional[str]:
    """When the caller holds an active MLflow run and the fit is tracked: make the fit's run its child, in
    its store (``tracking.uri``, set on ``config`` and ``resolved``) and — unless ``experiment_given`` —
    its experiment; returns the user's run id (None when there is nothing to nest in). A ``tracking.uri``
    naming another store is one line: a child cannot live in another store than its parent."""
    users = active_run()
    if users is None or not config.tracking.enabled or config.tracking.parent_run_id:
        return None
    import mlflow

    uri = store.resolve_uri(mlflow.get_tracking_uri(), base_dir)
    if config.tracking.uri and store.resolve_uri(config.tracking.uri, base_dir) != uri:
        raise ConfigError(f"Invalid value for tracking.uri: expected, inside your active MLflow run "
                          f"{users.info.run_id} (mlflow.start_run()), its store {uri} (the fit's run is recorded "
                          f"as its child) or no tracking.uri, got {config.tracking.uri!r}; or end your run first")
    tracking = resolved.setdefault("tracking", {})
    config.tracking.uri = tracking["uri"] = uri
    config.tracking.parent_run_id = tracking["parent_run_id"] = users.info.run_id
    if not experiment_given:
        experiment = store.open_client(uri).get_experiment(users.info.experiment_id).name
        config.tracking.experiment = tracking["experiment"] = experiment
    return users.info.run_id


def follow_users_experiment(config: Any, resolved: Dict[str, Any], experiment_given: bool, base_dir: Path) -> None:
    """Unless ``experiment_given`` or ``$MLFLOW_EXPERIMENT_NAME`` chose one, record into the experiment
    ``$MLFLOW_EXPERIMENT_ID`` names — what ``mlflow.set_experiment("mine")`` sets — in the fit's store
    (``tracking.experiment``, set on ``config`` and ``resolved``). An ID the store does not hold (chosen
    in another store) is one line."""
    chosen = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if experiment_given or not chosen or os.environ.get("MLFLOW_EXPERIMENT_NAME") or not config.tracking.enabled:
        return
    from mlflow.exceptions import MlflowException

    uri = store.resolve_uri(config.tracking.uri, base_dir)
    try:
        experiment = store.open_client(uri).get_experiment(chosen)
    except MlflowException:
        experiment = None
    if experiment is None or experiment.lifecycle_stage != "active":
        raise ConfigError(f"Invalid value for MLFLOW_EXPERIMENT_ID (mlflow.set_experiment's): expected an active "
                          f"experiment of the store the fit records in, {uri}, got {chosen!r}; choose one with "
                          "tracking={'experiment': name}, or set the experiment again in this store")
    config.tracking.experiment = resolved.setdefault("tracking", {})["experiment"] = experiment.name


@contextlib.contextmanager
def autologging_off() -> Iterator[None]:
    """Within the block MLflow's autologging (``mlflow.autolog()``, a flavor's ``autolog()``) logs nothing;
    the user's settings are in force again after it."""
    from mlflow.utils.autologging_utils import disable_autologging

    with disable_autologging():
        yield
