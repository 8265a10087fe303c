"""The checks a network and its components pass before any run starts.

A mistake in the user's model, data or component shows here as one line, not as a traceback
mid-run: the builder returned a built ``keras.Model`` that lossexp's step can train, its outputs fit
the targets (one per class, per position for labels per position), every component's term is a
finite scalar on the first examples; a network compiled with a loss and an optimizer of its own
is told what replaces them.
"""
from __future__ import annotations

import contextlib
import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence

import numpy as np

from lossexp.data import checks
from lossexp.data.label_check import first_outside
from lossexp.errors import ConfigError, invalid_value
from lossexp.models.outputs import output_names
from lossexp.models.serializable import warn_unregistered

#: examples of the first batch checked before training
CHECKED_EXAMPLES = 8
#: the keras.Model methods of training and scoring: a network's own would never run, since lossexp
#: trains and evaluates the composed model around it
OWN_STEP = ("train_step", "test_step", "compute_loss", "compute_metrics", "fit", "evaluate")


def ensure_network(network: Any, data: Any, model_name: str) -> Any:
    """A built ``keras.Model`` (a subclassed or Sequential model is built on the data's shape)."""
    import keras

    if not isinstance(network, keras.Model):
        raise invalid_value("model", f"a builder returning a keras.Model (model={model_name}{_builder_at(model_name)})",
                            f"a {type(network).__module__}.{type(network).__qualname__}")
    refuse_own_step(network, model_name)
    if not network.built:
        forward(network, data.sample(2)[0], data, model_name)
    refuse_unknown_inputs(network, data, model_name)
    warn_unregistered(network)
    return network


@contextlib.contextmanager
def keras_xla_warning_silenced() -> Iterator[None]:
    """Compile inside without Keras' warning "Model doesn't support `jit_compile=True`", which names no
    layer: :func:`xla_not_in_effect` says it naming them."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
        yield


def xla_not_in_effect(model: Any, requested: Any) -> Optional[str]:
    """The warning when ``trainer.jit_compile=true`` (``requested``) is not in effect on the compiled ``model``,
    naming the layers why (None when it is, or was not asked for): Keras compiles a network holding a layer
    that XLA cannot compile (``supports_jit`` False: ``TextVectorization``, ``StringLookup``, …) without XLA,
    and the run's config still reads true."""
    if requested is not True or model.jit_compile:
        return None
    refused = [layer for layer in model._flatten_layers() if not layer.supports_jit]
    inner = {id(part) for layer in refused for part in layer._flatten_layers(include_self=False)}
    named = [f"{type(layer).__name__} {layer.name!r}" for layer in refused if id(layer) not in inner]
    return (f"trainer.jit_compile=true is not in effect: Keras trains without XLA, which cannot compile "
            f"{', '.join(named) or 'this network here'} (a preprocessing layer can move into the data: a tf.data map)")


def refuse_unknown_inputs(network: Any, data: Any, model_name: str) -> None:
    """One line for data inputs keyed by names a network of a dict of inputs (``keras.Model({name:
    Input}, …)``) does not have: Keras pairs such a dict with the data's dict by sorted position, not by
    name, so an extra key that sorts before an input's fed its array to that input and trained on the
    wrong inputs (a warning the only sign). A network of a list of inputs takes its own by name and
    leaves the rest unused, as Keras does."""
    expected = getattr(network, "_inputs_struct", None)
    given = getattr(data, "input_shapes", None)
    if not isinstance(expected, dict) or not isinstance(given, dict):
        return
    unknown = [key for key in given if key not in expected]
    if unknown:
        raise invalid_value(f"data ({data.name})", f"inputs named as the network's ({', '.join(expected)}; model={model_name}: "
                            "Keras pairs a dict of inputs with the data's by sorted position, so any other key "
                            "feeds an input another's array)", ", ".join(unknown))


def refuse_own_step(network: Any, model_name: str) -> None:
    """One line for a network whose class overrides one of :data:`OWN_STEP` (``train_step``,
    ``compute_metrics``, ``fit`` …): lossexp's composed model trains and scores it, so its own would be
    skipped without a word."""
    import keras

    from lossexp.training.composed_model import ComposedModel

    if isinstance(network, ComposedModel):  # lossexp.compose's result, given back to lossexp.fit
        raise invalid_value("model", "a network of yours (lossexp.fit composes it with loss=[...] itself; a composed "
                            "model is for your own compile and fit)",
                            f"model={model_name}, lossexp.compose's composed model of "
                            f"{getattr(network.network, 'name', 'a network')}: give its .network")
    overridden = [name for name in OWN_STEP if getattr(type(network), name) is not getattr(keras.Model, name)]
    if overridden:
        raise invalid_value("model", "a network that lossexp's step trains (its loss: the task's + the components'; "
                            "an extra term goes in call() with self.add_loss, or in a loss component)",
                            f"model={model_name} whose class {type(network).__name__} overrides "
                            f"{', '.join(overridden)}, which training would silently skip")


