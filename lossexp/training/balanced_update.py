"""One training step's update: the weighting method's combination of the tasks' gradients, inside
the compiled step.

With ``equal`` (the default) the step is Keras' own: one backward pass of the total
(:attr:`BalancedUpdate.plain`; the model's ``train_step`` takes that path and this class is not
involved). Otherwise the work depends on what the method reads (:mod:`lossexp.balancing.base`):

========================================  ==========================================================
method reads                              each step
========================================  ==========================================================
losses (dwa, uncertainty)                 α from the losses; one backward pass of Σ αᵢLᵢ (+ penalty)
gradients of every shared weight (pcgrad, one backward pass per task; α from their Gramian on
mgda, cagrad, imtl)                       the weights two or more tasks reach; the update is Σ αᵢgᵢ
gradients of one layer (gradnorm)         one backward pass per task down to that layer; α; one
                                          backward pass of Σ αᵢLᵢ
========================================  ==========================================================

A weight only one task reaches (a head's own, under ``task.split_outputs``; a layer above every
component's tap) is left out of the Gramian — it has no other gradient to conflict with, and the
methods' papers balance the shared parameters only — and is updated by αᵢ times its task's gradient,
as the MGDA authors' code scales each head's loss. A task that reaches none of the weights the others
share (a head on a branch of its own) has a zero row in the Gramian at every step and nothing to be
balanced against: its weight is 1, its own weights following its own gradient. Variables that are not the network's get their
share of the same combination (a component's trainable coefficient: αᵢ times its task's gradient);
the method's own trainable variables (``uncertainty``) get the gradient of its objective Σ αᵢLᵢ + penalty. Under a distribution strategy
the per-task gradients are the global batch's (all-reduced), so what goes to the optimizer — which
sums over the replicas again — is divided by the number of replicas; a single backward pass keeps
Keras' own convention (each replica differentiates its loss over the replicas). The gradient
diagnostics are not part of the step (:mod:`lossexp.training.gradient_diagnostics`).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import keras

from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.losses.layer_paths import find_layer
from lossexp.training import task_gradients
from lossexp.training.devices import all_replicas, replicas


class BalancedUpdate:
    """The update of a model's training step (see the module docstring)."""

    def __init__(self, method: WeightingMethod, network: Any) -> None:
        self.method = method
        self.network = network

    @property
    def plain(self) -> bool:
        """Whether the update is the plain gradient of the total (``equal``): Keras' own step."""
        return self.method.plain

    @property
    def persistent(self) -> bool:
        """Whether the step's tape is differentiated more than once (one pass per task)."""
        return self.method.reads == GRADIENTS

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
                  step: Any, scale_loss: Callable[[Any], Any]) -> List[Any]:
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
            shared = layout.shared(reached)
            gramian = task_gradients.method_gramian(per_task, shared, unscale)
            weights = self.method.weights_for(Signals(mean_losses, gramian, step),
                                              alone=layout.alone(reached, shared, len(losses)))
            placed = layout.place(task_gradients.combine(per_task, weights), count)
            return [g if r else None for g, r in zip(placed, layout.reaching(reached))]

        if self.method.reads == GRADIENTS:  # the Gramian of one layer, then one pass of Σ αᵢLᵢ
            scope, _ = task_gradients.per_task(tape, losses, layout.method_variables, factor)
            gramian = task_gradients.method_gramian(scope, range(len(layout.method_variables)), unscale)
            weights = self.method.weights_for(Signals(mean_losses, gramian, step))
        if objective is not None:
            return tape.gradient(objective, list(variables), output_gradients=factor)
        # Σ αᵢLᵢ with the weights found after the tape: the losses' output gradients
        return tape.gradient(list(losses), list(variables),
                             output_gradients=[weights[i] * factor for i in range(len(losses))])


class _Layout:
    """Which of a step's variables are the network's, the method's own or the rest, and the
    variables whose Gramian the method reads."""

    def __init__(self, update: BalancedUpdate, variables: Sequence[Any]) -> None:
        self.variables = list(variables)
        own = {id(v) for v in update.method.trainable_variables}
        self.tasks_variables = [v for v in self.variables if id(v) not in own]
        position = {id(v): i for i, v in enumerate(self.tasks_variables)}
        network = update.network
        layers = update.method.gradient_layers()
        self.method_scope = None if layers is None else [
            position[id(v)] for name in layers for v in find_layer(network, name).trainable_weights]
        self.method_variables = [self.tasks_variables[i] for i in (self.method_scope or [])]
        self.network_scope = [position[id(v)] for v in network.trainable_weights if id(v) in position]

    def shared(self, reached: Sequence[Sequence[int]]) -> List[int]:
        """The network's weights that two or more tasks reach (``reached``: the tasks that reach each of
        ``tasks_variables``), whose Gramian the method reads: a weight of one task's own (a head's,
        under ``task.split_outputs``) has no other task's gradient to balance against, and the papers
        (MGDA's θ^sh, CAGrad's and IMTL's shared parameters) leave it out. Every weight when none is shared."""
        return [i for i in self.network_scope if len(reached[i]) > 1] or self.network_scope

    def alone(self, reached: Sequence[Sequence[int]], shared: Sequence[int], count: int) -> List[bool]:
        """Per task: whether it reaches none of the ``shared`` weights while others do (a head on a branch
        of its own). Its row of the Gramian is 0 at every step, so the methods would weigh it by nothing:
        MGDA and IMTL-G gave it α = 0 and its weights never trained, and CAGrad's dual chose it, which
        made the update the plain average. It has no gradient to be balanced against, and its weights
        follow its own gradient (α = 1), as the papers' task-specific parameters do."""
        if not any(len(reached[i]) > 1 for i in shared):
            return [False] * count
        found = {task for i in shared for task in reached[i]}
        return [task not in found for task in range(count)]

    def place(self, combined: List[Any], count: int) -> List[Any]:
        """The combination of the tasks' gradients in ``variables`` order (None for the method's own),
        divided by the replicas (the optimizer sums them again)."""
        by_id = {id(v): (g / count if count > 1 else g) for v, g in zip(self.tasks_variables, combined)}
        return [by_id.get(id(v)) for v in self.variables]

    def reaching(self, reached: Sequence[Sequence[int]]) -> List[bool]:
        """Per variable of the step: whether a task's loss reaches it (the method's own: never)."""
        by_id = {id(v): len(r) > 0 for v, r in zip(self.tasks_variables, reached)}
        return [by_id.get(id(v), False) for v in self.variables]


class EpochEnd(keras.callbacks.Callback):
    """Tells the model's weighting method that a training epoch ended (DWA rolls its averages), and
    prints the method's warning about the epoch's last weights once per run (one read of a variable
    an epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.told = False

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        method = self.model.weighting
        method.end_epoch()
        if self.told or method.plain:
            return
        line = method.warning([float(w) for w in keras.ops.convert_to_numpy(method.last_weights)])
        if line:
            print(f"lossexp: warning: {line}", file=sys.stderr)
            self.told = True
