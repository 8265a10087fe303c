"""What MLflow itself records about a run, for runs lossexp creates with ``MlflowClient``.

* **Source tags**: the fluent ``mlflow.start_run`` adds the user, the source (entry point) and its
  type, and the git commit, branch and repository of the source; runs created with
  ``MlflowClient.create_run`` get none ("Created by —" in the UI). :func:`with_source_tags` adds
  them through MLflow's own context providers (``resolve_tags``); lossexp's tags win on a clash.
  MLflow looks for git beside the entry point (the ``lossexp`` script); when that is no checkout,
  the project directory lossexp runs from is asked instead, where the user's configs and code are.
* **System metrics** (``tracking.system_metrics: true``; needs ``psutil``): MLflow's monitor samples
  CPU, memory, disk and network (and GPU where there is one) every
  ``$MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` seconds (10) into ``system/…`` metrics. A run
  shorter than one interval would otherwise record nothing: its samples are logged when it stops.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, Iterator, Optional


def with_source_tags(tags: Dict[str, str], project_dir: Path) -> Dict[str, str]:
    """``tags`` plus MLflow's source, git and user tags (as the fluent API sets them)."""
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils import git_utils
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

    resolved = resolve_tags(tags)
    if MLFLOW_GIT_COMMIT not in resolved:
        found = {MLFLOW_GIT_COMMIT: git_utils.get_git_commit(str(project_dir)),
                 MLFLOW_GIT_BRANCH: git_utils.get_git_branch(str(project_dir)),
                 MLFLOW_GIT_REPO_URL: git_utils.get_git_repo_url(str(project_dir))}
        resolved.update({key: value for key, value in found.items() if value and key not in tags})
    return resolved


@contextlib.contextmanager
def system_metrics(enabled: bool, run_id: Optional[str], uri: Optional[str]) -> Iterator[None]:
    """Sample system metrics into run ``run_id`` while the block runs (a no-op when disabled)."""
    if not enabled or run_id is None:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        nothing_logged = monitor._logging_step == 0
        monitor.finish()
        if nothing_logged:  # stopped within the first interval: log what was sampled
            samples = monitor.aggregate_metrics()
            if samples:
                monitor.publish_metrics(samples)
                monitor.mlflow_logger.flush()
