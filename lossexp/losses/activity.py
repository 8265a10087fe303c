"""Activity penalty on named layers' outputs (R3(c): a pass-through layer that calls ``add_loss``)."""
from __future__ import annotations

from typing import Any, Dict, Sequence

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext, LossTap, zero
from lossexp.registry import register_component
from lossexp.losses.layer_paths import find_layer

NORMS = ("l2", "l1")
REDUCTIONS = ("batch_mean", "sum", "mean")


@keras.saving.register_keras_serializable(package="lossexp")
class ActivityTap(LossTap):
    """Pass-through layer adding ``reduce(|x|^p)`` of its input as a loss (p = 2 for l2, 1 for l1)."""

    def __init__(self, norm: str = "l2", reduction: str = "batch_mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.norm = norm
        self.reduction = reduction

    def penalty(self, inputs: Any, mask: Any = None) -> Any:
        """Over the real steps of a masked sequence only (``Embedding(mask_zero=True)``, ``Masking``, a
        padded stream): its padding is not activity the network chose."""
        x = ops.cast(inputs, "float32")
        elementwise = ops.square(x) if self.norm == "l2" else ops.abs(x)
        if mask is not None:
            weights = ops.cast(mask, "float32")
            while len(weights.shape) < len(elementwise.shape):  # (batch, steps) against (batch, steps, units)
                weights = ops.expand_dims(weights, -1)
            elementwise = elementwise * weights
            if self.reduction == "mean":
                counted = ops.sum(weights * ops.ones_like(elementwise))
                return ops.sum(elementwise) / ops.maximum(counted, 1.0)
        if self.reduction == "mean":
            return ops.mean(elementwise)
        total = ops.sum(elementwise)
        if self.reduction == "sum":
            return total
        return total / ops.cast(ops.shape(x)[0], "float32")

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "norm": self.norm, "reduction": self.reduction}


@register_component("activity")
class ActivityPenalty(LossComponent):
    """Penalise the outputs of named layers (the sum of a per-layer penalty over ``layers``).

    Per layer:

    * ``norm: l2`` — Σ x² (sum of squares, the question's penalty), ``norm: l1`` — Σ |x|;
    * ``reduction: batch_mean`` (default) — summed over units, averaged over the batch, so the
      term does not change with the batch size; ``sum`` — summed over the batch too (the seed's
      ``tf.reduce_sum``); ``mean`` — averaged over every element.

    A pass-through layer ``<name>_on_<layer>`` is inserted after each named layer; it calls
    ``add_loss`` inside ``call`` and returns its input unchanged. The term applies in training
    and in validation. A masked sequence's padded steps are left out (its mask reaches the tap):
    ``batch_mean`` and ``sum`` sum the real steps only, ``mean`` averages over them. A layer of
    several outputs (``LSTM(return_sequences=True, return_state=True)``) is penalised on each, the
    penalties summed, as Keras' ``activity_regularizer`` adds one per output tensor; a layer called
    more than once (shared weights) is penalised on each call's output, summed, as
    ``activity_regularizer`` adds one per call.

    Options: ``weight``; ``layers`` (names of layers in the model); ``norm``; ``reduction``.
    """

    reaches_nested_layers = True

    def __init__(self, weight: float = 0.001, layers: Sequence[str] = ("hidden_1",), norm: str = "l2",
                 reduction: str = "batch_mean", **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(layers, (list, tuple)) and len(layers) > 0 and all(isinstance(n, str) for n in layers),
                     "layers", "a non-empty list of layer names", layers)
        self.layers = list(layers)
        self.norm = self.require_choice("norm", norm, NORMS)
        self.reduction = self.require_choice("reduction", reduction, REDUCTIONS)

    def insert_after(self) -> Dict[str, LossTap]:
        return {layer: ActivityTap(self.norm, self.reduction, name=self.tap_name(layer)) for layer in self.layers}

    def attach(self, network: keras.Model) -> None:
        self.require_layers(network, self.layers)

    def term(self, context: LossContext) -> Any:
        total = zero()
        for layer in self.layers:
            total = total + find_layer(context.network, self.tap_path(layer)).latest_penalty()
        return total
