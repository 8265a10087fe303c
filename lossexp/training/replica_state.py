"""A component's state that the replicas updated apart: a warning line after the first epoch.

Under ``trainer.distribute=mirrored`` each replica runs the step on its share of the batch. A variable
created with Keras' default ``aggregation`` ("none") keeps one copy per replica, and an ``assign`` in
the step writes each replica's own: a state computed from the data — an EMA of feature means, a queue
of embeddings, class centers — then holds as many histories as there are replicas, each of half the
data, and the copy that is read back, saved and checkpointed is the first replica's (on two logical
CPUs, an EMA of feature means ended 0.069 away from the global batch's recurrence after 10 steps, and
its second copy 0.14 away from the first: nothing said so). lossexp's own state is computed
identically by every replica and kept once (``aggregation="only_first_replica"``); a component of the
user's combines what it assigns with :meth:`~lossexp.losses.base.LossComponent.across_replicas`.
"""
from __future__ import annotations

import sys
from typing import Any, List, Sequence, Tuple

import keras
import numpy as np


def diverged_state(components: Sequence[Any]) -> List[Tuple[Any, Any, float]]:
    """``(component, variable, max |copy − first copy|)`` of each component variable whose per-replica
    copies differ (empty on one device)."""
    found = []
    for component in components:
        for variable in component.variables:
            copies = getattr(getattr(variable, "value", variable), "values", None)
            if not isinstance(copies, (tuple, list)) or len(copies) < 2:
                continue
            first = np.asarray(copies[0].numpy())
            gap = max(float(np.max(np.abs(np.asarray(copy.numpy(), dtype=first.dtype) - first), initial=0.0))
                      for copy in copies[1:])
            if gap > 0 or (np.isnan(first).any() and not all(np.isnan(np.asarray(c.numpy())).any() for c in copies)):
                found.append((component, variable, gap))
    return found


def warning(component: Any, variable: Any, gap: float, replicas: int) -> str:
    """The warning line for one such variable."""
    return (f"lossexp: warning: loss.{component.name}'s state {variable.path} differs between the {replicas} "
            f"replicas after the first epoch (max |Δ| {gap:.3g}): each updated its copy from its share of the "
            "batch, and the first replica's is the one saved; combine what you assign with "
            "self.across_replicas(value, 'mean' | 'sum' | 'concat')")


class ReplicaStateCheck(keras.callbacks.Callback):
    """After the first epoch, warn once of every component variable whose replicas' copies differ."""

    def __init__(self, replicas: int) -> None:
        super().__init__()
        self.replicas = replicas
        self.checked = False

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.checked:
            return
        self.checked = True
        for component, variable, gap in diverged_state(getattr(self.model, "components", [])):
            print(warning(component, variable, gap, self.replicas), file=sys.stderr)
