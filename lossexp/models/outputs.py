"""The names a network's outputs go by: a dict output's keys, else Keras' ``output_names``.

Keras 3 pairs the targets, the losses and the loss weights of a network built as
``keras.Model(x, {"cls": head_a, "box": head_b})`` with the dict's keys. Its ``output_names``
attribute lists the output *layers'* names instead (``cls_head``, ``box_head``), which are the same
only when each head is named as its key. lossexp names outputs (``task.loss.<output>``,
``task.loss_weights``, ``task.split_outputs``' parts, per-output sample weights) by what Keras pairs
them with, so a network whose keys and layer names differ trains as Keras' ``fit`` trains it.
A subclassed network whose ``call`` returns a list or tuple of outputs has no names at all (Keras
pairs its targets by position): its outputs are ``output_0``, ``output_1``, … in that order.
"""
from __future__ import annotations

from typing import Any, List, Optional

#: where a subclassed network's traced output structure is kept (traced once per network object)
TRACED = "_lossexp_traced_outputs"
#: the name of the i-th output of a network returning a list or tuple of outputs without names
POSITIONAL = "output_{}"


def positional_names(count: int) -> List[str]:
    """``output_0`` … ``output_<count-1>``: the names of a list of ``count`` outputs that has none."""
    return [POSITIONAL.format(index) for index in range(count)]


def output_names(network: Any) -> List[str]:
    """The names of ``network``'s outputs in the order of ``network.outputs``: a functional network's
    dict keys (sorted, as Keras flattens a dict) — a subclassed network's, whose ``call`` returns a
    dict, traced once on the input shapes it was built on — else ``network.output_names``; a
    subclassed network returning a list or tuple of several outputs, :func:`positional_names` (empty
    if it has none: one output, or not built)."""
    structure = getattr(network, "_outputs_struct", None)  # a functional network's outputs as built
    if structure is None and not getattr(network, "output_names", None):
        structure = traced_outputs(network)
        if isinstance(structure, (list, tuple)) and len(structure) >= 2:
            return positional_names(len(structure))
    if isinstance(structure, dict):
        return sorted(str(key) for key in structure)
    return list(getattr(network, "output_names", None) or [])


def built_on(network: Any) -> Optional[Any]:
    """Symbolic inputs of a network: a graph's own, or of the shapes a network without one was first
    called on (None if unknown: not built, or built by ``build()`` on several shapes)."""
    if getattr(network, "_outputs_struct", None) is not None:  # a functional network
        return network.input
    import keras  # here: names are read where TensorFlow is not imported (the CLI's config checks)

    shapes = list((getattr(network, "_build_shapes_dict", None) or {}).values())
    return keras.tree.map_shape_structure(keras.KerasTensor, shapes[0]) if len(shapes) == 1 else None


def traced_outputs(network: Any) -> Any:
    """The structure of what a subclassed network's ``call`` returns (KerasTensors), traced on
    :func:`built_on` once and kept on the network; None when it cannot be traced (Keras learns a
    dict's keys only at the first batch: lossexp names outputs before)."""
    if not callable(getattr(network, "compute_output_spec", None)):  # not a keras.Model: nothing to trace
        return None
    if TRACED not in vars(network):
        inputs = built_on(network)
        if inputs is None:  # not built yet: traced once it is
            return None
        try:
            traced = network.compute_output_spec(inputs)
        except Exception:  # a call that cannot run on symbolic inputs: its outputs are named by its first batch
            traced = None
        object.__setattr__(network, TRACED, traced)
    return vars(network)[TRACED]
