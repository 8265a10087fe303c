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

from lossexp.errors import ConfigError
from lossexp.losses.registry import ENTRY_POINT_GROUP, build_components

PLUGIN = '''
"""A third-party loss component: scale · mean(ŷ²)."""
from keras import ops

from lossexp.losses.base import LossComponent


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
    """A real distribution declaring the entry point, built and pip-installed into a --target dir."""
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
    """))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    assert list(target.glob("lossexp_sqpred-0.1.dist-info"))
    return target


def with_plugin(plugin_path: Path) -> dict:
    import os

    return {"PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_installed_entry_point_component_trains_like_a_builtin(run_cli, store_uri, plugin_path):
    result = run_cli("train", "model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=100",
                     "loss=hist_avg+sq_pred", "loss.sq_pred.scale=2.0", "trainer.epochs=1",
                     "tracking.plots=false", **with_plugin(plugin_path))
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["loss"] == "hist_avg+sq_pred"
    metrics = run.data.metrics
    assert {"loss/sq_pred", "term/sq_pred", "val_loss/sq_pred"} <= set(metrics)
    assert metrics["loss/sq_pred"] == pytest.approx(0.1 * metrics["term/sq_pred"], rel=1e-5)
    assert run.data.params["loss.sq_pred.scale"] == "2.0"


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
                     "+loss.hist_avg._target_=os.system", "+loss.hist_avg.command='touch pwned'", "trainer.epochs=1")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("lossexp: error:")]
    assert line.startswith("lossexp: error: Unknown key loss.hist_avg.")
    assert not (tmp_path / "pwned").exists()  # os.system("touch pwned") was never called (cwd: tmp_path)
    assert runs_in_every_store(tmp_path) == []
