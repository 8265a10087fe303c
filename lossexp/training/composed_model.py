"""The composed model: task loss + Σ weightᵢ·termᵢ in one compiled train step.

``ComposedModel`` wraps a network (functional, Sequential or subclassed; pass-through loss taps
already inserted) and a :class:`~lossexp.losses.composition.Composition` of loss components. It
overrides ``compute_loss``, which Keras calls inside the compiled step: so the whole composition,
the components' in-graph state updates and the per-component trackers run in the graph, with no
Python per batch and no recompiles. ``train_step`` is Keras' own with one ordering guarantee, the
components' after-step updates (dual ascent) and an ``Embedding``'s gradient summed per row
(:mod:`~lossexp.training.sparse_gradients`: Keras' Adam squares it lookup by lookup) added; ``test_step`` is Keras' own minus the
training-only terms in the validation logs.

Components that read intermediate tensors (``outputs_needed()``) get them from a multi-output
view of the network: the same layers, with the named layers' outputs as extra outputs (this
needs a functional or Sequential network). The view is used for the train and test steps only;
``predict`` and ``call`` return the network's own output.

Keras 3 reports only the total loss; here every component also gets two epoch-running means,
``term/<name>`` (unweighted) and ``loss/<name>`` (its weighted contribution), plus
``loss/task``. Weighted by batch size like Keras' own ``loss``, so
``loss = loss/task + Σ loss/<name> (+ loss/other)`` holds for the epoch means.

The parts of that sum are the *tasks* of a weighting method (:mod:`lossexp.balancing`; ``equal`` by
default): the update follows Σ αᵢ∇(part i) with the method's weights α
(:mod:`lossexp.training.balanced_update`; with ``equal`` the step is Keras' own). The parts'
gradient diagnostics are measured apart from the step (:mod:`lossexp.training.gradient_diagnostics`).
The reported ``loss`` stays the plain sum, comparable between methods. A model without a task loss
(``task_loss=None``: a model that is its own parameters, trained on components alone) has the
components as its only tasks. A network of several outputs may split its task loss
(``split_outputs``): each output's weighted loss, computed by the loss it was compiled with, is then
a part of its own, ``task.<output>`` (their sum is the task loss; ``loss/task`` is still logged as one).
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
from keras import ops

import lossexp.training.task  # noqa: F401  registers the task losses a saved model was compiled with
from lossexp import metric_names
from lossexp.balancing.base import WeightingMethod
from lossexp.errors import invalid_value
from lossexp.losses.base import OUTPUT, LossComponent, LossContext, LossTap, attach, zero
from lossexp.losses.forward_pass import forward_pass_kept
from lossexp.losses.composition import Composition
from lossexp.models.outputs import output_names
from lossexp.training.balanced_update import BalancedUpdate
from lossexp.training.devices import loss_scaled, replicas
from lossexp.training.network_metrics import networks_own_metrics
from lossexp.training.output_readers import UNREADABLE, OutputView, unreadable
from lossexp.training.call_taps import has_graph
from lossexp.training.rewire import insert_taps, taps_of, untapped, with_layer_outputs, without_taps
from lossexp.training.sparse_gradients import rows_summed
from lossexp.training import step_values
from lossexp.training.weight_decay import spare


#: the compile config's key that says the file holds no optimizer slots
OPTIMIZER_SLOTS = "optimizer_slots"


def loss_object(identifier: Any) -> keras.losses.Loss:
    """The Keras loss ``compile`` makes of a loss name, function or object (a function is reduced over
    the batch as Keras reduces it: ``sum_over_batch_size``, weighted by sample weights)."""
    from keras.src.losses.losses import LossFunctionWrapper  # what compile wraps a function in (not exported)

    loss = keras.losses.get(identifier) if isinstance(identifier, (str, dict)) else identifier
    return loss if isinstance(loss, keras.losses.Loss) else LossFunctionWrapper(loss)


def unowned_losses(network: keras.Model, components: Sequence[LossComponent]) -> List[Any]:
    """The Keras losses of ``network`` that no component reports (``loss/other``): its own ``add_loss``
    terms (a subclassed network's ``call``) and its layers' — ``add_loss`` in a layer's ``call``,
    weight and activity regularizers, nested models' included — except loss taps' and the layers a
    component owns (``owned_loss_layers()``). ``add_loss`` terms are those of the last forward pass."""
    owned = {name for c in components for name in c.owned_loss_layers()}
    layers = [layer for layer in network.layers if not isinstance(layer, LossTap) and layer.name not in owned]
    tapped = {id(loss) for layer in network._flatten_layers(include_self=False) if isinstance(layer, LossTap)
              for loss in layer.losses}  # a tap inside a nested model: its model's losses hold the penalty
    return [loss for loss in [*network._get_own_losses(), *(loss for layer in layers for loss in layer.losses)]
            if id(loss) not in tapped]


class StepLoss(NamedTuple):
    """One batch's composed loss."""

    total: Any
    #: each applicable component's unweighted term
    terms: Dict[str, Any]
    #: each task's loss, in :meth:`ComposedModel.tasks` order
    parts: List[Any]
    #: (variable, gradient) pairs given in closed form, to add to the tape's (plain update only)
    gradients: List[Tuple[Any, Any]]


def add_gradients(gradients: List[Any], variables: List[Any], closed: List[Tuple[Any, Any]]) -> List[Any]:
    """The tape's ``gradients`` of ``variables`` plus the closed-form ``(variable, gradient)`` pairs (a
    variable no longer trained, frozen since the component attached, has no update to add to).

    An ``Embedding``'s sparse gradient (a ``tf.IndexedSlices``, its rows summed first) is added into
    the dense closed-form one where its rows are, in place: made dense first, it cost a tensor of
    zeros, a scatter and a whole add (50,000 × 64: 2.3 against 1.5 ms of CPU a step), for the same
    sums bit for bit."""
    if not closed:
        return gradients
    import tensorflow as tf

    gradients = list(gradients)
    position = {id(variable): i for i, variable in enumerate(variables)}
    for variable, gradient in closed:
        i = position.get(id(variable))
        if i is None:
            continue
        tape = gradients[i]
        if tape is None:
            gradients[i] = gradient
        elif isinstance(tape, tf.IndexedSlices):
            [rows] = rows_summed([tape])
            gradients[i] = tf.tensor_scatter_nd_add(gradient, ops.expand_dims(rows.indices, -1), rows.values)
        else:
            gradients[i] = tf.convert_to_tensor(tape) + gradient
    return gradients


def batch_size(y_pred: Any) -> Any:
    """The batch size of one output, or of the first of several, as float32."""
    return ops.cast(ops.shape(keras.tree.flatten(y_pred)[0])[0], "float32")


class RunningMeans(keras.metrics.Metric):
    """Batch-size-weighted running means of several named scalars, kept in one vector.

    One ``assign_add`` per step for all of them, where a ``Mean`` per name would cost a few
    ops each; ``result()`` is a dict, which Keras spreads into the logs under each name. Keras
    computes the results at every step (they are the step's logs), so the means are split by one
    ``Unpack`` rather than one slice per name.

    It also counts, per name, the steps whose value was NaN or ±inf (:meth:`nonfinite_steps`): once a
    part's NaN gradient reaches the weights every part is NaN, and the non-finite guard, which reads the
    means every logging interval, tells the part that went first by the longest count.
    """

    def __init__(self, names: Sequence[str], name: str = "running_means", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.names = list(names)
        self.totals = self.add_variable(shape=(len(self.names),), initializer="zeros", name="totals")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")
        self.nonfinite = self.add_variable(shape=(len(self.names),), initializer="zeros", name="nonfinite")
        self.first_nonfinite = self.add_variable(shape=(len(self.names),), initializer="zeros",
                                                 name="first_nonfinite")

    def update_state(self, values: Any, sample_weight: Any, step: Any = None) -> None:
        """Add one batch's ``values``; ``step`` (a training step's number) marks the first step of the epoch
        at which each became non-finite."""
        stacked = ops.stack(values)
        self.totals.assign_add(stacked * sample_weight)
        self.count.assign_add(sample_weight)
        bad = ops.logical_not(ops.isfinite(stacked))
        self.nonfinite.assign_add(ops.cast(bad, "float32"))
        if step is not None:
            first = ops.convert_to_tensor(self.first_nonfinite)
            self.first_nonfinite.assign(ops.where(ops.logical_and(bad, ops.equal(first, 0.0)),
                                                  ops.cast(step, "float32"), first))

    def nonfinite_steps(self) -> Dict[str, int]:
        """The steps of the epoch so far at which each name's value was not finite (those that were)."""
        counts = ops.convert_to_numpy(self.nonfinite)
        return {name: int(count) for name, count in zip(self.names, counts) if count > 0}

    def first_nonfinite_step(self, name: str) -> Optional[int]:
        """The training step at which ``name`` was first not finite in this epoch (None: never, or unknown).

        The guard reads the running means every logging interval — with ``steps_per_execution`` > 1 only
        then —, so a term NaN at step 7 alone was reported "at step 10", the step it was seen at."""
        if name not in self.names:
            return None
        step = float(ops.convert_to_numpy(self.first_nonfinite)[self.names.index(name)])
        return int(step) if step > 0 else None

    def nonfinite_record(self) -> "NonfiniteRecord":
        """What :meth:`nonfinite_steps` and :meth:`first_nonfinite_step` read, read now (two reads): kept by the
        guard as validation begins inside ``fit``, which resets these counts."""
        counts, firsts = ops.convert_to_numpy(self.nonfinite), ops.convert_to_numpy(self.first_nonfinite)
        return NonfiniteRecord({name: int(count) for name, count in zip(self.names, counts) if count > 0},
                               {name: int(step) for name, step in zip(self.names, firsts) if step > 0})

    def result(self) -> Dict[str, Any]:
        means = ops.unstack(ops.divide_no_nan(self.totals, self.count), num=len(self.names))
        return dict(zip(self.names, means))

    def reset_state(self) -> None:
        self.totals.assign(ops.zeros_like(self.totals))
        self.count.assign(0.0)
        self.nonfinite.assign(ops.zeros_like(self.nonfinite))
        self.first_nonfinite.assign(ops.zeros_like(self.first_nonfinite))


class NonfiniteRecord(NamedTuple):
    """An epoch's non-finite steps by name (:meth:`RunningMeans.nonfinite_steps`) and the first of each."""

    steps: Dict[str, int]
    first: Dict[str, int]


@keras.saving.register_keras_serializable(package="lossexp")
class ComposedModel(keras.Model):
    """A network trained on its task loss plus weighted loss components."""

    #: False while a run saves it without its optimizer's slots
    #: (:func:`lossexp.tracking.logged_model.optimizer_slots_left_out`): its compile config says so, and
    #: :meth:`compile_from_config` builds none for the file to fill
    saves_optimizer_slots = True

    def __init__(self, network: keras.Model, components: Sequence[LossComponent] = (),
                 task_loss: Optional[str] = "mean_squared_error", weighting: Optional[WeightingMethod] = None,
                 other_losses: Optional[bool] = None, split_outputs: Optional[Sequence[str]] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.network = network
        self.components = list(components)
        self.composition = Composition(self.components)
        self.task_loss = task_loss
        self.split_outputs = list(split_outputs) if split_outputs else None
        # whether the network adds losses no component reports: said by the caller, who ran a forward
        # pass (an add_loss in a call shows only then), or seen now (regularizers show without one) —
        # before anything below traces the network (its outputs' names, a layer's shape), which clears them
        self.has_other_losses = bool(unowned_losses(network, self.components)) if other_losses is None \
            else bool(other_losses)
        names = output_names(network)
        if self.split_outputs and (task_loss is None or len(names) < 2 or not set(self.split_outputs) <= set(names)):
            raise invalid_value("task.split_outputs", f"outputs of a network of several outputs with a task loss "
                                f"({', '.join(names)})", self.split_outputs)
        object.__setattr__(self, "output_losses", None)  # {output: (Keras loss, weight)}, made by compile()
        for component in self.components:
            attach(component, network)
            component.require_layers(network, component.outputs_needed(), option="layer", needs=OUTPUT)
        needed = sorted({name for c in self.components for name in c.outputs_needed()})
        # Not an attribute Keras tracks: it shares every layer with ``network``, which is saved.
        object.__setattr__(self, "_with_outputs", self._output_view(needed) if needed else None)
        task = [metric_names.loss(metric_names.TASK)] if self.has_task else []
        self.breakdown = RunningMeans(task + self.composition.metric_names()
                                      + (["loss/other"] if self.has_other_losses else []), name="breakdown")
        if weighting is None:
            from lossexp.balancing.equal import Equal

            weighting = Equal()
        object.__setattr__(self, "weighting", weighting)  # a plain object: Keras tracks its state layer
        self.weighting_state = weighting.attach(self.tasks(), network)
        object.__setattr__(self, "update", BalancedUpdate(weighting, network))
        object.__setattr__(self, "diagnostics", None)  # see watch_gradients
        if len(names) > 1:  # Keras matches a loss and targets by output name also to a list of outputs
            object.__setattr__(self, "output_names", names)
        # The network is built and components own their state: built now, also when the train and
        # test steps run the multi-output view and never call the model itself (else save warns).
        self.built = True

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, **kwargs: Any) -> None:
        """Keras' ``compile``; without a ``loss``, the task loss the model was composed with
        (``lossexp.compose(…, task_loss=…)``), which the composed loss adds to the components; the
        optimizer loss-scaled when the network computes in float16 (:func:`devices.loss_scaled`), its
        weight decay sparing the loss's own trained weights (:func:`weight_decay.spare`)."""
        from lossexp.training.task import resolve_loss

        if loss is None and self.has_task:
            loss = resolve_loss("task_loss", self.task_loss)
        super().compile(optimizer=loss_scaled(self.network, optimizer), loss=loss, **kwargs)
        network = {id(variable) for variable in self.network.trainable_variables}
        spare(self.optimizer, [v for v in self.trainable_variables if id(v) not in network])
        if self.split_outputs:
            weights = kwargs.get("loss_weights") or {}
            object.__setattr__(self, "output_losses", {
                name: (loss_object(loss[name] if isinstance(loss, dict) else loss), float(weights.get(name, 1.0)))
                for name in self.split_outputs})

    @property
    def metrics(self) -> List[keras.metrics.Metric]:
        """Keras' metrics of the composed model, then the network's own (:func:`networks_own_metrics`).

        Keras leaves out the metrics of a sublayer that is itself a ``keras.Model`` (a Trainer), which
        the network is here: a metric a subclassed network keeps as an attribute and updates in its
        ``call`` — Keras 3's ``add_metric`` — was silently missing from the run (``gap`` in the history
        of the network's own ``fit``, absent from lossexp's and from MLflow)."""
        own = super().metrics
        seen = {id(metric) for metric in own}
        return own + [metric for metric in networks_own_metrics(self.network) if id(metric) not in seen]

    def get_compile_config(self) -> Optional[Dict[str, Any]]:
        """Keras' compile config, saying ``optimizer_slots: false`` when saved without them."""
        config = super().get_compile_config()
        if config is not None and not self.saves_optimizer_slots:
            config = {**config, OPTIMIZER_SLOTS: False}
        return config

    def compile_from_config(self, config: Dict[str, Any]) -> None:
        """The saved ``compile`` arguments, compiled again at reload (Keras' own skips a model whose
        ``compile`` is overridden), with the optimizer's slots built for the weights about to load —
        unless the file holds none (a run's model: see :attr:`saves_optimizer_slots`), when its step
        count and learning rate load and the first training step builds the slots."""
        config = dict(config)
        slots = config.pop(OPTIMIZER_SLOTS, True)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if slots and self.built:
            self.optimizer.build(self.trainable_variables)

    def build_training_state(self, x: Any, y: Any) -> None:
        """Create the optimizer's and the compiled loss's and metrics' variables before ``fit``, from the
        shapes of a batch ``(x, y)`` (compile first). Keras' TensorFlow trainer creates them while it
        traces the first train step unless a distribution strategy is set, and TensorFlow traces a
        function that created variables again: the whole step twice — 43.1 s against 26.4 s for two
        epochs of a MobileNetV3Small, the same losses. Keras' own build ahead of the step
        (``_symbolic_build``, what it runs under a strategy; not public): where it is missing or fails,
        ``fit`` builds them as before."""
        build = getattr(self, "_symbolic_build", None)
        if build is None:
            return
        try:
            build(data_batch=(x, y))
        except Exception:  # noqa: BLE001 - a speed-up only: the first trace builds whatever is left
            pass

    @property
    def has_task(self) -> bool:
        """Whether the model has a task loss (a model that is its own parameters may have none)."""
        return self.task_loss is not None

    def tasks(self) -> List[str]:
        """The parts of the training loss, as a weighting method sees them: ``task`` (``task.<output>``
        for each split output), the components, ``other`` (unowned Keras losses)."""
        task = [metric_names.task_output(o) for o in self.split_outputs] if self.split_outputs else \
            [metric_names.TASK] if self.has_task else []
        return task + [c.name for c in self.components] + (["other"] if self.has_other_losses else [])

    def watch_gradients(self) -> None:
        """Make :meth:`gradient_diagnostics` available: the diagnostics of the network's weights and of
        each layer a component names, a nested model's by its path (call in the model's strategy scope)."""
        from lossexp.losses.layer_paths import find_layer
        from lossexp.training.gradient_diagnostics import GradientDiagnostics

        position = {id(v): i for i, v in enumerate(self.network.trainable_weights)}
        found = {}  # a named layer with trainable weights (a nested model's by its path) → its first weight's place
        for name in (name for c in self.components for name in c.named_layers()):
            layer = find_layer(self.network, name)
            weights = [position[id(v)] for v in (layer.trainable_weights if layer is not None else [])]
            if weights:
                found.setdefault(name, min(weights))
        layers = sorted(found, key=found.get)  # in the network's order
        object.__setattr__(self, "diagnostics", GradientDiagnostics(self, layers))

    def measure_gradients(self, x: Any, y: Any, sample_weight: Any = None) -> Dict[str, float]:
        """The gradient diagnostics of the batch ``(x, y)`` at the current weights (``watch_gradients`` first)."""
        return self.diagnostics.measure(x, y, sample_weight)

    def gradient_diagnostics(self) -> Optional[Tuple[int, Dict[str, float]]]:
        """(step, statistics) sampled since the last call, or None (see ``watch_gradients``)."""
        return self.diagnostics.read() if self.diagnostics is not None else None

    # -- forward ---------------------------------------------------------------------------
    def build(self, input_shape: Any = None) -> None:
        """The network is a built functional model and components own their state: nothing to do."""
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.network(inputs, training=training)

    def _output_view(self, needed: Sequence[str]) -> Any:
        """The network with the ``needed`` layers' outputs as extra outputs: a model of a graph's layers,
        or — for a subclassed network, or a layer inside a nested model or a block of the user's
        (``backbone/block_3``), which no graph of the network's own layers holds — the layers read
        through their calls."""
        if not has_graph(self.network) or any("/" in path for path in needed):
            return OutputView(self.network, needed)
        return self._readable(lambda: with_layer_outputs(self.network, needed))

    def _readable(self, read: Any) -> Any:
        """``read()``, a layer whose output cannot be read being one line naming the component reading it."""
        try:
            return read()
        except UNREADABLE as error:
            owner = next(c for c in self.components if error.layer in c.outputs_needed())
            raise unreadable(owner.name, error, self.network) from None

    def forward(self, x: Any, training: bool) -> Tuple[Any, Dict[str, Any]]:
        """(y_pred, outputs of the layers the components need) for one batch."""
        if self._with_outputs is None:
            return self(x, training=training), {}
        outputs = dict(self._readable(lambda: self._with_outputs(x, training=training)))
        return outputs.pop("y_pred"), outputs

    def step_count(self) -> Optional[Any]:
        """The training step being taken, 1 for the first (the optimizer's count + 1), as an int64 tensor:
        exact at any count, where a float32 count rounds above 2**24 = 16,777,216 steps (schedules and
        PCGrad's per-step order follow this one)."""
        if self.optimizer is None:
            return None
        return ops.cast(self.optimizer.iterations, "int64") + 1

    def step_number(self) -> Optional[Any]:
        """:meth:`step_count` as float32 (``LossContext.step``, what a component of the user's computes with)."""
        count = self.step_count()
        return None if count is None else ops.cast(count, "float32")

    # -- the composed loss -----------------------------------------------------------------
    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """Keras' hook (its symbolic build under a distribution strategy calls it, so do users): the
        loss this replica differentiates, as Keras' own (the total over the number of replicas). The
        intermediate outputs the components read come from ``x``."""
        outputs = self.forward(x, training=training)[1] if x is not None and self._with_outputs is not None else None
        return self.composed_loss(y, y_pred, sample_weight, training, outputs, x=x).total / replicas()

    def composed_loss(self, y: Any, y_pred: Any, sample_weight: Any, training: bool,
                      outputs: Optional[Dict[str, Any]] = None, gradient_scale: Any = None,
                      x: Any = None) -> "StepLoss":
        """The :class:`StepLoss` of one batch, as one device sees it: under a strategy, the caller
        divides by the replicas before differentiating. ``gradient_scale``: the plain update's scale
        of the loss it differentiates, for the components' closed-form gradients (None: autodiff);
        ``x``: the batch's inputs, which the components see as ``context.x``."""
        task = zero()
        if self.has_task:
            task = ops.cast(self._compile_loss(y, y_pred, self._listed_like(y_pred, sample_weight)), "float32")
            task_parts = self._output_losses(y, y_pred, sample_weight) if self.split_outputs else [task]
            if replicas() > 1:  # Keras divided its compiled loss by the replicas already (as every Keras loss)
                task, task_parts = task * replicas(), [part * replicas() for part in task_parts]
        context = LossContext(y_true=y, y_pred=y_pred, network=self.network, training=training,
                              step=self.step_number() if training else None,
                              step_count=self.step_count() if training else None, outputs=outputs or {}, x=x,
                              sample_weight=sample_weight)
        other = unowned_losses(self.network, self.components)  # this forward pass's, before a term calls it again
        with forward_pass_kept(self.network):
            composed = self.composition(context, task, gradient_scale)
        total = composed.total
        breakdown = ([task] if self.has_task else []) + composed.values
        parts = (task_parts if self.has_task else []) + [composed.contributions.get(c.name, zero())
                                                         for c in self.components]
        if other and not self.has_other_losses:  # trained but missing from the breakdown: say so at trace time
            raise ValueError(f"{self.network.name} adds Keras losses in a call() (add_loss) that were not seen when "
                             "it was composed: call the network once on a batch before composing it, e.g. "
                             "network(x[:2]), so that they are reported as loss/other")
        if other:
            other_total = ops.sum(ops.stack([ops.cast(loss, "float32") for loss in other]))
            total = total + other_total
        if self.has_other_losses:
            breakdown.append(other_total if other else zero())
            parts.append(breakdown[-1])
        self.breakdown.update_state(breakdown, sample_weight=batch_size(y_pred),
                                    step=context.step if training else None)
        return StepLoss(total, composed.terms, parts, composed.gradients)

    def _listed_like(self, y_pred: Any, sample_weight: Any) -> Any:
        """Per-output sample weights by output name, as a list in the outputs' order when the network
        returns a list: Keras' compiled loss reorders a dict of targets for a list of outputs, not a
        dict of weights (it failed mid-step with ``KeyError: 0``)."""
        if isinstance(y_pred, (list, tuple)) and isinstance(sample_weight, dict):
            return [sample_weight.get(name) for name in self.output_names]
        return sample_weight

    def _output_losses(self, y: Any, y_pred: Any, sample_weight: Any) -> List[Any]:
        """Each split output's weighted task loss, as the compiled loss computes it (their sum is it)."""
        if self.output_losses is None:
            raise ValueError(f"{self.name} splits its task loss by output: compile it first")
        names = list(self.output_names)
        predicted = y_pred if isinstance(y_pred, dict) else dict(zip(names, y_pred))
        targets = y if isinstance(y, dict) else dict(zip(names, y))
        values = []
        for name, (loss, weight) in self.output_losses.items():
            weights = sample_weight.get(name) if isinstance(sample_weight, dict) else sample_weight
            values.append(ops.cast(loss(targets[name], predicted[name], weights), "float32") * weight)
        return values

    def train_step(self, data: Any) -> Dict[str, Any]:
        """Keras' TensorFlow train step, with the optimizer update ordered after the loss; with a
        weighting method other than ``equal``, the update is the method's
        (:class:`~lossexp.training.balanced_update.BalancedUpdate`).

        A term linear in a trainable coefficient (``a·P`` with ``a = s``) has a gradient for ``s``
        that does not depend on ``s``: no data path then orders the forward read of ``s`` before
        the optimizer writes it, and Grappler may drop the control edge that should, so the
        step would sometimes use the updated ``a``. Making every gradient wait for the loss
        restores "read, then update" for all variables.
        """
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        update = self.update
        # the scale of the differentiated loss, which the closed-form gradients take too
        scale = self.optimizer.scale_loss(ops.convert_to_tensor(1.0 / replicas())) if update.plain else None
        with tf.GradientTape(persistent=update.persistent) as tape:
            y_pred, outputs = self.forward(x, training=True)
            loss, terms, parts, closed = self.composed_loss(y, y_pred, sample_weight, training=True, outputs=outputs,
                                                            gradient_scale=scale, x=x)
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
            if update.plain:
                scaled_loss = self.optimizer.scale_loss(loss / replicas() if replicas() > 1 else loss)
            else:
                step = self.step_count()
                weights, objective = update.objective(parts, step)
        variables = self.trainable_weights
        if update.plain:
            gradients = add_gradients(tape.gradient(scaled_loss, variables), variables, closed)
        else:
            gradients = update.gradients(tape, parts, weights, objective, variables, step, self.optimizer.scale_loss)
        del tape
        with tf.control_dependencies([loss]):
            gradients = [None if g is None else tf.identity(g) for g in rows_summed(gradients)]
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.composition.after_step(terms)
        # the rate after the update (a schedule's at the updates made) and the constant weights, carried out
        carried = {name: ops.convert_to_tensor(rate) for name, rate in self.learning_rates().items()}
        carried.update({step_values.constant_weight(c.name): ops.convert_to_tensor(c.weighting.loss_weight)
                        for c in self.components if c.weighting.spec.kind == "constant"})
        return step_values.with_values(self.compute_metrics(x, y, y_pred, sample_weight=sample_weight), carried)

    def make_train_function(self, force: bool = False) -> Any:
        """Keras' train function, the values the step carries taken out of its logs
        (:mod:`lossexp.training.step_values`): the recorder reads the learning rate without an op."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force)
        self.train_function = step_values.carried(self, self.train_function)
        return self.train_function

    def test_step(self, data: Any) -> Dict[str, Any]:
        """Keras' test step on the multi-output view; training-only terms left out of the logs."""
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred, outputs = self.forward(x, training=False)
        loss = self.composed_loss(y, y_pred, sample_weight, training=False, outputs=outputs, x=x).total
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        skip = set(self.composition.train_only_metric_names())
        return {key: value for key, value in logs.items() if key not in skip}

    def tracked_weights(self) -> Dict[str, Any]:
        """``weight/<c>`` and ``weight/coef/<c>`` of every component whose weight is not constant, and
        the weighting method's ``weight/<method>/<task>``."""
        return {**self.composition.tracked_weights(), **self.weighting.tracked()}

    def learning_rates(self) -> Dict[str, Any]:
        """``learning_rate``: the optimizer's rate now (a schedule's at the updates made: the next one's)."""
        return {metric_names.learning_rate(): self.optimizer.learning_rate}

    # -- serialisation ---------------------------------------------------------------------
    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "components": [keras.saving.serialize_keras_object(c) for c in self.components],
            "task_loss": self.task_loss,
            "weighting": {"name": self.weighting.name, "options": self.weighting.options()},
            "other_losses": self.has_other_losses,
            "split_outputs": self.split_outputs,
        }

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "ComposedModel":
        from lossexp.keras_objects import register_keras_objects

        register_keras_objects()  # its components' classes, wherever Keras was first imported from
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"), custom_objects=custom_objects)
        components = [
            keras.saving.deserialize_keras_object(c, custom_objects=custom_objects) for c in config.pop("components")
        ]
        weighting = config.pop("weighting", None)  # absent in models saved before weighting methods
        if weighting is not None:
            from lossexp import registry

            weighting = registry.get("weighting", weighting["name"]).resolve()(**weighting["options"])
        if untapped(network, components):  # taps on layers' calls (a subclassed network's, a custom layer's inner
            network = insert_taps(without_taps(network), taps_of(components, network))  # one's) are not in a config
        return cls(network, components, weighting=weighting, **config)
