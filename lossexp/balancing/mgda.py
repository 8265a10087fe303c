"""MGDA, the multiple-gradient descent algorithm (Sener & Koltun 2018)."""
from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

from lossexp.balancing import simplex
from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.registry import register_weighting

NORMALIZATIONS = ("none", "l2", "loss", "loss+")

#: the task loss's weight below which the network no longer learns its task. Measured on the digits'
#: CNN, 2 epochs: beside hist_avg, hist_avg+activity or activity, the task's weight has a median of
#: 0 to 5·10⁻⁵ over the steps and the validation accuracy stays at chance (8–12 %); runs that learn
#: (normalization l2 or loss+) keep it at 0.5 and 0.99 (accuracy 76–77 %)
NEGLECTED = 1e-3


def present(gramian: Any) -> Any:
    """Tasks whose gradient is not zero (a term that does not depend on the weights at this step).

    Exactly zero: a gradient 10⁻⁶ the size of another's is small, not absent (relative to the largest,
    a task of norm 10⁻³ beside 10³ was left out, and MGDA's update had norm 1414 where the min-norm
    point's is 8.7·10⁻⁴)."""
    import tensorflow as tf

    return tf.linalg.diag_part(gramian) > 0.0


@register_weighting("mgda")
class MGDA(WeightingMethod):
    """MGDA (Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization"): the update
    is the min-norm point of the convex hull of the task gradients, a direction that decreases every
    task (or none: a Pareto-stationary point).

    α = argmin over the simplex of ‖Σ αᵢ ĝᵢ‖² with ĝᵢ = gᵢ/nᵢ, solved on the Gramian by the paper's
    Frank–Wolfe algorithm (Algorithm 2: exact line search between the iterate and the best vertex;
    for two tasks the closed form of Algorithm 1, α₁ = clip((ĝ₂−ĝ₁)·ĝ₂/‖ĝ₁−ĝ₂‖², 0, 1); in float64, with a
    Newton step inside the face it finds: :mod:`lossexp.balancing.simplex`); the update
    is Σ αᵢ gᵢ (the weights applied to the losses, as the authors' code does). Tasks whose gradient
    is zero at this step (``hist_avg`` at the first step) are left out: any direction is orthogonal to
    them, and including them would make the min-norm point 0 and stop training. The paper's MGDA-UB
    takes the gradients of a shared representation instead of the shared weights, an upper bound
    that needs task heads behind one encoder; the Gramian here is that of the shared weights (those two or
    more parts reach: a head's own weights under ``task.split_outputs`` are left out), the exact problem
    MGDA-UB bounds.
    Logged: ``weight/mgda/<task>``.

    Options: ``normalization`` — the paper's gradient normalisations nᵢ: ``none`` (1), ``l2`` (‖gᵢ‖),
    ``loss`` (Lᵢ), ``loss+`` (Lᵢ‖gᵢ‖).
    """

    reads = GRADIENTS

    def __init__(self, normalization: Literal["none", "l2", "loss", "loss+"] = "none") -> None:
        super().__init__()
        self.normalization = normalization

    def normalizers(self, signals: Signals) -> Any:
        """nᵢ of each task (1 where it would be 0)."""
        import tensorflow as tf

        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(tf.cast(signals.gramian, tf.float64)), 0.0))
        losses = tf.abs(tf.cast(signals.losses, tf.float64))
        value = {"none": tf.ones_like(norms), "l2": norms, "loss": losses, "loss+": losses * norms}[self.normalization]
        return tf.where(value > 0.0, value, tf.ones_like(value))

    def warning(self, weights: Sequence[float]) -> Optional[str]:
        """The task loss weighted to nothing: MGDA's min-norm point lies at the smallest gradient, and a
        weight-space term's (``hist_avg`` near its reference, a small ``activity``) is far smaller than
        the task's — the method working as designed, the network then following that term alone."""
        neglected = self.neglected_task(weights, NEGLECTED)
        if neglected is None:
            return None
        which, task, top = neglected
        fix = "weighting.normalization=l2 (each gradient normalised: MGDA then balances directions, not sizes)" \
            if self.normalization == "none" else "weighting.normalization=l2"
        return (f"weighting=mgda weighs {which} {task:.2g}: the min-norm point of the parts' gradients is "
                f"{top}'s, the smallest (MGDA favours the smallest gradient), so the network follows {top} and "
                f"not its task; use {fix}, or weighting=equal")

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        gramian = tf.cast(signals.gramian, tf.float64)  # solved in float64 (see lossexp.balancing.simplex)
        n = self.normalizers(signals)
        normalised = gramian / (n[:, None] * n[None, :])
        return tf.cast(simplex.minimize(normalised, tf.zeros_like(n), 1.0, allowed=present(gramian)), tf.float32)
