"""Per-layer weight-drift statistics, computed in the graph every few steps and read back as scalars.

For a layer with weights θ (all its trainable tensors), at a measurement step t that follows the
previous one by k steps:

* ``from_init`` = ||θ_t − θ_0|| / ||θ_0||            how far the layer has moved since training began;
* ``per_step``  = ||θ_t − θ_{t−k}|| / (k·||θ_{t−k}||)  mean relative movement per step lately;
* ``from_avg``  = ||θ_t − θ̄_t|| / ||θ̄_t||            distance from the mean of the snapshots taken
  so far (θ_0 and every measurement), i.e. the historical average sampled every k steps.

Norms are L2 over all the layer's tensors together; a zero denominator is replaced by 1 (absolute
distance). The state — θ_0, the previous snapshot and the running mean of the snapshots — lives in
float32 variables beside the weights; one compiled function (a plain graph: XLA was measured slower
to compile and to run on CPU) reads the weights, updates the state and returns a (layers × 3)
array, so nothing but those scalars leaves the graph. The running mean is updated as
θ̄ ← θ̄ + (θ − θ̄)/n, which stays accurate in float32 where a running sum would not. Logged as
``weight_drift/<stat>/<layer>`` (:func:`lossexp.metric_names.drift`).
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Sequence

import numpy as np

from lossexp import metric_names
from lossexp.training.unoptimised import unoptimised

STATISTICS = metric_names.DRIFT_STATS


def _half_squared_norm(tensors: Sequence) -> Any:
    """Σ ||t||²/2 over ``tensors``: one ``L2Loss`` op each; the ½ cancels in every ratio of them."""
    import tensorflow as tf

    return tf.add_n([tf.nn.l2_loss(t) for t in tensors])


class DriftValues(NamedTuple):
    """What a checkpoint keeps of a drift, its variables unread (the checkpoint reads each as it writes
    it): θ_0's copies, which never change once taken, so a checkpoint writes them once a run — a third
    of drift's bytes, rewritten at every epoch's end before (120 MB at an 11M-parameter network) —, and
    the rest, written at every epoch's end."""

    initial: List[Any]
    changing: List[Any]


