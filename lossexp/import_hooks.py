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
import importlib.machinery
import sys
from types import ModuleType
from typing import Callable, ContextManager, Optional

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
        with (self._hook.around or contextlib.nullcontext)():
            self._loader.exec_module(module)
        if self._hook.after is not None:
            self._hook.after(module)

    def __getattr__(self, name: str):  # get_resource_reader, is_package, …: the real loader's
        return getattr(self._loader, name)


class ImportHook:
    """Fires on the first import of ``name``: ``around()`` wraps its execution, ``after(module)`` follows."""

    def __init__(self, name: str, around: Optional[Around] = None, after: Optional[After] = None) -> None:
        self.name = name
        self.around = around
        self.after = after

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
    Returns the installed hook (``hook.remove()`` withdraws it), or None.
    """
    if name in sys.modules:
        if after is not None:
            after(sys.modules[name])
        return None
    hook = ImportHook(name, around, after)
    sys.meta_path.insert(0, hook)
    return hook
