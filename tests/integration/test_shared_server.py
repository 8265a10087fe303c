"""A shared tracking server as teams run it: PostgreSQL behind ``mlflow server --app-name basic-auth``,
both started by the test on 127.0.0.1 (see ``shared_server.py``). Users log in with
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``; the server's ``default_permission``
is READ, so a user may read everyone's experiments and write only into their own.

Shown: 8 parallel jobs (two 4-job sweeps at ``n_jobs=2``, started at once) lose no run and no
metric point; without credentials ``lossexp train`` fails in seconds with one line naming the
401; a user's 2-job sweep records its parent and children; another user cannot write into it."""
from __future__ import annotations

import contextlib
import math
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from conftest import logged_steps, lossexp_env, require
from integration_helpers import QUICK, lossexp
from shared_server import ADMIN, Server, basic_auth_server, postgres_bindir, postgres_cluster

# one server for the module under -n
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.xdist_group("shared_server")]

USERS = ("alice", "bob")
#: the parallel jobs: one epoch of STEPS steps, metrics sampled every EVERY steps (as tests/test_concurrency.py)
N_SAMPLES, SPLIT, BATCH, EVERY = 200, 0.25, 16, 3
STEPS = math.ceil(N_SAMPLES * (1 - SPLIT) / BATCH)
PARALLEL = ["model=mlp", "model.hidden_units=[8]", "data=regression", f"data.n_samples={N_SAMPLES}", "loss=hist_avg",
            "trainer.epochs=1", f"trainer.validation_split={SPLIT}", f"trainer.batch_size={BATCH}",
            f"trainer.log_every_n_steps={EVERY}", "trainer.verbose=0", "tracking.plots=false",
            "tracking.log_model=false", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@contextlib.contextmanager
def logged_in(user: str, password: str) -> Iterator[None]:
    """This process's MLflow client calls made as ``user`` (MLflow reads the credentials from the environment)."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    bindir = postgres_bindir()
    require(bindir is not None, "PostgreSQL's server binaries are not installed (apt-get install postgresql; "
                                "make test-integration does)")
    with postgres_cluster(bindir) as backend, basic_auth_server(backend, tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture(scope="module")
def passwords(server: Server) -> Dict[str, str]:
    """alice and bob, created by the admin through MLflow's auth client."""
    from mlflow.server import get_app_client

    created = {user: secrets.token_urlsafe(12) for user in USERS}
    with logged_in(ADMIN, server.admin_password):
        auth = get_app_client("basic-auth", tracking_uri=server.uri)
        for user, password in created.items():
            auth.create_user(username=user, password=password)
    return created


def credentials(user: str, passwords: Dict[str, str]) -> Dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": passwords[user]}


def all_runs(server: Server) -> List:
    """Every run on the server, read by the admin."""
    from mlflow.tracking import MlflowClient

    with logged_in(ADMIN, server.admin_password):
        client = MlflowClient(server.uri)
        ids = [e.experiment_id for e in client.search_experiments()]
        return list(client.search_runs(ids, max_results=1000)) if ids else []


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossexp: error: "), result.stderr[-3000:]
    return lines[0]


def test_without_credentials_train_fails_in_seconds_with_one_line(server: Server, passwords, tmp_path: Path):
    before = {run.info.run_id for run in all_runs(server)}
    start = time.monotonic()
    line = one_error_line(lossexp(tmp_path, "train", *QUICK, f"tracking.uri={server.uri}"))
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert "HTTP 401 Unauthorized" in line and repr(server.uri) in line
    assert "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in line
    line = one_error_line(lossexp(tmp_path, "train", *QUICK, f"tracking.uri={server.uri}",
                                  MLFLOW_TRACKING_USERNAME="alice", MLFLOW_TRACKING_PASSWORD="not-her-password"))
    assert "HTTP 401 Unauthorized for MLFLOW_TRACKING_USERNAME 'alice': wrong user name, password" in line
    assert {run.info.run_id for run in all_runs(server)} == before  # nothing created, so nothing left RUNNING
    assert not list(tmp_path.rglob("*.db"))


def test_a_users_two_job_sweep_records_parent_and_children(server: Server, passwords, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    result = lossexp(tmp_path, "train", "-m", *QUICK, "loss=hist_avg,coef", f"tracking.uri={server.uri}",
                     "tracking.experiment=alice-sweeps", **credentials("alice", passwords))
    assert result.returncode == 0, result.stderr[-3000:]
    with logged_in("alice", passwords["alice"]):
        client = MlflowClient(server.uri)
        experiment = client.get_experiment_by_name("alice-sweeps")
        runs = client.search_runs([experiment.experiment_id])
        [parent] = [r for r in runs if r.data.tags.get("lossexp.role") == "sweep"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(c.info.run_name for c in children) == ["loss=coef", "loss=hist_avg"] and len(runs) == 3
        assert {r.info.status for r in runs} == {"FINISHED"} and parent.data.metrics["sweep/finished"] == 2
        for child in children:  # artifacts went through the server (it has the credentials' permission)
            assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["config.yaml"]


def test_another_user_cannot_write_into_it(server: Server, passwords, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    from lossexp.errors import ConfigError
    from lossexp.precheck import compose_validated
    from lossexp.tracking.run import TrackedRun

    with logged_in("alice", passwords["alice"]):
        MlflowClient(server.uri).create_experiment("alice-private")
    before = {run.info.run_id for run in all_runs(server)}
    bob = credentials("bob", passwords)
    line = one_error_line(lossexp(tmp_path, "train", *QUICK, f"tracking.uri={server.uri}",
                                  "tracking.experiment=alice-private", **bob))
    assert line == (f"lossexp: error: Invalid value for tracking.experiment: expected an experiment user 'bob' may "
                    f"create runs in on {server.uri}, got 'alice-private' (MLflow permission READ; runs need EDIT or "
                    "MANAGE: ask its owner or an admin, or set another tracking.experiment)")
    # a sweep is refused the same way, before its parent run exists
    one_error_line(lossexp(tmp_path, "train", "-m", *QUICK, "loss=hist_avg,coef", f"tracking.uri={server.uri}",
                           "tracking.experiment=alice-private", **bob))
    # should the server refuse once the pre-check has passed (a permission revoked meanwhile), the run
    # start is the same one-line error
    config = compose_validated([f"tracking.uri={server.uri}", "tracking.experiment=alice-private"])  # no pre-check
    with logged_in("bob", passwords["bob"]), pytest.raises(ConfigError, match="HTTP 403 PERMISSION_DENIED"):
        with TrackedRun(config, "bob's run", {}, tmp_path):
            pass
    assert {run.info.run_id for run in all_runs(server)} == before


def test_eight_parallel_jobs_lose_no_run_and_no_metric_point(server: Server, passwords, tmp_path: Path):
    from mlflow.tracking import MlflowClient

    alice = credentials("alice", passwords)
    sweeps = []
    for name in ("a", "b"):  # two sweeps of 4 jobs, 2 at a time each, started together: 4 jobs write at once
        workdir = tmp_path / name
        workdir.mkdir()
        sweeps.append(subprocess.Popen(
            [sys.executable, "-m", "lossexp.cli", "train", "-m", *PARALLEL, "trainer.seed=0,1,2,3",
             f"tracking.uri={server.uri}", "tracking.experiment=parallel", f"tracking.run_name=sweep-{name}"],
            cwd=workdir, env=lossexp_env(**alice), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in sweeps:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
    with logged_in("alice", passwords["alice"]):
        client = MlflowClient(server.uri)
        runs = client.search_runs([client.get_experiment_by_name("parallel").experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get("lossexp.role") == "sweep"]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(parents) == 2 and len(children) == 8 and len(runs) == 10, [r.info.run_name for r in runs]
        assert {r.info.status for r in runs} == {"FINISHED"}
        for parent in parents:
            mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
            assert sorted(c.data.params["trainer.seed"] for c in mine) == ["0", "1", "2", "3"]
            assert parent.data.metrics["sweep/finished"] == 4
    # every point, counted where it is stored: the server's PostgreSQL database
    points = stored_steps(server, [child.info.run_id for child in children])
    expected = logged = 0
    for child in children:
        keys = set(points[child.info.run_id])
        assert {"loss", "loss/task", "loss/hist_avg", "val_loss", "weight_drift/from_init/hidden_1"} <= keys
        assert keys == set(child.data.metrics)
        for key in keys:
            steps = logged_steps(key, EVERY, STEPS)
            assert points[child.info.run_id][key] == steps, (child.info.run_name, key)
            expected, logged = expected + len(steps), logged + len(points[child.info.run_id][key])
    print(f"8 parallel jobs: {len(runs)} runs, {logged} metric points stored of {expected} expected")
    assert logged == expected >= 8 * 40


def stored_steps(server: Server, run_ids: List[str]) -> Dict[str, Dict[str, List[int]]]:
    """{run id: {metric: sorted steps}} read from the backend store's ``metrics`` table."""
    import psycopg

    steps: Dict[str, Dict[str, List[int]]] = {run_id: {} for run_id in run_ids}
    with psycopg.connect(server.backend_uri) as connection:
        rows = connection.execute("SELECT run_uuid, key, step FROM metrics WHERE run_uuid = ANY(%s)", (run_ids,))
        for run_id, key, step in rows:
            steps[run_id].setdefault(key, []).append(step)
    return {run_id: {key: sorted(found) for key, found in keys.items()} for run_id, keys in steps.items()}
