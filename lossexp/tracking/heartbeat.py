"""A sign of life for a running run, so that one left RUNNING by a dead process can be told apart.

A process killed by SIGKILL or a power cut cannot end its run: MLflow keeps it RUNNING
forever. While a run is open, a daemon thread sets the tag ``lossexp.heartbeat`` (Unix
seconds) every ``interval_s`` seconds; :mod:`lossexp.tracking.reaper` marks a RUNNING run
FAILED once its heartbeat is older than a limit. A failed write (a busy store) is skipped: the
next beat tries again.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Dict, Optional

from mlflow.tracking import MlflowClient

from lossexp.tracking import store

TAG = "lossexp.heartbeat"
INTERVAL_TAG = "lossexp.heartbeat_interval_s"
#: the beating process, ``<host>:<pid>``: on that host, a resume tells a dead one at once
PROCESS_TAG = "lossexp.process"


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_is_gone(run: Any) -> bool:
    """Whether the process that beat for ``run`` ran on this host and no longer exists (a
    ``kill -9``, the OOM killer): False when it ran elsewhere, or when this host cannot tell."""
    host, _, pid = str(run.data.tags.get(PROCESS_TAG, "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by another user
        return False
    return False


def first_tags(interval_s: float) -> Dict[str, str]:
    """The tags :meth:`Heartbeat.start` sets (interval, process, a first beat), for a run created
    with them: one write to the store where three separate ones cost 17 ms each (SQLite's commit)."""
    return {INTERVAL_TAG: str(interval_s), PROCESS_TAG: this_process(), TAG: f"{time.time():.3f}"}


class Heartbeat:
    """Beats once on :meth:`start` (unless the run was created with :func:`first_tags`), then every
    ``interval_s`` seconds until :meth:`stop`."""

    def __init__(self, client: MlflowClient, run_id: str, interval_s: float) -> None:
        self.client = client
        self.run_id = run_id
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def beat(self) -> None:
        store.set_tag(self.client, self.run_id, TAG, f"{time.time():.3f}")

    def start(self, tagged: bool = False) -> "Heartbeat":
        """Start beating; ``tagged``: the run already carries :func:`first_tags`."""
        if not tagged:
            store.set_tag(self.client, self.run_id, INTERVAL_TAG, self.interval_s)
            store.set_tag(self.client, self.run_id, PROCESS_TAG, this_process())
            self.beat()
        self._thread = threading.Thread(target=self._loop, name="lossexp-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # never let tracking trouble kill training; the next beat retries
                pass

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
