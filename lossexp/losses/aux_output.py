"""A hidden layer as an extra model output with its own loss against a target (R3(a))."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext
from lossexp.registry import register_component


def _per_example(x: Any) -> Any:
    return ops.reshape(x, (ops.shape(x)[0], -1))


#: loss option → f(h − target) → scalar
LOSSES: Dict[str, Callable[[Any], Any]] = {
    "sum_squares": lambda d: ops.mean(ops.sum(ops.square(_per_example(d)), axis=-1)),
    "mean_squared_error": lambda d: ops.mean(ops.square(d)),
    "mean_absolute_error": lambda d: ops.mean(ops.abs(d)),
}


@register_component("aux_output")
class AuxiliaryOutput(LossComponent):
    """term = loss(h, target): the named ``layer``'s output h as an extra model output with its own loss.

    The first answer to R3: the hidden layer is a second output of a multi-output
    ``keras.Model`` (the composed model's view of the network) with a loss against a
    constant ``target`` (default 0).

    ``loss``, with N the batch and h_i the flattened output for example i:

    * ``sum_squares`` (default) — (1/N) Σ_i Σ_j (h_ij − target)²: the question's "sum of
      squares of the layer's output", averaged over the batch so it does not grow with it
      (equal to ``activity`` with ``reduction: batch_mean`` and to ``regularizer`` with an
      activity l2 factor, at the same weight — on a masked sequence, to ``activity`` only:
      Keras' activity regularizers count the padding);
    * ``mean_squared_error`` — mean over every element of (h − target)²;
    * ``mean_absolute_error`` — mean over every element of |h − target|.

    A masked sequence's padded steps (``Embedding(mask_zero=True)``, ``Masking``) are left out, as
    Keras leaves them out of the loss of a masked output.

    The extra output exists in the train and test steps only (``predict`` returns the model's
    own output). The term applies in training and validation.

    Options: ``weight``; ``layer`` (a layer of the model, or its path inside a nested model:
    ``backbone/block_3``); ``loss``; ``target``.
    """

    def __init__(self, weight: Any = 0.001, layer: str = "hidden_1", loss: str = "sum_squares",
                 target: float = 0.0, **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(layer, str) and bool(layer), "layer", "a layer name", layer)
        self.layer = layer
        self.loss = self.require_choice("loss", loss, tuple(LOSSES))
        self.target = self.require_number("target", target)

    def attach(self, network: keras.Model) -> None:
        self.require_layers(network, [self.layer], option="layer")

    def outputs_needed(self) -> List[str]:
        return [self.layer]

    def term(self, context: LossContext) -> Any:
        output = context.outputs[self.layer]
        h = ops.cast(output, "float32")
        mask = getattr(output, "_keras_mask", None)  # where Keras keeps a tensor's mask (its get_keras_mask is not public)
        if mask is None:
            return LOSSES[self.loss](h - self.target)
        return masked(self.loss, h - self.target, mask)


def masked(loss: str, difference: Any, mask: Any) -> Any:
    """``LOSSES[loss]`` over a masked sequence's real steps (``mask``: (batch, steps)), as Keras' loss
    of a masked output leaves its padding out: ``sum_squares`` sums them per example, the means average
    over them."""
    elementwise = ops.abs(difference) if loss == "mean_absolute_error" else ops.square(difference)
    weights = ops.cast(mask, "float32")
    while len(weights.shape) < len(elementwise.shape):  # (batch, steps) against (batch, steps, units)
        weights = ops.expand_dims(weights, -1)
    total = ops.sum(elementwise * weights)
    if loss == "sum_squares":
        return total / ops.cast(ops.shape(difference)[0], "float32")
    return total / ops.maximum(ops.sum(weights * ops.ones_like(elementwise)), 1.0)
