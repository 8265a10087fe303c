"""``lossexp.import_hooks``: code around a module's first import, on a real module written to disk."""
from __future__ import annotations

import contextlib
import sys

import pytest

from lossexp.import_hooks import ImportHook, on_import


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
