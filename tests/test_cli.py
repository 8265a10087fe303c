"""``lossexp`` as a user runs it: runs are recorded in MLflow (bad input: tests/test_bad_inputs.py)."""

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient


QUICK = ["trainer.epochs=1", "data.n_samples=200"]


def test_cfg_job_prints_the_composed_config_without_training(run_cli):
    result = run_cli("train", "--cfg", "job", "loss=hist_avg")
    assert result.returncode == 0, result.stderr
    assert "hist_avg:" in result.stdout and "activity:" not in result.stdout
    assert "tensorflow" not in result.stderr.lower()


@pytest.mark.slow
def test_cnn_digits_run_is_fully_recorded(run_cli, store_uri, all_runs):
    result = run_cli("train", "model=cnn", "loss=hist_avg+activity+coef", "trainer.epochs=2",
                     "trainer.log_every_n_steps=5")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    client = MlflowClient(store_uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "cnn·hist_avg+activity+coef"
    assert run.data.tags["loss"] == "hist_avg+activity+coef"
    metrics = set(run.data.metrics)
    for component in ("hist_avg", "activity", "coef"):
        assert {f"loss/{component}", f"term/{component}"} <= metrics
    assert {"val_loss/activity", "val_loss/coef", "val_loss/task", "weight/coef/coef"} <= metrics
    assert "val_loss/hist_avg" not in metrics  # training-only term
    # start-up as the user feels it: the interpreter, TensorFlow's import, tracing, the first call
    [startup] = client.get_metric_history(run.info.run_id, "startup_seconds")
    assert startup.step == 5 and 1.0 < startup.value < 120  # the first compiled call: 5 steps
    for layer in ("conv_1", "conv_2", "hidden_1", "output"):
        assert {f"weight_drift/{stat}/{layer}" for stat in ("from_init", "per_step", "from_avg")} <= metrics
    steps_per_epoch = int(np.ceil(1797 * 0.8 / 32))
    coef_steps = [m.step for m in client.get_metric_history(run.info.run_id, "weight/coef/coef")]
    assert coef_steps[0] == 0 and set(range(5, 2 * steps_per_epoch, 5)) <= set(coef_steps)
    val_steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert val_steps == [steps_per_epoch, 2 * steps_per_epoch]
    assert run.data.params["loss.hist_avg.weight"] == "0.01" and run.data.params["model.name"] == "cnn"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "plots"}  # no run artifact "model" to shadow runs:/ID/model
    [model] = client.search_logged_models([run.info.experiment_id])
    assert (model.name, model.source_run_id, str(model.status)) == ("model", run.info.run_id, "READY")
    model_files = {a.path for a in client.list_logged_model_artifacts(model.model_id)}
    assert {"MLmodel", "data", "serving", "config.yaml"} <= model_files
    # the gradient diagnostics are on by default: their metrics and plot
    assert {"weight_grad/coef/cos_task", "weight_grad/conflicts"} <= metrics
    assert [a.path for a in client.list_artifacts(run.info.run_id, "plots")] == ["plots/gradients.png", "plots/run.png"]
    final = run.data.metrics
    assert final["loss"] == pytest.approx(
        final["loss/task"] + final["loss/hist_avg"] + final["loss/activity"] + final["loss/coef"], rel=1e-4)
    assert final["val_loss"] == pytest.approx(
        final["val_loss/task"] + final["val_loss/activity"] + final["val_loss/coef"], rel=1e-4)


@pytest.mark.slow
def test_mlp_regression_run_with_trainable_coefficient(run_cli, store_uri, all_runs):
    result = run_cli("train", "loss=coef", "model=mlp", "data=regression", "trainer.epochs=3",
                     "loss.coef.penalty=prediction_mean", "loss.coef.weight.parametrization=raw",
                     "loss.coef.weight.value=1.0")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    assert run.info.status == "FINISHED" and run.data.tags["model"] == "mlp"
    client = MlflowClient(store_uri)
    history = client.get_metric_history(run.info.run_id, "weight/coef/coef")
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    weights = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "weight/coef"), key=lambda m: m.step)]
    assert weights == values  # under raw, the weight is a itself
    assert values[0] == pytest.approx(1.0) and len(values) > 5
    assert values[-1] != pytest.approx(values[0])  # the optimizer moved a


