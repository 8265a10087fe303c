"""A non-editable install works like the editable one: the wheel built from this checkout carries the
configs and the Hydra plugin, and from a directory outside the repository it lists the parts and
trains a short run."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import REPO, lossexp_env


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The wheel of this checkout, built and installed (without dependencies) into a --target dir."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(REPO)], check=True, capture_output=True, timeout=600)
    [wheel] = list((root / "dist").glob("lossexp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "lossexp/conf/config.yaml" in names and "lossexp/conf/loss/hist_avg.yaml" in names
    assert "hydra_plugins/lossexp_project/searchpath.py" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(root / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return root / "site"


def run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = lossexp_env(PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_wheel_lists_and_trains_from_outside_the_repository(wheel_site, tmp_path):
    where = run(wheel_site, tmp_path, "-c", "import lossexp; print(lossexp.__file__, lossexp.CONF_DIR)")
    assert where.stdout.startswith(str(wheel_site)), where.stdout  # the wheel's copy, not the checkout
    listed = run(wheel_site, tmp_path, "-m", "lossexp.cli", "components")
    assert listed.returncode == 0 and "  hist_avg " in listed.stdout and "  adamw " in listed.stdout
    trained = run(wheel_site, tmp_path, "-m", "lossexp.cli", "train", "model=mlp", "data=regression",
                  "data.n_samples=100", "loss=hist_avg", "trainer.epochs=1", "tracking.plots=false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    [run_] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run_.info.status == "FINISHED" and "term/hist_avg" in run_.data.metrics
