"""The global training step as callbacks see it, whatever ``steps_per_execution`` is.

With ``steps_per_execution = k`` Keras calls ``on_train_batch_end`` once per k steps, and the
batch index it passes is nominal (an epoch's last call may run fewer than k steps). The global
step is the optimizer's iteration count. Reading that variable from Python costs 0.1–0.25 ms
inside ``fit`` (0.03–0.06 ms outside it): at a small model's call of 10 steps of 0.4 ms, one read
per call is 2.5–5 % of training. So the count is read once per ``fit``, when its first epoch begins
(once for all the callbacks, keyed by epoch), and from there the step counts the batches Keras runs:
an epoch starts at the step the one before ended at, and within it the step is its start plus
``min(batch index + 1, the epoch's batches)`` — exact whenever Keras knows the epoch's length
(arrays, datasets of known cardinality, ``steps_per_epoch``). Read at every epoch, the count fell
behind the batches under a loss-scaling optimizer (``mixed_float16``), which does not count a step
it skips as non-finite: after 2 skipped steps of 8 in a first epoch, the second epoch's steps began
at 6 again (steps 7 and 8 recorded twice, the run ending at 14 of 16); a fit that begins at epoch e
(``initial_epoch``: a resumed run) begins at e epochs' batches when the count is behind them (a run
resumed after 3 epochs of 8 batches, 8 of them skipped, began at 16, and every point of its last
epoch, at steps ≤ 24 that the stopped attempt had recorded, was dropped). When Keras does not know the
epoch's length (a dataset of unknown cardinality), the count is read after every call instead,
once for all the callbacks, keyed by ``(epoch, batch)`` (there the skipped steps are still not
counted). Either read is dropped when a ``fit`` begins, where those keys start again. With
``gradient_accumulation_steps = k`` the optimizer
updates the weights once every k batches and its ``iterations`` counts those updates (what Keras'
learning-rate schedules and lossexp's weight schedules follow); the global step counts batches
(:func:`batches_trained`), as the in-epoch count does, so the steps of every epoch follow the last.

:class:`IntervalCallback` is the base of every lossexp callback that acts on the step (the run
recorder, the divergence watch, the non-finite guard, the gradient probe): it keeps the step in
``self.step``, calls :meth:`~IntervalCallback.on_steps_done` after every call and
:meth:`~IntervalCallback.on_interval` every ``every_n_steps`` steps of each epoch (counted from the
epoch's start, so the logged steps are the same whatever ``steps_per_execution`` divides them into,
and a resumed run's are those of the run it continues: counted from 0 in a resumed fit's first epoch,
they fell one step after that epoch's start — 17, 22 where the uninterrupted run sampled 21 from 16).
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, Optional, Tuple

import keras

#: (epoch, batch index) of one compiled call of ``model.fit``; (epoch, EPOCH_START) before the epoch's first
Call = Tuple[int, int]
EPOCH_START = -1

_last_read: "weakref.WeakKeyDictionary[Any, Tuple[Call, int]]" = weakref.WeakKeyDictionary()


def batches_trained(optimizer: Any) -> Any:
    """The optimizer's count of the batches it was given: ``iterations``, except under gradient
    accumulation, where ``iterations`` counts weight updates (one per ``gradient_accumulation_steps``
    batches) and the batches are its raw counter (a loss-scaling optimizer's: its inner one's)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if getattr(inner, "gradient_accumulation_steps", None):
        return inner._iterations  # Keras keeps the batches only here; `iterations` divides it by the steps
    return optimizer.iterations


def global_step(model: keras.Model, call: Call) -> int:
    """The batches trained (:func:`batches_trained`) after the compiled call ``call`` = (epoch, batch
    index) of ``model.fit`` (``(epoch, EPOCH_START)``: before the epoch's first call), read once per
    call for every caller."""
    optimizer = model.optimizer
    last = _last_read.get(optimizer)
    if last is None or last[0] != call:
        last = (call, int(keras.ops.convert_to_numpy(batches_trained(optimizer))))
        _last_read[optimizer] = last
    return last[1]


class IntervalCallback(keras.callbacks.Callback):
    """Base for callbacks that act every ``every_n_steps`` global training steps."""

    def __init__(self, every_n_steps: int) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.step = 0
        self._epoch = 0
        self._epoch_start_step = 0
        self._last_interval_step = 0
        self._counted = False

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.step = self._last_interval_step = 0
        self._counted = False  # whether self.step counts this fit's batches from a read of the optimizer
        _last_read.pop(self.model.optimizer, None)  # this fit's calls are numbered anew

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._epoch = epoch
        self._last_interval_step = self.step
        batches = self._epoch_batches()
        if batches:
            # a fit's first epoch, ``epoch`` (Keras' initial_epoch), follows at least that many epochs' batches:
            # a resumed run's optimizer count is behind them by the steps a loss scale skipped
            self._epoch_start_step = self.step if self._counted else \
                max(global_step(self.model, (epoch, EPOCH_START)), epoch * batches)
            self._last_interval_step = self._epoch_start_step  # a resumed fit's first epoch starts past 0
            self._counted = True

    def _epoch_batches(self) -> Optional[int]:
        """The batches of an epoch of this ``fit``, when Keras knows them."""
        return (self.params or {}).get("steps")

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        batches = self._epoch_batches()
        previous = self.step
        if batches:
            self.step = self._epoch_start_step + min(batch + 1, batches)
        else:
            self.step = global_step(self.model, (self._epoch, batch))
        self.on_steps_done(previous, logs or {})
        if self.step - self._last_interval_step >= self.every_n_steps:
            self._last_interval_step = self.step
            self.on_interval(logs or {})

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        """Called after every compiled call; ``self.step`` is the global step now."""

    def on_interval(self, logs: Dict[str, Any]) -> None:
        """Called once per logging interval with the latest logs."""
