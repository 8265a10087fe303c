"""Optuna sweeps end to end (``hydra/sweeper=lossexp_optuna`` on Optuna >= 4): the issue's
done-when command prunes; trials in joblib workers report through the study's storage; a
killed sweep is reaped, then resumes its study and its parent run; SIGTERM ends the parent
KILLED; several objectives give a Pareto front that ``lossexp compare`` plots."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from integration_helpers import QUICK, lossexp, lossexp_env, sweep_runs

pytestmark = [pytest.mark.slow, pytest.mark.integration]
OPTUNA = ["hparams_search=optuna_weights"]


def _study(cwd: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd / 'outputs' / 'optuna.db'}")


def test_done_when_prunes_and_every_run_finishes(tmp_path: Path, store_uri: str):
    # the command; plots and model files are not what is under test (4 s of every trial)
    result = lossexp(tmp_path, "train", "-m", "hparams_search=optuna_weights", "hydra.sweeper.n_trials=8",
                     "hydra.sweeper.pruner=median", "trainer.epochs=6", "tracking.plots=false",
                     "tracking.log_model=false", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FINISHED" and len(children) == 8
    assert {c.info.status for c in children} == {"FINISHED"}
    pruned = [c for c in children if c.data.tags.get("optuna.state") == "PRUNED"]
    assert pruned, "no trial was pruned"
    assert all(1 <= int(c.data.tags["optuna.pruned_epoch"]) < 6 for c in pruned)
    assert parent.data.metrics["sweep/pruned"] == len(pruned) and parent.data.metrics["sweep/failed"] == 0
    assert parent.data.tags["sweep.best_run_id"] not in {c.info.run_id for c in pruned}
    study = _study(tmp_path, parent.data.tags["optuna.study"])
    states = {t.number: t.state for t in study.trials}
    assert sorted(states) == list(range(8)) and set(states.values()) <= {TrialState.COMPLETE, TrialState.PRUNED}
    for child in children:
        trial = study.trials[int(child.data.tags["optuna.trial"])]
        assert child.data.tags["optuna.state"] == trial.state.name
        assert trial.user_attrs["mlflow.run_id"] == child.info.run_id
        epochs = int(child.data.tags.get("optuna.pruned_epoch", 6))
        assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))  # one report per epoch


def test_trials_in_joblib_workers_report_every_epoch_through_the_storage(tmp_path: Path, store_uri: str):
    result = lossexp(tmp_path, "train", "-m", *QUICK, *OPTUNA, "trainer.epochs=3", "hydra/launcher=joblib",
                     "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4", "hydra.sweeper.pruner=median",
                     "hydra.sweeper.study_name=jl")
    assert result.returncode == 0, result.stderr[-3000:]
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.launcher"] == "JoblibLauncher"
    study = _study(tmp_path, "jl")
    assert len(study.trials) == 4
    for child in children:
        assert "sweep.tf_threads" in child.data.tags  # ran in a joblib worker
        trial = study.trials[int(child.data.tags["optuna.trial"])]
        assert trial.user_attrs["mlflow.run_id"] == child.info.run_id
        assert len(trial.intermediate_values) == int(child.data.tags.get("optuna.pruned_epoch", 3))


def _wait_for_running_child(uri: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            _, children = sweep_runs(uri)
        except Exception:  # the store is being created
            children = []
        if any(c.info.status == "RUNNING" and c.data.tags.get("optuna.trial") == "1" for c in children):
            return
        time.sleep(0.5)
    raise TimeoutError("no trial #1 running")


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lossexp.cli", *args], cwd=cwd, env=lossexp_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


RESUMABLE = ["train", "-m", *QUICK, *OPTUNA, "trainer.epochs=25", "hydra.sweeper.n_trials=3",
             "hydra.sweeper.study_name=resume_me", "tracking.heartbeat_s=1"]


def test_a_killed_sweep_is_reaped_then_resumes_its_study_and_parent(tmp_path: Path, store_uri: str):
    sweep = _start(tmp_path, *RESUMABLE)
    _wait_for_running_child(store_uri, sweep)
    os.killpg(sweep.pid, signal.SIGKILL)  # the launching process and its job die without a word
    sweep.communicate()
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "RUNNING" and "lossexp.heartbeat" in parent.data.tags
    time.sleep(4)  # past three heartbeat intervals
    reaped = lossexp(tmp_path, "runs", "--reap", "--stale-after", "1")
    assert reaped.returncode == 0, reaped.stderr
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FAILED" and "lossexp.reaped" in parent.data.tags
    killed = next(c for c in children if c.data.tags["optuna.trial"] == "1")
    assert killed.info.status == "FAILED"

    resumed = lossexp(tmp_path, *RESUMABLE)  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"sweep parent run {parent.info.run_id} (resumed)" in resumed.stdout
    assert "trial #1 of study resume_me was left RUNNING by a sweep that died" in resumed.stdout
    [again], children = sweep_runs(store_uri)
    ended = [(c.data.tags.get("optuna.trial"), c.info.status, c.data.tags.get("error")) for c in children]
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED", (ended, resumed.stderr[-3000:])
    assert again.data.tags["sweep.resumes"] == "1"
    trials = [c.data.tags["optuna.trial"] for c in children]
    assert sorted(trials) == ["0", "1", "2", "3"]  # #0 ran once; #1 was asked again as #2; then #3
    retried = next(c for c in children if c.data.tags["optuna.trial"] == "1")
    assert retried.data.tags["lossexp.retried"] == "true" and retried.data.tags["optuna.state"] == "FAIL"
    study = _study(tmp_path, "resume_me")
    assert study.trials[2].user_attrs["lossexp.retry_of"] == 1 and study.trials[2].params == study.trials[1].params
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                                               TrialState.COMPLETE]
    assert again.data.metrics["sweep/children"] == 3 and again.data.metrics["sweep/finished"] == 3

    done = lossexp(tmp_path, *RESUMABLE)  # nothing left to do: no trial runs again
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(sweep_runs(store_uri)[1]) == 4 and len(_study(tmp_path, "resume_me").trials) == 4


def test_sigterm_of_the_launching_process_ends_the_parent_killed(tmp_path: Path, store_uri: str):
    sweep = _start(tmp_path, *RESUMABLE)
    _wait_for_running_child(store_uri, sweep)
    sweep.send_signal(signal.SIGTERM)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 143, stderr[-3000:]
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "KILLED"
    assert {c.data.tags["optuna.trial"]: c.info.status for c in children} == {"0": "FINISHED", "1": "KILLED"}


def test_several_objectives_record_a_pareto_front_that_compare_plots(tmp_path: Path, store_uri: str):
    result = lossexp(tmp_path, "train", "-m", *QUICK, *OPTUNA, "trainer.epochs=2", "hydra.sweeper.n_trials=5",
                     "objective.metrics=[val_loss,loss/activity]", "hydra.sweeper.sampler=nsgaii")
    assert result.returncode == 0, result.stderr[-3000:]
    [parent], children = sweep_runs(store_uri)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.objectives"] == "val_loss,loss/activity"
    points = {c.info.run_id: (c.data.metrics["objective/val_loss"], c.data.metrics["objective/loss/activity"])
              for c in children}
    optimal = {r for r, p in points.items()
               if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points.values())}
    assert set(parent.data.tags["sweep.pareto_run_ids"].split(",")) == optimal and optimal
    assert parent.data.metrics["sweep/pareto"] == len(optimal)
    assert {c.info.run_id for c in children if c.data.tags["sweep.pareto"] == "true"} == optimal
    study = _study(tmp_path, parent.data.tags["optuna.study"])
    assert {t.user_attrs["mlflow.run_id"] for t in study.best_trials} == optimal  # Optuna agrees
    compared = lossexp(tmp_path, "compare", parent.info.run_id, COLUMNS="200")
    assert compared.returncode == 0, compared.stderr
    png = tmp_path / "outputs" / "compare" / f"{parent.info.run_id}-pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"Pareto-optimal ({len(optimal)} of 5)" in compared.stdout
    logged = {a.path for a in MlflowClient(store_uri).list_artifacts(parent.info.run_id, "compare")}
    assert f"compare/{png.name}" in logged
