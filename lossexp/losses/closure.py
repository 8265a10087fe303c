"""A term that sees y_true, y_pred and a named intermediate tensor (R2's loss "closure")."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext
from lossexp.registry import register_component


def per_example_squared_error(y_true: Any, y_pred: Any) -> Any:
    """Σ_k (y_k − ŷ_k)² per example; integer class labels — one per example, or one per position
    (a tagger's (n, T) against (n, T, classes)) — are one-hot encoded to ŷ's classes, its last axis."""
    y_pred = ops.cast(y_pred, "float32")
    one_hot = tuple(y_true.shape[1:]) == tuple(y_pred.shape[1:])  # integer one-hot rows are targets already
    if "int" in str(y_true.dtype) and y_pred.shape[-1] != 1 and not one_hot:
        y_true = ops.one_hot(ops.reshape(y_true, ops.shape(y_pred)[:-1]), y_pred.shape[-1])
    y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    y_true = ops.reshape(ops.cast(y_true, "float32"), ops.shape(y_pred))
    return ops.sum(ops.square(y_true - y_pred), axis=-1)


def per_example_mean_square(h: Any) -> Any:
    """mean_j h_j² per example (all axes but the batch)."""
    h = ops.cast(h, "float32")
    return ops.mean(ops.reshape(ops.square(h), (ops.shape(h)[0], -1)), axis=-1)


def mean_square(y_true: Any, y_pred: Any, h: Any) -> Any:
    return ops.mean(per_example_mean_square(h))


def error_weighted(y_true: Any, y_pred: Any, h: Any) -> Any:
    return ops.mean(per_example_squared_error(y_true, y_pred) * per_example_mean_square(h))


def error_gated(y_true: Any, y_pred: Any, h: Any) -> Any:
    return ops.mean(ops.stop_gradient(per_example_squared_error(y_true, y_pred)) * per_example_mean_square(h))


#: fn option → f(y_true, y_pred, h) → scalar
FUNCTIONS: Dict[str, Callable[[Any, Any, Any], Any]] = {
    "mean_square": mean_square,
    "error_weighted": error_weighted,
    "error_gated": error_gated,
}


@register_component("closure")
class Closure(LossComponent):
    """term = fn(y_true, y_pred, h), h the output of the named ``layer`` for the same batch.

    The Keras 2 recipe closed a loss function over a symbolic layer tensor passed to
    ``compile``; on Keras 3 the composed model runs a multi-output view of the network and
    hands ``h`` to the term. ``fn``, with N the batch and h_i flattened per example:

    * ``mean_square`` — mean over the batch and units of h² (R2: MSE + the mean squared
      activations of the first hidden layer; y_true and y_pred unused);
    * ``error_weighted`` — (1/N) Σ_i e_i · mean_j h_ij², e_i = Σ_k (y_ik − ŷ_ik)² (integer
      class labels one-hot): activations cost more on badly fitted examples, and the error
      of those examples is pushed down in proportion to their activations;
    * ``error_gated`` — the same value with e_i a constant (``stop_gradient``): the error
      only chooses where activations are penalised.

    The term applies in training and validation.

    Options: ``weight``; ``layer`` (a layer of the model, or its path inside a nested model:
    ``backbone/block_3``); ``fn``.
    """

    def __init__(self, weight: Any = 1.0, layer: str = "hidden_1", fn: str = "mean_square", **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(layer, str) and bool(layer), "layer", "a layer name", layer)
        self.layer = layer
        self.fn = self.require_choice("fn", fn, tuple(FUNCTIONS))

    def attach(self, network: keras.Model) -> None:
        self.require_layers(network, [self.layer], option="layer")
        if self.fn != "mean_square":  # the others weigh by one output's error
            self.require_one_output(network, "fn", "mean_square (the other functions read one output's error)", self.fn)

    def outputs_needed(self) -> List[str]:
        return [self.layer]

    def term(self, context: LossContext) -> Any:
        return FUNCTIONS[self.fn](context.y_true, context.y_pred, context.outputs[self.layer])
