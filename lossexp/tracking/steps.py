"""The global training step as callbacks see it, whatever ``steps_per_execution`` is.

With ``steps_per_execution = k`` Keras calls ``on_train_batch_end`` once per k steps, and the
batch index it passes is nominal (an epoch's last call may run fewer than k steps). The true
global step is the optimizer's iteration count, read once per call for all the callbacks
(:func:`lossexp.training.step_count.global_step`). :class:`IntervalCallback` keeps it in ``self.step`` and calls :meth:`IntervalCallback.on_interval` every
``every_n_steps`` steps of each epoch (counted from the epoch's start, so the logged steps are the
same whatever ``steps_per_execution`` divides them into).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras

from lossexp.training import step_count


class IntervalCallback(keras.callbacks.Callback):
    """Base for callbacks that act every ``every_n_steps`` global training steps."""

    def __init__(self, every_n_steps: int) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.step = 0
        self.epoch = 0
        self._last_interval_step = 0

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.step = self._last_interval_step = 0
        step_count.forget(self.model)

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.epoch = epoch
        self._last_interval_step = self.step

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        previous, self.step = self.step, step_count.global_step(self.model, (self.epoch, batch))
        self.on_steps_done(previous, logs or {})
        if self.step - self._last_interval_step >= self.every_n_steps:
            self._last_interval_step = self.step
            self.on_interval(logs or {})

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        """Called after every compiled call; ``self.step`` is the global step now."""

    def on_interval(self, logs: Dict[str, Any]) -> None:
        """Called once per logging interval with the latest logs."""
