"""One MLflow run's lifecycle: create it, record config and artifacts, end it truthfully."""
from __future__ import annotations

import traceback
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Optional, Type

from lossexp.config import LossexpConfig
from lossexp.tracking import store
from lossexp.tracking.callback import MetricSink


class TrackedRun:
    """Context manager: FINISHED on success, KILLED on Ctrl-C, FAILED on any other exception.

    With tracking disabled it still collects the metric history (for plots) and logs nothing.
    """

    def __init__(self, config: LossexpConfig, run_name: str, tags: Dict[str, str], base_dir: Path) -> None:
        self.enabled = config.tracking.enabled
        self.client = None
        self.run_id: Optional[str] = None
        self.uri: Optional[str] = None
        self.run_name = run_name
        self._tags = tags
        self._experiment = config.tracking.experiment
        self._configured_uri = config.tracking.uri
        self._base_dir = base_dir

    def __enter__(self) -> "TrackedRun":
        if self.enabled:
            self.uri = store.resolve_uri(self._configured_uri, self._base_dir)
            self.client = store.open_client(self.uri)
            experiment_id = store.ensure_experiment(self.client, self._experiment, self.uri)
            self.run_id = store.start_run(self.client, experiment_id, self.run_name, self._tags)
        self.sink = MetricSink(self.client, self.run_id)
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if not self.enabled:
            return
        if exc_type is None:
            status = "FINISHED"
        else:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            try:
                self.sink.close()
                self.client.set_tag(self.run_id, "error", "".join(traceback.format_exception_only(exc_type, exc)).strip()[:5000])
            except Exception:  # the run's status matters more than these extras
                pass
        store.end_run(self.client, self.run_id, status)

    def log_params(self, params: Dict[str, Any]) -> None:
        if self.enabled:
            store.log_params(self.client, self.run_id, params)

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        if self.enabled:
            self.client.log_artifact(self.run_id, str(path), artifact_path)
