"""One training step's update: the weighting method's combination of the tasks' gradients, with the
gradient diagnostics on the sampled steps — all inside the compiled step.

The work depends on what the method reads (:mod:`lossexp.balancing.base`) and on whether the step
is sampled for diagnostics; the sampled branch is a ``tf.cond`` on the optimizer's step count, so
the other steps pay nothing but the condition:

========================  ==========================================  ==========================================
method reads              ordinary step                               sampled step (``tracking.gradients``)
========================  ==========================================  ==========================================
losses (equal, dwa, …)    α from the losses; one backward pass of     one backward pass per task; the update is
                          Σ αᵢLᵢ (+ the method's penalty)             Σ αᵢgᵢ from them (no extra pass)
gradients of every        one backward pass per task; α from the      the same, and the statistics of the
shared weight (pcgrad, …) Gramian; the update is Σ αᵢgᵢ               Gramians it already has
gradients of one layer    one backward pass per task down to that     one backward pass per task (all weights);
(gradnorm)                layer; α; one backward pass of Σ αᵢLᵢ       the update is Σ αᵢgᵢ
========================  ==========================================  ==========================================

Variables that are not the network's get their share of the same combination (a component's
trainable coefficient: αᵢ times its task's gradient); the method's own trainable variables
(``uncertainty``) get the gradient of its objective Σ αᵢLᵢ + penalty. Under a distribution strategy
the per-task gradients are the global batch's (all-reduced), so what goes to the optimizer — which
sums over the replicas again — is divided by the number of replicas; a single backward pass keeps
Keras' own convention (each replica differentiates its loss over the replicas).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras

from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.training import task_gradients
from lossexp.training.devices import all_replicas, replicas
from lossexp.training.gradient_diagnostics import ALL, GradientDiagnostics


class BalancedUpdate:
    """The update of a model's training step (see the module docstring)."""

    def __init__(self, method: WeightingMethod, network: Any, diagnostics: Optional[GradientDiagnostics] = None) -> None:
        self.method = method
        self.network = network
        self.diagnostics = diagnostics

    # -- inside the tape -------------------------------------------------------------------------
    def objective(self, losses: Sequence[Any], step: Any) -> Tuple[Any, Any]:
        """(α, the objective Σ αᵢLᵢ + penalty) for a method that reads losses; (None, None) otherwise.
        Called inside the gradient tape: ``uncertainty``'s weights carry a gradient."""
        if self.method.reads == GRADIENTS:
            return None, None
        import tensorflow as tf

        stacked = tf.stack(list(losses))
        weights = self.method.weights_for(Signals(all_replicas(tf.stop_gradient(stacked), mean=True), None, step))
        return weights, tf.reduce_sum(weights * stacked) + self.method.penalty()

    # -- after the tape --------------------------------------------------------------------------
    def gradients(self, tape: Any, losses: Sequence[Any], weights: Any, objective: Any, variables: Sequence[Any],
                  step: Any, iterations: Any, scale_loss: Callable[[Any], Any]) -> List[Any]:
        """The gradient to apply to each of ``variables`` (None where no loss reaches it)."""
        import tensorflow as tf

        count = replicas()
        loss_scale = tf.cast(scale_loss(tf.constant(1.0)), tf.float32)
        factor = loss_scale / count  # what the tape's losses are multiplied by (a linear map: output gradients)
        unscale = 1.0 / tf.square(loss_scale)
        layout = _Layout(self, variables)
        mean_losses = all_replicas(tf.stop_gradient(tf.stack(list(losses))), mean=True)

        if self.method.reads == GRADIENTS and layout.method_scope is None:  # the Gramian of every shared weight
            per_task, reached = task_gradients.per_task(tape, losses, layout.tasks_variables, factor)
            grams = task_gradients.gramians(per_task, layout.scopes(), unscale)
            weights = self.method.weights_for(Signals(mean_losses, grams[ALL], step))
            self._maybe_record(iterations, lambda: (grams, weights), step)
            layout.connected = layout.reaching(reached)
            return layout.restore(layout.place(task_gradients.combine(per_task, weights), count))

        if self.method.reads == GRADIENTS:  # the Gramian of one layer, then one pass of Σ αᵢLᵢ
            scope, _ = task_gradients.per_task(tape, losses, layout.method_variables, factor)
            grams = task_gradients.gramians(scope, {ALL: range(len(layout.method_variables))}, unscale)
            weights = self.method.weights_for(Signals(mean_losses, grams[ALL], step))

        def ordinary() -> List[Any]:
            if objective is not None:
                found = tape.gradient(objective, list(variables), output_gradients=factor)
            else:  # Σ αᵢLᵢ with the weights found after the tape: the losses' output gradients
                found = tape.gradient(list(losses), list(variables),
                                      output_gradients=[weights[i] * factor for i in range(len(losses))])
            return layout.record_connected(found)

        if self.diagnostics is None:
            return layout.restore(ordinary())

        def sampled() -> List[Any]:
            per_task, _ = task_gradients.per_task(tape, losses, layout.tasks_variables, factor)
            grams = task_gradients.gramians(per_task, layout.scopes(), unscale)
            with tf.control_dependencies([self.diagnostics.record(grams, weights, step)]):
                update = layout.place(task_gradients.combine(per_task, weights), count)
                if layout.own_variables:
                    own = tape.gradient(objective, layout.own_variables, output_gradients=factor)
                    update = layout.with_own(update, own)
                return [tf.identity(g) for g in layout.zeros_for_none(update)]

        return layout.restore(tf.cond(self.diagnostics.due(iterations), sampled, ordinary))

    def _maybe_record(self, iterations: Any, values: Callable[[], Tuple[Dict[Any, Any], Any]], step: Any) -> None:
        """Record the diagnostics on a sampled step (the Gramians are there already)."""
        if self.diagnostics is None:
            return
        import tensorflow as tf

        def record() -> Any:
            grams, weights = values()
            with tf.control_dependencies([self.diagnostics.record(grams, weights, step)]):
                return tf.constant(True)

        tf.cond(self.diagnostics.due(iterations), record, lambda: tf.constant(False))


