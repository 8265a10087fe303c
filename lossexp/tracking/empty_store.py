"""A new local SQLite store, created by copying an empty one instead of migrating it again.

MLflow creates a SQLite store by running its whole chain of schema migrations (about 1.5 s; the
first ``lossexp train`` in a project, every test's fresh store). The result before any experiment
exists is the same file for every store of one MLflow version, so it is made once — by MLflow's own
migration — into ``~/.cache/lossexp/mlflow-<version>-empty.db`` (``$XDG_CACHE_HOME`` if set) and
copied: opening the copy, MLflow finds its schema current and creates the Default experiment for
this store as it would have (0.05 s). Anything that fails here (a read-only home, an MLflow whose
internals moved) leaves the store to MLflow to create as before: the copy is only ever a shortcut.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional


def cache_dir() -> Path:
    """Where lossexp keeps what it can remake: ``$XDG_CACHE_HOME/lossexp`` or ``~/.cache/lossexp``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lossexp"


def template() -> Optional[Path]:
    """The empty store of this MLflow version, migrated by MLflow once (None if it cannot be made)."""
    import mlflow

    try:
        path = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"  # no home directory: no cache
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be making it
            if not path.exists():
                _migrate_into(path)
        return path
    except Exception:  # noqa: BLE001 - a shortcut only: MLflow creates the store itself
        return None


def _migrate_into(path: Path) -> None:
    """Run MLflow's migrations on a new file beside ``path``, then move it there in one step."""
    import sqlalchemy
    from mlflow.store.db import utils

    handle, scratch = tempfile.mkstemp(dir=path.parent, suffix=".db")
    os.close(handle)
    try:
        engine = sqlalchemy.create_engine(f"sqlite:///{scratch}")
        try:
            utils._initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(scratch, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def create_from_template(database: Path) -> bool:
    """Make the SQLite store ``database`` (absent; the caller holds its lock) a copy of the empty
    store, written beside it and moved into place in one step; False if there is no template."""
    empty = template()
    if empty is None:
        return False
    handle, scratch = tempfile.mkstemp(dir=database.parent, prefix=f".{database.name}.", suffix=".tmp")
    os.close(handle)
    try:
        shutil.copyfile(empty, scratch)
        os.replace(scratch, database)
    except OSError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
    return True
