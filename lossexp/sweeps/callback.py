"""The Hydra callback that makes a multirun one parent run with one child run per job.

Registered in ``conf/config.yaml`` under ``hydra.callbacks``. In the launching process, before
any job starts, ``on_multirun_start`` resolves the store to an absolute URI (so that
``hydra.job.chdir=true`` and ``false`` write to the same store), creates the store, the
experiment and the parent run — parallel first-time writers of a fresh SQLite store otherwise
race on its schema migration — and hands every job the parent's id, the URI and the swept keys
through the job's own config (``tracking.parent_run_id``, ``tracking.uri``,
``tracking.sweep_keys``): the config reaches every launcher's workers (joblib/loky, submitit,
Ray), whatever environment they start with. ``MLFLOW_RUN_ID`` is never used.

Hydra turns an exception in a callback into a warning and carries on, which would run the jobs
without their parent; so a parent that cannot be created ends the sweep there, with one line.

``on_multirun_end`` closes the parent with a summary; when the sweep raises instead (a job
failed), Hydra never calls it, so an ``atexit`` hook closes the parent FAILED — KILLED when the
launching process got SIGINT or SIGTERM. While the sweep runs, the parent has a heartbeat (tag
``lossexp.heartbeat``, as every run), so one whose launching process was SIGKILLed is reaped
FAILED later (:mod:`lossexp.tracking.reaper`). An Optuna sweep's parent carries its study
(``optuna.study``, ``optuna.storage``): a sweep that continues the study reopens that parent; a grid
sweep continued with ``--resume PARENT_ID`` reopens the parent it names (:mod:`lossexp.sweeps.resume_sweep`).
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from lossexp.sweeps import ablation, resume_check, resume_sweep
from lossexp.sweeps.naming import override_key, pretty_override
from lossexp.sweeps.resume_sweep import PARAMS_TAG, TASK_OVERRIDES_TAG


#: how the last sweep's parent run of this process ended (None: no sweep closed yet): a sweep that completes with its
#: parent FAILED (a failed job of an earlier attempt, a study's failed trial) ends the command non-zero
closed_status: List[str] = []


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def swept_keys(config: DictConfig) -> List[str]:
    """Keys the sweep varies: sweep overrides (``a=1,2``, ``range(…)``) and ``hydra.sweeper.params``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    task = list(config.hydra.overrides.task)
    keys = [o.get_key_element().lstrip("~+") for o in OverridesParser.create().parse_overrides(task)
            if o.is_sweep_override()]
    params = config.hydra.sweeper.get("params") or {}
    keys += [str(k) for k in params if str(k) not in keys]
    return keys


