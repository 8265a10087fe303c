"""The reaper ends FAILED exactly the RUNNING runs whose heartbeat went stale (real SQLite store)."""
from __future__ import annotations

import os
import re
import time

from lossexp.tracking import store
from lossexp.tracking.heartbeat import INTERVAL_TAG, TAG, Heartbeat
from lossexp.tracking.reaper import REASON_TAG, reap


def test_only_stale_heartbeats_are_reaped(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = store.open_client(uri)
    experiment = store.ensure_experiment(client, "t", uri)
    now = time.time()

    def run(name: str, beat_age=None, interval=1.0, finished=False) -> str:
        run_id = store.start_run(client, experiment, name, {})
        if beat_age is not None:
            client.set_tag(run_id, TAG, str(now - beat_age))
            client.set_tag(run_id, INTERVAL_TAG, str(interval))
        if finished:
            store.end_run(client, run_id, "FINISHED")
        return run_id

    dead = run("dead", beat_age=100)
    alive = run("alive", beat_age=1)
    slow_beater = run("slow", beat_age=100, interval=60)  # 3 × its own interval not yet passed
    foreign = run("foreign")  # no heartbeat: not lossexp's, left alone
    done = run("done", beat_age=100, finished=True)
    assert reap(client, [experiment], stale_after_s=30) == [dead]
    status = {rid: client.get_run(rid).info.status for rid in (dead, alive, slow_beater, foreign, done)}
    assert status == {dead: "FAILED", alive: "RUNNING", slow_beater: "RUNNING", foreign: "RUNNING", done: "FINISHED"}
    reason = client.get_run(dead).data.tags[REASON_TAG]
    assert re.match(r"no heartbeat for 10\d s \(limit 30 s\): the process died", reason), reason
    assert reap(client, [experiment], stale_after_s=30) == []


def test_a_fresh_runs_process_gone_from_this_host_is_reaped_without_waiting_for_its_heartbeat(tmp_path):
    """``lossexp runs --reap`` right after a ``kill -9`` marked 0 runs: the heartbeat (1 s old) had to age
    three intervals, though ``--resume`` already knew the process was gone (probe J). Another host's
    process, or one alive here, is left to its heartbeat."""
    import socket
    import subprocess
    import sys

    from lossexp.tracking.heartbeat import PROCESS_TAG

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = store.open_client(uri)
    experiment = store.ensure_experiment(client, "t", uri)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    runs = {}
    for name, process in [("killed", f"{here}:{gone.stdout.strip()}"), ("alive", f"{here}:{os.getpid()}"),
                          ("elsewhere", f"another-host:{gone.stdout.strip()}")]:
        runs[name] = store.start_run(client, experiment, name, {TAG: str(time.time() - 1), INTERVAL_TAG: "30",
                                                                PROCESS_TAG: process})
    assert reap(client, [experiment], stale_after_s=300) == [runs["killed"]]
    reason = client.get_run(runs["killed"]).data.tags[REASON_TAG]
    assert re.match(rf"its process {here}:\d+ is gone from this host \(heartbeat [12] s ago\)$", reason), reason
    assert {name: client.get_run(run_id).info.status for name, run_id in runs.items()} == {
        "killed": "FAILED", "alive": "RUNNING", "elsewhere": "RUNNING"}


def test_heartbeat_thread_keeps_beating_until_stopped(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = store.open_client(uri)
    run_id = store.start_run(client, store.ensure_experiment(client, "t", uri), "r", {})
    heartbeat = Heartbeat(client, run_id, interval_s=0.2).start()
    first = float(client.get_run(run_id).data.tags[TAG])
    time.sleep(0.7)
    heartbeat.stop()
    last = float(client.get_run(run_id).data.tags[TAG])
    assert last > first
    time.sleep(0.4)
    assert float(client.get_run(run_id).data.tags[TAG]) == last  # stopped means stopped
