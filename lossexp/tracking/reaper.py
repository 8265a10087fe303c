"""Mark runs FAILED whose process died without ending them (SIGKILL, power loss, OOM killer).

A run lossexp started carries the tag ``lossexp.heartbeat`` (see
:mod:`lossexp.tracking.heartbeat`), refreshed while its process lives. :func:`reap` finds
RUNNING runs whose last heartbeat is older than ``stale_after_s`` seconds (and than three of the
run's own heartbeat intervals, so a short limit never reaps a live run), or whose process ran on this
host and is gone (``kill -9``: no need to wait for its heartbeat to age), and ends them FAILED
with the tags ``error`` and ``lossexp.reaped`` saying why. Runs without a heartbeat tag (started
by another tool, or a sweep's parent) are left alone. ``TrackedRun`` reaps its experiment at the
start of every run; ``lossexp runs --reap`` calls the same function.
"""
from __future__ import annotations

import time
from typing import List, Optional, Sequence

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from lossexp.tracking import store
from lossexp.tracking.heartbeat import INTERVAL_TAG, PROCESS_TAG, TAG, process_is_gone

REASON_TAG = "lossexp.reaped"


def stale_runs(client: MlflowClient, experiment_ids: Sequence[str], stale_after_s: float,
               now: Optional[float] = None) -> List:
    """RUNNING runs of these experiments whose heartbeat is older than ``stale_after_s``, or whose process
    ran on this host and is gone."""
    now = time.time() if now is None else now
    running = store.retrying(lambda: client.search_runs(
        list(experiment_ids), filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ACTIVE_ONLY,
        max_results=1000))
    stale = []
    for run in running:
        beat = run.data.tags.get(TAG)
        if beat is not None and (now - float(beat) > limit(run, stale_after_s) or process_is_gone(run)):
            stale.append(run)
    return stale


def limit(run, stale_after_s: float) -> float:
    """Seconds of silence after which ``run`` counts as dead."""
    return max(stale_after_s, 3 * float(run.data.tags.get(INTERVAL_TAG, 0)))


def reap(client: MlflowClient, experiment_ids: Sequence[str], stale_after_s: float) -> List[str]:
    """End every stale RUNNING run FAILED, tagged with the reason; returns their ids."""
    now = time.time()
    reaped = []
    for run in stale_runs(client, experiment_ids, stale_after_s, now):
        silent = now - float(run.data.tags[TAG])
        reason = (f"no heartbeat for {silent:.0f} s (limit {limit(run, stale_after_s):g} s): "
                  "the process died without ending the run") if silent > limit(run, stale_after_s) else (
            f"its process {run.data.tags[PROCESS_TAG]} is gone from this host (heartbeat {silent:.0f} s ago)")
        end_dead(client, run.info.run_id, reason)
        reaped.append(run.info.run_id)
    return reaped


def end_dead(client: MlflowClient, run_id: str, reason: str) -> None:
    """End a run whose process is dead FAILED, tagged with ``reason`` (``lossexp.reaped``, ``error``)."""
    store.set_tag(client, run_id, REASON_TAG, reason)
    store.set_tag(client, run_id, "error", f"reaped: {reason}")
    store.end_run(client, run_id, "FAILED")
