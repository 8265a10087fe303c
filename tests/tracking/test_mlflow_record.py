"""What one ``lossexp train`` leaves in MLflow beyond metrics, as MLflow users expect it — checked
on one real run (R0's recipe, regression data, from a git checkout, system metrics on):

* an MLflow model ``model``: a LoggedModel linked to the run, with signature and input example;
  ``mlflow.pyfunc.load_model(uri).predict(x)`` in a new process that imports nothing of lossexp,
  ``mlflow.keras.load_model(uri)`` after a single ``import lossexp``, giving the same predictions;
  ``lossexp evaluate`` on ``runs:/…``, ``models:/…`` and a downloaded directory;
* dataset inputs (training, validation), MLflow's source/git/user tags, system metrics, the params
  a reader compares, the experiment in the run name;
* a quiet console: one line per epoch with the breakdown, a summary, nothing on stderr.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli, lossexp_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow_record")]  # one run for the module

TRAIN = ("train", "experiment=hist_avg_regression", "trainer.epochs=2", "data.n_samples=200",
         "tracking.system_metrics=true")


def lossexp(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = lossexp_env(**env)
    environment.pop("TF_CPP_MIN_LOG_LEVEL")  # as in a user's shell
    return subprocess.run([sys.executable, "-m", "lossexp.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=600)


def python(cwd: Path, code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=lossexp_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(project directory, store uri, run, git commit, completed process)."""
    cwd = tmp_path_factory.mktemp("record")
    git = ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q", str(cwd)], check=True)
    subprocess.run([*git, "-C", str(cwd), "commit", "-q", "--allow-empty", "-m", "project"], check=True)
    commit = subprocess.run(["git", "-C", str(cwd), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    result = lossexp(cwd, *TRAIN, MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    assert result.returncode == 0, result.stderr[-3000:]
    uri = f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}"
    client = MlflowClient(uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return cwd, uri, run, commit, result


def test_the_console_is_quiet_with_one_line_per_epoch_and_a_summary(recorded):
    _, _, run, _, result = recorded
    assert result.stderr == ""  # no TensorFlow/absl/oneDNN notice, no MLflow INFO line
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"]
    assert " = task " in lines[0] and " + hist_avg " in lines[0] and "│ mean_absolute_error " in lines[0]
    assert lines[2] == f"lossexp: {run.info.run_name} trained in " + lines[2].split(" trained in ")[1]
    summary = {line.split()[0]: line for line in lines[3:]}
    assert set(summary) == {"loss", "val_loss", "metrics", "weights", "lr", "run", "view"}
    assert "learning_rate" not in summary["metrics"] and summary["lr"].split() == ["lr", "0.001"]
    assert f"{run.data.metrics['loss']:.4g} = task" in summary["loss"]
    assert summary["weights"].split() == ["weights", "hist_avg", "0.01"]
    assert summary["run"].split() == ["run", run.info.run_id]
    assert summary["view"].split()[1] == (f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/"
                                          f"{run.info.run_id}/model-metrics?workflowType=machine_learning")


def test_run_name_params_source_tags_and_system_metrics(recorded):
    _, _, run, commit, _ = recorded
    assert run.info.run_name == "hist_avg_regression·mlp·hist_avg"
    params = run.data.params
    compared = {"model.name", "data.name", "loss.hist_avg.weight", "optimizer.learning_rate", "trainer.epochs"}
    assert compared <= set(params)
    assert not [key for key in params if key.startswith("tracking.") or key == "trainer.verbose"]
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == commit and tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"]
    system = {key for key in run.data.metrics if key.startswith("system/")}
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system


def test_training_and_validation_data_are_dataset_inputs(recorded):
    _, _, run, _, _ = recorded
    inputs = {tag.value: entry.dataset for entry in run.inputs.dataset_inputs for tag in entry.tags
              if tag.key == "mlflow.data.context"}
    assert set(inputs) == {"training", "validation"}
    train, validation = inputs["training"], inputs["validation"]
    assert train.name == validation.name == "regression" and train.digest != validation.digest
    assert json.loads(train.profile)["features_shape"] == [150, 4]  # 200 rows, validation_split 0.25
    assert json.loads(validation.profile)["targets_shape"] == [50, 1]
    schema = json.loads(json.loads(train.schema)["mlflow_tensorspec"]["features"])
    assert schema[0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 4]}
    assert train.source_type == "code" and json.loads(train.source)["tags"]["data.seed"] == "0"


def test_the_model_is_a_logged_model_with_signature_and_example(recorded):
    _, uri, run, _, _ = recorded
    client = MlflowClient(uri)
    [model] = client.search_logged_models([run.info.experiment_id])
    assert (model.name, model.source_run_id, str(model.status)) == ("model", run.info.run_id, "READY")
    assert [output.model_id for output in run.outputs.model_outputs] == [model.model_id]
    artifacts = {a.path for a in client.list_logged_model_artifacts(model.model_id)}
    assert {"MLmodel", "data", "serving", "config.yaml", "input_example.json", "requirements.txt"} <= artifacts
    from mlflow.models import get_model_info

    import mlflow

    mlflow.set_tracking_uri(uri)
    info = get_model_info(f"models:/{model.model_id}")
    tensor = {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}
    assert json.loads(info.signature.inputs.to_json()) == [tensor]
    assert info.saved_input_example_info["type"] == "ndarray"
    assert set(info.flavors) == {"keras", "python_function"} and info.flavors["python_function"]["data"] == "serving"


#: one new process (a second interpreter would cost ~10 s more): the pyfunc flavor first, with nothing
#: of lossexp imported, then the Keras flavor after the one import docs/tracking.md gives
FLAVORS = """
import json, sys, numpy as np, mlflow
mlflow.set_tracking_uri(sys.argv[1])
x = np.linspace(0.05, 0.95, 12, dtype="float32").reshape(3, 4)
model = mlflow.pyfunc.load_model(f"runs:/{sys.argv[2]}/model")
loaded = sorted(m for m in sys.modules if m == "lossexp" or m.startswith("lossexp."))
pyfunc = {"lossexp": loaded, "y": np.asarray(model.predict(x)).ravel().tolist()}
import lossexp
model = mlflow.keras.load_model(f"runs:/{sys.argv[2]}/model")
keras = {"class": type(model).__name__, "components": [c.name for c in model.components],
         "y": np.asarray(model.predict(x, verbose=0)).ravel().tolist()}
print(json.dumps([pyfunc, keras]))
"""


def test_pyfunc_needs_no_lossexp_and_keras_flavor_needs_one_import(recorded):
    cwd, uri, run, _, _ = recorded
    code = FLAVORS.replace("sys.argv[1]", repr(uri)).replace("sys.argv[2]", repr(run.info.run_id))
    pyfunc, keras = json.loads(python(cwd, code))
    assert pyfunc["lossexp"] == []
    assert keras["class"] == "ComposedModel" and keras["components"] == ["hist_avg"]
    assert pyfunc["y"] == pytest.approx(keras["y"], rel=1e-5) and len(pyfunc["y"]) == 3


def test_evaluate_takes_run_and_model_uris_and_a_downloaded_directory(recorded):
    cwd, uri, run, _, _ = recorded
    [model] = MlflowClient(uri).search_logged_models([run.info.experiment_id])
    import mlflow

    mlflow.set_tracking_uri(uri)
    downloaded = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(cwd / "dl"))
    logged = run.data.metrics
    # the command, in a child of the warm process, with the short id lossexp runs shows (was "not found")
    result = cli(cwd, "evaluate", f"runs:/{run.info.run_id[:8]}/model")
    assert result.returncode == 0, result.stderr[-2000:]
    printed = {name: float(value) for name, value in (line.split() for line in result.stdout.splitlines())}
    from lossexp.evaluate import evaluate

    # the other kinds of source the same way as the command takes them, in this process (a child each: ~7 s)
    for source, scores in [("runs:/", printed), *((source, evaluate(source, [f"tracking.uri={uri}"]))
                                                  for source in (f"models:/{model.model_id}", downloaded))]:
        assert scores["loss"] == pytest.approx(logged["val_loss"], rel=1e-5), source  # the run's own data and split
        assert scores["mean_absolute_error"] == pytest.approx(logged["val_mean_absolute_error"], rel=1e-5)
    missing = lossexp(cwd, "evaluate", "runs:/0123456789abcdef0123456789abcdef/model")  # a fresh process: no notice
    assert missing.returncode == 2 and missing.stderr.startswith("lossexp: error: Invalid value for MODEL")
    assert "Traceback" not in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_gradient_diagnostics_are_metrics_at_their_steps_and_a_plot(recorded):
    _, uri, run, _, _ = recorded
    client = MlflowClient(uri)
    logged = {key for key in run.data.metrics if key.startswith("weight_grad/")}
    assert logged == {"weight_grad/task/norm", "weight_grad/task/share", "weight_grad/hist_avg/norm",
                      "weight_grad/hist_avg/share", "weight_grad/hist_avg/cos_task", "weight_grad/conflicts",
                      "weight_grad/norm"}
    # 150 training rows in batches of 32: 10 steps in 2 epochs; sampled once, after the first call into the
    # step (where startup_seconds is recorded), the next sample being due at step 101
    [first_call] = [m.step for m in client.get_metric_history(run.info.run_id, "startup_seconds")]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "weight_grad/task/norm")] == [first_call]
    assert run.data.metrics["weight_grad/task/norm"] > 0
    shares = run.data.metrics["weight_grad/task/share"] + run.data.metrics["weight_grad/hist_avg/share"]
    assert shares == pytest.approx(1.0, abs=1e-5)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {"plots/run.png",
                                                                                  "plots/gradients.png"}
