"""The trained model that cannot be saved: a warning that says where, the run kept."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest


def _raising_in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function of a project's own module (``mine.py``, line 3) that raises, as a regime's
    ``serving_network`` may; the working directory is the project's."""
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["mine"]\n')
    (tmp_path / "mine.py").write_text("def serving_network(model):\n    model = model\n"
                                      "    raise RuntimeError('no serving network')\n")
    spec = importlib.util.spec_from_file_location("mine_for_logged_model", tmp_path / "mine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
    return module.serving_network


def test_a_failure_in_the_projects_code_is_named_by_its_file_and_line(tmp_path, monkeypatch, capsys):
    """It said 'Give your classes a get_config()' whatever failed: for a regime's serving_network
    that raised, the line now names where (and the model file half written is removed)."""
    from lossexp.tracking.logged_model import unsaved_model_is_a_warning

    serving_network = _raising_in_a_project(tmp_path, monkeypatch)
    saved = tmp_path / "model.keras"
    saved.write_bytes(b"half")
    with unsaved_model_is_a_warning(SimpleNamespace(run_id=None), saved):
        serving_network(object())
    warning = capsys.readouterr().err.strip()
    assert warning == ("lossexp: warning: the trained model was not saved (RuntimeError: no serving network); the run "
                       f"and its metrics are recorded. It failed in your code at {tmp_path / 'mine.py'}:3 (in "
                       "serving_network) or set tracking.log_model=false")
    assert not saved.exists()


def test_a_failure_in_keras_says_to_give_the_classes_a_get_config(tmp_path, monkeypatch, capsys):
    from lossexp.tracking.logged_model import unsaved_model_is_a_warning

    monkeypatch.chdir(tmp_path)
    with unsaved_model_is_a_warning(SimpleNamespace(run_id=None), tmp_path / "model.keras"):
        raise NotImplementedError("Object Unsaveable was created by passing non-serializable argument values")
    assert "Give your classes a get_config() (see Keras' serialization guide) or set tracking.log_model=false" in \
        capsys.readouterr().err
