"""``lossexp.import_hooks``: code around a module's first import, on a real module written to disk."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from lossexp.import_hooks import ImportHook, hidden, on_import


@pytest.fixture
def module_on_disk(tmp_path, monkeypatch):
    """A fresh top-level module ``lossexp_probe_<n>`` that records its execution in ``EVENTS``."""
    events = []
    name = f"lossexp_probe_{len(sys.modules)}"
    (tmp_path / f"{name}.py").write_text("import sys\nsys.modules['lossexp_probe_events'].append('exec')\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "lossexp_probe_events", events)
    yield name, events
    sys.modules.pop(name, None)


def test_around_wraps_the_execution_and_after_follows_once(module_on_disk):
    name, events = module_on_disk

    @contextlib.contextmanager
    def around():
        events.append("before")
        yield
        events.append("exit")

    hook = on_import(name, around=around, after=lambda module: events.append(f"after {module.VALUE}"))
    assert isinstance(hook, ImportHook) and hook in sys.meta_path
    module = __import__(name)
    assert module.VALUE == 42 and events == ["before", "exec", "exit", "after 42"]
    assert hook not in sys.meta_path  # fired once, then gone
    del sys.modules[name]
    __import__(name)
    assert events[-1] == "exec"  # a second import runs no hook


def test_an_imported_module_gets_after_at_once(module_on_disk):
    name, events = module_on_disk
    __import__(name)
    assert on_import(name, after=lambda module: events.append("after")) is None
    assert events == ["exec", "after"]


def test_other_modules_pass_through(module_on_disk):
    name, events = module_on_disk
    hook = on_import("lossexp_probe_never_imported", after=lambda module: events.append("wrong"))
    __import__(name)
    assert events == ["exec"] and hook in sys.meta_path
    hook.remove()
    assert hook not in sys.meta_path


def test_two_hooks_on_one_module_both_fire_in_order(module_on_disk):
    name, events = module_on_disk

    def around(label):
        @contextlib.contextmanager
        def wrap():
            events.append(f"{label} before")
            yield
            events.append(f"{label} exit")
        return wrap

    first = on_import(name, around=around("first"), after=lambda module: events.append("first after"))
    second = on_import(name, around=around("second"), after=lambda module: events.append("second after"))
    assert second is first and sum(isinstance(f, ImportHook) and f.name == name for f in sys.meta_path) == 1
    __import__(name)
    assert events == ["first before", "second before", "exec", "second exit", "first exit", "first after",
                      "second after"]


def test_a_hidden_module_is_missing_inside_the_block_only(module_on_disk):
    name, events = module_on_disk
    with hidden(name):
        with pytest.raises(ModuleNotFoundError, match=name):
            __import__(name)
        with pytest.raises(ModuleNotFoundError):
            __import__(f"{name}.sub")
    assert __import__(name).VALUE == 42 and events == ["exec"]


def test_keras_imported_by_lossexp_skips_scikit_learn_and_it_still_imports_after(tmp_path):
    """In a fresh interpreter set up as the CLI sets itself up: Keras loads without scikit-learn (its
    optional wrappers off), and the user's ``import sklearn`` afterwards works."""
    code = ("import sys; import lossexp.import_hooks as h; h.import_keras_without_sklearn(); import keras; "
            "print('sklearn' in sys.modules); import sklearn.datasets; print(len(sklearn.datasets.load_digits().data))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "1797"]