def _builder_at(model_name: str) -> str:
    """`` at file.py:12``, where the registered builder of ``model_name`` is (its first decorator's
    line; empty for a network given from Python, or a builder whose source Python cannot find)."""
    import inspect

    from lossexp import registry

    try:
        builder = inspect.unwrap(registry.get("model", model_name).resolve())
        return f" at {inspect.getsourcefile(builder)}:{builder.__code__.co_firstlineno}"
    except Exception:  # noqa: BLE001 — not registered, a class, a C function: the key alone names it
        return ""


def forward(network: Any, x: Any, data: Any, model_name: str) -> Any:
    """The network's outputs on a few examples; inputs it cannot take (their shape, their dtype) are
    one line naming both — a failure inside the project's own code is left to say its file and line."""
    from lossexp.project import one_line, user_frame

    try:
        return network(x, training=False)
    except Exception as exc:
        if isinstance(exc, ConfigError) or user_frame(exc) is not None:
            raise
        raise ConfigError(f"Invalid value for model: {model_name} cannot take the inputs of data {data.name!r} "
                          f"(shape {data.input_shapes}): {type(exc).__name__}: {one_line(str(exc))}") from None


@contextlib.contextmanager
def training_mode_failures(model: Any, data: Any, model_name: str, batch_size: int) -> Iterator[None]:
    """A shape or dtype error in training that the checks before it could not meet (they call the
    network with ``training=False``: a layer failing only in training mode, a batch of the trainer's
    size) becomes one line naming the model — when the network alone fails the same way on a batch of
    the data with ``training=True``. Anything else passes unchanged: a failure the network alone does
    not repeat is lossexp's and keeps its traceback. Costs nothing unless training failed."""
    import tensorflow as tf

    from lossexp.project import one_line, user_frame

    try:
        yield
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        network = getattr(model, "network", None)
        if isinstance(exc, ConfigError) or user_frame(exc) is not None or network is None:
            raise
        try:
            network(data.sample(batch_size)[0], training=True)
        except Exception as again:
            raise ConfigError(f"Invalid value for model: {model_name} fails in training mode (training=True) on a "
                              f"batch of {batch_size} examples of data {data.name!r}: {type(again).__name__}: "
                              f"{one_line(str(again))}") from None
        raise


def as_arrays(network: Any, y_pred: Any) -> Any:
    """The network's outputs as NumPy: one array, or a dict by output name (outputs in a list too)."""
    names = output_names(network)
    if isinstance(y_pred, (list, tuple)) and len(y_pred) == len(names):  # outputs in a list: by name
        y_pred = dict(zip(names, y_pred))
    return {k: np.asarray(v) for k, v in y_pred.items()} if isinstance(y_pred, dict) else np.asarray(y_pred)


def replaced_compile(network: Any, model_name: str, task_loss: Any, optimizer: str, metrics: Any = None) -> Optional[str]:
    """What a network compiled before it came (its loss, its optimizer, its metrics) loses to the config's
    task loss, optimizer and ``metrics`` (the resolved task's: a list, or lists by output), said in one line
    (None when it was not compiled with a loss)."""
    loss = getattr(network, "loss", None) if getattr(network, "compiled", False) else None
    if loss is None:
        return None
    own = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", None) or \
        type(loss).__name__
    own_metrics = _metric_names((network.get_compile_config() or {}).get("metrics"))
    optimizer_name = type(network.optimizer).__name__
    if not own_metrics:
        return (f"model={model_name} was compiled with loss {own} and optimizer {optimizer_name}; lossexp trains it "
                f"with task.loss={task_loss} and optimizer={optimizer} (set task.loss= and optimizer= to choose; a "
                "loss of your own: a loss component)")
    return (f"model={model_name} was compiled with loss {own}, optimizer {optimizer_name} and metrics "
            f"{', '.join(own_metrics)}; lossexp trains it with task.loss={task_loss}, optimizer={optimizer} and "
            f"metrics {', '.join(_metric_names(metrics)) or 'none'} (set task.loss=, optimizer= and task.metrics=[…] "
            "to choose; a loss of your own: a loss component)")


