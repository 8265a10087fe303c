"""The gradient functions a finished job's Keras train step left in TensorFlow's process-wide registry.

A graph-mode ``tf.custom_gradient`` registers its gradient function under a new name
(``CustomGradient-<uid>``) at every trace and never removes it, and the function keeps the traced
graph alive. Keras' train step traces two, both TensorFlow's ``ReplicaContextBase.all_reduce`` gradient
(the default strategy's): 16 fits of a small CNN in one process, each after
``keras.backend.clear_session``, grew the process 703 → 759 MB; with these released 703 → 705 MB.
A sweep run in one process released them at each job's start.

Only those are released, and only once the session is cleared (the graphs that name them are gone):
another custom gradient — a project's own ``tf.function``, whose trace is cached across jobs — may
still be looked up by a later job.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional

#: where the gradient functions to release were defined (``__qualname__`` prefix)
ALL_REDUCE_GRADIENT = "ReplicaContextBase.all_reduce."
#: how many closures deep the defining function is looked for (it is two below the registered one)
_DEPTH = 4


def all_reduce_gradient_names() -> List[str]:
    """The registry's names of ``all_reduce`` gradient functions (none in a TensorFlow whose registry is
    laid out otherwise)."""
    registry = _registry()
    return [name for name, entry in (registry or {}).items()
            if name.startswith("CustomGradient-") and isinstance(entry, dict) and _from_all_reduce(entry.get("type"))]


def release_all_reduce_gradients() -> int:
    """Remove the registry's ``all_reduce`` gradient functions; their number. Call only after
    ``keras.backend.clear_session`` (no live graph refers to them)."""
    names = all_reduce_gradient_names()
    registry = _registry()
    for name in names:
        del registry[name]
    return len(names)


def _registry() -> Optional[Dict[str, Any]]:
    """TensorFlow's gradient registry's dict, or None if it is not where TensorFlow 2.21 keeps it."""
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def _from_all_reduce(function: Any) -> bool:
    """Whether ``function`` or one it closes over (``_DEPTH`` deep) was defined in ``all_reduce``."""
    return any(getattr(f, "__qualname__", "").startswith(ALL_REDUCE_GRADIENT) for f in _closed_over(function, _DEPTH))


def _closed_over(function: Any, depth: int) -> Iterator[Callable]:
    """``function`` and the functions in its closure, recursively to ``depth``."""
    if not callable(function):
        return
    yield function
    if depth == 0:
        return
    for cell in getattr(function, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        yield from _closed_over(contents, depth - 1)
