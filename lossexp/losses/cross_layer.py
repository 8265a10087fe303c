"""A norm of named layers' kernels (R1: ``a·||W_a|| + ||W_b||`` as two entries of this component)."""
from __future__ import annotations

import sys
from typing import Any, List, Sequence

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext, zero
from lossexp.registry import register_component
from lossexp.losses.layer_paths import find_layer

NORMS = ("fro", "l2", "l1")


def layer_kernels(layer: keras.layers.Layer) -> List[Any]:
    """A layer's kernel (Dense, Conv), or all its kernels: a recurrent layer's input and recurrent
    kernels (GRU, LSTM, Bidirectional), an attention layer's query, key, value and output kernels."""
    if hasattr(layer, "kernel"):
        return [layer.kernel]
    return [w for w in layer.weights if w.name.endswith("kernel")]  # a frozen layer's too: they are its kernels


def kernel_norm(kernels: Sequence[Any], norm: str) -> Any:
    """The norm of ``kernels`` taken together: ``fro`` sqrt(Σ w²) (``tf.norm`` of one kernel);
    ``l2`` Σ w² (Keras' L2 without its factor); ``l1`` Σ |w|."""
    if norm == "l1":
        return ops.sum(ops.stack([ops.sum(ops.abs(k)) for k in kernels]))
    squares = ops.sum(ops.stack([ops.sum(ops.square(k)) for k in kernels]))
    return ops.sqrt(squares) if norm == "fro" else squares


def require_kernel_layers(component: LossComponent, network: keras.Model, layers: Sequence[str]) -> None:
    """Every name is a layer of ``network`` that has a kernel (Dense, Conv, GRU, LSTM, attention)."""
    component.require_layers(network, layers)
    for name in layers:
        component.require(bool(layer_kernels(find_layer(network, name))), "layers",
                          "layers that have a kernel (Dense, Conv, GRU, LSTM, MultiHeadAttention)", name)
    frozen = [name for name in layers if not any(k.trainable for k in layer_kernels(find_layer(network, name)))]
    if frozen:  # legal (a penalty that only moves a trainable coefficient), but rarely meant: say it
        print(f"lossexp: warning: {component.option_key('layers')} names frozen layer(s) {', '.join(map(repr, frozen))} "
              "(trainable=False): the term is a constant of the network's weights and moves none of them",
              file=sys.stderr)


@register_component("cross_layer")
class CrossLayerNorm(LossComponent):
    """term = Σ_layers ||W||, a norm of the kernels of the named layers (a layer of several kernels —
    GRU, LSTM, attention — the norm of all of them together).

    ``norm: fro`` (default) is the Frobenius norm sqrt(Σ w²), the seed's ``tf.norm``; ``l2``
    is Σ w²; ``l1`` is Σ |w|. R1's ``a·||W_a|| + ||W_b||`` is two entries of this component,
    one with a trainable weight (``weight: {value: 1, trainable: true}``), the other
    with ``kind: cross_layer`` under a second key.

    Options: ``weight``; ``layers`` (non-empty list of layers with a kernel); ``norm``.
    """

    reaches_nested_layers = True

    def __init__(self, weight: Any = 1.0, layers: Sequence[str] = ("hidden_1",), norm: str = "fro",
                 **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(layers, (list, tuple)) and len(layers) > 0 and all(isinstance(n, str) for n in layers),
                     "layers", "a non-empty list of layer names", layers)
        self.layers = list(layers)
        self.norm = self.require_choice("norm", norm, NORMS)

    def attach(self, network: keras.Model) -> None:
        require_kernel_layers(self, network, self.layers)

    def term(self, context: LossContext) -> Any:
        total = zero()
        for name in self.layers:
            total = total + kernel_norm(layer_kernels(find_layer(context.network, name)), self.norm)
        return total
