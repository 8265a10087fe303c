"""Layers named by path: ``backbone/hidden`` is the layer ``hidden`` inside the nested model
``backbone`` (a model used as a layer of the network), as a component's layer options name it."""
from __future__ import annotations

from typing import Any, Optional

import keras


def find_layer(network: keras.Model, path: str) -> Optional[keras.layers.Layer]:
    """The layer at ``path`` — a name, or ``outer/inner`` into nested models — or None."""
    layer: Any = network
    for name in path.split("/"):
        inner = [child for child in _children(layer) if child.name == name]
        if not inner:
            return None
        layer = inner[0]
    return layer


def _children(layer: Any) -> Any:
    """The layers a path goes through in ``layer``: a model's own layers, and the loss taps lossexp
    tracks beside a layer of a network without a graph (:mod:`lossexp.training.call_taps`), which a
    functional model's ``layers`` (its graph's) does not list."""
    if isinstance(layer, keras.Model):
        return layer._flatten_layers(include_self=False, recursive=False)
    return getattr(layer, "layers", [])


def nested_path(network: keras.Model, name: str, prefix: str = "") -> Optional[str]:
    """The path of the first layer called ``name`` inside a model nested in ``network`` (None if none)."""
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            inner = [child.name for child in layer.layers if child.name == name]
            if inner:
                return f"{prefix}{layer.name}/{name}"
            found = nested_path(layer, name, f"{prefix}{layer.name}/")
            if found:
                return found
    return None


def custom_layer_holding(network: keras.Model, name: str) -> Optional[str]:
    """The name of the layer of ``network`` — a ``keras.layers.Layer`` of the user's, not a model — that
    holds a layer called ``name`` as its attribute (a block's ``self.inner = Dense(…)``), or None.

    Such an inner layer is called inside the custom layer's own ``call``, which lossexp cannot tap or
    rewire, and has no path (paths go through nested models' ``layers``): a component naming it was
    told only that it "is not in the model", beside a list of layers without it."""
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            continue
        if any(inner.name == name for inner in layer._flatten_layers(include_self=False)):
            return layer.name
    return None
