"""PCGrad, projecting conflicting gradients (Yu et al. 2020)."""
from __future__ import annotations

from typing import Any

from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.registry import register_weighting


@register_weighting("pcgrad")
class PCGrad(WeightingMethod):
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Algorithm 1): each task's
    gradient is projected onto the normal plane of every other task's gradient it conflicts with.

    For each task i, gᵢ^PC starts as gᵢ; for every other task j in a random order, if gᵢ^PC·gⱼ < 0
    then gᵢ^PC ← gᵢ^PC − (gᵢ^PC·gⱼ)/‖gⱼ‖²·gⱼ; the update is Σᵢ gᵢ^PC. Every gᵢ^PC is a combination
    of the task gradients, so the projections run on their coefficients and the Gramian (gᵢ^PC·gⱼ =
    (cᵢᵀG)ⱼ), and the update's weights are αⱼ = Σᵢ cᵢⱼ: 1 for a task no one conflicts with, less
    when others were projected off it. The orders are drawn anew every step from ``seed`` and the step
    number (TensorFlow's stateless generator), so a run is reproducible. Logged: ``weight/pcgrad/<task>``.

    Options: ``seed`` (of the random orders).
    """

    reads = GRADIENTS

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)

    def orders(self, step: Any) -> Any:
        """(K, K): row i is the order in which task i visits the tasks at training step ``step``."""
        import tensorflow as tf

        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.argsort(tf.random.stateless_uniform((self.count, self.count), seed=seed), axis=1)

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        gramian = tf.cast(signals.gramian, tf.float32)
        orders = self.orders(signals.step)
        eye = tf.eye(self.count, dtype=tf.float32)
        total = tf.zeros((self.count,), tf.float32)
        for i in range(self.count):
            coefficients = eye[i]
            for position in range(self.count):
                j = orders[i, position]
                other = tf.gather(gramian, j)  # row j: gⱼ·gₖ for every k
                dot, squared = tf.tensordot(coefficients, other, 1), tf.gather(other, j)
                project = (j != i) & (dot < 0.0) & (squared > 0.0)
                coefficients -= tf.where(project, dot / tf.where(squared > 0.0, squared, 1.0), 0.0) * tf.gather(eye, j)
            total += coefficients
        return total
