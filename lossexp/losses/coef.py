"""A penalty multiplied by a trainable coefficient ``a`` (R1 and R4)."""
from __future__ import annotations

from typing import Any, Dict, Sequence

import keras
from keras import ops

from lossexp.losses import coefficient
from lossexp.losses.base import LossComponent, LossContext, zero
from lossexp.losses.registry import register

PENALTIES = ("kernel_norm", "prediction_mean")


@register("coef")
class TrainableCoefficient(LossComponent):
    """term = a · P, where ``a`` is a trainable weight that the optimizer updates with the model.

    ``penalty: kernel_norm`` — P = Σ_layers ||W||_F, the Frobenius norms of the named layers'
    kernels (R1's ``a·||W_a||``); ``penalty: prediction_mean`` — P = mean(y_pred) (R4's ``a·ŷ``).

    ``a`` = f(s) for a raw variable s: ``parametrization: raw`` (a = s; ∂L/∂a = P > 0 always
    pushes ``a`` down, through zero and on to −∞: kept to study that failure), ``softplus``
    (default, a > 0) or ``exp`` (a > 0). ``initial`` is the starting ``a``. The effective ``a``
    is logged as ``coef/<name>``.

    Options: ``weight``; ``penalty``; ``layers`` (for kernel_norm); ``initial``; ``parametrization``.
    """

    def __init__(self, weight: float = 0.01, penalty: str = "kernel_norm", layers: Sequence[str] = ("hidden_1",),
                 initial: float = 1.0, parametrization: str = "softplus", **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.penalty = self.require_choice("penalty", penalty, PENALTIES)
        self.require(isinstance(layers, (list, tuple)) and all(isinstance(n, str) for n in layers)
                     and (len(layers) > 0 or penalty != "kernel_norm"),
                     "layers", "a non-empty list of layer names", layers)
        self.layers = list(layers)
        self.parametrization = self.require_choice("parametrization", parametrization,
                                                   tuple(coefficient.PARAMETRIZATIONS))
        positive = parametrization in coefficient.POSITIVE
        self.initial = self.require_number("initial", initial, minimum=0.0 if positive else None, exclusive=positive)
        self.raw_coefficient = self.add_weight(
            name="raw_coefficient",
            shape=(),
            initializer=keras.initializers.Constant(coefficient.raw_initial(self.parametrization, self.initial)),
            trainable=True,
        )

    def attach(self, network: keras.Model) -> None:
        if self.penalty == "kernel_norm":
            self.require_layers(network, self.layers)
            for name in self.layers:
                self.require(hasattr(network.get_layer(name), "kernel"), "layers",
                             "layers that have a kernel (Dense, Conv)", name)

    def effective_coefficient(self) -> Any:
        return coefficient.effective(self.parametrization, self.raw_coefficient)

    def penalty_value(self, context: LossContext) -> Any:
        if self.penalty == "prediction_mean":
            return ops.mean(ops.cast(context.y_pred, "float32"))
        total = zero()
        for name in self.layers:
            total = total + ops.sqrt(ops.sum(ops.square(context.network.get_layer(name).kernel)))
        return total

    def term(self, context: LossContext) -> Any:
        return self.effective_coefficient() * self.penalty_value(context)

    def coefficients(self) -> Dict[str, Any]:
        return {self.name: self.effective_coefficient()}