def _metric_names(metrics: Any) -> List[str]:
    """The names of ``metrics`` as ``compile`` takes them — names, metric objects or their serialised
    configs, in a list or in lists by output — each once."""
    if metrics is None:
        return []
    if isinstance(metrics, dict) and "class_name" in metrics:  # one metric's serialised config
        return [str((metrics.get("config") or {}).get("name") or metrics["class_name"])]
    if isinstance(metrics, (dict, list, tuple)):
        return list(dict.fromkeys(name for metric in (metrics.values() if isinstance(metrics, dict) else metrics)
                                  for name in _metric_names(metric)))
    return [metrics if isinstance(metrics, str) else getattr(metrics, "name", None)
            or getattr(metrics, "__name__", None) or type(metrics).__name__]


def check_outputs(model_name: str, data: Any, y_true: Any, y_pred: Any, losses: Optional[Dict[str, Any]] = None) -> None:
    """The network's outputs fit the targets: classes for classification, the targets' shape else; of a
    network of several outputs, each output its own targets (by name), as one output is checked — an
    output whose ``losses`` entry (the config's ``task.loss`` by output) is not a cross-entropy as a
    regression: integer counts under ``poisson`` are numbers, not classes."""
    if data.task != "multi_output":
        _check_output(model_name, data, data.task, data.num_outputs, y_true, y_pred)
        return
    outputs = sorted(y_pred) if isinstance(y_pred, dict) else []
    if outputs != sorted(y_true):
        untrained = [name for name in outputs if name not in y_true]
        hint = (f" ({', '.join(untrained)} without: every output trains; train a model of the same layers "
                f"whose outputs have targets, keras.Model(inputs, {{…}}), and predict with this one)"
                if untrained and set(y_true) < set(outputs) else "")
        raise invalid_value("data", f"one target array per output of model={model_name}, by name "
                            f"({', '.join(outputs) if outputs else 'it has one output: one array of targets'})",
                            f"targets named {', '.join(sorted(y_true))}{hint}")
    tasks = data.extras.get("output_tasks", {})
    widths = data.num_outputs if isinstance(data.num_outputs, dict) else {}
    for output in outputs:
        task, named = tasks.get(output), (losses or {}).get(output)  # None: the task's default loss
        if task == "classification" and named is not None and "crossentropy" not in str(named):
            task = "regression"
        if task in ("classification", "regression") and output in widths:
            _check_output(model_name, data, task, widths[output], y_true[output], y_pred[output], output)


def _check_output(model_name: str, data: Any, task: str, classes: int, y_true: Any, y_pred: Any,
                  output: Optional[str] = None) -> None:
    """One output against its targets (``output``: its name, of a network of several)."""
    got = tuple(np.shape(y_pred)[1:])
    if task == "classification":
        one_hot = checks.one_hot(np.asarray(y_true))
        labels = checks.label_shape(y_true)  # () for one label per example, else one per position
        binary = classes == 2 and not one_hot  # labels 0/1: one unit may hold class 1's score
        # sparse labels need at least their classes: a 10-class network may train on data of 7 of them
        width_fits = got[-1:] == (classes,) or (not one_hot and len(got) > 0 and got[-1] > classes)
        ok = (got[:-1] == labels and (width_fits or (binary and got[-1:] == (1,)))) or \
            (binary and labels != () and got == labels)  # one score per label: multi-label
        per = f" per position of labels of shape {labels}" if labels else ""
        numbers = " — or float targets if the integer targets are numbers" if output else \
            " — or task.type=regression if the integer targets are numbers"
        expected = f"one output per class{per}: outputs of shape {labels + (classes,)} " \
            f"({'one-hot' if one_hot else 'sparse'} labels{', or more classes' if not one_hot else ''})" + \
            (f" or {labels + (1,)}{f' or {labels}' if labels else ''} (binary)" if binary else "") + \
            (numbers if not one_hot else "")
        if not ok and not one_hot and got[:-1] == labels and got[-1:] and got[-1] < classes:
            expected += first_beyond(data, got[-1], output)
    else:
        target = tuple(np.shape(y_true)[1:])
        # as Keras' losses take them: equal, but for a trailing axis of 1 (as many values in another
        # shape — outputs (6,) for targets (2, 3) — fail in the loss, or broadcast: (1,) against (1, 1))
        ok = checks.without_unit_axis(got) == checks.without_unit_axis(target)
        whole = np.issubdtype(np.asarray(y_true).dtype, np.floating) and np.all(np.asarray(y_true) == np.round(y_true))
        labels_as_floats = whole and got[-1:] != target[-1:] and int(np.prod(target)) == 1
        labels_hint = " — or integer targets if they are class labels" if output else \
            " — or task.type=classification if the targets are class labels stored as floats"
        expected = f"outputs of shape {target} like the targets" + (labels_hint if labels_as_floats else "")
    if not ok:
        of = f"output {output!r} of " if output else ""
        raise invalid_value("model", f"{expected} for {of}data {data.name!r} ({task})",
                            f"model={model_name} with {f'output {output!r}' if output else 'outputs'} of shape {got}")


