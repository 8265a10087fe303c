"""Insert pass-through loss taps after named layers of a functional network.

The taps are new layers; every other layer is reused as it is (same weights), so the
rewired network is the original one with a few identity layers that call ``add_loss``.
"""
from __future__ import annotations

from typing import Any, Dict, List

import keras

from lossexp.losses.base import LossTap


def symbolic_inputs(network: keras.Model) -> Any:
    """The network's ``keras.Input`` tensors in the structure it takes them: one tensor, a list or a
    dict (a Sequential model has one; a subclassed model has none: AttributeError or ValueError)."""
    if isinstance(network, keras.Sequential):
        return network.inputs[0]
    return network.input


def insert_taps(network: keras.Model, taps: Dict[str, List[LossTap]]) -> keras.Model:
    """Return ``network`` with ``taps[name]`` applied, in order, to the output of layer ``name``."""
    if not taps:
        return network

    def call_function(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        output = layer(*args, **kwargs)
        for tap in taps.get(layer.name, []):
            output = tap(output)
        return output

    if isinstance(network, keras.Sequential):  # Keras clones only a functional graph with a call_function
        network = keras.Model(network.inputs[0], network.outputs[0], name=network.name)
    inputs = keras.tree.map_structure(lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name),
                                      symbolic_inputs(network))
    return keras.models.clone_model(
        network,
        input_tensors=inputs,
        clone_function=lambda layer: layer,
        call_function=call_function,
    )
