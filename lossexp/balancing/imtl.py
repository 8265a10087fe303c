"""IMTL-G, impartial multi-task learning's gradient balancing (Liu et al. 2021)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.balancing.mgda import NEGLECTED, present
from lossexp.registry import register_weighting


@register_weighting("imtl")
class IMTLG(WeightingMethod):
    """IMTL-G (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang 2021, "Towards Impartial Multi-task
    Learning", §3.2): the update d = Σ αᵢgᵢ with Σ αᵢ = 1 whose projection on every task's unit
    gradient uᵢ = gᵢ/‖gᵢ‖ is the same, d·u₁ = d·uᵢ, so no task is favoured.

    In the Gramian these are linear equations, (Gα)₁/‖g₁‖ = (Gα)ᵢ/‖gᵢ‖ for every i and Σ α = 1, solved
    exactly (the paper's closed form α₂…K = g₁Uᵀ(DUᵀ)⁻¹ with Dᵢ = g₁ − gᵢ, Uᵢ = u₁ − uᵢ; a
    pseudo-inverse where gradients are linearly dependent:
    the least-norm β, so tasks of one direction share it equally, whichever comes first). They are solved for βⱼ = αⱼ‖gⱼ‖ on the cosines
    uᵢ·uⱼ, which do not depend on the gradients' scale, then α ∝ βⱼ/‖gⱼ‖. The weights may be negative. Tasks whose
    gradient is zero at this step have no direction and get α = 0 (the first task that has one is
    the reference). Solved in float64: in float32 the cosines of nearly parallel gradients round to 1, and
    three gradients g, −g, ½g 10⁻³ apart got weights 0.39–0.40 off the closed form's. The paper's loss-scale
    half (IMTL-L) is not part of this method. Logged:
    ``weight/imtl/<task>``.

    No options.
    """

    reads = GRADIENTS

    def warning(self, weights: Sequence[float]) -> Optional[str]:
        """The task loss weighted to nothing beside a component: equal projections on every unit gradient
        put d near a term whose gradient is far smaller than the task's (``hist_avg`` near its reference),
        as MGDA's min-norm point does (probe: 10⁻⁴ with hist_avg and activity)."""
        neglected = self.neglected_task(weights, NEGLECTED)
        if neglected is None:
            return None
        which, task, top = neglected
        return (f"weighting=imtl weighs {which} {task:.2g}: for equal projections on every part's unit gradient "
                f"the update leans on {top}'s, far smaller than the task's, so the network follows {top} and not its "
                f"task; balance the task losses alone (a component's weight of its own) or use weighting=equal")

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        gramian = tf.cast(signals.gramian, tf.float64)  # solved in float64, as the Gramian is formed
        k = self.count
        if k == 1:
            return tf.ones((1,), tf.float32)
        has = present(gramian)
        norms = tf.where(has, tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0)), 1.0)
        cosines = gramian / (norms[:, None] * norms[None, :])  # uᵢ·uⱼ: the equations in units of the unit gradients
        reference = tf.argmax(tf.cast(has, tf.int32))
        eye = tf.eye(k, dtype=tf.float64)
        rows = []
        for i in range(k):
            equal_projection = tf.gather(cosines, reference) - cosines[i]
            row = tf.where(i == reference, tf.ones((k,), tf.float64), tf.where(has[i], equal_projection, eye[i]))
            rows.append(row)
        system = tf.stack(rows)
        target = tf.cast(tf.equal(tf.range(k), tf.cast(reference, tf.int32)), tf.float64)
        unit_weights = tf.linalg.matvec(tf.linalg.pinv(system), target)  # d = Σ βⱼuⱼ, Σ βⱼ = 1
        alpha = tf.where(has, unit_weights / norms, 0.0)
        alpha = alpha / tf.reduce_sum(alpha)  # αⱼ = βⱼ/‖gⱼ‖, rescaled to Σ αⱼ = 1 (the projections stay equal)
        uniform = tf.cast(has, tf.float64) / tf.maximum(tf.reduce_sum(tf.cast(has, tf.float64)), 1.0)
        return tf.cast(tf.where(tf.reduce_all(tf.math.is_finite(alpha)) & tf.reduce_any(has), alpha, uniform), tf.float32)