#: the examples of a stream searched for the first label its network cannot score (a source may declare classes
#: of an endless stream)
STREAM_SEARCHED = 1_000_000


def first_beyond(data: Any, width: int, output: Optional[str] = None) -> str:
    """``; example 57 has label 7`` (of a file's rows: ``row 58 of data.csv …``) — the first example whose
    label (at a position, for labels per position) the network's ``width`` outputs cannot score (of the
    targets of ``output``, of a network of several); "" for a stream whose labels are not all here (its
    source read no classes). One comparison over the labels the check read anyway."""
    targets = data.y[output] if output is not None and data.in_memory and isinstance(data.y, dict) else data.y
    bound = max(width, 2)  # one unit scores labels 0 and 1 (binary)
    scored = "one output scores labels 0 and 1" if width == 1 else f"outputs 0 … {width - 1}"
    if data.in_memory and not isinstance(targets, dict):
        labels = checks.labels_of(targets)
    elif data.classes is not None and output is None:  # a stream whose source read its classes (a table's target column)
        labels = data.classes
    elif data.stream is not None:  # read up to the first such label (the run is refused): a pass at most, bounded
        index, label = first_outside(data.stream, bound, output or "", most=STREAM_SEARCHED)
        return f"; {data.example_name(index)} has label {label} ({scored})" if index >= 0 and label >= bound else ""
    else:
        return ""
    beyond = np.argwhere(labels >= bound)
    if not len(beyond):
        return ""
    where = tuple(int(i) for i in beyond[0])
    position = f" at position {where[1:] if len(where) > 2 else where[1]}" if len(where) > 1 else ""
    return f"; {data.example_name(where[0])} has label {int(labels[where])}{position} ({scored})"


#: what TensorFlow takes as a name scope: Keras names each output's loss and metrics ``<output>_loss`` in one
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9_.\\/>-]*$")


def check_output_names(model_name: str, names: Sequence[str]) -> None:
    """Every output's name can name a TensorFlow scope: ``{"depth est": …}`` failed the first step in
    Keras' ``fit`` (lossexp's run recorded FAILED, a traceback) with "'depth est_loss' is not a valid scope name"."""
    for output in names:
        if not _SCOPE_NAME.match(str(output)):
            raise invalid_value("model", f"outputs named with letters, digits and _ . - / only (model={model_name}: "
                                f"Keras names each output's loss '<output>_loss', a TensorFlow name scope)", output)


