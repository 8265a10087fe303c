"""The names a network's outputs go by: a dict output's keys, else Keras' ``output_names``.

Keras 3 pairs the targets, the losses and the loss weights of a network built as
``keras.Model(x, {"cls": head_a, "box": head_b})`` with the dict's keys. Its ``output_names``
attribute lists the output *layers'* names instead (``cls_head``, ``box_head``), which are the same
only when each head is named as its key. lossexp names outputs (``task.loss.<output>``,
``task.loss_weights``, ``task.split_outputs``' parts, per-output sample weights) by what Keras pairs
them with, so a network whose keys and layer names differ trains as Keras' ``fit`` trains it.
"""
from __future__ import annotations

from typing import Any, List


def output_names(network: Any) -> List[str]:
    """The names of ``network``'s outputs in the order of ``network.outputs``: a functional network's
    dict keys (sorted, as Keras flattens a dict), else ``network.output_names`` (empty if it has none)."""
    structure = getattr(network, "_outputs_struct", None)  # a functional network's outputs as built
    if isinstance(structure, dict):
        return sorted(str(key) for key in structure)
    return list(getattr(network, "output_names", None) or [])
