"""The supervised regime: a network, its task loss and the loss components in one compiled model.

From a validated config and a data set to a compiled
:class:`~lossexp.training.composed_model.ComposedModel`, checked before any run starts: the
network is built by the configured builder (the user's own included), the components' taps are
inserted and their state attached, and one forward pass on the first examples checks that the
network's output fits the targets and that the task loss and every component's term are finite
scalars — so a mistake in the user's model or component is one line, not a traceback mid-run.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from lossexp import registry
from lossexp.data.checks import stray_classes
from lossexp.data.finite_check import finite_checking, values_finite
from lossexp.data.label_check import checking, label_bound, labels_in_range
from lossexp.data.labels import class_labels, float_label_stream, probability_targets
from lossexp.data.structure import shapes
from lossexp.errors import invalid_value
from lossexp.models.outputs import output_names
from lossexp.registry import register_trainer
from lossexp.training.devices import computes_in
from lossexp.training.network_checks import CHECKED_EXAMPLES, as_arrays, check_output_names, check_outputs, \
    check_terms, ensure_network, forward, keras_xla_warning_silenced, refuse_own_step, replaced_compile, \
    xla_not_in_effect
from lossexp.training.class_weights import BALANCED
from lossexp.training.trainer import Trainer


def compose(network: Any, components: Sequence[Any], task_loss: Optional[str] = "mean_squared_error",
            name: str = "composed", weighting: Any = None, other_losses: Optional[bool] = None,
            split_outputs: Optional[Sequence[str]] = None) -> Any:
    """Insert the components' pass-through taps into ``network`` and wrap both (uncompiled);
    ``weighting`` is the weighting method (default ``equal``); ``other_losses``: whether the network
    adds Keras losses no component reports, seen on a forward pass (None: its regularizers tell);
    ``split_outputs``: the outputs whose task losses are parts of their own (None: the task is one part).

    Raises :class:`lossexp.errors.ConfigError` for a tap after a layer the network does not have, for a
    network whose class has a training step of its own, which the composed step would skip, and for
    components given a network not built yet, whose weights they cannot see.
    """
    from lossexp.losses.base import unattached
    from lossexp.training.composed_model import ComposedModel
    from lossexp.training.rewire import insert_taps, taps_of

    refuse_own_step(network, network.name)
    components = [unattached(component) for component in components]  # an instance another model holds: its copy
    if components and not network.built:  # its layers have no weights yet: hist_avg would track none, a tap no graph
        raise invalid_value("model", "a built network for the loss components to attach to (start a Sequential with "
                            "keras.Input(shape=…), or call the network on a batch before composing it: network(x[:2]))",
                            f"{network.name}, a {type(network).__name__} not built yet")
    return ComposedModel(insert_taps(network, taps_of(components, network)), components, task_loss=task_loss,
                         name=name, weighting=weighting, other_losses=other_losses, split_outputs=split_outputs)


def one_part(model: Any, names: Sequence[str]) -> Optional[str]:
    """Why a weighting method other than ``equal`` has nothing to balance, when the loss is one part
    (the task loss alone: ``loss=none`` and a network of one output, or of several not split); None otherwise."""
    if model.weighting.plain or len(model.tasks()) > 1:
        return None
    split = (f"; task.split_outputs=true makes each output's loss a part ({', '.join(names)})"
             if len(names) > 1 else "")
    return (f"weighting={model.weighting.name} balances the parts of the loss, and this run has one, "
            f"{model.tasks()[0]}: nothing is balanced (add loss components{split})")


@register_trainer("supervised")
class SupervisedTrainer(Trainer):
    """One network, its task loss and the loss components (see the module docstring)."""

    tasks = ("classification", "regression", "reconstruction", "multi_output")
    saved_class = "lossexp>ComposedModel"
    can_evaluate = True
    records = ("loss",)

    def prepare(self, data: Any, network: Any = None) -> Any:
        fraction = self.config.trainer.validation_split
        # balanced class weights count each class; a mapping {class: weight} needs no count (its classes
        # are the network's: :meth:`splits`)
        counts = getattr(self.config.task, "class_weight", None) == BALANCED
        # a validation split cut from a stream's end needs its length: a stream of unknown length is counted
        cut = not data.in_memory and data.splitter is None and data.held_out is None and fraction > 0
        if cut:
            data.in_fixed_order()  # a stream that cannot be split: one line before any pass or run
        if cut and data.size is None or getattr(data, "unread_labels", False) and (network is None or counts):
            # a network lossexp builds has a unit per class; class weights count each (kept: read once); all in one pass
            data = data.with_labels_read(per_example=counts, count=cut)
        if not data.in_memory and data.splitter is None:  # a stream that cannot be split: one line before any run
            data.split(fraction)
            augmented_validation(data, fraction)
        model_task = self.meta.get("task")
        task = self.config.task.type or model_task or self._classifies(data, network) or data.task
        if task == "classification" and data.in_memory and not isinstance(data.y, dict):
            data = class_labels(data, self.config.trainer.validation_split)
        if task == data.task:
            return data
        if task == "reconstruction":
            return data.autoencoding()
        if task == "classification" and not data.in_memory and data.task == "regression" \
                and not isinstance(data.stream.element_spec[1], dict):  # float labels of a stream (Keras' "binary")
            return float_label_stream(data)
        if task == "classification" and not (data.in_memory and np.issubdtype(np.asarray(data.y).dtype, np.integer)):
            raise invalid_value("task.type", f"classification needs integer class labels; data {data.name!r} has "
                                f"{data.task} targets", task)
        y = data.y.astype("float32")[:, None] if task == "regression" and data.in_memory and np.ndim(data.y) == 1 \
            else data.y
        outputs = int(np.prod(np.shape(y)[1:])) if task == "regression" and data.in_memory else data.num_outputs
        return replace(data, task=task, y=y, num_outputs=outputs)

    @staticmethod
    def _classifies(data: Any, network: Any) -> Optional[str]:
        """"classification" for float targets that are class labels of a network with probability
        outputs (0/1 against sigmoids, 0…k-1 against a softmax), else None (the data's own task)."""
        if network is None or data.task != "regression" or isinstance(data.y, dict) \
                or not data.in_memory and isinstance(data.stream.element_spec[1], dict):
            return None
        from lossexp.training.task import output_activation

        inputs = data.sample(CHECKED_EXAMPLES)[0]
        if not data.in_memory:  # its first targets tell (all are read as they are cast: float_label_stream),
            activation = output_activation(network, inputs)  # read only for a network of probabilities
            return "classification" if activation in ("sigmoid", "softmax") and \
                probability_targets(data.first_targets(), activation) else None
        if not any(probability_targets(data.y, activation) for activation in ("sigmoid", "softmax")):
            return None  # no labels whatever the network: not worth tracing a subclassed one's call
        return "classification" if probability_targets(data.y, output_activation(network, inputs)) else None

    def prepare_for(self, data: Any, network: Any) -> Any:
        """Float class labels of a network of one's own built from the config (``model=keras_file``, a
        project's builder) that ends in sigmoids or a softmax: classified, as :meth:`prepare` does for a
        network given in Python."""
        if self.config.task.type or self.meta.get("task") or not self._classifies(data, network):
            return data
        return self.prepare(data, network)

    def build(self, data: Any, network: Any = None, components: Optional[Sequence[Any]] = None) -> Any:
        from lossexp.losses.entries import build_components
        from lossexp.optimizers import build_optimizer
        from lossexp.training.composed_model import unowned_losses
        from lossexp.training import task as tasks

        config = self.config
        name = config.model.name
        if network is None:  # the builder sees the run's split: data.training() is what trains
            network = registry.build("model", config.model,
                                     data=replace(data, validation_split=config.trainer.validation_split))
            stray = stray_classes(data.known_labels()) if data.task == "classification" else None
            if stray:  # sized from the labels: a corrupt row's label made a class of its own
                print(f"lossexp: warning: data {data.name!r} has {stray}", file=sys.stderr)
        network = ensure_network(network, data, name)
        precision = config.trainer.precision
        if precision != "float32" and computes_in(network) == {"float32"}:  # a network built before the run
            print(f"lossexp: warning: trainer.precision={precision} is the policy of the layers lossexp builds; "
                  f"{name}'s were built in float32 and compute in it (build it after "
                  f"keras.mixed_precision.set_global_policy({precision!r}))", file=sys.stderr)
        data = self.prepare_for(data, network)
        if components is None:
            components = build_components(config.loss)
        x, y = data.sample(CHECKED_EXAMPLES)
        y_pred = forward(network, x, data, name)
        other_losses = bool(unowned_losses(network, components))  # an add_loss in a call shows after a pass
        names = output_names(network)
        check_output_names(name, names)
        y_pred = as_arrays(network, y_pred)
        check_outputs(name, data, y, y_pred,
                      tasks.configured_losses(config.task, names) if data.task == "multi_output" else None)
        if config.task.class_weight is not None:  # the padding a network masks is not counted as a class
            from lossexp.training.class_weights import output_mask

            self._output_mask = output_mask(network)
        # a stream's labels not all read: each batch's checked as it trains, against the outputs' classes
        self._label_bound = None if not getattr(data, "unread_labels", False) else label_bound(y, y_pred) \
            if not isinstance(y, dict) else {key: label_bound(y[key], y_pred[key]) for key in data.extras["unread_keys"]}
        if config.task.class_weight is not None and data.task == "multi_output":  # Keras' fit refuses it too
            raise invalid_value("task.class_weight", "null for a network of several outputs (weigh examples by "
                                "class with the data's own sample weights, (x, y, sample_weight): one array every "
                                "head's loss takes, or one per head, {output: weights})", config.task.class_weight)
        if config.task.class_weight is not None and data.task != "classification":
            raise invalid_value("task.class_weight", "null for a task that is not classification",
                                f"{config.task.class_weight} for data {data.name!r} ({data.task})")
        task = tasks.resolve(config.task, data.task, y, y_pred, names, data.extras.get("output_tasks", {}))
        if task.type == "reconstruction" and task.loss_name == "summed_binary_crossentropy":
            low, high = float(np.min(x)), float(np.max(x))
            if low < 0.0 or high > 1.0:
                raise invalid_value("data", f"inputs in [0, 1] for model={name}'s reconstruction with binary "
                                    "cross-entropy (or set task.loss=mean_squared_error)",
                                    f"{data.name} with values in [{low:g}, {high:g}]")
        tasks.check_output(task, network, name)
        replaced = replaced_compile(network, name, task.loss_name, config.optimizer.name, task.metrics)
        if replaced:
            print(f"lossexp: warning: {replaced}", file=sys.stderr)
        tasks.check_finite(task, y, y_pred)
        model = compose(network, components, task_loss=str(task.loss_name), name=f"{name}_composed",
                        weighting=registry.build("weighting", config.weighting), other_losses=other_losses,
                        split_outputs=task.split_outputs)
        alone = one_part(model, names)
        if alone:
            print(f"lossexp: warning: {alone}", file=sys.stderr)
        # weighted_metrics: the data's sample weights weigh the metrics as they weigh the task loss; class
        # weights alone weigh only the loss, as Keras' fit(class_weight=…) with compile(metrics=…) does, so
        # that the training metrics count examples as the validation metrics do
        by_class_only = config.task.class_weight is not None and not data.weighs_examples
        with keras_xla_warning_silenced():
            model.compile(optimizer=build_optimizer(config.optimizer), loss=task.loss, loss_weights=task.loss_weights,
                          **{"metrics" if by_class_only else "weighted_metrics": task.metrics},
                          steps_per_execution=config.trainer.execution_steps,
                          jit_compile=config.trainer.keras_jit_compile)
        without_xla = xla_not_in_effect(model, config.trainer.jit_compile)
        if without_xla:
            print(f"lossexp: warning: {without_xla}", file=sys.stderr)
        check_terms(model, x, y, data.first_weights(CHECKED_EXAMPLES))
        model.build_training_state(x, y)
        if not model.trainable_variables:  # Keras' optimizer would fail at the first step, in a traceback
            raise invalid_value("model", "a network with a weight to train (or a loss component with a trainable "
                                "weight)", f"model={name} with every weight frozen (trainable=False)")
        watch_gradients(model, config)
        return model

    def splits(self, data: Any) -> Tuple[Any, Optional[Any]]:
        """(training, validation); with ``task.class_weight``, the training examples weighted by class
        (counted once per data set: a stream's classes take a pass over it)."""
        spec = self.config.task.class_weight
        if spec is None:
            return super().splits(data)
        cached = getattr(self, "_weighted_splits", None)
        if cached is None or cached[0] is not data:
            from lossexp.training.class_weights import weighted

            train, validation = super().splits(data)
            # labels not all read (a mapping's): the classes the network scores, as its batches are checked
            bound = getattr(self, "_label_bound", None) if getattr(data, "unread_labels", False) else None
            classes = bound if isinstance(bound, int) else data.num_outputs
            mask = getattr(self, "_output_mask", None)
            self._weighted_splits = (data, (weighted(train, spec, classes, mask), validation))
        return self._weighted_splits[1]

    def callbacks(self, model: Any, data: Any) -> List[Any]:
        from lossexp.training.balanced_update import EpochEnd
        from lossexp.training.gradient_probe import GradientProbe, training_batches
        from lossexp.training.replica_state import ReplicaStateCheck

        train, _ = self.splits(data)
        # a component's state the replicas updated apart (a user's EMA of features): said after the first epoch
        replicas = model.distribute_strategy.num_replicas_in_sync
        ordering = [*self.ordering_callbacks(), *([ReplicaStateCheck(replicas)] if replicas > 1 else [])]
        if model.diagnostics is None:
            return [EpochEnd(), *ordering]
        batches = training_batches(train, self.config.trainer.batch_size, self.config.trainer.seed)
        return [EpochEnd(), *ordering, GradientProbe(batches, self.config.tracking.gradients_every_n_steps)]

    def fit_arguments(self, data: Any) -> Dict[str, Any]:
        train, validation = self.splits(data)
        batch = self.config.trainer.batch_size
        if train.arrays is not None:
            return self.array_fit_arguments(train.arrays,
                                            validation_data=validation.arrays if validation is not None else None)
        bound = getattr(self, "_label_bound", None)
        # checked in the input pipeline, batch by batch: its values finite (lossexp.data.finite_check), and its
        # labels, when they were not read before training (lossexp.data.label_check)
        train, validation = (part and replace(part, batch_map=finite_checking(
            checking(bound, part.batch_map) if bound is not None else part.batch_map)) for part in (train, validation))
        from lossexp.training.epoch_order import own_order_warning, shuffles_itself

        order = self.stream_order()
        if order is not None and shuffles_itself(train.stream):
            # it reorders itself at every pass (before decoding, at best), as Keras' fit trains it; a buffer
            # over it would decode its examples first and still give each epoch another order
            order = None
            source = self.config.data
            once = self.config.trainer.shuffle == "once"  # then no order is judged: its labels are not read
            own_order_warning(data.name, None if once else first_training_labels(data, train), data.task, once=once,
                              source=None if source.name == "python" else repr(source))
        return {"x": batched(train, batch, order=order),
                "shuffle": False,  # the stream shuffles itself (Keras would warn that it cannot)
                "validation_data": batched(validation, batch, cache=True) if validation is not None else None}

    def checked_labels(self, data: Any, model: Any, model_name: str) -> Any:
        """Training, a stream's values and labels checked as it goes (:meth:`fit_arguments`): a NaN, or a label
        out of range, is one line."""
        def refusal(label: int, key: str) -> None:
            x, y = data.sample(1)
            outputs = {**data.num_outputs, key: label + 1} if key else label + 1
            check_outputs(model_name, replace(data, num_outputs=outputs), y,
                          as_arrays(model.network, forward(model.network, x, data, model_name)))

        return _checked(data, getattr(self, "_label_bound", None), refusal)

    def evaluate(self, model: Any, data: Any) -> Dict[str, float]:
        split = self.config.trainer.validation_split
        if split <= 0:
            raise invalid_value("trainer.validation_split", "0 < validation_split < 1 to evaluate on", split)
        _, validation = data.split(split)
        from lossexp.training.rewire import symbolic_inputs

        try:
            expected = shapes(symbolic_inputs(model.network))
        except (AttributeError, ValueError):  # a subclassed network has no keras.Input: the pass below tells
            expected = data.input_shapes
        if not _shapes_fit(expected, data.input_shapes):
            raise invalid_value("data", f"data with inputs of shape {expected}, as the model takes",
                                f"{data.name} {data.input_shapes}")
        x, y = data.sample(CHECKED_EXAMPLES)
        check_outputs(model.network.name, data, y,
                      as_arrays(model.network, forward(model.network, x, data, model.network.name)))
        batch = self.config.trainer.batch_size
        if validation.arrays is not None:
            x, y, *weight = validation.arrays
            results = model.evaluate(x, y, sample_weight=weight[0] if weight else None, batch_size=batch,
                                     return_dict=True, verbose=0)
        else:
            results = model.evaluate(batched(validation, batch), return_dict=True, verbose=0)
        return {name: float(value) for name, value in results.items()}


def augmented_validation(data: Any, fraction: float) -> None:
    """One warning line when the validation split cut from a stream's end passes through its random ops
    (a ``.map(augment)`` before the split): the validation examples are augmented too — and, kept in
    memory from their first pass, by that pass's draw every epoch — where a researcher validates on
    examples as they are (Keras' ``fit`` takes no ``validation_split`` of a stream to compare)."""
    from lossexp.data.streams import random_ops

    if data.held_out is not None or not fraction or int(round(data.examples * fraction)) == 0:
        return
    found = random_ops(data.stream)
    if found:
        print(f"lossexp: warning: data {data.name!r} passes its examples through random ops ({', '.join(found)}): "
              f"the last {fraction:.0%} of them, which validate, are augmented too (kept in memory: by one draw, every epoch) — "
              "to validate on examples as they are, give a validation set of your own without them "
              "(validation_data=…; a data source's {'train': …, 'validation': …})",
              file=sys.stderr)


def watch_gradients(model: Any, config: Any) -> None:
    """The gradient diagnostics (sampled every ``tracking.gradients_every_n_steps``), when ``tracking.gradients``."""
    if config.tracking.enabled and config.tracking.gradients:
        model.watch_gradients()


def batched(part: Any, batch_size: int, order: Any = None, cache: bool = False) -> Any:
    """A part's stream batched and prefetched; shuffled by ``order`` (an ``EpochOrder`` or
    ``OneOrder`` of :mod:`lossexp.training.epoch_order`; None: the stream's order) within its size, at most 10,000
    elements and 1 GiB of them (:func:`lossexp.data.streams.elements_within`; one line says when the
    memory bound shuffles within fewer: a stream in sorted order is then better shuffled at its
    source). With ``cache``, a part cut from the middle of a stream (the validation split) is kept
    in memory at its first pass when it fits in 1 GiB: each later pass would read every element
    before it again (a generator's Python, an image's decoding). A part's ``batch_map`` applies to
    each batch. Its length is told to tf.data when only lossexp knows it (a stream counted in a
    pass, a CSV read in chunks), so Keras knows each epoch's steps; a stream not counted (nothing
    needed its length) tells Keras them by running out of data at the first epoch's end, as in Keras'
    ``fit`` (whose "Your input ran out of data" warning :func:`lossexp.quiet.epoch_length_learned` drops)."""
    import tensorflow as tf

    from lossexp.data.streams import SHUFFLE_BYTES, SHUFFLE_ELEMENTS, batches, elements_within

    stream = part.stream
    if int(stream.cardinality()) == tf.data.UNKNOWN_CARDINALITY and part.size is not None:
        stream = stream.apply(tf.data.experimental.assert_cardinality(part.size))
    if order is not None and part.size != 0:  # a stream not counted (None) shuffles within as many as it may
        most = min(int(part.size), SHUFFLE_ELEMENTS) if part.size is not None else SHUFFLE_ELEMENTS
        buffer = elements_within(stream, most, SHUFFLE_BYTES)
        if buffer < most:
            of = f" of its {part.size:,}" if part.size is not None else ""
            print(f"lossexp: the training stream shuffles within {buffer:,}{of} examples at a time "
                  f"({SHUFFLE_BYTES / 2 ** 30:g} GiB of them): if it is stored in an order (sorted by class), "
                  "shuffle it at its source", file=sys.stderr)
        stream = order.shuffled(stream, buffer)
    if cache and part.origin and part.origin[1] and part.size \
            and elements_within(stream, int(part.size), SHUFFLE_BYTES) == part.size:
        stream = stream.cache()
    batched = batches(stream, batch_size)
    return (batched.map(part.batch_map) if part.batch_map else batched).prefetch(tf.data.AUTOTUNE)


def first_training_labels(data: Any, train: Any) -> Any:
    """The first class labels (a regression's: targets) of the stream that trains, in its order: those the
    data's checks read where it is cut from the data's own stream at its start; else — a source's own split,
    whose training stream is another (Keras' image reader: a shuffled file list, where the data's stream
    lists the files sorted by class) — read from it (None for targets by output name, or several per example)."""
    from lossexp.data.checks import labels_of
    from lossexp.data.dataset import first_elements

    if train.origin is not None and train.origin[0] is data.stream and train.origin[1] == 0:
        return data.first_labels if data.task == "classification" else data.first_targets(read=False)
    targets = first_elements(train.stream)[1]
    if isinstance(targets, dict):
        return None
    labels = labels_of(targets) if data.task == "classification" else np.asarray(targets)
    return labels if labels.ndim == 1 or data.task != "classification" else None


def _shapes_fit(expected: Any, actual: Any) -> bool:
    """Whether examples of shapes ``actual`` fit inputs of shapes ``expected`` (``shapes``' form), a None
    of ``expected`` taking any length: a text network's ``keras.Input((None,))`` takes padded sequences
    of 40 tokens."""
    if isinstance(expected, dict) or isinstance(actual, dict):
        return (isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(_shapes_fit(expected[key], actual[key]) for key in expected))
    if isinstance(expected, list) or isinstance(actual, list):
        return (isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual)
                and all(_shapes_fit(e, a) for e, a in zip(expected, actual)))
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual))


@contextlib.contextmanager
def _checked(data: Any, bound: Any, refusal: Callable[[int, str], None]) -> Iterator[None]:
    """A stream's values and labels as its batches' assertions find them: each one line."""
    with values_finite(data), labels_in_range(data, bound, refusal):
        yield
