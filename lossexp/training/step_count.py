"""The global training step as callbacks see it, whatever ``steps_per_execution`` is.

With ``steps_per_execution = k`` Keras calls ``on_train_batch_end`` once per k steps, and the
batch index it passes is nominal (an epoch's last call may run fewer than k steps). The true
global step is the optimizer's iteration count. Reading that variable from Python costs
0.07–0.2 ms: at a small model's step of 0.5 ms, four callbacks each reading it after every call of
10 steps cost 5 % of training. So :func:`global_step` reads it once per call for all of them, keyed
by ``(epoch, batch)``, which names one call of one ``fit`` (the read is dropped when a ``fit``
begins, where those keys start again).

:class:`IntervalCallback` is the base of every lossexp callback that acts on the step (the run
recorder, the divergence watch, the non-finite guard, the gradient probe): it keeps the step in
``self.step``, calls :meth:`~IntervalCallback.on_steps_done` after every call and
:meth:`~IntervalCallback.on_interval` every ``every_n_steps`` steps of each epoch (counted from the
epoch's start, so the logged steps are the same whatever ``steps_per_execution`` divides them into).
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Tuple

import keras

Call = Tuple[int, int]

_last_read: "weakref.WeakKeyDictionary[Any, Tuple[Call, int]]" = weakref.WeakKeyDictionary()


def global_step(model: keras.Model, call: Call) -> int:
    """The optimizer's step count after the compiled call ``call`` = (epoch, batch index) of ``model.fit``."""
    optimizer = model.optimizer
    last = _last_read.get(optimizer)
    if last is None or last[0] != call:
        last = (call, int(keras.ops.convert_to_numpy(optimizer.iterations)))
        _last_read[optimizer] = last
    return last[1]


class IntervalCallback(keras.callbacks.Callback):
    """Base for callbacks that act every ``every_n_steps`` global training steps."""

    def __init__(self, every_n_steps: int) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.step = 0
        self._epoch = 0
        self._last_interval_step = 0

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.step = self._last_interval_step = 0
        _last_read.pop(self.model.optimizer, None)  # this fit's calls are numbered anew

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch = epoch
        self._last_interval_step = self.step

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        previous, self.step = self.step, global_step(self.model, (self._epoch, batch))
        self.on_steps_done(previous, logs or {})
        if self.step - self._last_interval_step >= self.every_n_steps:
            self._last_interval_step = self.step
            self.on_interval(logs or {})

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        """Called after every compiled call; ``self.step`` is the global step now."""

    def on_interval(self, logs: Dict[str, Any]) -> None:
        """Called once per logging interval with the latest logs."""
