"""Model builders, one module per model; each is a function registered with
:func:`lossexp.register_model` that takes the data set (``data``) and its options and returns a
Keras 3 model whose layers carry the names loss components refer to.

Shipped: ``mlp``, ``cnn``, ``vae`` (reconstructs its inputs) and ``gan`` (two players, its own
training regime), plus ``keras_file`` (a saved ``.keras`` model as the network) and
``applications`` (a ``keras.applications`` architecture by name, no download). The modules import
Keras inside the builders, so reading their options does not load TensorFlow.
"""
from __future__ import annotations

from typing import Any, Optional


def output_layer(data: Any, activation: Optional[str] = None, name: str = "output") -> Any:
    """The ``output`` layer: ``activation`` if given, else softmax over classes or linear."""
    import keras

    if activation is None:
        activation = "softmax" if data.task == "classification" else None
    return keras.layers.Dense(data.num_outputs, activation=activation, name=name)