@pytest.mark.slow
def test_multirun_records_one_run_per_job(run_cli, store_uri, all_runs, tmp_path):
    """A sweep is one parent run (the tags and metrics docs/sweeps.md lists) with one child run per job."""
    result = run_cli("train", "-m", "loss=hist_avg+activity,activity", "model=mlp", *QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    [parent] = [r for r in all_runs(store_uri) if r.data.tags.get("lossexp.role") == "sweep"]  # lossexp/sweeps
    runs = [r for r in all_runs(store_uri) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["loss"] for r in runs) == ["activity", "hist_avg+activity"]
    assert all(r.info.status == "FINISHED" for r in runs + [parent])
    tags, metrics = parent.data.tags, parent.data.metrics
    # the overrides as Hydra received them (loss=a+b,c is Hydra's loss=[a,b],[c])
    assert tags["sweep.overrides"] == "loss=[hist_avg,activity],[activity] model=mlp " + " ".join(QUICK)
    sweep_dir = Path(tags["sweep.dir"])
    assert sweep_dir.is_absolute() and sweep_dir.parent.parent == tmp_path / "outputs" / "multirun"
    assert sorted(p.relative_to(sweep_dir).as_posix() for p in sweep_dir.glob("*/config.yaml")) == \
        ["0/config.yaml", "1/config.yaml"]  # each job's output directory lies in it
    objectives = {r.info.run_name: r.data.metrics["objective"] for r in runs}
    assert tags["sweep.best_run_name"] == min(objectives, key=objectives.get)
    assert metrics["sweep/children"] == 2 and metrics["sweep/finished"] == 2 and metrics["sweep/failed"] == 0


def imported(stderr: str) -> set:
    """The top-level modules a process imported, from its ``PYTHONPROFILEIMPORTTIME`` lines."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_tab_completion_sees_through_the_train_subcommand_without_importing_tensorflow(run_cli):
    result = run_cli("-sc", "query=bash", COMP_LINE="lossexp train model=", COMP_POINT="20",
                     PYTHONPROFILEIMPORTTIME="1")
    assert result.stdout.split() == ["model=applications", "model=cnn", "model=gan", "model=keras_file", "model=mlp",
                                     "model=point", "model=vae"], result.stderr[-3000:]
    assert "hydra" in imported(result.stderr) and not {"tensorflow", "keras"} & imported(result.stderr)
    line = "lossexp train loss.hist_avg."
    result = run_cli("-sc", "query=bash", COMP_LINE=line, COMP_POINT=str(len(line)))
    assert "loss.hist_avg.decay=" in result.stdout.split()
    install = run_cli("train", "-sc", "install=bash")
    assert install.stdout.rstrip().endswith("hydra_bash_completion lossexp")


def test_train_help_names_lossexp_not_hydras_app(run_cli):
    result = run_cli("train", "--help", PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not {"tensorflow", "keras"} & imported(result.stderr)
    assert result.stdout.startswith("lossexp train: train one run") and "hydra_app" not in result.stdout
    assert "loss: activity, aux_output" in result.stdout


def test_a_reader_that_closes_the_pipe_early_ends_it_quietly(tmp_path):
    """``lossexp train --help | head -1``: exit status 128 + SIGPIPE, as ``cat`` would, no traceback."""
    from conftest import lossexp_env

    process = subprocess.Popen([sys.executable, "-m", "lossexp.cli", "train", "--help"], cwd=tmp_path,
                               env=lossexp_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before the help is written: its write finds no reader
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 128 + signal.SIGPIPE
    assert stderr == ""
