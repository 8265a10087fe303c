"""Layers named by path: ``backbone/hidden`` is the layer ``hidden`` inside ``backbone`` — a nested
model (a model used as a layer of the network) or a layer of the user's holding its own layers (a
block's ``self.inner = Dense(…)``) — as a component's layer options name it."""
from __future__ import annotations

from typing import Any, Optional

import keras


def find_layer(network: keras.Model, path: str) -> Optional[keras.layers.Layer]:
    """The layer at ``path`` — a name, or ``outer/inner`` into nested models and layers — or None."""
    layer: Any = network
    for name in path.split("/"):
        inner = [child for child in _children(layer) if child.name == name]
        if not inner:
            return None
        layer = inner[0]
    return layer


def _children(layer: Any) -> Any:
    """The layers a path goes through in ``layer``: those it tracks (a model's own layers, a custom
    layer's inner ones), and the taps lossexp tracks beside a layer it cannot rewire
    (:mod:`lossexp.training.call_taps`), which a functional model's ``layers`` (its graph's) leaves out."""
    return layer._flatten_layers(include_self=False, recursive=False)


def nested_path(network: keras.Model, name: str, prefix: str = "") -> Optional[str]:
    """The path of the first layer called ``name`` inside a layer of ``network`` (None if none)."""
    for layer in _children(network):
        inner = [child.name for child in _children(layer) if child.name == name]
        if inner:
            return f"{prefix}{layer.name}/{name}"
        found = nested_path(layer, name, f"{prefix}{layer.name}/")
        if found:
            return found
    return None
