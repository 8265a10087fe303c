"""Uncertainty weighting (Kendall, Gal & Cipolla 2018), for every part at once."""
from __future__ import annotations

from typing import Any, Dict

from lossexp import metric_names
from lossexp.balancing.base import Signals, WeightingMethod
from lossexp.options import finite
from lossexp.registry import register_weighting


@register_weighting("uncertainty")
class UncertaintyWeighting(WeightingMethod):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using
    Uncertainty to Weigh Losses for Scene Geometry and Semantics"), in lossexp's parametrization.

    Each task's loss Lᵢ becomes exp(−sᵢ)·Lᵢ + sᵢ, with sᵢ = log σᵢ² trained by the optimizer together
    with the network: α = exp(−sᵢ), and ∂/∂sᵢ = 1 − exp(−sᵢ)·Lᵢ, so sᵢ settles at log Lᵢ (the form of
    a component's ``weight: {trainable: true, parametrization: uncertainty}``, here for the task loss
    and every component together). It still runs to −∞ for a part whose loss can reach 0.
    Logged: ``weight/uncertainty/<task>`` = exp(−sᵢ), the weight of the last step (the sᵢ before its
    update, as every method's weights), and ``weight/uncertainty/log_variance/<task>`` = sᵢ after it: at
    the same step the logged weight is exp(−sᵢ) one update behind.

    Options: ``log_variance`` (every sᵢ's initial value; 0: α = 1).
    """

    differentiable = True

    def __init__(self, log_variance: float = 0.0) -> None:
        super().__init__()
        self.log_variance = finite("weighting.log_variance", log_variance)

    def build_state(self, network: Any) -> None:
        import keras

        self.log_variances = self.variable("log_variances", (self.count,), trainable=True,
                                           initializer=keras.initializers.Constant(self.log_variance))

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        return tf.exp(-tf.cast(self.log_variances, tf.float32))

    def penalty(self) -> Any:
        import tensorflow as tf

        return tf.reduce_sum(tf.cast(self.log_variances, tf.float32))

    def tracked(self) -> Dict[str, Any]:
        values = super().tracked()
        for i, task in enumerate(self.tasks):
            values[metric_names.method_weight(f"{self.name}/log_variance", task)] = self.log_variances[i]
        return values
