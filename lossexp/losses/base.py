"""The loss-component contract.

A component is one Keras layer class plus one YAML file ``conf/loss/<name>.yaml``. Its
constructor arguments are its options (= YAML keys = ``get_config()`` keys, stored as
attributes of the same name). The composed model asks each component for its *unweighted*
term once per step and adds ``weight · term`` to the task loss, so every term can be tracked
on its own (``term/<name>``) and as a weighted contribution (``loss/<name>``).

A component attaches to the model in the way its recipe needs:

* ``insert_after()`` returns pass-through layers (:class:`LossTap`) that the runner inserts
  after named layers (a subclassed network's: run after the layer's own call); they call ``add_loss`` inside ``call`` and the component's term is the
  sum of their losses (R3(c), the Keras 3 way of penalising an intermediate output);
* ``attach(network)`` validates layer names (:meth:`LossComponent.require_layers`, saying what the
  component needs of a layer: ``needs=TRAINABLE_WEIGHTS`` for a weight-space term; the layers of
  ``insert_after()`` and ``outputs_needed()`` are checked as ``needs=OUTPUT``, not an input layer,
  for every component) and creates in-graph state with ``add_weight``
  (historical averages, trainable coefficients), which the optimizer or the step update; a state
  sized by a layer's width reads it with :meth:`LossComponent.output_shape` (any network's);
* ``outputs_needed()`` names layers whose outputs the term needs; the composed model makes
  them extra outputs of its forward pass (a multi-output model, the Keras 3 way; a subclassed
  network's are read through the layers' calls) and hands them to the term in ``context.outputs``
  (closures over intermediate tensors, R2/R3(a));
* ``term(context)`` computes the term from the context: ``y_true``, ``y_pred``, the named
  outputs, the network (for its weights), the step and whether the step is a training step.

The ``weight`` option is the component's multiplier: a number, a schedule or trainable (see
:mod:`lossexp.losses.weight_spec`); :class:`~lossexp.losses.weighting.Weighting` keeps it in
variables and logs it as ``weight/<name>`` and ``weight/coef/<name>``.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import keras
from keras import ops

from lossexp import metric_names
from lossexp.errors import ConfigError, invalid_value
from lossexp.losses.forward_pass import ForwardPassRecord
from lossexp.losses.layer_paths import find_layer, listed, nested_path, unknown_layer
from lossexp.losses.state import check_recorded_state
from lossexp.losses.weight_spec import parse_weight
from lossexp.losses.weighting import Weighting
from lossexp.models.outputs import output_names
from lossexp.overrides import plain


class LayerOutputs(dict):
    """``context.outputs``: the outputs of the layers the components' ``outputs_needed()`` name, by name. A
    layer none of them names is a KeyError that says where to name it (it was a bare ``KeyError: 'hidden_1'``)."""

    def __missing__(self, layer: str) -> Any:
        held = ", ".join(map(repr, self)) or "none"
        raise KeyError(f"context.outputs holds the layers the components' outputs_needed() name ({held}), not "
                       f"{layer!r}: return it from your component's outputs_needed()")


@dataclass
class LossContext:
    """What a component may look at while the loss of one batch is computed."""

    y_true: Any
    y_pred: Any
    network: keras.Model
    training: bool
    #: the training step (1 for the first), a scalar tensor; schedules follow it. None in validation
    step: Any = None
    #: the same step as an int64 tensor, exact at any count (float32 ``step`` rounds above 2**24 =
    #: 16,777,216 steps); weight schedules follow it. None in validation (and where only ``step`` is known)
    step_count: Any = None
    #: outputs of the layers named by the components' ``outputs_needed()``, by layer name
    outputs: Mapping[str, Any] = field(default_factory=dict)
    #: the batch's inputs, as the network takes them: a term that calls ``network`` again on a
    #: perturbed or augmented copy (consistency, smoothness) starts from them
    x: Any = None
    #: the batch's sample weights as the data gives them (``(x, y, sample_weight)``: one per example,
    #: shaped like the targets, or a dict by output name), training and validation; None when the data
    #: gives none — and in the check of every term on a stream's first examples before a run — so a term
    #: that reweighs its examples (a focal-style task term) treats None as weights of 1
    sample_weight: Any = None

    def __post_init__(self) -> None:
        self.outputs = LayerOutputs(self.outputs)

    @property
    def schedule_step(self) -> Any:
        """The step a weight schedule follows: :attr:`step_count` when known, else :attr:`step`."""
        return self.step if self.step_count is None else self.step_count


class LossTap(ForwardPassRecord):
    """A pass-through layer that adds a loss on its input (``add_loss`` inside ``call``).

    Subclasses implement :meth:`penalty`. The composed model attributes the losses of a tap
    to the component that inserted it, never to the Keras "other losses" bucket.

    Its component reads the penalty of the current forward pass with :meth:`latest_penalty`, kept
    per thread (:class:`ForwardPassRecord`). A tap after a shared layer runs once per use of the
    layer; its penalty is the sum over the forward pass's calls (as Keras sums a shared layer's
    ``add_loss`` terms).
    """

    def penalty(self, inputs: Any, mask: Any = None) -> Any:
        """The loss on ``inputs``; ``mask`` (batch, steps) marks a padded sequence's real steps."""
        raise NotImplementedError

    def call(self, inputs: Any, mask: Any = None) -> Any:
        """Add the penalty of ``inputs``: of each tensor, summed, after a layer of several outputs
        (an ``LSTM(return_state=True)``'s sequence and states), as Keras' ``activity_regularizer``
        sums a layer's outputs; each tensor with its own mask."""
        tensors = keras.tree.flatten(inputs)
        masks = keras.tree.flatten(mask) if mask is not None else []
        masks = masks if len(masks) == len(tensors) else [None] * len(tensors)
        value = self.penalty(tensors[0], masks[0])
        for tensor, tensor_mask in zip(tensors[1:], masks[1:]):
            value = value + self.penalty(tensor, tensor_mask)
        self.add_loss(value)
        self.record(value)
        return inputs

    def latest_penalty(self) -> Any:
        """This thread's penalty of the last forward pass, summed over its calls (zero before any)."""
        values = self.recorded()
        total = values[0] if values else zero()
        for value in values[1:]:
            total = total + value
        return total


