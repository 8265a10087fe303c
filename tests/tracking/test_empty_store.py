"""A new SQLite store copied from an empty one MLflow migrated once: the same store MLflow would have
created, and MLflow's own creation whenever the copy cannot be made."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow.store.db.utils
from mlflow.tracking import MlflowClient

from lossexp.tracking import empty_store, store


def schema(database: Path) -> dict:
    """Every table's and index's definition, and the schema's migration revision. A definition is the
    set of its SQL's lines: MLflow's migrations write a table's constraints in an order that varies
    from one process to the next (a Python set's), the same store either way."""
    with sqlite3.connect(database) as connection:
        objects = {name: {line.strip().rstrip(",") for line in (sql or "").splitlines()} for name, sql in
                   connection.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
        [(revision,)] = connection.execute("SELECT version_num FROM alembic_version")
    return {"objects": objects, "revision": revision}


def test_a_copied_store_is_the_store_mlflow_creates_and_opens_without_migrating(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the template made here, by MLflow
    monkeypatch.chdir(tmp_path)
    migrated = tmp_path / "migrated" / "mlflow.db"
    migrated.parent.mkdir()
    MlflowClient(f"sqlite:///{migrated}").search_experiments()  # MLflow's own creation
    assert empty_store.template() is not None
    copied = tmp_path / "outputs" / "mlflow.db"
    migrations = []  # MLflow's migration chain (about 1.5 s), each time it runs: never for a copy
    upgrade = mlflow.store.db.utils._upgrade_db
    monkeypatch.setattr(mlflow.store.db.utils, "_upgrade_db", lambda engine: migrations.append(engine) or upgrade(engine))
    client = store.open_client(f"sqlite:///{copied}")
    assert migrations == []
    assert schema(copied) == schema(migrated)
    [default] = client.search_experiments()
    [mlflows] = MlflowClient(f"sqlite:///{migrated}").search_experiments()
    assert (default.name, default.artifact_location) == (mlflows.name, mlflows.artifact_location)
    run = client.create_run(default.experiment_id)
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    assert MlflowClient(f"sqlite:///{copied}").get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    assert [p.name for p in copied.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_without_a_cache_mlflow_creates_the_store_itself(tmp_path, monkeypatch):
    blocked = tmp_path / "not_a_directory"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the template cannot be written under a file
    assert empty_store.template() is None
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    experiment = store.ensure_experiment(store.open_client(uri), "e", uri)
    assert store.open_client(uri).get_experiment(experiment).name == "e"
