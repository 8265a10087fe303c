"""CAGrad, conflict-averse gradient descent (Liu et al. 2021)."""
from __future__ import annotations

from typing import Any

from lossexp.balancing import simplex
from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.balancing.mgda import present
from lossexp.options import NonNegativeFloat
from lossexp.registry import register_weighting


@register_weighting("cagrad")
class CAGrad(WeightingMethod):
    """CAGrad (Liu, Liu, Jin, Stone & Liu 2021, "Conflict-Averse Gradient Descent for Multi-task
    Learning", Algorithm 1): within a ball around the average gradient g₀, the direction that most
    improves the worst task.

    With gᵢ the task gradients, g₀ = (1/K) Σ gᵢ and g_w = Σ wᵢgᵢ, the dual problem
    w* = argmin over the simplex of g_wᵀg₀ + c‖g₀‖·‖g_w‖ is solved on the Gramian (Frank–Wolfe with an
    exact line search; one closed-form line search for two tasks), and the update is
    d = g₀ + (c‖g₀‖/‖g_w*‖)·g_w*, i.e. αᵢ = 1/K + c‖g₀‖·wᵢ*/‖g_w*‖ (d = g₀ when g_w* = 0). A task whose
    gradient is zero at this step (``hist_avg`` at the first) is left out of w, as MGDA leaves it out: any
    d improves it by 0, so the dual put all its weight there and the update was the plain average. c = 0 is
    gradient descent on the average loss; large c approaches MGDA. Logged: ``weight/cagrad/<task>``.

    Options: ``c`` (≥ 0: the ball's radius relative to ‖g₀‖; the paper's 0.5 on its toy problem,
    0.4 on NYUv2 and CityScapes).
    """

    reads = GRADIENTS

    def __init__(self, c: NonNegativeFloat = 0.5) -> None:
        super().__init__()
        self.c = float(c)

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        gramian = tf.cast(signals.gramian, tf.float64)  # solved in float64 (see lossexp.balancing.simplex)
        average = tf.fill((self.count,), tf.constant(1.0 / self.count, tf.float64))
        g0_norm = tf.sqrt(tf.maximum(tf.tensordot(average, tf.linalg.matvec(gramian, average), 1), 0.0))
        radius = self.c * g0_norm
        w = simplex.minimize(gramian, tf.linalg.matvec(gramian, average), radius, allowed=present(gramian))
        gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(gramian, w), 1), 0.0))
        step = tf.where(gw_norm > 0.0, radius / tf.where(gw_norm > 0.0, gw_norm, tf.ones_like(gw_norm)),
                        tf.zeros_like(gw_norm))
        return tf.cast(average + step * w, tf.float32)
