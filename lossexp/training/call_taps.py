"""Taps in a network without a graph to rewire: a subclassed ``keras.Model``.

A functional or Sequential network gets its taps as new layers of a rebuilt graph
(:mod:`lossexp.training.rewire`). A subclassed network's graph is its Python ``call``, which lossexp
cannot rebuild, so the tapped layer's own ``call`` is wrapped instead, on that one layer object: it
returns what it returned, after running the taps on it — with the mask Keras gives its output
(``compute_mask``), as a tap in a graph receives it. The taps are tracked beside the tapped layer,
in the model that holds it, where a component finds its tap by path and where Keras clears their
losses at each outermost call. Its weights, config and saved file are the user's network's as they
were: taps have no variables, the wrapper lives on the instance, not in its class, and a
``keras.Sequential`` holding a tapped layer (which lists every layer it tracks in its config) has
its ``get_config`` leave the taps out, on that instance too.

A tap is any pass-through layer: a :class:`~lossexp.losses.base.LossTap` adding a penalty, or an
:class:`~lossexp.training.output_readers.OutputReader` keeping the output for a component that reads
it. :func:`hook_taps` adds taps to a layer's, :func:`remove_taps` restores every tapped layer — as a
composition starts (a notebook fitting the same network again, a reloaded composed model), so that
its taps replace an earlier one's instead of running beside them.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Dict, Iterator, List

import keras

from lossexp.losses.layer_paths import find_layer

#: what a wrapped ``call`` keeps of the tapping: the ``call`` the instance itself held before (None: its
#: class's) and the taps run after the layer's call
OWN_CALL, TAPS = "__lossexp_own_call__", "__lossexp_taps__"
#: what a Sequential holder's ``get_config`` keeps: the one the instance held before (None: its class's)
OWN_CONFIG = "__lossexp_own_get_config__"


def has_graph(network: keras.Model) -> bool:
    """Whether ``network`` is a functional or Sequential graph (a subclassed model is not)."""
    try:
        return bool(network.inputs)
    except (AttributeError, ValueError):
        return False


def hook_taps(network: keras.Model, taps: Dict[str, List[keras.layers.Layer]]) -> keras.Model:
    """Run ``taps[path]``, in order, on the output of the layer at ``path`` of ``network`` each time it
    is called (after any taps it has), by wrapping that layer's ``call``; returns ``network`` itself
    (tapped in place)."""
    for path, wanted in taps.items():
        parent_path, _, _ = path.rpartition("/")
        holder = find_layer(network, parent_path) if parent_path else network
        layer = find_layer(network, path)
        object.__setattr__(layer, "call", _tapped_call(layer, list(wanted)))
        holder._layers.extend(wanted)  # found by path beside the layer; cleared with the model's losses
        if isinstance(holder, keras.Sequential) and not hasattr(holder.get_config, OWN_CONFIG):
            object.__setattr__(holder, "get_config", _config_without_taps(holder))
    return network


@contextlib.contextmanager
def taps_during(network: keras.Model, taps: Dict[str, List[keras.layers.Layer]]) -> Iterator[None]:
    """:func:`hook_taps` for the ``with`` block only: its taps are taken off again after it."""
    hook_taps(network, taps)
    try:
        yield
    finally:
        for path in taps:
            parent_path = path.rpartition("/")[0]
            _untap(find_layer(network, path), find_layer(network, parent_path) if parent_path else network)


def remove_taps(network: keras.Model) -> keras.Model:
    """``network`` with every layer :func:`hook_taps` tapped restored (in place; returned)."""
    for holder in network._flatten_layers(include_self=True):
        for layer in list(holder._flatten_layers(include_self=False, recursive=False)):
            while hasattr(layer.call, TAPS):
                _untap(layer, holder)
    return network


def _untap(layer: keras.layers.Layer, holder: keras.layers.Layer) -> None:
    """Restore the ``call`` ``layer`` had before its last taps and take them out of ``holder``."""
    tapped = {id(tap) for tap in getattr(layer.call, TAPS)}
    holder._layers[:] = [child for child in holder._layers if id(child) not in tapped]
    own = getattr(layer.call, OWN_CALL)
    if own is None:
        object.__delattr__(layer, "call")
    else:
        object.__setattr__(layer, "call", own)
    if hasattr(holder.get_config, OWN_CONFIG) and not _held_taps(holder):
        own_config = getattr(holder.get_config, OWN_CONFIG)
        if own_config is None:
            object.__delattr__(holder, "get_config")
        else:
            object.__setattr__(holder, "get_config", own_config)


def taps_on(layer: keras.layers.Layer) -> List[keras.layers.Layer]:
    """The taps on ``layer``'s call, of every tapping of it (the last first)."""
    taps = []
    call = vars(layer).get("call")
    while call is not None and hasattr(call, TAPS):
        taps += getattr(call, TAPS)
        call = getattr(call, OWN_CALL)
    return taps


def _held_taps(holder: keras.layers.Layer) -> List[keras.layers.Layer]:
    """The taps on the calls of the layers ``holder`` tracks."""
    return [tap for layer in holder._flatten_layers(include_self=False, recursive=False) for tap in taps_on(layer)]


def _config_without_taps(holder: keras.Sequential) -> Callable[[], Dict[str, Any]]:
    """``holder.get_config`` leaving out the taps it holds: a Sequential's config lists every layer it
    tracks, and the taps are lossexp's, not the network's (reloaded, it is tapped again)."""
    original = holder.get_config

    @functools.wraps(original)
    def get_config() -> Dict[str, Any]:
        config = original()
        taps = {tap.name for tap in _held_taps(holder)}
        config["layers"] = [layer for layer in config["layers"] if layer.get("config", {}).get("name") not in taps]
        return config

    setattr(get_config, OWN_CONFIG, vars(holder).get("get_config"))
    return get_config


def _tapped_call(layer: keras.layers.Layer, taps: List[keras.layers.Layer]) -> Callable[..., Any]:
    """``layer``'s ``call`` followed by ``taps`` on its output, each given the output's mask."""
    original = layer.call
    first = next(iter(inspect.signature(original).parameters), None)

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        inputs = args[0] if args else kwargs.get(first)
        mask = _output_mask(layer, inputs, kwargs.get("mask"))
        for tap in taps:
            output = tap(output) if mask is None else tap(output, mask=mask)
        return output

    setattr(call, OWN_CALL, vars(layer).get("call"))
    setattr(call, TAPS, taps)
    return call


def _output_mask(layer: keras.layers.Layer, inputs: Any, given: Any) -> Any:
    """The mask Keras sets on ``layer``'s output once its ``call`` returns (``Layer.__call__``: the
    ``mask`` it was given, else its first input's, through ``compute_mask``), or None."""
    if not layer.supports_masking:
        return None
    previous = given if given is not None else keras.tree.map_structure(
        lambda tensor: getattr(tensor, "_keras_mask", None), inputs)
    if all(mask is None for mask in keras.tree.flatten(previous)):
        return None
    return layer.compute_mask(inputs, previous)
