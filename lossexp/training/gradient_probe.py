"""When and on what the gradient diagnostics are measured during ``fit``.

:class:`GradientProbe` is a Keras callback: after the first call into the training step and then
at the first call of every ``tracking.gradients_every_n_steps`` steps (global steps, whatever
``steps_per_execution`` groups them into), it hands the batch :func:`training_batches` gives that
step to the model's :class:`~lossexp.training.gradient_diagnostics.GradientDiagnostics`, to be read by
the run recorder as the values of that step. Sampled every N steps, not every step: the measurement
costs one backward pass per part of the loss, and the training step itself stays the plain one.
A resumed run (``resume=``, ``--resume``) samples the steps and, from arrays, the batches that the
run it continues would have: the interval holding its first step was sampled before it stopped, and
an array batch is drawn from the seed and the step, not from the samples before it.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import keras
import numpy as np

from lossexp.data.structure import count_rows, take_rows
from lossexp.training.step_count import IntervalCallback, batches_trained


#: a stream's probe batches are drawn from a shuffle buffer of at most this many elements … (it held 10,000 and
#: 128 MiB: 2,730 of 20,000 PNGs, 10,000 of a generator's 100,000 rows read beside training at its first step)
PROBE_ELEMENTS = 1024
#: … and at most this many bytes of them
PROBE_BYTES = 16 << 20


class GradientProbe(IntervalCallback):
    """Samples the model's gradient diagnostics every ``every_n_steps`` steps (see the module docstring)."""

    def __init__(self, batches: Callable[[int], Tuple[Any, ...]], every_n_steps: int) -> None:
        super().__init__(int(every_n_steps))
        self.batches = batches
        self.sampled: Optional[int] = None

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_train_begin(logs)
        start = int(keras.ops.convert_to_numpy(batches_trained(self.model.optimizer)))
        if start > 0:  # a resumed run: the interval holding its last step was sampled by the run it continues
            self.sampled = start

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        first = not self._counted
        super().on_epoch_begin(epoch, logs)
        if first and self._epoch_start_step > (self.sampled or 0):  # resumed: the optimizer's count was behind
            self.sampled = self._epoch_start_step

    def due(self, step: int) -> bool:
        """Whether the calls since the last sample reached a new interval: steps 1…N, N+1…2N, …"""
        if self.sampled is None:
            return step > 0
        return (step - 1) // self.every_n_steps > (self.sampled - 1) // self.every_n_steps

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        if self.due(self.step):
            self.sampled = self.step
            self.model.diagnostics.sample(self.step, *self.batches(self.step))


def training_batches(split: Any, batch_size: int, seed: int) -> Callable[[int], Tuple[Any, ...]]:
    """The batch ``(x, y)`` or ``(x, y, sample_weight)`` of the training split to measure at a step:
    ``batch_size`` examples drawn without replacement from the arrays by the seed and the step (the
    same every run with ``seed``, a resumed one's too), or a stream's next, shuffled within a bounded
    buffer."""
    if split.arrays is not None:
        rows = count_rows(split.arrays[0])
        size = min(batch_size, rows)

        def drawn(step: int) -> Tuple[Any, ...]:
            chosen = np.sort(np.random.default_rng([seed, step]).choice(rows, size=size, replace=False))
            return tuple(take_rows(column, chosen) for column in split.arrays)

        return drawn
    from lossexp.data.streams import batches, elements_within, reshuffles

    # a probe's batches need only differ: its buffer is read beside training's, before its first batch
    # (none for a stream that reorders itself at every pass: 340 of 20,000 PNGs decoded once more). A
    # stream the buffer holds whole is kept in memory: its buffer was filled again at every pass, and
    # read ahead into the next (300 elements, 80 probes of 8: 941 read)
    most = min(int(split.size), PROBE_ELEMENTS) if split.size is not None else PROBE_ELEMENTS  # None: not counted
    buffer = elements_within(split.stream, most, PROBE_BYTES)
    stream = split.stream
    if not reshuffles(stream):
        held = split.size is not None and buffer >= int(split.size)
        stream = (stream.cache() if held else stream).shuffle(buffer, seed=seed)
    batched = batches(stream.repeat(), batch_size, drop_remainder=True)
    if split.batch_map:
        batched = batched.map(split.batch_map)
    streamed = batched.prefetch(1).as_numpy_iterator()  # one batch ahead: a probe comes every N steps
    return lambda step: next(streamed)
