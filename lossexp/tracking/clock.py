"""How long a run took to start: lossexp's start-up cost as a researcher feels it.

The first run of a process counts from the process's start (interpreter, imports, data, model,
tracing, first call). A later run of the same process — a sweep's second job onwards in the basic
launcher or a reused joblib worker, a notebook's second ``lossexp.fit`` — counts from its own start
(:func:`run_started`): counted from the process's, a 45-job sweep's ``startup_seconds`` grew with
every job before it, 15 s for job 1 to 400 s for job 45, where each job started in about 1 s.
"""
from __future__ import annotations

import os
import time
from typing import Optional

#: runs started in this process, and when the latest started (``time.monotonic``) when it is not the first
_runs_started = 0
_run_start: Optional[float] = None


def seconds_since_process_start() -> Optional[float]:
    """Seconds since the OS started this process, to 10 ms (Linux ``/proc``; None elsewhere)."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return since_boot - start_ticks / os.sysconf("SC_CLK_TCK")


def run_started() -> None:
    """Call as a run begins (before its data and model): a run after the first in this process
    measures its start-up from here."""
    global _runs_started, _run_start
    _runs_started += 1
    _run_start = time.monotonic() if _runs_started > 1 else None


def startup_seconds() -> Optional[float]:
    """The current run's start-up so far: since the process started for its first run, since
    :func:`run_started` for a later one."""
    if _run_start is not None:
        return time.monotonic() - _run_start
    return seconds_since_process_start()
