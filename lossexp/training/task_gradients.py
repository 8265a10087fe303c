"""The tasks' gradients inside the compiled step: one per task, their Gramians, their combination.

A *task* is one part of the loss (the task loss, a component's weighted contribution, ``other``).
Its gradient is a list of tensors, one per variable; nothing here flattens or concatenates the
network's weights. The Gramian of a set of variables, ``G[i, j] = ∇Lᵢ·∇Lⱼ`` summed over those
variables, is built from one K×K product per variable, so the Gramian of every layer comes with that
of the whole network at the cost of a few additions. Everything runs in the traced step.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from lossexp.training.devices import all_replicas

Gradients = List[Any]


def per_task(tape: Any, losses: Sequence[Any], variables: Sequence[Any], factor: Any = None
             ) -> Tuple[List[Gradients], List[Tuple[int, ...]]]:
    """(each task's gradient on ``variables``, the tasks that reach each variable: none, one for a
    weight of one task's own — a head's under ``task.split_outputs`` —, more for a shared one).

    A gradient is zero where the variable does not reach the task; each loss is multiplied by
    ``factor`` (1/replicas × the optimizer's loss scale; given to the tape as the output gradient,
    since the losses were recorded without it), and the gradients are summed over the replicas: the
    global batch's, the same on every replica."""
    import tensorflow as tf

    gradients, reached = [], [()] * len(variables)
    for task, loss in enumerate(losses):
        found = tape.gradient(loss, list(variables), output_gradients=factor)
        reached = [r + (task,) if g is not None else r for r, g in zip(reached, found)]
        gradients.append([tf.zeros(v.shape, tf.float32) if g is None else tf.cast(g, tf.float32)
                          for g, v in zip(found, variables)])
    return [all_replicas(g) for g in gradients], reached


def variable_gramians(gradients: Sequence[Gradients]) -> List[Any]:
    """One (K, K) Gramian per variable."""
    import tensorflow as tf

    count = len(gradients[0]) if gradients else 0
    gramians = []
    for v in range(count):
        rows = tf.stack([tf.reshape(task[v], (-1,)) for task in gradients])
        gramians.append(tf.matmul(rows, rows, transpose_b=True))
    return gramians


def gramians(gradients: Sequence[Gradients], scopes: Dict[Any, Sequence[int]], unscale: Any = 1.0) -> Dict[Any, Any]:
    """The Gramian of each scope (the indices of its variables in the gradients' lists), times ``unscale``."""
    import tensorflow as tf

    per_variable = variable_gramians(gradients)
    k = len(gradients)
    return {name: (tf.add_n([per_variable[i] for i in indices]) if indices else tf.zeros((k, k))) * unscale
            for name, indices in scopes.items()}


def combine(gradients: Sequence[Gradients], weights: Any) -> Gradients:
    """Σ αᵢ∇Lᵢ, variable by variable."""
    import tensorflow as tf

    return [tf.add_n([weights[i] * task[v] for i, task in enumerate(gradients)]) for v in range(len(gradients[0]))]
