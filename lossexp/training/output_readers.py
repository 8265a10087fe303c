"""The outputs of named layers of a network without a graph (a subclassed model), for the components
that read them (``outputs_needed``: ``closure``, ``kl``, ``aux_output``, a stateful term of yours).

A graph network gives them as extra outputs of a model of the same layers
(:func:`lossexp.training.rewire.with_layer_outputs`). A subclassed network's layers are reached
through their calls instead: an :class:`OutputReader` tapped after each
(:mod:`lossexp.training.call_taps`) keeps what the layer returned in this forward pass, and
:class:`OutputView` runs the network and hands them over — the same tensors, in the same step, as a
graph's extra outputs, so the term's gradient flows through them. Why a layer's output cannot be
read — called twice, several tensors, never called — is an exception here for either kind of network
(:func:`unreadable` makes it one line), and :func:`output_shape` gives any network's layer's shape.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import keras

from lossexp.errors import ConfigError, invalid_value
from lossexp.losses.forward_pass import ForwardPassRecord
from lossexp.losses.layer_paths import find_layer
from lossexp.models.outputs import built_on
from lossexp.training.call_taps import hook_taps, taps_during, taps_on


class SharedLayer(ValueError):
    """A layer whose output was asked for is called more than once in the graph: it has one output
    per use, not one output."""

    def __init__(self, layer: str, uses: int) -> None:
        super().__init__(f"layer {layer!r} is called {uses} times")
        self.layer, self.uses = layer, uses


class SeveralOutputs(ValueError):
    """A layer whose output was asked for returns several tensors (an ``LSTM(return_state=True)``):
    a term that reads one tensor cannot know which."""

    def __init__(self, layer: str, count: int) -> None:
        super().__init__(f"layer {layer!r} returns {count} tensors")
        self.layer, self.count = layer, count


class NotCalled(ValueError):
    """A layer whose output was asked for is not called in the network's forward pass."""

    def __init__(self, layer: str) -> None:
        super().__init__(f"layer {layer!r} is not called in the forward pass")
        self.layer = layer


#: why a layer's output cannot be read (see :func:`unreadable`)
UNREADABLE = (SharedLayer, SeveralOutputs, NotCalled)


def unreadable(component: str, error: ValueError, network: keras.Model) -> ConfigError:
    """One line naming ``loss.<component>`` and why the layer it reads cannot be read (one of :data:`UNREADABLE`)."""
    if isinstance(error, SharedLayer):
        expected = "a layer the network calls once (its output is read; a shared layer has one output per use)"
        got = f"{error.layer!r}, called {error.uses} times"
        holder = error.layer.rpartition("/")[0]
        if holder and isinstance(find_layer(network, holder), keras.layers.Wrapper):  # TimeDistributed, Bidirectional
            got += f" by {holder!r} (a wrapper: name {holder!r} to read its whole output)"
    elif isinstance(error, SeveralOutputs):
        expected = ("a layer of one output tensor (the term reads one; to read one of several, name it: "
                    "keras.layers.Identity(name=…) after it in your network)")
        got = f"{error.layer!r}, which returns {error.count} tensors"
    else:
        expected, got = f"a layer {network.name}'s call() calls (its output is read)", \
            f"{error.layer!r}, which its forward pass does not call"
    return invalid_value(f"loss.{component}", expected, got)


class OutputReader(ForwardPassRecord):
    """A pass-through layer keeping the tensors it is given in this forward pass (per thread, as a
    :class:`~lossexp.losses.base.LossTap` keeps its penalties)."""

    def call(self, inputs: Any, mask: Any = None) -> Any:
        self.record(inputs)
        return inputs


class OutputView:
    """``network`` called as a graph's :func:`~lossexp.training.rewire.with_layer_outputs` model is:
    ``{"y_pred": output, path: that layer's output, …}`` for the layers at ``paths``."""

    def __init__(self, network: keras.Model, paths: Sequence[str]) -> None:
        self.network = network
        # a layer read already (the same network composed again: a notebook's next fit) keeps its one reader
        found = {path: next((tap for tap in taps_on(find_layer(network, path)) if isinstance(tap, OutputReader)), None)
                 for path in paths}
        self.readers = {path: reader or OutputReader(name=f"lossexp_reads_{path.replace('/', '_')}")
                        for path, reader in found.items()}
        hook_taps(network, {path: [self.readers[path]] for path, reader in found.items() if reader is None})

    def __call__(self, x: Any, training: bool = False) -> Dict[str, Any]:
        """Raises :class:`SharedLayer` for a layer called more than once, :class:`SeveralOutputs` for one
        returning several tensors, :class:`NotCalled` for one the network's ``call`` does not call."""
        y_pred = self.network(x, training=training)
        outputs = {}
        for path, reader in self.readers.items():
            seen = reader.recorded()
            if not seen:
                raise NotCalled(path)
            if len(seen) > 1:
                raise SharedLayer(path, len(seen))
            if len(keras.tree.flatten(seen[0])) > 1:
                raise SeveralOutputs(path, len(keras.tree.flatten(seen[0])))
            outputs[path] = seen[0]
        return {"y_pred": y_pred, **outputs}


def output_shape(network: keras.Model, path: str) -> Tuple[Optional[int], ...]:
    """The shape of what the layer at ``path`` returns, its batch axis None: a graph's layer's output
    shape; a subclassed network's layer's from the input shape it was built on (``compute_output_shape``),
    else read as the network is traced on the input shapes it was built on (a layer without weights:
    an ``Activation``). Raises :class:`NotCalled` for a layer the traced ``call`` does not call."""
    layer = find_layer(network, path)
    if layer._inbound_nodes:
        shape = layer.output.shape
    else:
        try:
            shape = layer.compute_output_shape(**layer._build_shapes_dict)
        except Exception:  # not built on a shape (no weights), or no compute_output_shape: traced
            shape = _traced_shape(network, path)
    return (None, *tuple(shape)[1:])


def _traced_shape(network: keras.Model, path: str) -> Tuple[Optional[int], ...]:
    """The shape the layer at ``path`` returns as ``network`` is traced on the input shapes it was built on."""
    inputs = built_on(network)
    if inputs is None:
        raise ConfigError(f"Invalid value for model: the output shape of layer {path!r} is known once "
                          f"{network.name} is called on a batch (call it before composing it: network(x[:2]))")
    import tensorflow as tf

    specs = keras.tree.map_structure(lambda tensor: tf.TensorSpec(tensor.shape, tensor.dtype), inputs)
    reader = OutputReader(name="lossexp_reads_shape")
    with taps_during(network, {path: [reader]}):  # every layer's call runs as the function is traced
        tf.function(lambda x: network(x, training=False)).get_concrete_function(specs)
        seen = reader.recorded()
    if not seen:
        raise NotCalled(path)
    return tuple(seen[0].shape)