def parent_name(config: DictConfig, keys: List[str]) -> str:
    """``sweep 2026-12-02/04-30-00 · loss=hist_avg+activity,activity,coef`` (the swept overrides;
    the tag ``sweep.overrides`` keeps them all)."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    swept = [pretty_override(o) for o in config.hydra.overrides.task if override_key(o) in keys]
    params = config.hydra.sweeper.get("params") or {}
    swept += [f"{k}={v}" for k, v in params.items() if not any(s.startswith(f"{k}=") for s in swept)]
    return f"sweep {sweep_dir.parent.name}/{sweep_dir.name}" + (f" · {' '.join(swept)}" if swept else "")


class SweepTracker(Callback):
    """Parent run for a multirun (see the module docstring). Pickled into joblib and submitit
    workers with plain strings only: the heartbeat thread and signal handlers stay behind."""

    def __init__(self) -> None:
        self.uri: Optional[str] = None
        self.parent_run_id: Optional[str] = None
        self.directions: List[str] = ["minimize"]
        self.metrics: List[str] = []
        self._closed = False
        self._resume_hint: Optional[str] = None
        self._heartbeat: Any = None
        self._handlers: Dict[int, Any] = {}
        self._signals: List[int] = []

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_heartbeat": None, "_handlers": {}, "_signals": []}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from lossexp.sweeps.objective import objectives
        from lossexp.sweeps.optuna_sweep import is_optuna_sweep
        from lossexp.sweeps.parent import STUDY_KEYS, create_parent, find_study_parent, reopen_parent
        from lossexp.tracking import store
        from lossexp.tracking.heartbeat import Heartbeat

        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        self.uri = store.resolve_uri(tracking.get("uri"), Path(os.getcwd()))
        pairs = objectives(config.objective)
        self.metrics, self.directions = [m for m, _ in pairs], [d for _, d in pairs]
        experiment = str(tracking.get("experiment", "lossexp"))
        keys = swept_keys(config)
        tags = {
            "sweep.overrides": " ".join(config.hydra.overrides.task),
            TASK_OVERRIDES_TAG: json.dumps(list(config.hydra.overrides.task)),  # a resumed sweep is checked against them
            PARAMS_TAG: json.dumps([f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]),
            "sweep.keys": ",".join(keys),
            "sweep.dir": str(Path(str(config.hydra.sweep.dir)).resolve()),
            "sweep.launcher": str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1],
            "sweep.sweeper": str(config.hydra.sweeper.get("_target_", "")).rsplit(".", 1)[-1],
            "lossexp.role": "sweep",
            "sweep.objectives": ",".join(self.metrics),
            "sweep.directions": ",".join(self.directions),
            **launcher_tags(),
        }
        if os.environ.get(ablation.ENV):  # lossexp ablate: a stopped ablation is continued by lossexp ablate --resume
            tags[ablation.REQUEST_TAG] = os.environ[ablation.ENV]
        self._watch_signals()  # from here a signal ends the parent KILLED once it exists (before: nothing recorded)
        atexit.register(self._close, False)
        existing = None
        resumed_parent = os.environ.get(resume_sweep.ENV)  # lossexp train -m … --resume PARENT_ID
        try:
            if resumed_parent:  # checked by the CLI: a grid sweep that stopped, the same grid, no live holder
                existing = resumed_parent
                self.parent_run_id = resumed_parent
                resume_sweep.reopen(self.uri, resumed_parent, tags, bool(os.environ.get(resume_sweep.RETRY_ENV)))
            elif is_optuna_sweep(config):
                study_tags = optuna_tags(config)
                tags.update(study_tags)
                existing = find_study_parent(self.uri, experiment, {k: study_tags[k] for k in STUDY_KEYS})
                if existing is not None:  # the study resumes: so does its parent run
                    self.parent_run_id = existing.info.run_id
                    reopen_parent(self.uri, self.parent_run_id, tags)
            if existing is None:
                from lossexp.tracking.run_context import with_source_tags

                self.parent_run_id = create_parent(self.uri, experiment, parent_name(config, keys),
                                                   with_source_tags(tags, Path(os.getcwd())))
        except Exception as error:  # Hydra would only warn and run the jobs without their parent
            self._abort(error, experiment)
        self._heartbeat = Heartbeat(store.open_client(self.uri), self.parent_run_id,
                                    float(tracking.get("heartbeat_s", 30))).start()
        injected = [f"tracking.parent_run_id={self.parent_run_id}", f"tracking.uri={_quote(self.uri)}",
                    "tracking.sweep_keys=[" + ",".join(_quote(k) for k in keys) + "]"]
        with read_write(config.hydra.overrides):
            # Every launcher composes each job from hydra.overrides.hydra + the job's overrides.
            config.hydra.overrides.hydra = OmegaConf.to_container(config.hydra.overrides.hydra) + injected
        if not is_optuna_sweep(config):  # said when the sweep stops before its end
            self._resume_hint = resume_check.command_line(tags, self.parent_run_id)
        resumed = " (resumed)" if existing is not None else ""
        print(f"lossexp: sweep parent run {self.parent_run_id}{resumed} in {self.uri}")

    def _abort(self, error: Exception, experiment: str) -> None:
        """End the sweep before any job runs: one line, exit 2 for a refusal (credentials), else 1. A
        resumed parent that could not be reopened is left as it was (the exit's close skips it)."""
        self.parent_run_id = None
        from lossexp.errors import EXIT_BAD_INPUT
        from lossexp.tracking import store

        if store.is_access_denied(error):
            print(f"lossexp: error: {store.access_denied(error, self.uri, experiment)}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        summary = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        print(f"lossexp: error: the sweep's parent run could not be created in {self.uri}: "
              f"{type(error).__name__}: {summary[:500]}", file=sys.stderr)
        sys.exit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._close(True)

    def _watch_signals(self) -> None:
        """SIGINT / SIGTERM of the launching process: remembered (the parent ends KILLED), then
        raised as usual (KeyboardInterrupt, :class:`~lossexp.errors.Terminated`)."""
        if threading.current_thread() is not threading.main_thread():
            return
        from lossexp.errors import Terminated

        def handler(signum: int, frame: Any) -> None:
            self._signals.append(signum)
            stopped = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
            stopped.sweep_parent_id = self.parent_run_id  # the CLI's line: the sweep's, not "nothing was recorded"
            raise stopped

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._handlers[signum] = signal.signal(signum, handler)

    def _close(self, completed: bool) -> None:
        if self.parent_run_id is None or self._closed:
            return
        self._closed = True
        from lossexp.sweeps.parent import finish_parent
        from lossexp.tracking import termination

        for signum, previous in self._handlers.items():
            if threading.current_thread() is threading.main_thread():
                signal.signal(signum, previous)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        interrupted = bool(self._signals or termination.received)
        status = finish_parent(self.uri, self.parent_run_id, self.directions, completed, self.metrics, interrupted)
        closed_status.append(status)
        retry = f"; {resume_sweep.RETRY_FLAG} runs its failed jobs again" if status == "FAILED" else ""
        hint = f" (continue it: {self._resume_hint}{retry})" if status != "FINISHED" and self._resume_hint else ""
        print(f"lossexp: sweep parent run {self.parent_run_id} {status}{hint}")


def optuna_tags(config: DictConfig) -> Dict[str, str]:
    """The study of an Optuna sweep, on its parent: name, storage, sampler, pruner, directions."""
    from lossexp.sweeps.objective import objectives
    from lossexp.sweeps.optuna_sweep import location

    url, name = location(config)
    sweeper = config.hydra.sweeper
    return {"optuna.study": name, "optuna.storage": url, "optuna.sampler": str(sweeper.get("sampler")),
            "optuna.pruner": str(sweeper.get("pruner")),
            "optuna.directions": ",".join(d for _, d in objectives(config.objective))}


def launcher_tags() -> Dict[str, str]:
    """Which process holds the parent run (a later run can tell whether it is still alive)."""
    return {"lossexp.launcher.host": socket.gethostname(), "lossexp.launcher.pid": str(os.getpid())}