class WeightDrift:
    """Keeps θ_0, the previous snapshot and the running snapshot mean of each layer in variables."""

    def __init__(self, layers: Dict[str, List]) -> None:
        import tensorflow as tf

        self.names = list(layers)
        self.weights = [list(variables) for variables in layers.values()]

        def copies(prefix: str) -> List[List]:
            return [[tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False, name=f"drift_{prefix}")
                     for v in variables] for variables in self.weights]

        self._init, self._previous, self._mean = copies("init"), copies("previous"), copies("mean")
        # ||θ_0||²/2 and ||θ_{t−k}||²/2 per layer, kept rather than recomputed from the copies
        self._init_squared = tf.Variable(tf.zeros(len(self.names)), trainable=False, name="drift_init_squared")
        self._previous_squared = tf.Variable(tf.zeros(len(self.names)), trainable=False,
                                             name="drift_previous_squared")
        self._count = tf.Variable(0.0, trainable=False, name="drift_count")
        self._previous_step = 0
        # No autograph: the graphs have no data-dependent Python control flow to convert, and
        # converting them was 0.3 s of every run's first measurement.
        self._start = tf.function(self._start_graph, autograph=False)
        self._measure = tf.function(self._measure_graph, autograph=False)

    def _values(self) -> List[List]:
        import tensorflow as tf

        return [[tf.cast(tf.convert_to_tensor(v), tf.float32) for v in variables] for variables in self.weights]

    def _start_graph(self) -> None:
        import tensorflow as tf

        squared = []
        for theta, init, previous, mean in zip(self._values(), self._init, self._previous, self._mean):
            for value, a, b, c in zip(theta, init, previous, mean):
                a.assign(value, read_value=False)
                b.assign(value, read_value=False)
                c.assign(value, read_value=False)
            squared.append(_half_squared_norm(theta))
        self._init_squared.assign(tf.stack(squared), read_value=False)
        self._previous_squared.assign(tf.stack(squared), read_value=False)
        self._count.assign(1.0)

    def _measure_graph(self, steps: Any) -> Any:
        """The (layers × 3) statistics, in few graph operations per tensor: tracing and optimising
        the graph is what a deep network's first measurement costs (seconds at hundreds of tensors),
        so each copy is read once, each squared norm is one ``L2Loss`` of a difference (half of it:
        only ratios are taken), and the references' norms ||θ_0|| and ||θ_{t−k}|| are kept from
        earlier measurements."""
        import tensorflow as tf

        def relative(squared: tf.Tensor, reference_squared: tf.Tensor) -> tf.Tensor:
            """||a|| / ||b|| from halves of their squares; ||a|| when b = 0 (absolute distance)."""
            return tf.sqrt(squared / tf.where(reference_squared > 0, reference_squared, 0.5 * tf.ones_like(squared)))

        count = self._count + 1.0
        from_init, from_previous, from_mean, squared, mean_squared = [], [], [], [], []
        for theta, init, previous, mean in zip(self._values(), self._init, self._previous, self._mean):
            new_mean = [m + (t - m) / count for t, m in zip(theta, [tf.convert_to_tensor(m) for m in mean])]
            from_init.append(_half_squared_norm([t - tf.convert_to_tensor(i) for t, i in zip(theta, init)]))
            from_previous.append(_half_squared_norm([t - tf.convert_to_tensor(p) for t, p in zip(theta, previous)]))
            from_mean.append(_half_squared_norm([t - m for t, m in zip(theta, new_mean)]))
            squared.append(_half_squared_norm(theta))
            mean_squared.append(_half_squared_norm(new_mean))
            for t, p, m, value in zip(theta, previous, mean, new_mean):
                p.assign(t, read_value=False)
                m.assign(value, read_value=False)
        squared = tf.stack(squared)
        table = tf.stack([relative(tf.stack(from_init), self._init_squared),
                          relative(tf.stack(from_previous), self._previous_squared) / steps,
                          relative(tf.stack(from_mean), tf.stack(mean_squared))], axis=1)
        self._previous_squared.assign(squared, read_value=False)
        self._count.assign(count, read_value=False)
        return table

    def start(self) -> None:
        """Take θ_0 (the weights before the first step)."""
        with unoptimised():
            self._start()
        self._previous_step = 0

    def _state_variables(self) -> List[Any]:
        copies = [v for kept in (self._init, self._previous, self._mean) for layer in kept for v in layer]
        return copies + [self._init_squared, self._previous_squared, self._count]

    def state(self) -> List[np.ndarray]:
        """θ_0, the last snapshot, their running mean, the kept norms, the count and the last
        measurement's step, as arrays (a checkpoint keeps them: :mod:`lossexp.training.checkpoint`)."""
        return [np.asarray(v.numpy()) for v in self._state_variables()] + [np.asarray(self._previous_step)]

    def state_values(self) -> DriftValues:
        """:meth:`state` with the variables unread, θ_0's copies apart (:class:`DriftValues`)."""
        variables = self._state_variables()
        initial = sum(len(layer) for layer in self._init)  # θ_0's copies come first
        return DriftValues(variables[:initial], [*variables[initial:], np.asarray(self._previous_step)])

    def restore(self, state: Sequence[np.ndarray]) -> None:
        """Continue from :meth:`state` (of a drift of the same layers) instead of the current weights."""
        for variable, value in zip(self._state_variables(), state):
            variable.assign(value)
        self._previous_step = int(state[-1])

    def measure(self, step: int) -> Dict[str, float]:
        """Statistics at global step ``step`` (> the previous measurement's step), by metric name."""
        import tensorflow as tf

        steps = max(step - self._previous_step, 1)
        with unoptimised():
            table = np.asarray(self._measure(tf.constant(float(steps))))
        self._previous_step = step
        return {metric_names.drift(statistic, name): float(table[i, j])
                for i, name in enumerate(self.names) for j, statistic in enumerate(STATISTICS)}
