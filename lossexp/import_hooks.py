"""Run code around the first import of a module, without importing it now.

lossexp must not import TensorFlow (5 s) to answer ``--help``, yet it has two things to do at the
moment TensorFlow or Keras arrive, whoever imports them: silence TensorFlow's C++ start-up notices
(:mod:`lossexp.quiet`) and register lossexp's Keras classes (:mod:`lossexp.keras_objects`). A
:class:`ImportHook` on ``sys.meta_path`` finds the module's real spec through the other finders and
wraps its loader's ``exec_module`` (duck-typed finder and loader: ``importlib.abc`` costs an
import); it fires once, for the top-level module only, and then leaves ``sys.meta_path``. If the
module is already imported, :func:`on_import` runs ``after`` at once.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import sys
from types import ModuleType
from typing import Callable, ContextManager, Iterator, List, Optional

After = Callable[[ModuleType], None]
Around = Callable[[], ContextManager[None]]


class _WrappedLoader:
    """Delegates to the real loader; runs the hook's ``around`` and ``after`` on ``exec_module``."""

    def __init__(self, loader, hook: "ImportHook") -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with contextlib.ExitStack() as stack:
            for around in self._hook.arounds:
                stack.enter_context(around())
            self._loader.exec_module(module)
        for after in self._hook.afters:
            after(module)

    def __getattr__(self, name: str):  # get_resource_reader, is_package, …: the real loader's
        return getattr(self._loader, name)


class ImportHook:
    """Fires on the first import of ``name``: each ``around()`` wraps its execution, each ``after(module)``
    follows (several, in the order :func:`on_import` added them)."""

    def __init__(self, name: str, around: Optional[Around] = None, after: Optional[After] = None) -> None:
        self.name = name
        self.arounds: List[Around] = []
        self.afters: List[After] = []
        self.add(around, after)

    def add(self, around: Optional[Around] = None, after: Optional[After] = None) -> None:
        if around is not None:
            self.arounds.append(around)
        if after is not None:
            self.afters.append(after)

    def find_spec(self, fullname: str, path, target=None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != self.name:
            return None
        self.remove()  # once; and the finders below must not see this one again
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _WrappedLoader(spec.loader, self)
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def on_import(name: str, around: Optional[Around] = None, after: Optional[After] = None) -> Optional[ImportHook]:
    """Arrange for ``around``/``after`` to run at the first import of the top-level module ``name``.

    Already imported: ``after(module)`` runs now and no hook is installed (``around`` is moot).
    A hook already waiting for ``name`` gets these too (only one finder can wrap the import).
    Returns the installed hook (``hook.remove()`` withdraws it), or None.
    """
    if name in sys.modules:
        if after is not None:
            after(sys.modules[name])
        return None
    waiting = next((f for f in sys.meta_path if isinstance(f, ImportHook) and f.name == name), None)
    if waiting is not None:
        waiting.add(around, after)
        return waiting
    hook = ImportHook(name, around, after)
    sys.meta_path.insert(0, hook)
    return hook


class _Refused:
    """A finder that reports ``name`` and its submodules as not installed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path, target=None) -> None:
        if fullname == self.name or fullname.startswith(f"{self.name}."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (hidden while another module imports)",
                                      name=fullname)
        return None


@contextlib.contextmanager
def hidden(name: str) -> Iterator[None]:
    """While the block runs, importing ``name`` (not yet imported) fails as if it were not installed.

    Used around Keras' first import, which imports scikit-learn (about 1.2 s of CPU) only to define
    its optional scikit-learn wrappers (``keras.wrappers``); lossexp never uses them, and
    scikit-learn imports normally once the block has ended.
    """
    if name in sys.modules:
        yield
        return
    refused = _Refused(name)
    sys.meta_path.insert(0, refused)
    try:
        yield
    finally:
        sys.meta_path.remove(refused)


def import_keras_without_sklearn() -> None:
    """In a process lossexp runs (the CLI, a sweep's worker): Keras' first import (whether lossexp or
    TensorFlow imports it) runs with scikit-learn :func:`hidden`, so Keras skips its scikit-learn
    wrappers."""
    on_import("keras", around=functools.partial(hidden, "sklearn"))
