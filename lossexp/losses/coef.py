"""A penalty whose coefficient ``a`` is trained by the optimizer (R1 and R4)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext, zero
from lossexp.losses.cross_layer import kernel_norm, layer_kernels, require_kernel_layers
from lossexp.registry import register_component
from lossexp.losses.layer_paths import find_layer

PENALTIES = ("kernel_norm", "prediction_mean")
#: ``a`` starts at 0.01, softplus-parametrized, when the config gives no weight.
DEFAULT_WEIGHT = {"value": 0.01, "trainable": True, "parametrization": "softplus"}


@register_component("coef")
class TrainableCoefficient(LossComponent):
    """term = P; contribution = a·P with ``a`` trained by the optimizer together with the model.

    ``penalty: kernel_norm`` — P = Σ_layers ||W||_F, the Frobenius norms of the named layers'
    kernels (R1's ``a·||W_a||``); ``penalty: prediction_mean`` — P = mean(y_pred) (R4's ``a·ŷ``).

    ``a`` is the component's weight, trainable by default (softplus, starting at 0.01); under
    ``weight.parametrization: raw`` ∂L/∂a = P > 0 always pushes ``a`` down, through zero and on
    to −∞, which lossexp detects and tags. ``a`` is logged as ``weight/coef/<name>``.

    Options: ``weight``; ``penalty``; ``layers`` (for kernel_norm).
    """

    reaches_nested_layers = True

    def __init__(self, weight: Optional[Any] = None, penalty: str = "kernel_norm",
                 layers: Sequence[str] = ("hidden_1",), **kwargs: Any) -> None:
        super().__init__(weight=dict(DEFAULT_WEIGHT) if weight is None else weight, **kwargs)
        self.penalty = self.require_choice("penalty", penalty, PENALTIES)
        self.require(isinstance(layers, (list, tuple)) and all(isinstance(n, str) for n in layers)
                     and (len(layers) > 0 or penalty != "kernel_norm"),
                     "layers", "a non-empty list of layer names", layers)
        self.layers = list(layers)

    def attach(self, network: keras.Model) -> None:
        if self.penalty == "kernel_norm":
            require_kernel_layers(self, network, self.layers)
        else:
            self.require_one_output(network, "penalty", "kernel_norm (prediction_mean averages one output)",
                                    self.penalty)

    def term(self, context: LossContext) -> Any:
        if self.penalty == "prediction_mean":
            return ops.mean(ops.cast(context.y_pred, "float32"))
        total = zero()
        for name in self.layers:
            total = total + kernel_norm(layer_kernels(find_layer(context.network, name)), "fro")
        return total
