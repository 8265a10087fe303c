"""Equal weighting: the plain sum of the parts, lossexp's behaviour without a method."""
from __future__ import annotations

from typing import Any, Dict

from lossexp.balancing.base import Signals, WeightingMethod
from lossexp.registry import register_weighting


@register_weighting("equal")
class Equal(WeightingMethod):
    """α = 1 for every task: the update follows the gradient of task loss + Σ contributions.

    No options; nothing is logged beyond the loss breakdown (the weights never change). The
    training step is Keras' own, one backward pass of the total.
    """

    plain = True

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        return tf.ones_like(signals.losses)

    def tracked(self) -> Dict[str, Any]:
        return {}
