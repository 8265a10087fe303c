"""Rebuild a functional or Sequential network from its own layers: with pass-through loss taps
after named layers (a layer inside a nested model by its path, that model rebuilt with its taps),
or with named layers' outputs as extra outputs.

The taps are new layers; every other layer is reused as it is (same weights), so the
rewired network is the original one with a few identity layers that call ``add_loss``.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Dict, Iterator, List, Sequence

import keras

from lossexp.losses.base import OUTPUT, LossTap
from lossexp.losses.layer_paths import find_layer
from lossexp.training.call_taps import has_graph, hook_taps, remove_taps
from lossexp.training.output_readers import SeveralOutputs, SharedLayer


@contextlib.contextmanager
def told_once() -> Iterator[None]:
    """Keras' warning that a dict of inputs is keyed otherwise than its ``Input`` tensors are named is
    the user's to read once, when their network is built: a network lossexp builds again on the same
    inputs (taps, extra outputs) repeated it, once per key each time."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"When providing `inputs` as a dict, all keys in the dict must "
                                r"match the names of the corresponding tensors", category=UserWarning)
        yield


def symbolic_inputs(network: keras.Model) -> Any:
    """The network's ``keras.Input`` tensors in the structure it takes them: one tensor, a list or a
    dict (a Sequential model has one; a subclassed model has none: AttributeError or ValueError)."""
    if isinstance(network, keras.Sequential):
        return network.inputs[0]
    return network.input


def taps_of(components: Sequence[Any], network: keras.Model) -> Dict[str, List[LossTap]]:
    """The taps ``components`` insert (``insert_after``), by the path of the layer each follows, in the
    components' order; a layer ``network`` does not have is one line naming it (``require_layers``)."""
    taps: Dict[str, List[LossTap]] = {}
    for component in components:
        wanted = component.insert_after()
        component.require_layers(network, list(wanted), needs=OUTPUT)
        for layer, tap in wanted.items():
            taps.setdefault(layer, []).append(tap)
    return taps


def untapped(network: keras.Model, components: Sequence[Any]) -> bool:
    """Whether a tap of ``components`` is not in ``network`` (a network reloaded from its config, which
    holds a graph's taps but not those on a layer's call: :mod:`lossexp.training.call_taps`)."""
    return any(find_layer(network, component.tap_path(layer)) is None
               for component in components for layer in component.insert_after())


def insert_taps(network: keras.Model, taps: Dict[str, List[LossTap]]) -> keras.Model:
    """Return ``network`` with ``taps[path]`` applied, in order, to the output of the layer at ``path``
    (a name, or ``outer/inner`` inside a nested functional model, which is rebuilt with its taps). A
    network without a graph (a subclassed model, also one nested in a graph) is tapped in place
    (:mod:`lossexp.training.call_taps`)."""
    if not has_graph(network):  # a composition's taps replace an earlier one's
        return hook_taps(remove_taps(network), taps)
    if not taps:
        return network
    nested: Dict[str, Dict[str, List[LossTap]]] = {}
    for path, wanted in taps.items():
        outer, _, rest = path.partition("/")
        if rest:
            nested.setdefault(outer, {})[rest] = wanted
    rebuilt: Dict[str, keras.Model] = {}

    def call_function(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        name = layer.name
        if name in nested:  # a nested model or layer with taps inside: called as rebuilt (once, if shared)
            if name not in rebuilt:
                rebuilt[name] = insert_taps(layer, nested[name])
            layer = rebuilt[name]
        output = layer(*args, **kwargs)
        for tap in taps.get(name, []):
            output = tap(output)
        return output

    return _rebuilt(network, call_function)


def without_taps(network: keras.Model) -> keras.Model:
    """Return ``network`` without the loss taps a run inserted (in nested models too), sharing its
    weights: a run's saved network trained on by another run, whose components insert their own
    (the old taps computed their penalties at every step, counted nowhere, and a tap of the same
    name could not be inserted again). A network without a graph has its tapped layers restored in place."""
    if not has_graph(network):
        return remove_taps(network)

    def holds_taps(layer: keras.layers.Layer) -> bool:
        return any(isinstance(inner, LossTap) for inner in layer._flatten_layers(include_self=False))

    if not holds_taps(network):
        return network
    rebuilt: Dict[str, keras.Model] = {}

    def call_function(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if isinstance(layer, LossTap):
            return args[0]
        if holds_taps(layer):  # a nested model rebuilt; a layer it cannot rewire, restored in place
            layer = rebuilt.setdefault(layer.name, without_taps(layer))
        return layer(*args, **kwargs)

    return _rebuilt(network, call_function)


def with_layer_outputs(network: keras.Model, names: Sequence[str]) -> keras.Model:
    """``network`` with the outputs of the layers ``names`` as extra outputs: a model of the same
    layers returning ``{"y_pred": output, name: layer output, …}``.

    The layers' outputs are those of this network's own graph, also when its layers are shared with
    another graph (a rewired network's are; ``layer.output`` then has no single answer). A layer the
    graph itself calls more than once (a siamese network's shared tower) raises :class:`SharedLayer`,
    a layer returning several tensors :class:`SeveralOutputs`.
    """
    found: Dict[str, List[Any]] = {}

    def call_function(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        output = layer(*args, **kwargs)
        if layer.name in names:
            found.setdefault(layer.name, []).append(output)
        return output

    rebuilt = _rebuilt(network, call_function)
    shared = [(name, len(outputs)) for name, outputs in found.items() if len(outputs) > 1]
    if shared:
        raise SharedLayer(*shared[0])
    several = [(name, len(keras.tree.flatten(outputs[0]))) for name, outputs in found.items()
               if len(keras.tree.flatten(outputs[0])) > 1]
    if several:
        raise SeveralOutputs(*several[0])
    output = rebuilt.outputs[0] if len(rebuilt.outputs) == 1 else rebuilt.output
    with told_once():
        return keras.Model(rebuilt.input, {"y_pred": output, **{name: found[name][0] for name in names}},
                           name=f"{network.name}_with_outputs")


def _rebuilt(network: keras.Model, call_function: Callable[..., Any]) -> keras.Model:
    """A functional model of ``network``'s own layers (same weights) on new inputs of the same
    structure, each layer called through ``call_function``."""
    if isinstance(network, keras.Sequential):  # Keras clones only a functional graph with a call_function
        network = keras.Model(network.inputs[0], network.outputs[0], name=network.name)
    inputs = keras.tree.map_structure(lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name),
                                      symbolic_inputs(network))
    with told_once():
        return keras.models.clone_model(network, input_tensors=inputs, clone_function=lambda layer: layer,
                                        call_function=call_function)
