"""A local SQLite file given as the store must be MLflow's: one line and left as it was, else (real files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import NOT_A_STORE, not_a_store
from lossexp.errors import ConfigError
from lossexp.tracking import store
from lossexp.tracking.reachability import check_tracking


def _as_it_was(tmp_path: Path, path: Path):
    return sorted(p.name for p in tmp_path.rglob("*")), path.read_bytes() if path.is_file() else None


@pytest.mark.parametrize("kind, message", NOT_A_STORE)
def test_train_refuses_a_store_file_that_is_not_mlflows_before_it_starts(monkeypatch, tmp_path, kind, message):
    """``tracking.uri`` naming another tool's database had MLflow's tables written into it and the run
    recorded there; a text file was SQLAlchemy's traceback once TensorFlow had loaded."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = not_a_store(tmp_path, kind)
    before = _as_it_was(tmp_path, path)
    with pytest.raises(ConfigError) as info:
        check_tracking(f"sqlite:///{path.name}", tmp_path)
    assert str(info.value).startswith(f"Invalid value for tracking.uri: sqlite:///{path.name} {message}")
    assert _as_it_was(tmp_path, path) == before


def test_the_default_store_file_is_checked_too(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "mlflow.db").write_text("not a database\n")
    with pytest.raises(ConfigError, match=r"^Invalid value for tracking.uri \(null: outputs/mlflow.db .*\): "
                                          r"outputs/mlflow.db is not an SQLite database"):
        check_tracking(None, tmp_path)


@pytest.mark.parametrize("kind", ["text", "sqlite"])
def test_opening_a_store_from_python_refuses_another_file_and_leaves_it(tmp_path, kind):
    """``lossexp.fit`` opens its store without the command line's pre-check."""
    path = not_a_store(tmp_path, kind)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="Invalid value for tracking.uri: .* not an MLflow store"):
        store.open_client(f"sqlite:///{path}")
    assert path.read_bytes() == before  # (its lock file beside it is the store lock's)


def test_a_new_store_and_an_existing_mlflow_store_are_opened(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_tracking(uri, tmp_path)  # absent: a new store
    store.open_client(uri)
    check_tracking(uri, tmp_path)  # MLflow's now
    assert store.open_client(uri).search_experiments()
