"""The two objectives of CAGrad's toy problem (Liu et al. 2021, "Conflict-Averse Gradient Descent
for Multi-task Learning", Fig. 1; the authors' released ``toy.py``, also Nash-MTL's toy), as two
loss components (``mtl_toy_l1``, ``mtl_toy_l2``) of a point θ = (θ₁, θ₂) (``model=point``, ``experiment=mtl_toy``).

Written from the formulas (here with tanh(−θ₂) = −tanh θ₂)::

    L_i(θ) = c₊(θ₂)·[log max(|a_i(θ)|, ε) + 6] + c₋(θ₂)·q_i(θ)        ε = 5·10⁻⁶
    a₁ = −(θ₁ + 7)/2 + tanh θ₂          q₁ = ((θ₁ − 7)² + 0.1·(θ₂ + 8)²)/10 − 20
    a₂ = (3 − θ₁)/2 − tanh θ₂ + 2       q₂ = ((θ₁ + 7)² + 0.1·(θ₂ + 8)²)/10 − 20
    c₊ = max(tanh(θ₂/2), 0)             c₋ = max(−tanh(θ₂/2), 0)

Above the θ₁ axis each loss is a log-valley (steep, with a flat plateau between the valleys, where
the average gradient is small and dominated by one task); below it, a shallow quadratic bowl whose
minima are (7, ≈ −8.43) for L₁ and (−7, ≈ −8.43) for L₂. The Pareto set joins them, rising to
θ₂ ≈ −8.36 in the middle, where the average loss is least: (0, ≈ −8.355), the paper's star.
"""
from __future__ import annotations

from typing import Any, ClassVar

import keras
from keras import ops

from lossexp.errors import ConfigError
from lossexp.losses.base import LossComponent, LossContext

#: the lower clamp of |a_i| inside the logarithm (the released code's LOWER)
FLOOR = 5e-6


def toy_losses(theta: Any) -> Any:
    """(L₁, L₂) at the point ``theta`` = (θ₁, θ₂), a tensor of shape (2,) (see the module docstring)."""
    theta = ops.cast(theta, "float32")
    t1, t2 = theta[0], theta[1]
    upper = ops.maximum(ops.tanh(t2 / 2.0), 0.0)
    lower = ops.maximum(-ops.tanh(t2 / 2.0), 0.0)
    a1 = -(t1 + 7.0) / 2.0 + ops.tanh(t2)
    a2 = (3.0 - t1) / 2.0 - ops.tanh(t2) + 2.0
    shared = 0.1 * ops.square(t2 + 8.0)
    q1 = (ops.square(t1 - 7.0) + shared) / 10.0 - 20.0
    q2 = (ops.square(t1 + 7.0) + shared) / 10.0 - 20.0
    valley1 = ops.log(ops.maximum(ops.abs(a1), FLOOR)) + 6.0
    valley2 = ops.log(ops.maximum(ops.abs(a2), FLOOR)) + 6.0
    return upper * valley1 + lower * q1, upper * valley2 + lower * q2


class ToyObjective(LossComponent):
    """One of the toy's two losses at the point the model outputs (the first example's ``y_pred``)."""

    #: which loss: 0 for L₁, 1 for L₂
    index: ClassVar[int] = 0

    def attach(self, network: keras.Model) -> None:
        width = network.output_shape[-1] if hasattr(network, "output_shape") else None
        if width != 2:
            raise ConfigError(f"Invalid loss component for model: loss.{self.name} is a function of a point in the "
                              f"plane; the model must output 2 coordinates (model=point model.init=[x, y]), "
                              f"{network.name} outputs {width}")

    def term(self, context: LossContext) -> Any:
        return toy_losses(context.y_pred[0])[self.index]
