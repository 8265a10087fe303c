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
failed), Hydra never calls it, so an ``atexit`` hook closes the parent FAILED.
"""
from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any, List, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

from lossexp.sweeps.naming import override_key, pretty_override


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
    """Parent run for a multirun (see the module docstring). Holds plain strings only: Hydra
    pickles callbacks into joblib and submitit workers."""

    def __init__(self) -> None:
        self.uri: Optional[str] = None
        self.parent_run_id: Optional[str] = None
        self.direction = "minimize"
        self._closed = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from lossexp.sweeps.parent import create_parent
        from lossexp.tracking import store

        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        self.uri = store.resolve_uri(tracking.get("uri"), Path(os.getcwd()))
        self.direction = str((config.get("objective") or {}).get("direction", "minimize"))
        keys = swept_keys(config)
        tags = {
            "sweep.overrides": " ".join(config.hydra.overrides.task),
            "sweep.keys": ",".join(keys),
            "sweep.dir": str(Path(str(config.hydra.sweep.dir)).resolve()),
            "sweep.launcher": str(config.hydra.launcher.get("_target_", "")).rsplit(".", 1)[-1],
            "sweep.sweeper": str(config.hydra.sweeper.get("_target_", "")).rsplit(".", 1)[-1],
            "lossexp.role": "sweep",
        }
        experiment = str(tracking.get("experiment", "lossexp"))
        try:
            self.parent_run_id = create_parent(self.uri, experiment, parent_name(config, keys), tags)
        except Exception as error:  # Hydra would only warn and run the jobs without their parent
            self._abort(error, experiment)
        injected = [f"tracking.parent_run_id={self.parent_run_id}", f"tracking.uri={_quote(self.uri)}",
                    "tracking.sweep_keys=[" + ",".join(_quote(k) for k in keys) + "]"]
        with read_write(config.hydra.overrides):
            # Every launcher composes each job from hydra.overrides.hydra + the job's overrides.
            config.hydra.overrides.hydra = OmegaConf.to_container(config.hydra.overrides.hydra) + injected
        atexit.register(self._close, False)
        print(f"lossexp: sweep parent run {self.parent_run_id} in {self.uri}")

    def _abort(self, error: Exception, experiment: str) -> None:
        """End the sweep before any job runs: one line, exit 2 for a refusal (credentials), else 1."""
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

    def _close(self, completed: bool) -> None:
        if self.parent_run_id is None or self._closed:
            return
        self._closed = True
        from lossexp.sweeps.parent import finish_parent

        status = finish_parent(self.uri, self.parent_run_id, self.direction, completed)
        print(f"lossexp: sweep parent run {self.parent_run_id} {status}")

