"""Which layers a network's outputs share: the trunk under its heads, read from its functional graph.

A weighting method that works on a *shared* layer (GradNorm's W) must find it under every head whose
loss is a part of its own (``task.split_outputs``): a head's own layer reaches one part only, and
the others would have no gradient on it. The graph is read from Keras' symbolic tensors (each
output's history of operations and their inbound nodes); a subclassed network has none.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Set

from lossexp import metric_names
from lossexp.models.outputs import output_names


def split_outputs(tasks: Sequence[str]) -> List[str]:
    """The outputs whose task losses are parts of their own, from a method's task names (``task.<output>``)."""
    prefix = metric_names.task_output("")
    return [task[len(prefix):] for task in tasks if task.startswith(prefix)]


def _ancestors(tensor: Any, found: Set[str], visited: Set[Any]) -> None:
    """Add the names of the layers ``tensor`` is computed by (itself included) to ``found``."""
    pending = [tensor]
    while pending:
        operation, node_index, _ = pending.pop()._keras_history
        if (id(operation), node_index) in visited:
            continue
        visited.add((id(operation), node_index))
        found.add(operation.name)
        pending.extend(operation._inbound_nodes[node_index].input_tensors)


def shared_by(network: Any, outputs: Sequence[str]) -> Optional[Set[str]]:
    """The names of the layers that every one of ``outputs`` (output names) is computed through;
    None when the network has no symbolic graph to read (a subclassed model)."""
    try:
        tensors = dict(zip(output_names(network), network.outputs))
        layers = []
        for name in outputs:
            found: Set[str] = set()
            _ancestors(tensors[name], found, set())
            layers.append(found)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return None
    return set.intersection(*layers) if layers else None
