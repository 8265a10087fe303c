"""Per-task gradient diagnostics: which part of the loss moves the weights, and which fights the task.

Every ``tracking.gradients_every_n_steps`` training steps (and after the first call into the step),
on a batch drawn from the training split (:mod:`lossexp.training.gradient_probe`), a function of
its own — not the training step, which stays the plain one — computes each task's
gradient ``gᵢ = ∇Lᵢ`` (Lᵢ: the task loss, a component's weighted contribution, ``other``) at the
current weights, with the context the next training step would see (training mode, its step
number), on the network's trainable weights — all of them, and the weights of each layer a
component names — and from their Gramian ``G`` and the weights ``α`` of the weighting method's
last update ``d = Σ αᵢgᵢ`` (1 for ``equal``). Each part is differentiated times the optimizer's
loss scale, divided out of ``G``, as the update's gradient is (``mixed_float16``: unscaled, a part
weighted 1e-6 had its float16 gradient underflow, its ``cos_task`` −0.0116 where the update's
gradient had +0.0005); a scale that overflows on the measured batch is halved until the statistics
are finite, as Keras' ``LossScaleOptimizer`` halves it:

* ``weight_grad/<t>/norm`` = ‖gₜ‖: how hard the part pulls (its own weight applied);
* ``weight_grad/<t>/cos_<u>`` = gₜ·gᵤ/(‖gₜ‖‖gᵤ‖) for every earlier task u (``cos_task``: against
  the task loss's gradient); 0 when either gradient is 0;
* ``weight_grad/<t>/share`` = αₜgₜ·d/‖d‖²: the fraction of the update the part contributes (its
  projection on the update over the update's norm²); the shares sum to 1;
* ``weight_grad/conflicts``: the pairs of tasks whose gradients have a negative cosine;
* ``weight_grad/norm`` = ‖d‖, the update direction's norm (before the optimizer);
* the same on a layer L: ``weight_grad/<t>/L.<stat>``, ``weight_grad/L.conflicts`` (a layer of a nested
  model, named ``backbone/hidden`` by a component: ``backbone.hidden``).

Every sample runs as one compiled function, traced at the first sample (after the first call into
the training step, beside Keras' own tracing) without autograph: converting lossexp's and the
model's Python code was 1.6–2 s of a 1.9–2.3 s trace at a 1M-parameter MLP, against 0.3 s without
it; a model or component that branches on a tensor in Python is traced again with autograph. A
compiled sample then costs 2–7 ms at a 10k–1M-parameter MLP against 30–60 ms eagerly (0.4 s at a
2.8M-parameter ResNet), so running the first samples eagerly and tracing later only moved the trace
(0.3–1.6 s) into the middle of training and added the eager samples' cost to every run longer than
a few hundred steps. The function leaves the model as it found it: what its
forward pass assigns (a component's state, normalisation statistics, dropout's random state, the
loss breakdown's running means) is restored, so a run with diagnostics trains exactly like one
without. Under a distribution strategy it runs
outside the replicas, on the whole batch: the global batch's gradients.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from lossexp import metric_names
from lossexp.training.unoptimised import unoptimised

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
    """The diagnostics of one model: :meth:`measure` a batch, :meth:`read` what was measured since."""

    def __init__(self, model: Any, layers: Sequence[str]) -> None:
        self.model = model
        self.tasks, self.layers = list(model.tasks()), list(layers)
        self.names = [name for scope in [ALL, *self.layers] for name in statistic_names(self.tasks, scope)]
        self._compiled: Any = None
        self._pending: Optional[Tuple[int, Dict[str, float]]] = None

    @property
    def scopes(self) -> List[Optional[str]]:
        return [ALL, *self.layers]

    def measure(self, x: Any, y: Any, sample_weight: Any = None) -> Dict[str, float]:
        """The statistics of the batch ``(x, y)`` (its examples weighted as in training) at the current
        weights, by the compiled function, at the optimizer's loss scale (1 without one), halved while
        the statistics overflow."""
        import tensorflow as tf

        optimizer = self.model.optimizer
        scale = 1.0 if optimizer is None else float(optimizer.scale_loss(tf.constant(1.0)))
        values = self._compiled_statistics(x, y, sample_weight, tf.constant(scale)).numpy()
        while scale > 1.0 and not np.all(np.isfinite(values)):
            scale /= 2.0
            values = self._compiled_statistics(x, y, sample_weight, tf.constant(scale)).numpy()
        return dict(zip(self.names, (float(v) for v in values)))

    def _compiled_statistics(self, x: Any, y: Any, sample_weight: Any, scale: Any) -> Any:
        """:meth:`_statistics` by a function traced without autograph, or with it when the model's or
        a component's Python code uses a tensor as a bool or an iterable (only autograph converts that)."""
        import tensorflow as tf

        if self._compiled is None:
            self._compiled = tf.function(self._statistics, reduce_retracing=True, autograph=False)
        with unoptimised():
            try:
                return self._compiled(x, y, sample_weight, scale)
            except tf.errors.OperatorNotAllowedInGraphError:  # at a trace (the first, or a retrace) without autograph
                self._compiled = tf.function(self._statistics, reduce_retracing=True)
                return self._compiled(x, y, sample_weight, scale)

    def sample(self, step: int, x: Any, y: Any, sample_weight: Any = None) -> None:
        """Measure the batch and keep the values for :meth:`read`, as those of training step ``step``."""
        self._pending = (int(step), self.measure(x, y, sample_weight))

    def read(self) -> Optional[Tuple[int, Dict[str, float]]]:
        """(step, {name: value}) sampled since the last read; None if nothing was."""
        pending, self._pending = self._pending, None
        return pending

    def _statistics(self, x: Any, y: Any, sample_weight: Any, scale: Any) -> Any:
        import tensorflow as tf

        from lossexp.losses.layer_paths import find_layer
        from lossexp.training import task_gradients

        model = self.model
        state = _state_variables(model)
        saved = [tf.identity(v) for v in state]  # read before the forward pass assigns them
        # every op of the pass waits for one NoOp after the reads, not for each read: a control input per
        # saved variable on every op was 628,180 control edges at EfficientNetB0 (305 state variables)
        read = tf.group(*saved) if saved else None
        with tf.control_dependencies([read] if saved else []), tf.GradientTape(persistent=True) as tape:
            y_pred, outputs = model.forward(x, training=True)
            parts = model.composed_loss(y, y_pred, sample_weight, training=True, outputs=outputs, x=x).parts
        variables = list(model.network.trainable_weights)
        position = {id(v): i for i, v in enumerate(variables)}
        scopes = {ALL: range(len(variables))}
        for name in self.layers:
            scopes[name] = [position[id(v)] for v in find_layer(model.network, name).trainable_weights]
        per_task, _ = task_gradients.per_task(tape, parts, variables, scale)
        del tape
        grams = task_gradients.gramians(per_task, scopes, 1.0 / tf.square(scale))
        weights = tf.cast(tf.convert_to_tensor(model.weighting.last_weights), tf.float32)
        values = tf.stack([v for scope in self.scopes for v in statistics(grams[scope], weights, scope is ALL)])
        with tf.control_dependencies([values]):
            restored = [v.assign(old) for v, old in zip(state, saved)]
        with tf.control_dependencies(restored):
            return tf.identity(values)


def _state_variables(model: Any) -> List[Any]:
    """What a forward pass and the loss may assign: every non-trainable variable of the model
    (components' state, normalisation statistics, random-generator states) and the metrics'."""
    found, seen = [], set()
    for variable in [*model.variables, *model.metrics_variables]:
        if not variable.trainable and id(variable) not in seen:
            seen.add(id(variable))
            found.append(variable)
    return found
