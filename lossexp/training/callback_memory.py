"""What Keras' own stateful callbacks among the user's remember from epoch to epoch, kept in a
checkpoint so that a resumed run's callbacks go on from it rather than start afresh.

``ReduceLROnPlateau``: its best value, the epochs since it and the cooldown left (afresh, a resumed
run reduced its rate epochs later than the run that never stopped); ``ModelCheckpoint``: the best
value its ``save_best_only`` compares with (afresh, the first resumed epoch overwrote the best file
whatever its value); ``EarlyStopping`` without ``restore_best_weights``: its best value, epoch and the
epochs since (with it, its best weights are not kept, so it starts afresh). Anything else (a callback
of the user's own class) keeps no memory across a resume.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np


def _remembered(callback: Any) -> Tuple[str, ...]:
    """The attribute names of ``callback``'s memory (none for a callback whose memory is not kept)."""
    if isinstance(callback, keras.callbacks.ReduceLROnPlateau):
        return ("best", "wait", "cooldown_counter")
    if isinstance(callback, keras.callbacks.ModelCheckpoint):
        return ("best",)
    if isinstance(callback, keras.callbacks.EarlyStopping) and not callback.restore_best_weights:
        return ("best", "best_epoch", "wait")
    return ()


def _plain(value: Any) -> Any:
    """A number as JSON holds it (a NumPy scalar from the logs as a float); None stays None."""
    if value is None or isinstance(value, (bool, int)):
        return value
    return float(np.asarray(value))


def memory(callbacks: Sequence[Any]) -> List[Dict[str, Any]]:
    """One entry per callback, in order: its class name and what it remembers (empty for the others)."""
    return [{"class": type(callback).__name__, **{name: _plain(getattr(callback, name, None))
                                                  for name in _remembered(callback)}}
            for callback in callbacks]


class CallbackMemory(keras.callbacks.Callback):
    """Puts the memory a checkpoint kept (:func:`memory`) back into the user's ``callbacks`` as training
    begins; it runs after them, since their ``on_train_begin`` resets it (ReduceLROnPlateau's does). A
    callback at another place or of another class than the stopped run's is left as it is."""

    def __init__(self, callbacks: Sequence[Any], resumed: Optional[List[Dict[str, Any]]]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)
        self.resumed = resumed or []

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        for callback, kept in zip(self.callbacks, self.resumed):
            if kept.get("class") == type(callback).__name__:
                for name in _remembered(callback):
                    if name in kept:
                        setattr(callback, name, kept[name])
