"""Layers named by path: ``backbone/hidden`` is the layer ``hidden`` inside ``backbone`` — a nested
model (a model used as a layer of the network) or a layer of the user's holding its own layers (a
block's ``self.inner = Dense(…)``) — as a component's layer options name it."""
from __future__ import annotations

import difflib
import re
from typing import Any, Callable, List, Optional, Tuple

import keras

#: at most this many layers are listed in a line about a layer name that is not in the network
LISTED = 24
#: how alike a name must be to one of the network's to be offered in its place (difflib's ratio)
CLOSE = 0.8


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


def paths_below(layer: Any, keep: Callable[[Any], bool], prefix: str = "") -> List[str]:
    """The path of every layer inside ``layer`` that ``keep`` keeps, depth first (``backbone``,
    ``backbone/hidden``, …)."""
    found = []
    for child in _children(layer):
        if keep(child):
            found.append(f"{prefix}{child.name}")
            found += paths_below(child, keep, f"{prefix}{child.name}/")
    return found


def deepest_level(network: keras.Model, path: str) -> Tuple[str, Any]:
    """(``outer/``, the layer) that the longest existing beginning of ``path`` reaches (``""`` and the
    network when not even its first name is a layer)."""
    layer: Any = network
    reached = ""
    for name in path.split("/")[:-1]:
        inner = [child for child in _children(layer) if child.name == name]
        if not inner:
            break
        layer, reached = inner[0], f"{reached}{name}/"
    return reached, layer


def unknown_layer(network: keras.Model, path: str, nested: bool, keep: Callable[[Any], bool]) -> str:
    """What a line about ``path``, a layer name the network has not, says after it: the close names
    (`` (did you mean 'block/bn'?)``), and the layers there are where the path went wrong — inside the
    nested layer its beginning reached (``nested``: a component that names layers by path), else the
    network's own — :data:`LISTED` at most. ``keep``: the layers a user names (not lossexp's taps)."""
    reached, level = deepest_level(network, path) if nested else ("", network)
    here = [f"{reached}{child.name}" for child in _children(level) if keep(child)] if reached else \
        [layer.name for layer in network.layers if keep(layer)]
    close = closest(path.rpartition("/")[2], here)
    if not close and nested:  # a typo before the last name too: any layer's, by its own name
        close = closest(path.rpartition("/")[2], paths_below(network, keep))
    whose = f"the layers of {reached[:-1]!r} are" if reached else "its layers are"
    return (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "") + f"; {whose} {listed(here)}"


def closest(name: str, paths: List[str]) -> List[str]:
    """The ``paths`` (3 at most) whose last name is most like ``name`` (difflib's ratio ≥ :data:`CLOSE`, the
    best only), unless they differ from it in numbers alone (``hidden_2`` is no typo of ``hidden_1``)."""
    unnumbered = re.sub(r"\d+", "#", name)
    scores: dict = {}
    for path in paths:
        last = path.rpartition("/")[2]
        if last == name or re.sub(r"\d+", "#", last) != unnumbered:
            scores[path] = difflib.SequenceMatcher(None, name, last).ratio()
    best = max(scores.values(), default=0.0)
    return [path for path, score in scores.items() if score == best and score >= CLOSE][:3]


def listed(names: List[str]) -> str:
    """``a, b, c``: the first :data:`LISTED` of ``names`` and how many more (a keras.applications network
    has hundreds)."""
    return ", ".join(names[:LISTED]) + (f", … ({len(names) - LISTED} more)" if len(names) > LISTED else "")
