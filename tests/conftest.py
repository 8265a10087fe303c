"""Shared fixtures: quiet TensorFlow, a CLI runner in a temporary working directory, a
temporary MLflow SQLite store read back with ``MlflowClient``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"


def lossexp_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run ``lossexp ARGS`` as a user would, in ``tmp_path``; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lossexp.cli", *args],
            cwd=tmp_path, env=lossexp_env(**env), capture_output=True, text=True, timeout=timeout,
        )

    return run


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """The default store lossexp uses when run from ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"


@pytest.fixture
def all_runs():
    """``all_runs(uri)``: every run of every experiment in the store at ``uri``."""

    def runs(uri: str) -> List:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        experiments = client.search_experiments()
        return client.search_runs([e.experiment_id for e in experiments]) if experiments else []

    return runs
