"""A local SQLite file lossexp is pointed at must be an MLflow store: checked before MLflow opens it.

MLflow migrates any SQLite file it is given into its own schema, so ``lossexp runs --uri
sqlite:///outputs/optuna.db`` wrote MLflow's tables into the Optuna database (about 200 of them)
and printed an empty table, and ``lossexp train tracking.uri=sqlite:///outputs/optuna.db`` trained
and recorded its run in it; a directory or a file that is no database was a traceback. The file is
opened read-only here, so a check never changes what it was pointed at.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Optional

from lossexp.errors import ConfigError

#: the first 16 bytes of every SQLite 3 database file
_HEADER = b"SQLite format 3\x00"
#: tables every MLflow tracking store has
_MLFLOW_TABLES = {"alembic_version", "experiments", "runs"}


def key(given: Optional[str]) -> str:
    """What chose the store, for the error line: ``--uri``, ``$MLFLOW_TRACKING_URI`` or the default."""
    if given:
        return "--uri"
    return "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "the default store outputs/mlflow.db"


def check(path: Path, uri: str, key: str) -> None:
    """Raise :class:`ConfigError` (one line naming ``key`` and ``uri``) unless ``path`` is an MLflow SQLite
    store; an absent or empty file is left to MLflow (a new store)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise ConfigError(f"Invalid value for {key}: {uri} is a directory, not an MLflow store "
                          f"(expected its SQLite file, e.g. sqlite:///{path / 'mlflow.db'})")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_HEADER))
    except OSError as error:
        raise ConfigError(f"Invalid value for {key}: {uri} cannot be read ({error.strerror})") from None
    if not header:
        return
    if header != _HEADER:
        raise ConfigError(f"Invalid value for {key}: {uri} is not an SQLite database, so not an MLflow store")
    tables = _tables(path, uri, key)
    if not _MLFLOW_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "") or "none"
        raise ConfigError(f"Invalid value for {key}: {uri} is an SQLite database but not an MLflow store "
                          f"(its tables: {shown})")


def _tables(path: Path, uri: str, key: str) -> set:
    """The table names of the database at ``path``, read without writing to it."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)  # a writer's commit
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"Invalid value for {key}: {uri} cannot be read as an SQLite database ({error})") from None
    finally:
        connection.close()
