"""``lossexp train -m … --resume PARENT_ID``, before anything starts: another grid, a live holder, a
parent that is no stopped grid sweep's, or overrides that now compose another config is one line."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import crafted_runs
from crafted_runs import composed_config, crafted_child as child, dump
from lossexp.errors import ConfigError
from lossexp.sweeps import resume_check
from lossexp.tracking import store

FIXED = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=100", "trainer.verbose=0",
         "tracking.plots=false", "tracking.log_model=false", "tracking.drift=false", "tracking.gradients=false"]
#: 2 x 2 jobs, as the CLI hands them to Hydra
SWEPT = ["loss=[hist_avg,activity],[activity]", "loss.activity.weight=0.01,0.1"]


def crafted_sweep(uri: str, status: str, task_overrides=(*FIXED, "trainer.epochs=1", *SWEPT), **tags: str) -> str:
    return crafted_runs.crafted_sweep(uri, status, task_overrides, **tags)


def refusal(parent: str, uri: str, overrides=(*FIXED, "trainer.epochs=1", *SWEPT), params=()) -> str:
    with pytest.raises(ConfigError) as info:
        resume_check.check_parent(parent, uri, list(overrides), list(params))
    return str(info.value)


def test_a_sweep_that_cannot_continue_is_one_line(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = crafted_sweep(uri, "KILLED")
    resume_check.check_parent(killed, uri, [*reversed(SWEPT), "trainer.epochs=1", *FIXED, "tracking.uri=elsewhere"])
    assert refusal(killed, uri, [*FIXED, "trainer.epochs=2", *SWEPT]) == (
        f"Invalid value for --resume: expected the sweep its parent ran (the same keys and values; only tracking.uri "
        f"may differ), got '{killed}: it ran trainer.epochs=1, this command asks for trainer.epochs=2'")
    assert refusal(killed, uri, [*FIXED, "trainer.epochs=1", SWEPT[0]]).endswith(
        "this command leaves out loss.activity.weight=0.01,0.1'")
    assert refusal(killed, uri, [*FIXED, "trainer.epochs=1", *SWEPT, "trainer.seed=1,2"]).endswith(
        "this command adds trainer.seed=1,2'")
    assert "FINISHED: every job finished, nothing to continue" in refusal(crafted_sweep(uri, "FINISHED"), uri)
    optuna = crafted_sweep(uri, "KILLED", **{"sweep.sweeper": "OptunaSweeper", "optuna.study": "weights-v1"})
    assert "(an Optuna study continues with hydra.sweeper.study_name=weights-v1)" in refusal(optuna, uri)
    assert "recorded before lossexp could continue a sweep" in refusal(
        crafted_sweep(uri, "KILLED", task_overrides=None), uri)
    single = child(uri, killed, "KILLED", [])
    assert refusal(single, uri).endswith(f"got \"{single}, a job of sweep {killed} (give the parent's id)\"")
    assert refusal("0" * 32, uri) == f"Unknown run '{'0' * 32}' for --resume: no such run in {uri}"

    # its jobs trained another config than the same overrides compose now (conf/ changed), or a --from-run one
    job = [*FIXED, "trainer.epochs=1", "loss=[activity]", "loss.activity.weight=0.01"]
    changed = crafted_sweep(uri, "KILLED")
    trained = child(uri, changed, "FINISHED", job, **{"sweep.job_overrides": json.dumps(job)})
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "config.yaml").write_text(dump(composed_config([*job, "optimizer.learning_rate=0.5"])))
        MlflowClient(uri).log_artifact(trained, str(Path(scratch) / "config.yaml"))
    assert refusal(changed, uri) == (
        f"Invalid value for optimizer.learning_rate: expected the value run {trained} trained with, 0.5 (a run "
        f"continues as it was configured), got 0.001; its sweep {changed} cannot continue with this config")
    store.open_client(uri).set_tag(trained, "lossexp.from_run", "abc")
    assert refusal(changed, uri).endswith(f"got \"{changed}, a sweep of run abc's config (--from-run), which --resume "
                                          "cannot compose again\"")

    # left RUNNING: by this live process (refused), by one that a kill -9 ended (continues)
    here, beat = f"{socket.gethostname()}:{os.getpid()}", {"lossexp.heartbeat": f"{time.time():.3f}"}
    held = crafted_sweep(uri, "RUNNING", **beat, **{"lossexp.process": here})
    assert f"got '{held}, still running (process {here}, heartbeat 0 s ago)'" in refusal(held, uri)
    gone = subprocess.Popen(["sleep", "60"])
    gone.kill()
    gone.wait()
    dead = crafted_sweep(uri, "RUNNING", **beat, **{"lossexp.process": f"{socket.gethostname()}:{gone.pid}"})
    resume_check.check_parent(dead, uri, [*FIXED, "trainer.epochs=1", *SWEPT])
    training = child(uri, dead, "RUNNING", [], **beat, **{"lossexp.process": here})
    assert f"its job job (run {training}) is still running (process {here}, heartbeat" in refusal(dead, uri)


def test_a_grid_its_config_defined_is_compared_too(tmp_path: Path):
    """A grid of ``hydra.sweeper.params`` (a config file's: the task overrides only name the file) that
    changed since is one line naming the key; a key of both, the command line's values win."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [*FIXED, "trainer.epochs=1", "+grid=small"]
    parent = crafted_sweep(uri, "KILLED", command, **{"sweep.params": json.dumps(["loss.activity.weight=0.01,0.1"])})
    resume_check.check_parent(parent, uri, command, ["loss.activity.weight=0.1,0.01"])
    assert refusal(parent, uri, command, ["loss.activity.weight=0.01,0.1,1.0"]).endswith(
        f"got '{parent}: it ran loss.activity.weight=0.01,0.1 (in hydra.sweeper.params), this command asks for "
        "loss.activity.weight=0.01,0.1,1.0 (in hydra.sweeper.params)'")
    assert refusal(parent, uri, command, []).endswith(
        "this command leaves out loss.activity.weight=0.01,0.1 (in hydra.sweeper.params)'")
    resume_check.check_parent(parent, uri, [*command, "loss.activity.weight=0.01,0.1"], ["loss.activity.weight=1"])


def test_an_ablation_continues_with_lossexp_ablate_and_only_an_ablation_does(tmp_path: Path):
    """lossexp train -m … --resume of an ablation's parent would end without its table: one line giving the
    ablate command; lossexp ablate --resume of another sweep's parent: one line giving lossexp train's."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["loss=[hist_avg,activity]", "objective.metric=val_loss/task",
               "ablation.leave_out=null,hist_avg,activity", "trainer.seed=0,1"]
    asked = json.dumps({"seeds": 2, "overrides": ["loss=hist_avg+activity", "model.hidden_units=[8]"]})
    ablated = crafted_sweep(uri, "KILLED", command, **{"ablation.request": asked})
    resume_check.check_parent(ablated, uri, command, ablate=True)
    assert refusal(ablated, uri, command) == (
        f"Invalid value for --resume: expected a sweep of lossexp train -m, got \"{ablated}, an ablation (lossexp "
        f"ablate): continue it with lossexp ablate --seeds 2 loss=hist_avg+activity 'model.hidden_units=[8]' "
        f"--resume {ablated}\"")
    swept = crafted_sweep(uri, "KILLED")
    with pytest.raises(ConfigError) as info:
        resume_check.check_parent(swept, uri, [*FIXED, "trainer.epochs=1", *SWEPT], ablate=True)
    assert str(info.value).startswith("Invalid value for --resume: expected an ablation's parent run (lossexp "
                                      f"ablate), got \"{swept}, a sweep of lossexp train -m: continue it with "
                                      "lossexp train -m model=mlp 'model.hidden_units=[8]'")