def check_terms(model: Any, x: Any, y: Any, sample_weight: Any = None) -> None:
    """Every component's term is a finite scalar on the first examples, with their ``sample_weight``, and makes
    no variable at a second call (state restored after: the component's, and the network's — a term that runs the
    network again in training mode, a double backprop or consistency term, would move its normalisation
    statistics and random generators); a term of taps (``activity``, ``regularizer``) that no trainable weight
    reaches is warned of (on one device)."""
    import keras
    import tensorflow as tf

    from lossexp.losses.base import LossComponent, LossContext
    from lossexp.losses.forward_pass import forward_pass_kept

    tapped = [c for c in model.components if type(c).insert_after is not LossComponent.insert_after]
    # a gradient of mirrored variables is taken in a replica's context only (trainer.distribute): the check of
    # what a tap reaches, the same network's on one device, is left to runs on one
    distributed = any(isinstance(getattr(v, "value", v), tf.distribute.DistributedValues)
                      for v in model.network.trainable_variables)
    tape = tf.GradientTape(persistent=True)
    with tape if tapped else contextlib.nullcontext():
        y_pred, outputs = model.forward(x, training=False)
    context = LossContext(y_true=y, y_pred=y_pred, network=model.network, training=True,
                          step=keras.ops.convert_to_tensor(1.0), outputs=outputs, x=x, sample_weight=sample_weight)
    for component in model.components:
        state = {id(v): v for v in [*component.non_trainable_variables, *model.network.non_trainable_variables]}
        state = list(state.values())
        saved = [v.numpy() for v in state]
        try:
            with forward_pass_kept(model.network):
                with tape if component in tapped else contextlib.nullcontext():
                    tensor = component.term(context)
                term = keras.ops.convert_to_numpy(tensor)
                with tf.variable_creator_scope(_no_new_variable):  # a first call may build a layer it uses, once
                    component.term(context)
        except ConfigError:
            raise
        except Exception as exc:
            from lossexp.project import one_line, where_it_broke

            raise ConfigError(f"Invalid loss component {component.name!r}: term() failed at "
                              f"{where_it_broke(exc)}: {type(exc).__name__}: {one_line(str(exc))}") from None
        finally:
            for variable, value in zip(state, saved):
                variable.assign(value)
        where = _term_at(component)
        if term.dtype.kind not in "fiu":  # None, text, booleans: not a loss (np.isfinite would raise a TypeError)
            raise invalid_value(f"loss.{component.name}", "a term() that returns a number (a float scalar tensor, "
                                f"e.g. keras.ops.mean(…); {where})", _not_a_number(term))
        if term.dtype.kind in "iu":  # ops.cast(…, "int32") cuts the gradient: the term would train nothing
            raise invalid_value(f"loss.{component.name}", "a term() that returns a float (an integer has no gradient: "
                                f"the term would add a constant to the loss and train nothing; {where})",
                                f"a tensor of dtype {term.dtype}")
        if np.shape(term) != ():
            raise invalid_value(f"loss.{component.name}", "a term() that returns a scalar (reduce it, e.g. "
                                f"keras.ops.mean; {where})", f"a tensor of shape {np.shape(term)}")
        if not np.isfinite(term):
            raise invalid_value(f"loss.{component.name}", f"a finite term on the first examples ({where})", float(term))
        if isinstance(tensor, (int, float, np.number)):  # not computed from anything: as an int tensor, it trains nothing
            _check_traced(component, context)  # or computed in NumPy (.numpy(), float(t)), which a graph refuses
            print(f"lossexp: warning: loss.{component.name}'s term() returns the number {float(term):g}, not a tensor "
                  f"computed from the network ({where}): a constant, it adds to the loss and moves no weight",
                  file=sys.stderr)
        if component in tapped and not distributed and all(
                g is None for g in tape.gradient(tensor, model.network.trainable_variables)):
            print(f"lossexp: warning: loss.{component.name} reads layer(s) {', '.join(component.named_layers())}, "
                  "which no trainable weight reaches (trainable=False up to them): the term is a constant and "
                  "moves none of the network's weights", file=sys.stderr)


def _check_traced(component: Any, context: Any) -> None:
    """A term that returned a Python number on eager tensors, traced as the compiled step traces it: one
    computed in NumPy (``.numpy()``, ``float(t)``) fails there, which is said now, where the warning that
    the term is a constant said the wrong thing before the run failed."""
    import dataclasses

    import tensorflow as tf

    from lossexp.project import one_line

    tensors = {key: getattr(context, key) for key in ("y_true", "y_pred", "step", "x", "sample_weight")
               if getattr(context, key) is not None}
    tensors["outputs"] = dict(context.outputs)

    def traced(tensors: Dict[str, Any]) -> Any:  # symbolic tensors in place of the check's eager ones
        return component.term(dataclasses.replace(context, **tensors))

    try:
        with tf.variable_creator_scope(_no_new_variable):
            tf.function(traced).get_concrete_function(tensors)
    except Exception as exc:
        raise ConfigError(f"Invalid loss component {component.name!r}: term() ({_term_at(component)}) failed when "
                          f"traced into the compiled step: {type(exc).__name__}: {one_line(str(exc))}") from None


class VariableInTerm(Exception):
    """A component's term() made a variable at a second call: the compiled step, traced for training and again for
    validation, failed with TensorFlow's "tf.function only supports singleton tf.Variables" after the run began."""


def _no_new_variable(next_creator: Any, **kwargs: Any) -> Any:
    raise VariableInTerm("it creates a variable at every call (add_weight, tf.Variable, a layer made in term()): "
                         "create the component's state and layers once, in attach()")


def _term_at(component: Any) -> str:
    """``Mine.term at file.py:12``: which code returned the term (a component's term has no traceback
    to read its file and line from when it returns a value rather than raising)."""
    import inspect

    term = type(component).term
    try:
        return f"{type(component).__name__}.term at {inspect.getsourcefile(term)}:{inspect.getsourcelines(term)[1]}"
    except (TypeError, OSError):  # a term Python has no source for
        return f"{type(component).__name__}.term"


def _not_a_number(term: np.ndarray) -> str:
    """What a term that is not a number is, for a message: None, text, or its dtype."""
    item = term.reshape(-1)[0] if term.size else None
    if term.dtype == object and item is None:
        return "None"
    if isinstance(item, (str, bytes)) or term.dtype.kind in "SU":
        return f"text ({item!r})"
    return f"a tensor of dtype {term.dtype}"
