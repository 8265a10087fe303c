"""``lossexp train -m … --resume PARENT_ID``: a grid sweep that stopped continues under the same parent
run — finished jobs are not run again (matched by their overrides, in any order), a killed job continues
in its own child run from its checkpoint, jobs never started run, failed jobs are not run again unless
``--retry-failed`` (the command's checks: test_resume_check.py)."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli_start
from crafted_runs import crafted_child as child, crafted_sweep
from lossexp.tracking import store

FIXED = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=100", "trainer.verbose=0",
         "tracking.plots=false", "tracking.log_model=false", "tracking.drift=false", "tracking.gradients=false"]
#: 2 x 2 jobs, as the CLI hands them to Hydra
SWEPT = ["loss=[hist_avg,activity],[activity]", "loss.activity.weight=0.01,0.1"]


@pytest.mark.slow
def test_finished_jobs_are_not_run_again_nor_failed_ones_unless_asked(tmp_path, run_cli, store_uri):
    """A crafted killed sweep of 3 jobs: one FINISHED (objective 0.5), one FAILED, one KILLED before its
    first checkpoint. Continued: the finished job is not run again, the failed one is one line (exit 1,
    the parent FAILED), the killed one trains as a new child (the old one left out of the summary); with
    --retry-failed only the failed job trains, as a new child, and the parent ends FINISHED."""
    job = [*FIXED, "trainer.epochs=1"]
    parent = crafted_sweep(store_uri, "KILLED",
                           task_overrides=(*job, "loss.activity.weight=0.01,0.1,1.0", "loss=[activity]"))
    done = child(store_uri, parent, "FINISHED", [*job, "loss=[activity]", "loss.activity.weight=0.01"])
    store.open_client(store_uri).log_metric(done, "objective", 0.5)
    failed = child(store_uri, parent, "FAILED", [*job, "loss=[activity]", "loss.activity.weight=0.1"],
                   error="NonFiniteLoss: loss is nan at step 3")
    killed = child(store_uri, parent, "KILLED", [*job, "loss=[activity]", "loss.activity.weight=1.0"])
    sweep = ["train", "-m", *job, "loss=activity", "loss.activity.weight=1.0,0.1,0.01", "--resume", parent[:8]]

    result = run_cli(*sweep)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"lossexp: job loss.activity.weight=0.01 FINISHED in run {done} before: not run again" in result.stdout
    assert (f"lossexp: job loss.activity.weight=0.1 FAILED in run {failed} before (NonFiniteLoss: loss is nan at "
            "step 3): not run again (--retry-failed runs it again)") in result.stderr
    assert f"lossexp: job loss.activity.weight=1.0 runs again as a new run (run {killed} KILLED without a " \
           "checkpoint)" in result.stdout
    client = MlflowClient(store_uri)
    summary = client.get_run(parent)
    assert summary.info.status == "FAILED" and summary.data.tags["sweep.resumes"] == "1"
    assert summary.data.metrics["sweep/children"] == 3 and summary.data.metrics["sweep/failed"] == 1
    assert summary.data.metrics["sweep/finished"] == 2 and summary.data.metrics["sweep/killed"] == 0
    assert summary.data.tags["sweep.best_run_id"] == done and summary.data.metrics["sweep/best_objective"] == 0.5
    assert "FAILED (continue it: lossexp train -m model=mlp 'model.hidden_units=[8]'" in result.stdout
    assert f"--resume {parent}; --retry-failed runs its failed jobs again)" in result.stdout

    result = run_cli(*sweep, "--retry-failed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" trained in ") == 1 and result.stdout.count("before: not run again") == 2
    runs = {r.info.run_id: r for r in client.search_runs([summary.info.experiment_id], "tags.`mlflow.parentRunId` = "
                                                                                     f"'{parent}'")}
    assert len(runs) == 5 and [runs[r].data.tags.get("lossexp.retried") for r in (killed, failed)] == ["true"] * 2
    summary = client.get_run(parent)
    assert summary.info.status == "FINISHED" and summary.data.tags["sweep.resumes"] == "2"
    assert summary.data.metrics["sweep/children"] == 3 and summary.data.metrics["sweep/finished"] == 3


@pytest.mark.slow
@pytest.mark.integration  # 13 s: CI's budget (a sweep's resume: test_finished_jobs_…; a stopped run's: test_termination)
@pytest.mark.parametrize("launcher", [(), pytest.param(("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
                                                       id="joblib")], ids=["basic", "joblib"])
def test_a_sweep_stopped_by_sigterm_continues_under_its_parent(tmp_path, run_cli, store_uri, launcher):
    """SIGTERM once a job finished and the next has a checkpoint; the same sweep (its values in another
    order) with --resume: finished jobs are not run again, the killed one continues in its own run from
    its checkpoint, the rest run; the parent FINISHED counts all four."""
    sweep = [*(o for o in FIXED if not o.startswith("data.n_samples")), "data.n_samples=400", "trainer.epochs=3",
             "trainer.batch_size=8", "loss=hist_avg+activity,activity", "loss.activity.weight=0.01,0.1"]
    process = cli_start(tmp_path, "train", "-m", *sweep)
    database = tmp_path / "outputs" / "mlflow.db"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        if not database.exists():
            continue
        kids = [r for r in store.open_client(store_uri).search_runs(["1"]) if "mlflow.parentRunId" in r.data.tags]
        saved = [r for r in kids if r.info.status == "RUNNING" and "lossexp.checkpoint" in r.data.tags
                 and (Path(r.data.tags["lossexp.checkpoint"]) / "progress.json").is_file()]
        if saved and any(r.info.status == "FINISHED" for r in kids):
            process.send_signal(signal.SIGTERM)
            break
    assert process.wait(60) == 143, process.communicate()[1][-3000:]
    client = MlflowClient(store_uri)
    [parent] = client.search_runs(["1"], "tags.`lossexp.role` = 'sweep'")
    before = {r.info.run_name: r for r in client.search_runs(["1"], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")}
    assert parent.info.status == "KILLED" and sorted(r.info.status for r in before.values())[-1] == "KILLED"
    [finished, *_] = [r for r in before.values() if r.info.status == "FINISHED"]
    [killed] = [r for r in before.values() if r.info.status == "KILLED"]
    stopped_after = json.loads((Path(killed.data.tags["lossexp.checkpoint"]) / "progress.json").read_text())["epochs"]

    result = run_cli("train", "-m", *sweep[:-1], "loss.activity.weight=0.1,0.01", *launcher,
                     "--resume", parent.info.run_id)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {r.info.run_id: r for r in client.search_runs(["1"], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")}
    assert len(after) == 4 and all(r.info.status == "FINISHED" for r in after.values())
    assert after[finished.info.run_id].info.end_time == finished.info.end_time  # not run again
    continued = after[killed.info.run_id]
    assert continued.data.tags["lossexp.resumed"].startswith(f"from epoch {stopped_after} ")
    epochs = sorted((m.step, m.value) for m in client.get_metric_history(killed.info.run_id, "epoch"))
    assert [value for _, value in epochs] == [1, 2, 3]  # the stopped attempt's epochs, then the rest, once each
    summary = client.get_run(parent.info.run_id)
    assert summary.info.status == "FINISHED" and summary.data.metrics["sweep/children"] == 4
    assert summary.data.metrics["sweep/finished"] == 4 and summary.data.tags["sweep.best_run_id"] in after
