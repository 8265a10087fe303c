"""The objects a ``lossexp train`` process's imports made, taken out of the garbage collector's passes.

Importing TensorFlow, Keras and Hydra leaves about 600,000 objects that live until the process ends,
and every full collection walks them all: 0.25 s of CPU each. ``keras.backend.clear_session`` makes
one at every run's start (every job's, in a sweep run in one process) and the interpreter makes
more as training allocates. Frozen (:func:`gc.freeze`) they are skipped: a 2-epoch MLP run spent
0.31 s of CPU collecting, 0.12 s after. Only the CLI's own processes do this, once: the objects of
a notebook that calls :func:`lossexp.fit` are its user's to have collected.

Keras (and TensorFlow with it) is imported before the freeze, with the collector off
(:func:`uncollected`): as the import grows the heap, the interpreter makes full collections that
walk everything built so far and find nothing to collect — 8 of them, 0.69 s of CPU, in a
``lossexp train`` on digits (6 December); imported after the freeze, TensorFlow's objects were
walked by every later full collection instead (0.65 s).
"""
from __future__ import annotations

import contextlib
import functools
import gc
from typing import Iterator


@functools.lru_cache(maxsize=None)
def freeze_once() -> None:
    """Move every object alive now to the collector's permanent generation (the first call only:
    a later one would also freeze what a finished job left to collect)."""
    gc.freeze()


@contextlib.contextmanager
def uncollected() -> Iterator[None]:
    """The garbage collector off for the block (imports: what they build lives on), then as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
