"""Per-task gradient diagnostics: which part of the loss moves the weights, and which fights the task.

On a sampled training step (the first of every ``trainer.log_every_n_steps``), on that step's own
batch, the compiled step computes each task's gradient ``gᵢ = ∇Lᵢ`` (Lᵢ: the task loss, a
component's weighted contribution, ``other``) on the network's trainable weights — all of them,
and the weights of each layer a component names — and from their Gramian ``G`` and the weights
``α`` of the update ``d = Σ αᵢgᵢ`` (1 without a weighting method):

* ``weight_grad/<t>/norm`` = ‖gₜ‖: how hard the part pulls (its own weight applied);
* ``weight_grad/<t>/cos_<u>`` = gₜ·gᵤ/(‖gₜ‖‖gᵤ‖) for every earlier task u (``cos_task``: against
  the task loss's gradient); 0 when either gradient is 0;
* ``weight_grad/<t>/share`` = αₜgₜ·d/‖d‖²: the fraction of the update the part contributes (its
  projection on the update over the update's norm²); the shares sum to 1;
* ``weight_grad/conflicts``: the pairs of tasks whose gradients have a negative cosine;
* ``weight_grad/norm`` = ‖d‖, the update direction's norm (before the optimizer);
* the same on a layer L: ``weight_grad/<t>/L.<stat>``, ``weight_grad/L.conflicts``.

Under a distribution strategy the gradients are the global batch's (summed over replicas). The
values live in two variables (the vector of statistics and the step they were computed at) that
:meth:`GradientDiagnostics.read` turns into scalars for the recorder — nothing else leaves the
graph, and nothing copies the weights.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from lossexp import metric_names

#: the scope of every shared weight at once (the layers' scopes are their names)
ALL = None


def statistic_names(tasks: Sequence[str], layer: Optional[str] = ALL) -> List[str]:
    """The metric names of one scope, in the order :func:`statistics` computes them."""
    names = []
    for i, task in enumerate(tasks):
        names += [metric_names.gradient(task, stat, layer) for stat in metric_names.GRAD_STATS]
        names += [metric_names.gradient_cosine(task, other, layer) for other in tasks[:i]]
    names.append(metric_names.conflicts(layer))
    if layer is ALL:
        names.append(metric_names.update_norm())
    return names


def statistics(gramian: Any, weights: Any, whole: bool) -> List[Any]:
    """The statistics of one scope from its Gramian (K, K) and the update's weights (K,) (graph ops)."""
    import tensorflow as tf

    gramian = tf.cast(gramian, tf.float32)
    k = int(gramian.shape[0])
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
    towards_update = weights * tf.linalg.matvec(gramian, weights)  # αᵢ gᵢ·d
    update_squared = tf.reduce_sum(towards_update)
    shares = tf.where(update_squared > 0.0, towards_update / tf.where(update_squared > 0.0, update_squared, 1.0), 0.0)
    products = norms[:, None] * norms[None, :]
    cosines = tf.where(products > 0.0, gramian / tf.where(products > 0.0, products, 1.0), 0.0)
    values = []
    for i in range(k):
        values += [norms[i], shares[i]]
        values += [cosines[i, j] for j in range(i)]
    upper = tf.linalg.band_part(tf.ones((k, k)), 0, -1) - tf.eye(k)  # pairs i < j
    values.append(tf.reduce_sum(tf.where(gramian < 0.0, upper, 0.0)))
    if whole:
        values.append(tf.sqrt(tf.maximum(update_squared, 0.0)))
    return values


class GradientDiagnostics:
    """The diagnostics' variables and names for one model (see the module docstring)."""

    def __init__(self, tasks: Sequence[str], layers: Sequence[str], every: int) -> None:
        import tensorflow as tf

        self.tasks, self.layers, self.every = list(tasks), list(layers), int(every)
        self.names = [name for scope in [ALL, *self.layers] for name in statistic_names(self.tasks, scope)]
        only_first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.values = tf.Variable(tf.zeros((len(self.names),)), trainable=False, name="gradient_statistics",
                                  aggregation=only_first)
        self.step = tf.Variable(0.0, trainable=False, name="gradient_statistics_step", aggregation=only_first)
        self._read_step = 0

    @property
    def scopes(self) -> List[Optional[str]]:
        return [ALL, *self.layers]

    def due(self, iterations: Any) -> Any:
        """Whether the step about to be taken (the optimizer's count before it) is sampled: 1, N+1, …"""
        import tensorflow as tf

        return tf.equal(tf.math.floormod(tf.cast(iterations, tf.int64), self.every), 0)

    def record(self, gramians: Dict[Optional[str], Any], weights: Any, step: Any) -> Any:
        """Assign the statistics of this step (graph ops); returns the assignment."""
        import tensorflow as tf

        weights = tf.cast(weights, tf.float32)
        values = [v for scope in self.scopes for v in statistics(gramians[scope], weights, scope is ALL)]
        with tf.control_dependencies([self.values.assign(tf.stack(values))]):
            return self.step.assign(tf.cast(step, tf.float32))

    def read(self) -> Optional[Tuple[int, Dict[str, float]]]:
        """(step, {name: value}) of the statistics computed since the last read; None if none were."""
        step = int(self.step.numpy())
        if step <= self._read_step:
            return None
        self._read_step = step
        return step, dict(zip(self.names, (float(v) for v in self.values.numpy())))
