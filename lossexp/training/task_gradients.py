"""The tasks' gradients inside the compiled step: one per task, their Gramians, their combination.

A *task* is one part of the loss (the task loss, a component's weighted contribution, ``other``).
Its gradient is a list of tensors, one per variable; nothing here flattens or concatenates the
network's weights. The Gramian of a set of variables, ``G[i, j] = ∇Lᵢ·∇Lⱼ`` summed over those
variables, is built from one K×K product per variable, so the Gramian of every layer comes with that
of the whole network at the cost of a few additions. Everything runs in the traced step.

The Gramian a weighting method reads (:func:`method_gramian`) is float64, and where it matters accumulated
in float64: float32 sums of a million weights' products are 2.5·10⁻⁶ of ‖g‖² off, more than ‖g₁ − g₂‖² of
gradients 10⁻³ apart, so from the float32 Gramian MGDA's weights of two nearly parallel gradients were
0.057 off Sener & Koltun's at 10⁻³ apart and 1.0 at 10⁻⁵, and of three nearly opposite ones (g, −g, ½g,
10⁻⁴ apart) 0.55 off, the update 120 % (``benchmarks/gramian_precision.py``). Accumulating every step in
float64 cost 11 ms of CPU a step at a million weights and 3 tasks (25 → 36 ms), 16–22 at 8 (52 → 68–74):
so the float32 Gramian is formed first and formed again in float64 only when the tasks' directions are
nearly dependent (:data:`CONDITION`), where float32 cannot tell them apart (the check: no cost measured).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from lossexp.training.devices import all_replicas

Gradients = List[Any]

#: the float32 Gramian is formed again in float64 when the smallest eigenvalue of the tasks' cosine matrix
#: (uᵢ·uⱼ, unit gradients) is below this: two tasks with |cos| > 0.99, or three nearly dependent. Above it
#: the float32 sums' error (3·10⁻⁶ of ‖g‖² at 10⁶ weights, growing with them) is about 10⁻³ of the smallest
#: direction's or less
CONDITION = 1e-2


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


def variable_gramians(gradients: Sequence[Gradients], dtype: Any = None) -> List[Any]:
    """One (K, K) Gramian per variable, in the gradients' float32 or in ``dtype`` (their products summed in it)."""
    import tensorflow as tf

    count = len(gradients[0]) if gradients else 0
    gramians = []
    for v in range(count):
        rows = tf.stack([tf.reshape(task[v] if dtype is None else tf.cast(task[v], dtype), (-1,)) for task in gradients])
        gramians.append(tf.matmul(rows, rows, transpose_b=True))
    return gramians


def gramians(gradients: Sequence[Gradients], scopes: Dict[Any, Sequence[int]], unscale: Any = 1.0) -> Dict[Any, Any]:
    """The Gramian of each scope (the indices of its variables in the gradients' lists), times ``unscale``."""
    import tensorflow as tf

    per_variable = variable_gramians(gradients)
    k = len(gradients)
    return {name: (tf.add_n([per_variable[i] for i in indices]) if indices else tf.zeros((k, k))) * unscale
            for name, indices in scopes.items()}


def well_conditioned(gramian: Any) -> Any:
    """Whether ``gramian`` is finite and its tasks' cosine matrix has no eigenvalue below :data:`CONDITION`
    (tasks whose gradient is zero left out: their rows are the identity's)."""
    import tensorflow as tf

    gramian = tf.cast(gramian, tf.float64)
    finite = tf.reduce_all(tf.math.is_finite(gramian))
    squares = tf.linalg.diag_part(gramian)
    present = squares > 0.0
    norms = tf.sqrt(tf.where(present, squares, tf.ones_like(squares)))
    cosines = gramian / (norms[:, None] * norms[None, :])
    eye = tf.eye(int(gramian.shape[0]), dtype=tf.float64)
    cosines = tf.where(present[:, None] & present[None, :] & finite, cosines, eye)
    return finite & (tf.linalg.eigvalsh(cosines)[0] > CONDITION)


def method_gramian(gradients: Sequence[Gradients], indices: Sequence[int], unscale: Any = 1.0) -> Any:
    """The Gramian (float64) of the variables ``indices`` for a weighting method, times ``unscale``: the
    float32 one, or where its tasks are nearly dependent (:func:`well_conditioned`) the float64 sums
    (a ``tf.cond``: computed on those steps only). See the module docstring."""
    import tensorflow as tf

    k = len(gradients)
    unscale = tf.cast(unscale, tf.float64)
    if not indices:
        return tf.zeros((k, k), tf.float64)
    scoped = [[task[i] for i in indices] for task in gradients]
    single = tf.add_n(variable_gramians(scoped))

    def precise() -> Any:
        return tf.add_n(variable_gramians(scoped, tf.float64))

    return tf.cond(well_conditioned(single), lambda: tf.cast(single, tf.float64), precise) * unscale


def combine(gradients: Sequence[Gradients], weights: Any) -> Gradients:
    """Σ αᵢ∇Lᵢ, variable by variable."""
    import tensorflow as tf

    return [tf.add_n([weights[i] * task[v] for i, task in enumerate(gradients)]) for v in range(len(gradients[0]))]
