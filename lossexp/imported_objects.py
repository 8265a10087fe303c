"""The objects a ``lossexp train`` process's imports made, taken out of the garbage collector's passes.

Importing TensorFlow, Keras and Hydra leaves about 600,000 objects that live until the process ends,
and every full collection walks them all: 0.25 s of CPU each. ``keras.backend.clear_session`` makes
one at every run's start (every job's, in a sweep run in one process) and the interpreter makes
more as training allocates. Frozen (:func:`gc.freeze`) they are skipped: a 2-epoch MLP run spent
0.31 s of CPU collecting, 0.12 s after. Only the CLI's own processes do this, once: the objects of
a notebook that calls :func:`lossexp.fit` are its user's to have collected.
"""
from __future__ import annotations

import functools
import gc


@functools.lru_cache(maxsize=None)
def freeze_once() -> None:
    """Move every object alive now to the collector's permanent generation (the first call only:
    a later one would also freeze what a finished job left to collect)."""
    gc.freeze()