#: what a component's layers must be (``LossComponent.require_layers``' ``needs``): any layer of the
#: network; a layer whose output the component taps or reads; a layer whose trainable weights it reads
ANY_LAYER, OUTPUT, TRAINABLE_WEIGHTS = "any layer", "output", "trainable weights"


class LossComponent(keras.layers.Layer):
    """Base class of every loss component (see the module docstring for the contract)."""

    #: False for terms that exist only in training (e.g. historical averaging), so that the
    #: validation loss excludes them and no ``val_loss/<name>`` is reported.
    applies_in_validation: ClassVar[bool] = True

    #: which of the component's own non-trainable variables (made in ``attach`` with ``add_weight(trainable=False)``:
    #: class centres, a queue, a multiplier moved by ascent) a run records, by variable name, as
    #: ``weight/state/<name>/<variable>`` (a scalar's value, a tensor's ``.norm``) at every logging step: None (the
    #: default) records every one; a tuple only those it names; ``()`` none (``hist_avg``: a reference per weight
    #: tensor). See :mod:`lossexp.losses.state`.
    recorded_state: ClassVar[Optional[Tuple[str, ...]]] = None

    def __init__(self, weight: Any = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        weight = plain(weight)  # np.float32(0.1) from a notebook's sweep: the number it holds
        self.weight = weight  # as configured (number or mapping), for get_config
        self.weighting = Weighting(parse_weight(self.option_key("weight"), weight), self)

    # -- the contract --------------------------------------------------------------------
    def insert_after(self) -> Dict[str, LossTap]:
        """Pass-through layers to insert after named layers of the network (default none)."""
        return {}

    def attach(self, network: keras.Model) -> None:
        """Check layer names against ``network`` and create state; called once per model, on a component
        no other model holds (an instance a model attached before is replaced by a copy of its config)."""

    def outputs_needed(self) -> List[str]:
        """Layers whose outputs ``term`` reads from ``context.outputs`` (default none)."""
        return []

    def named_layers(self) -> List[str]:
        """The network layers the component's options name (default: its ``layers`` or ``layer``
        option); the gradient diagnostics are also computed on each of them."""
        layers = getattr(self, "layers", None)
        layer = getattr(self, "layer", None)
        return list(layers) if isinstance(layers, (list, tuple)) else [layer] if isinstance(layer, str) else []

    def owned_loss_layers(self) -> List[str]:
        """Layers whose Keras losses (``layer.losses``: regularizers, ``add_loss``) this component
        reports as its own term, so the composed model leaves them out of ``loss/other``."""
        return []

    def term(self, context: LossContext) -> Any:
        """The unweighted scalar term for one batch."""
        raise NotImplementedError

    def closed_form_gradients(self, context: LossContext, scale: Any) -> Optional[Tuple[Any, List[Tuple[Any, Any]]]]:
        """Optional, for a weight-space term whose gradient is known in closed form: ``(term, [(variable,
        scale · ∂term/∂variable), …])`` for one training batch, its state advanced as ``term`` would.

        The plain update then adds these gradients to the tape's instead of differentiating
        through the term — fewer graph ops and passes over the weights per step. ``term`` is
        then a constant for the tape, weighted by the weighting's ``weight·term`` (the component
        does not override :meth:`contribution`); ``scale`` is a scalar: the weight, times the
        optimizer's loss scale over the replicas. None (the default): the tape differentiates
        :meth:`term`, as it always does for weighting methods and gradient diagnostics.
        """
        return None

    @property
    def gives_closed_form_gradients(self) -> bool:
        """Whether the class implements :meth:`closed_form_gradients`."""
        return type(self).closed_form_gradients is not LossComponent.closed_form_gradients

    def contribution(self, term: Any, context: LossContext) -> Any:
        """What the term adds to the total loss (``weight · term`` for most weights)."""
        return self.weighting.contribution(term, step=context.schedule_step, training=context.training)

    def after_step(self, term: Any) -> None:
        """Called with this step's term after the optimizer update (dual ascent on the weight)."""
        self.weighting.after_step(term)

    def tracked_weights(self) -> Dict[str, Any]:
        """``weight/<name>`` and ``weight/coef/<name>`` values to log (none for a constant weight), and the
        component's own trained variables (:meth:`trained_variables`)."""
        return {**self.weighting.tracked(self.name), **self.trained_variables()}

    def trained_variables(self) -> Dict[str, Any]:
        """``weight/var/<name>/<variable>`` of each trainable variable the component made itself with
        ``add_weight`` (a projection, a learned margin; its weight's own is ``weight/coef/<name>``; not a
        network's variable it keeps as an attribute, which Keras tracks as the component's too): a
        scalar's value, a tensor's Frobenius norm (``.norm``), read in NumPy between steps. The run
        recorded none of them before: only the saved model held what they were trained to."""
        import numpy as np

        own, networks = getattr(self.weighting, "raw_weight", None), getattr(self, _NETWORKS, set())
        variables = [variable for variable in self.trainable_variables
                     if variable is not own and id(variable) not in networks]
        values = {}
        for variable, label in zip(variables, metric_names.variable_labels(self.name, variables)):
            value = np.asarray(ops.convert_to_numpy(variable), dtype=np.float64)
            key = metric_names.component_variable(self.name, label, tensor=value.ndim > 0)
            values[key] = float(np.sqrt(np.sum(np.square(value)))) if value.ndim else float(value)
        return values

    def output_shape(self, network: keras.Model, layer: str) -> Tuple[Optional[int], ...]:
        """The shape of what ``layer`` (a name, or a path into nested models) of ``network`` returns, its
        batch axis None — for a state sized by it in :meth:`attach`. ``network.get_layer(layer).output``
        is a graph's only; this is any network's, a subclassed one's too."""
        from lossexp.training.output_readers import UNREADABLE, output_shape, unreadable

        try:
            return output_shape(network, layer)
        except UNREADABLE as error:
            raise unreadable(self.name, error, network) from None

    def tap_name(self, layer: str) -> str:
        """The name of the tap this component inserts after ``layer`` (stable across reloads); the tap
        of a layer inside a nested model (``backbone/hidden``) is named after the layer's own name."""
        return f"{self.name}_on_{layer.rpartition('/')[2]}"

    def tap_path(self, layer: str) -> str:
        """Where that tap is: beside ``layer``, in the same (nested) model."""
        parent = layer.rpartition("/")[0]
        return f"{parent}/{self.tap_name(layer)}" if parent else self.tap_name(layer)

    #: how :meth:`across_replicas` combines the replicas' values
    REPLICA_REDUCTIONS: ClassVar[Tuple[str, ...]] = ("mean", "sum", "concat")

    def across_replicas(self, value: Any, reduce: str = "mean") -> Any:
        """``value``, computed from this replica's share of the batch, combined over the replicas of the
        step (``trainer.distribute=mirrored``): ``mean`` (a statistic of equal shares: a batch mean of
        features), ``sum`` (counts, sums), ``concat`` (rows per example, in replica order: the global
        batch's embeddings for a queue). Unchanged on one device.

        For the state a term updates from the data (an EMA of feature means, a queue, class centers):
        each replica updates its own copy of a variable, and Keras' default ``aggregation`` keeps every
        copy — replica 0's is what is read back, saved and checkpointed — so, uncombined, the state
        follows the first half of each batch (an EMA of feature means 0.069 away from the global batch's
        after 10 steps on two replicas; a queue of the other replica's embeddings). Combine what you
        assign: ``self.ema.assign(d·ema + (1 − d)·self.across_replicas(ops.mean(h, axis=0)))``."""
        from lossexp.training.devices import all_replicas, gathered

        reduce = self.require_choice("across_replicas", reduce, self.REPLICA_REDUCTIONS)
        return gathered(value) if reduce == "concat" else all_replicas(value, mean=reduce == "mean")

    # -- serialisation: options are the constructor arguments ------------------------------
    @classmethod
    def option_names(cls) -> List[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        names = [p.name for p in params if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]
        return sorted(set(names) | {"weight"})

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.option_names()})
        return config

    # -- helpers for validating options ---------------------------------------------------
    def option_key(self, option: str) -> str:
        return f"loss.{self.name}.{option}"

    def require(self, ok: bool, option: str, expected: str, got: Any) -> None:
        if not ok:
            raise invalid_value(self.option_key(option), expected, got)

    def require_one_output(self, network: keras.Model, option: str, expected: str, got: Any) -> None:
        """A term of ``y_pred`` (one tensor) on a network of several outputs — a dict or list of them —
        is one line naming ``option`` and the outputs, where it failed inside ``term`` at an op of
        TensorFlow's. A subclassed network's outputs are known only once it runs: not checked here."""
        outputs = getattr(network, "outputs", None) or []
        if len(outputs) > 1:
            names = output_names(network) or [str(i) for i in range(len(outputs))]
            raise invalid_value(self.option_key(option), f"{expected} for a network of several outputs "
                                f"({', '.join(names)})", got)

    def require_number(self, option: str, value: Any, minimum: float | None = None,
                       maximum: float | None = None, exclusive: bool = False) -> float:
        value = plain(value)  # a NumPy number is the number it holds
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = is_number and math.isfinite(value)
        if ok and minimum is not None:
            ok = value > minimum if exclusive else value >= minimum
        if ok and maximum is not None:
            ok = value < maximum if exclusive else value <= maximum
        if not ok:
            bounds = {
                (True, True): f"{minimum} {'<' if exclusive else '<='} {option} {'<' if exclusive else '<='} {maximum}",
                (True, False): f"a finite number {'>' if exclusive else '>='} {minimum}",
                (False, True): f"a finite number {'<' if exclusive else '<='} {maximum}",
                (False, False): "a finite number",
            }[(minimum is not None, maximum is not None)]
            raise invalid_value(self.option_key(option), bounds, value)
        return float(value)

    def require_choice(self, option: str, value: Any, choices: Sequence[str]) -> str:
        self.require(value in choices, option, "one of " + ", ".join(choices), value)
        return value

    #: whether the component's layer options may name a layer inside a nested model or a layer of the
    #: user's by its path (``backbone/hidden``): taps and weight-space terms that find their layers by
    #: path (``find_layer``) say so; a layer whose output the component reads (``outputs_needed``) always may
    reaches_nested_layers: ClassVar[bool] = False

    def require_layers(self, network: keras.Model, names: Sequence[str], option: str = "layers",
                       needs: str = ANY_LAYER) -> List[str]:
        """Check that every name is a layer of ``network`` (a path into a nested model where the
        component reaches one); list the names that exist if not. ``needs`` is what the component
        does with the layers: ``OUTPUT`` reads or taps their output (which an input layer does not
        compute: it is the data), ``TRAINABLE_WEIGHTS`` reads their trainable weights (which an input
        layer, a Dropout or a frozen layer does not have)."""
        existing = [layer.name for layer in network.layers if not isinstance(layer, LossTap)]
        for name in names:
            reaches = self.reaches_nested_layers or name in self.outputs_needed()  # lossexp reads those by path
            if name in existing or (reaches and "/" in name and find_layer(network, name)):
                continue
            path = nested_path(network, name.rpartition("/")[2])
            inside = path.rpartition("/")[0] if path else ""
            if path and reaches:
                where = f" (it is inside {inside!r}: name it {path!r})"
            elif path:
                it = f"it is inside {inside!r}" if path == name else f"it is {path!r}, inside {inside!r}"
                where = (f" ({it}: {self.option_key(option)} takes the network's own layers, so name "
                         f"{path.partition('/')[0]!r} or build the network flat)")
            elif self._is_default(option, name):
                where = (f" (it is {self.option_key(option)}'s default, a layer of lossexp's own mlp and cnn: "
                         f"name a layer of yours)")
            else:
                where = ""
            raise ConfigError(f"Invalid value for {self.option_key(option)}: layer {name!r} is not in the model{where}"
                              + (f"; its layers are {listed(existing)}" if where else
                                 unknown_layer(network, name, reaches, lambda layer: not isinstance(layer, LossTap))))
        if needs == OUTPUT:
            self._require_outputs(network, names, option)
        elif needs == TRAINABLE_WEIGHTS:
            self._require_trainable_weights(network, names, option)
        return list(names)

    def _require_outputs(self, network: keras.Model, names: Sequence[str], option: str) -> None:
        """No name is an input layer: its "output" is the data, which no term of the network's can
        change (a tap after it is never called, an output of it is never computed)."""
        inputs = [name for name in names if isinstance(find_layer(network, name), keras.layers.InputLayer)]
        if inputs:  # the layers that do compute, beside it (in its nested model, named by their paths)
            parent, _, _ = inputs[0].rpartition("/")
            model = find_layer(network, parent) if parent else network
            computing = [f"{parent}/{layer.name}" if parent else layer.name for layer in model.layers
                         if not isinstance(layer, (keras.layers.InputLayer, LossTap))]
            raise invalid_value(self.option_key(self._option_naming(inputs[0], option)),
                                "a layer that computes something (an input layer's output is the data: name a "
                                f"layer after it, one of {', '.join(computing)})", inputs[0])

    def _require_trainable_weights(self, network: keras.Model, names: Sequence[str], option: str) -> None:
        """Every named layer has trainable weights: one without (an input, a Dropout, a frozen layer)
        would add nothing to a weight-space term, silently."""
        without = [name for name in names if not find_layer(network, name).trainable_weights]
        if without:
            described = [f"{name} ({_without_weights(find_layer(network, name))})" for name in without]
            listed = described[0] if len(described) == 1 else f"{', '.join(described[:-1])} and {described[-1]}"
            weighted = [layer.name for layer in network.layers
                        if layer.trainable_weights and not isinstance(layer, LossTap)]
            raise invalid_value(self.option_key(self._option_naming(without[0], option)),
                                f"layers with trainable weights ({listed} {'has' if len(without) == 1 else 'have'} "
                                f"none; the model's layers with some: {', '.join(weighted) or '(none)'})", without[0])

    def _option_naming(self, name: str, option: str) -> str:
        """The option whose value names the layer ``name`` (``option`` if it does, or if none does)."""
        def names(value: Any) -> bool:
            return value == name or (isinstance(value, (list, tuple)) and name in value)

        if names(getattr(self, option, None)):
            return option
        return next((o for o in self.option_names() if names(getattr(self, o, None))), option)

    def _is_default(self, option: str, name: str) -> bool:
        """Whether ``name`` is (one of) the constructor's default for ``option``: a default names a
        layer of lossexp's models, which a network of the user's own does not have."""
        parameter = inspect.signature(type(self).__init__).parameters.get(option)
        default = () if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default
        return name == default or (isinstance(default, (tuple, list)) and name in default)