class _Layout:
    """Which of a step's variables are the network's, the method's own or the rest, and the scopes
    (sets of variable indices) whose Gramians the method and the diagnostics need."""

    def __init__(self, update: BalancedUpdate, variables: Sequence[Any]) -> None:
        self.variables = list(variables)
        own = {id(v) for v in update.method.trainable_variables}
        self.own_variables = [v for v in self.variables if id(v) in own]
        self.tasks_variables = [v for v in self.variables if id(v) not in own]
        position = {id(v): i for i, v in enumerate(self.tasks_variables)}
        network = update.network
        layers = update.method.gradient_layers()
        self.method_scope = None if layers is None else [
            position[id(v)] for name in layers for v in network.get_layer(name).trainable_weights]
        self.method_variables = [self.tasks_variables[i] for i in (self.method_scope or [])]
        self._scopes = {ALL: [position[id(v)] for v in network.trainable_weights if id(v) in position]}
        for name in (update.diagnostics.layers if update.diagnostics is not None else ()):
            self._scopes[name] = [position[id(v)] for v in network.get_layer(name).trainable_weights]
        self.connected: Optional[List[bool]] = None

    def scopes(self) -> Dict[Any, List[int]]:
        return self._scopes

    def place(self, combined: List[Any], count: int) -> List[Any]:
        """The combination of the tasks' gradients in ``variables`` order (None for the method's own),
        divided by the replicas (the optimizer sums them again)."""
        by_id = {id(v): (g / count if count > 1 else g) for v, g in zip(self.tasks_variables, combined)}
        return [by_id.get(id(v)) for v in self.variables]

    def with_own(self, update: List[Any], own: Sequence[Any]) -> List[Any]:
        by_id = {id(v): g for v, g in zip(self.own_variables, own)}
        return [by_id.get(id(v), g) for v, g in zip(self.variables, update)]

    def record_connected(self, gradients: Sequence[Any]) -> List[Any]:
        """Note which variables a loss reaches (traced once), and stand zeros in for the rest so that
        both branches of the sampled condition return the same structure."""
        self.connected = [g is not None for g in gradients]
        return self.zeros_for_none(gradients)

    def zeros_for_none(self, gradients: Sequence[Any]) -> List[Any]:
        import tensorflow as tf

        return [tf.zeros(v.shape, v.dtype) if g is None else g for v, g in zip(self.variables, gradients)]

    def reaching(self, reached: Sequence[bool]) -> List[bool]:
        """Per variable of the step: whether a task's loss reaches it (the method's own: never)."""
        by_id = {id(v): r for v, r in zip(self.tasks_variables, reached)}
        return [by_id.get(id(v), False) for v in self.variables]

    def restore(self, gradients: Sequence[Any]) -> List[Any]:
        """None again for the variables no loss reaches (the optimizer leaves them alone)."""
        connected = self.connected or [True] * len(self.variables)
        return [g if reached else None for g, reached in zip(gradients, connected)]


class EpochEnd(keras.callbacks.Callback):
    """Tells the model's weighting method that a training epoch ended (DWA rolls its averages)."""

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.model.weighting.end_epoch()
