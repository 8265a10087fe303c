"""One MLflow run's lifecycle: create it, record config and artifacts, end it truthfully.

A server that refuses to create the run (credentials, permissions: HTTP 401 / 403) is a
:class:`~lossexp.errors.ConfigError`, one line and exit status 2; nothing was recorded.

On entry the run's experiment is first cleared of runs left RUNNING by dead processes
(:func:`lossexp.tracking.reaper.reap`), then the run starts with a heartbeat and SIGTERM
turned into an exception (:func:`lossexp.tracking.termination.terminate_on_signals`). On exit it
ends FINISHED; KILLED on SIGINT / SIGTERM; FAILED on any other exception, with the tag
``error`` (the exception's one-line summary) and the artifact ``error/traceback.txt``. The
pending metrics are written in every case.
"""
from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Optional, Type

from mlflow.exceptions import MlflowException

from lossexp.config import LossexpConfig
from lossexp.tracking import store
from lossexp.tracking.callback import MetricSink
from lossexp.errors import Terminated, stop_beneath
from lossexp.tracking.termination import terminate_on_signals
from lossexp.tracking.heartbeat import Heartbeat, first_tags
from lossexp.tracking.reaper import reap

TRACEBACK_ARTIFACT = "error/traceback.txt"


def status_for(exc_type: Optional[Type[BaseException]]) -> str:
    """FINISHED, KILLED (a signal: Ctrl-C or SIGTERM) or FAILED."""
    if exc_type is None:
        return "FINISHED"
    return "KILLED" if issubclass(exc_type, (KeyboardInterrupt, Terminated)) else "FAILED"


class TrackedRun:
    """Context manager: FINISHED on success, KILLED on Ctrl-C / SIGTERM, FAILED on any other exception.

    With tracking disabled it still collects the metric history (for plots) and logs nothing.
    """

    def __init__(self, config: LossexpConfig, run_name: str, tags: Dict[str, str], base_dir: Path,
                 resume_run_id: Optional[str] = None) -> None:
        self.enabled = config.tracking.enabled
        self.client = None
        self.run_id: Optional[str] = None
        self.experiment_id: Optional[str] = None
        self.uri: Optional[str] = None
        self.run_name = run_name
        self.reaped: list = []
        self._tags = tags
        self._tracking = config.tracking
        self._base_dir = base_dir
        self._heartbeat: Optional[Heartbeat] = None
        self._signals = contextlib.ExitStack()
        self._running = False  # the MLflow run exists and is RUNNING: it must be ended
        self.resume_run_id = resume_run_id

    def __enter__(self) -> "TrackedRun":
        try:
            if self.enabled:
                self._open()
            self._signals.enter_context(terminate_on_signals())
            recorded = store.metric_histories(self.client, self.run_id, self.uri) if self.resume_run_id and self.enabled else None
            self.sink = MetricSink(self.client, self.run_id, recorded)
        except BaseException as stopped:  # a signal or an error once the run exists: it ends, never left RUNNING
            if self._running:
                self.__exit__(type(stopped), stopped, stopped.__traceback__)
            raise
        return self

    def _open(self) -> None:
        """Create the run (or restart the stopped one) with its heartbeat."""
        self.uri = store.resolve_uri(self._tracking.uri, self._base_dir)
        try:
            self.client = store.open_client(self.uri)
            if self.resume_run_id:  # continued: the stopped run, RUNNING again in its own experiment,
                self.run_id = self.resume_run_id  # its heartbeat fresh first (else a reaper could end it)
                Heartbeat(self.client, self.run_id, self._tracking.heartbeat_s).beat()
                self.experiment_id = store.restart_run(self.client, self.run_id, self._tags)
                self._running = True
                self.reaped = reap(self.client, [self.experiment_id], self._tracking.stale_after_s)
            else:
                self.experiment_id = store.ensure_experiment(self.client, self._tracking.experiment, self.uri)
                self.reaped = reap(self.client, [self.experiment_id], self._tracking.stale_after_s)
                self.run_id = store.start_run(self.client, self.experiment_id, self.run_name,
                                              {**self._tags, **first_tags(self._tracking.heartbeat_s)})
                self._running = True
        except MlflowException as error:  # a server refusing the run: no run exists, bad input (exit 2)
            if not store.is_access_denied(error):
                raise
            raise store.access_denied(error, self.uri, self._tracking.experiment) from None
        self._heartbeat = Heartbeat(self.client, self.run_id, self._tracking.heartbeat_s).start(
            tagged=not self.resume_run_id)  # a new run was created with its heartbeat's tags

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        late: Optional[Terminated] = None
        stopped = stop_beneath(exc) if exc is not None else None
        if stopped is not None:  # a signal's exception hidden by another raised as it unwound: the run was stopped
            exc_type, exc = type(stopped), stopped
        try:
            self._signals.close()
        except Terminated as lost:  # a SIGTERM whose exception was dropped mid-run (terminate_on_signals)
            if exc_type is None:
                late = lost
                exc_type, exc, tb = Terminated, lost, lost.__traceback__
        if self.enabled:
            if self._heartbeat is not None:
                self._heartbeat.stop()
            status = status_for(exc_type)
            if exc_type is not None:
                for record in (lambda: self.sink.close(),  # no sink yet when the run stopped as it began
                               lambda: self._record_error(exc_type, exc, tb)):
                    try:
                        record()
                    except Exception:  # the run's status matters more than these extras
                        pass
            store.end_run(self.client, self.run_id, status)
            if exc is not None:  # what stopped the run says which run and how it ended (the CLI, fit() print it)
                exc.run_status, exc.run_id = status, self.run_id
        if late is not None:
            raise late

    def _record_error(self, exc_type: Type[BaseException], exc: Optional[BaseException],
                      tb: Optional[TracebackType]) -> None:
        summary = "".join(traceback.format_exception_only(exc_type, exc)).strip()
        store.set_tag(self.client, self.run_id, "error", summary[:5000])
        if status_for(exc_type) == "FAILED":
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.client.log_text(self.run_id, text, TRACEBACK_ARTIFACT)

    def log_params(self, params: Dict[str, Any]) -> None:
        if self.enabled:
            store.log_params(self.client, self.run_id, params)

    def record_resumed_params(self, params: Dict[str, Any]) -> bool:
        """A resumed run's ``params`` (flattened) that differ from those of its first start, as
        ``lossexp.param.<key>`` tags (MLflow keeps a param's first value); whether any did."""
        if not self.enabled:
            return False
        from lossexp.tracking.params import changed_params

        changed = changed_params(self.client.get_run(self.run_id).data.params, params)
        for key, value in changed.items():
            store.set_tag(self.client, self.run_id, key, value)
        return bool(changed)

    def log_artifact(self, path: Path, artifact_path: Optional[str] = None) -> None:
        if self.enabled:
            self.client.log_artifact(self.run_id, str(path), artifact_path)