#: set on a component once a model attached it (see :func:`attach` and :func:`unattached`)
_ATTACHED = "_lossexp_attached"
#: the ids of the variables of the network a component was attached to (see :meth:`LossComponent.trained_variables`)
_NETWORKS = "_lossexp_network_variables"


def require_initialised(component: LossComponent) -> None:
    """One line for a component whose class's ``__init__`` did not call ``LossComponent.__init__`` (which
    gives it its name and weight): it failed later, in lossexp's code, as an ``AttributeError: 'Mine'
    object has no attribute 'name'`` traceback (exit 1)."""
    if "weighting" in vars(component):
        return
    init = type(component).__init__
    try:
        where = f" at {inspect.getsourcefile(init)}:{inspect.getsourcelines(init)[1]}"
    except (TypeError, OSError):  # no Python source: the class alone names it
        where = ""
    raise ConfigError(f"Invalid loss component {type(component).__name__}: its __init__{where} does not call "
                      "super().__init__(weight=weight, **kwargs), which gives a component its name and weight")


def attach(component: LossComponent, network: keras.Model) -> None:
    """``component.attach(network)``, remembering that a model holds it: ``attach`` creates the
    component's state, which belongs to that model."""
    require_initialised(component)
    object.__setattr__(component, _ATTACHED, True)  # before: an attach that failed half way made state too
    component.attach(network)
    # the network's own variables a component keeps as attributes (self.kernel = network.get_layer(…).kernel), which
    # Keras then tracks as the component's: not the component's own to record (weight/var/…)
    object.__setattr__(component, _NETWORKS, {id(variable) for variable in network.weights})
    check_recorded_state(component)
    untapped = [layer for layer in component.insert_after() if find_layer(network, component.tap_path(layer)) is None]
    if untapped:  # a training regime of the user's that attached activity to its own network: an AttributeError
        raise ConfigError(f"Invalid loss component for network {network.name!r}: loss.{component.name} reads the loss "
                          f"tap it inserts after layer(s) {', '.join(untapped)}, which the network lacks (a training "
                          "regime inserts it first: lossexp.training.rewire.insert_taps(network, "
                          "component.insert_after()))")


def unattached(component: LossComponent) -> LossComponent:
    """``component`` itself, or — when a model attached it already (an earlier fit's or compose's: a
    notebook's loop over seeds passes the same instances to each) — a new component of its config.

    Attached again, an instance would hold two sets of state (hist_avg's references twice: the second
    model's file would not reload, its checkpoint not resume) and start from what the first model
    trained (a trainable weight at its trained value, not the configured one the run records).
    """
    if not getattr(component, _ATTACHED, False):
        return component
    return type(component).from_config(component.get_config())


def _without_weights(layer: keras.layers.Layer) -> str:
    """Why ``layer`` has no trainable weights, in a few words: an input layer, a frozen ``Dense``, a ``Dropout``."""
    if isinstance(layer, keras.layers.InputLayer):
        return "an input layer"
    if layer.weights:
        return f"a frozen {type(layer).__name__}"
    kind = type(layer).__name__
    return f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind}"


def zero() -> Any:
    """A float32 scalar zero (for terms that do not apply to this step)."""
    return ops.zeros((), dtype="float32")
