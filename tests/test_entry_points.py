"""Loss configs can only name registered components: a third-party distribution adds one through the
``lossexp.components`` entry point (built and pip-installed here for real, then trained with), and
no string in a loss config can make lossexp import or call an arbitrary object."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import logged_model_file, lossexp_env
from lossexp.errors import ConfigError
from lossexp.losses.entries import build_components
from lossexp.registry import KINDS

ENTRY_POINT_GROUP = KINDS["loss"].entry_points

PLUGIN = '''
"""A third-party loss component: scale · mean(ŷ²). Importing it leaves a line in the file named by
$SQPRED_IMPORT_LOG, so a test can tell whether lossexp imported it."""
import os

from keras import ops

from lossexp import LossComponent

if os.environ.get("SQPRED_IMPORT_LOG"):
    with open(os.environ["SQPRED_IMPORT_LOG"], "a") as log:
        log.write(f"imported by {os.getpid()}\\n")


class SquaredPrediction(LossComponent):
    """term = scale · mean(y_pred²)."""

    def __init__(self, weight=0.1, scale=1.0, **kwargs):
        super().__init__(weight=weight, **kwargs)
        self.scale = self.require_number("scale", scale, minimum=0.0, exclusive=True)

    def term(self, context):
        return self.scale * ops.mean(ops.square(context.y_pred))
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """A real distribution declaring the entry points, built and pip-installed into a --target dir."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    source.mkdir()
    (source / "lossexp_sqpred.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "lossexp-sqpred"
        version = "0.1"

        [tool.setuptools]
        py-modules = ["lossexp_sqpred"]

        [project.entry-points."{ENTRY_POINT_GROUP}"]
        sq_pred = "lossexp_sqpred:SquaredPrediction"
        hist_avg = "lossexp_sqpred:SquaredPrediction"  # tries to take over a built-in's name
    """))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    assert list(target.glob("lossexp_sqpred-0.1.dist-info"))
    return target


def with_plugin(plugin_path: Path, import_log: Path) -> dict:
    import os

    return {"PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]),
            "SQPRED_IMPORT_LOG": str(import_log)}


TINY = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=100", "trainer.epochs=1",
        "tracking.plots=false"]


def predictions(model_path: Path, x, plugin_path: Path, tmp_path: Path):
    """The saved model's outputs for ``x``, from a process that loads it as ``lossexp evaluate`` does
    (with the plugin importable), so this test process never registers the plugin."""
    import numpy as np

    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np\n"
            "from pathlib import Path\n"
            "from lossexp.evaluate import load_model\n"
            "model = load_model(Path(sys.argv[1]))\n"
            "np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n")
    subprocess.run([sys.executable, "-c", code, str(model_path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                   env={**lossexp_env(), **with_plugin(plugin_path, tmp_path / "predict-imports.log")},
                   check=True, capture_output=True, timeout=300)
    return np.load(tmp_path / "y.npy")


@pytest.mark.slow
@pytest.mark.integration  # a plugin installed by pip, trained and served, 14 s: the CI budget
def test_installed_entry_point_component_trains_like_a_builtin(run_cli, store_uri, plugin_path, tmp_path):
    """``loss=hist_avg+sq_pred loss.sq_pred.scale=2.0``: the plugin is imported (the config names it), its
    option reaches its term (the last validation's term is 2·mean(ŷ²) of the saved model's predictions)
    and its entry point named ``hist_avg`` does not replace the built-in (training-only, its options)."""
    import numpy as np

    from conftest import dataset

    imports = tmp_path / "imports.log"
    result = run_cli("train", *TINY, "loss=hist_avg+sq_pred", "loss.sq_pred.scale=2.0",
                     **with_plugin(plugin_path, imports))
    assert result.returncode == 0, result.stderr[-3000:]
    assert imports.read_text().startswith("imported by ")
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["loss"] == "hist_avg+sq_pred"
    metrics = run.data.metrics
    assert {"loss/sq_pred", "term/sq_pred", "val_loss/sq_pred"} <= set(metrics)
    assert metrics["loss/sq_pred"] == pytest.approx(0.1 * metrics["term/sq_pred"], rel=1e-5)
    assert run.data.params["loss.sq_pred.scale"] == "2.0"
    x_val = dataset("regression", n_samples=100).split(0.2)[1].arrays[0]  # the run's validation rows
    model_path = logged_model_file(store_uri, run.info.run_id)
    y_val = predictions(model_path, x_val, plugin_path, tmp_path).astype(np.float64)
    assert metrics["val_term/sq_pred"] == pytest.approx(2.0 * np.mean(y_val ** 2), rel=1e-5)
    # the built-in hist_avg: its options, a training-only term (the plugin's would be validated too)
    assert run.data.params["loss.hist_avg.mode"] == "mean" and "loss.hist_avg.scale" not in run.data.params
    assert "term/hist_avg" in metrics and "val_term/hist_avg" not in metrics


@pytest.mark.slow
def test_an_installed_plugin_is_imported_only_when_a_config_names_it(run_cli, store_uri, plugin_path, tmp_path):
    imports = tmp_path / "imports.log"
    env = with_plugin(plugin_path, imports)
    assert run_cli("components", **env).returncode == 0
    result = run_cli("train", *TINY, "loss=hist_avg", "tracking.log_model=false", **env)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.info.status == "FINISHED" and "term/hist_avg" in run.data.metrics
    assert not imports.exists(), imports.read_text()  # a run without sq_pred never imported it


def test_components_lists_the_installed_component_and_its_origin(run_cli, plugin_path, tmp_path):
    result = run_cli("components", **with_plugin(plugin_path, tmp_path / "imports.log"))
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("  sq_pred ")]
    assert "term = scale · mean(y_pred²)." in line and "[package lossexp-sqpred]" in line
    assert "      scale: 1.0" in result.stdout


def test_without_the_distribution_the_name_is_unknown(run_cli):
    result = run_cli("train", "loss=sq_pred", timeout=60)
    assert result.returncode == 2 and "Unknown loss component 'sq_pred'" in result.stderr


@pytest.mark.parametrize("loss_cfg, message", [
    ({"evil": {"_target_": "os.system", "command": "touch pwned"}}, "Unknown loss component 'evil'"),
    ({"hist_avg": {"_target_": "os.system"}}, "Unknown key loss.hist_avg._target_: valid keys are"),
    ({"x": {"kind": "os.system"}}, "Unknown loss component 'os.system'"),
    ({"x": {"kind": "lossexp_sqpred:SquaredPrediction"}}, "Unknown loss component 'lossexp_sqpred:SquaredPrediction'"),
], ids=["target", "target-in-builtin", "kind-import-path", "kind-entry-point-value"])
def test_no_string_in_a_loss_config_instantiates_an_arbitrary_object(tmp_path, monkeypatch, loss_cfg, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        build_components(loss_cfg)
    assert not (tmp_path / "pwned").exists()


def runs_in_every_store(directory: Path) -> list:
    """(store, experiment, run name) of every run of every experiment of every SQLite store under ``directory``."""
    found = []
    for database in directory.rglob("*.db"):
        client = MlflowClient(f"sqlite:///{database}")
        for experiment in client.search_experiments():
            found += [(database.name, experiment.name, run.info.run_name)
                      for run in client.search_runs([experiment.experiment_id])]
    return found


def test_target_in_a_loss_config_is_refused_by_the_cli(run_cli, tmp_path):
    result = run_cli("train", "model=mlp", "data=regression", "loss=hist_avg",
                     "+loss.hist_avg._target_=builtins.open", "+loss.hist_avg._args_=[pwned,w]", "trainer.epochs=1")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("lossexp: error:")]
    assert line.startswith("lossexp: error: Unknown key loss.hist_avg.")
    assert not (tmp_path / "pwned").exists()  # open("pwned", "w") was never called (cwd: tmp_path)
    assert runs_in_every_store(tmp_path) == []
