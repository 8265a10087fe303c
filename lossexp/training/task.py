"""The task a supervised model is trained on: its loss and metrics, declared or inferred.

``task.type`` (null: the data's, or the model's own, e.g. the VAE's reconstruction) picks the
defaults; ``task.loss`` and ``task.metrics`` override them with any Keras name (``huber``,
``mean_squared_logarithmic_error``, ``[accuracy, top_k_categorical_accuracy]``) or lossexp's own
(:data:`CUSTOM`). For several outputs, ``task.loss`` may map output names to losses.

=================  ==================================  =====================
task               default loss                        default metrics
=================  ==================================  =====================
classification     sparse_categorical_crossentropy     accuracy
regression         mean_squared_error                  mean_absolute_error
reconstruction     summed_binary_crossentropy          mean_absolute_error
=================  ==================================  =====================

A classifier that outputs logits (its outputs are not probabilities on the first examples) gets
the cross-entropy ``from_logits``. A classifier of two classes (labels 0 and 1) may have one output
unit, as Keras' binary classifiers do: its default loss is then ``binary_crossentropy`` and its
``accuracy`` the binary accuracy (thresholded at 0.5 for a probability, at 0 for a logit).
One-hot labels (``keras.utils.to_categorical``'s floats) are classification too, with
``categorical_crossentropy``. Integer labels may be one per position — a sequence's tokens
``(n, T)`` against outputs ``(n, T, classes)``, an image's pixels ``(n, H, W)`` against ``(n, H, W,
classes)`` (or one unit for two classes) — with the same losses and accuracy over every position;
labels 0/1 against outputs of their own shape (a multi-label classifier's ``(n, K)`` sigmoids or
logits) are binary cross-entropy per label. Float targets are labels too when the network given
says so (:func:`lossexp.data.labels.probability_targets`: 0/1 against sigmoids, 0…k-1 against a softmax).
Each output of a model of several outputs is resolved the same way.

``summed_binary_crossentropy`` is the VAE convention for a reconstruction of inputs in [0, 1]: the
binary cross-entropy summed over the features of an example (Kingma & Welling 2014's Bernoulli
log-likelihood), averaged over the batch by Keras, so that it and the KL term (summed over the
latent dimensions) are on the scale of the ELBO. ``squared_log_error`` is R4's
``(log y − log ŷ)²`` (``task.loss=squared_log_error``; ŷ and y must be > 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import keras
import numpy as np
from keras import ops

from lossexp.data import checks
from lossexp.errors import ConfigError, invalid_value, unknown_name


@keras.saving.register_keras_serializable(package="lossexp")
def summed_binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Per example: −Σ_features [y·log ŷ + (1 − y)·log(1 − ŷ)] (ŷ clipped by Keras' epsilon)."""
    y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (ops.shape(y_pred)[0], -1))
    y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    return ops.sum(ops.binary_crossentropy(y_true, y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="lossexp", name="squared_log_error")
def squared_log_error(y_true: Any, y_pred: Any) -> Any:
    """mean over the last axis of (log y − log ŷ)² (R4's task loss; y and ŷ must be > 0).

    Not Keras' ``mean_squared_logarithmic_error``, which takes log(1 + y).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.mean(ops.square(ops.log(y_true) - ops.log(y_pred)), axis=-1)


CUSTOM: Dict[str, Callable[[Any, Any], Any]] = {
    "summed_binary_crossentropy": summed_binary_crossentropy, "squared_log_error": squared_log_error}
DEFAULT_LOSS = {"classification": "sparse_categorical_crossentropy", "regression": "mean_squared_error",
                "reconstruction": "summed_binary_crossentropy"}
DEFAULT_METRICS = {"classification": ["accuracy"], "regression": ["mean_absolute_error"],
                   "reconstruction": ["mean_absolute_error"]}
#: output activations that keep ŷ > 0, which a loss taking log ŷ needs
POSITIVE_ACTIVATIONS = ("softplus", "exp", "sigmoid", "softmax")
#: task losses defined only for ŷ > 0
NEEDS_POSITIVE_OUTPUT = ("squared_log_error",)
#: what a non-finite task loss on the first examples most likely means
HINTS = {"squared_log_error": "it takes log ŷ and log y: both must be > 0 (model.output_activation=softplus)",
         "summed_binary_crossentropy": "it needs targets and outputs in [0, 1]"}


def keras_loss_names() -> List[str]:
    """Loss names ``keras.losses.get`` knows, lossexp's own and the project's registered ones."""
    from lossexp.training.users_keras import users_names

    names = {name for name in dir(keras.losses) if name.islower() and not name.startswith("_")
             and callable(getattr(keras.losses, name)) and name not in ("get", "serialize", "deserialize")}
    return sorted(names | set(CUSTOM) | set(users_names(keras.losses.Loss)))


def resolve_loss(key: str, name: str, from_logits: bool = False) -> Union[str, Callable, keras.losses.Loss]:
    """What ``compile(loss=...)`` takes for a loss name (checked against Keras' names)."""
    if name in CUSTOM:
        return CUSTOM[name]
    if from_logits and name == "sparse_categorical_crossentropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if from_logits and name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    if name == "binary_crossentropy":  # the class matches labels of shape (n,) to outputs of (n, 1)
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    try:
        keras.losses.get(name)
    except (ValueError, TypeError):
        from lossexp.training.users_keras import users_object

        own = users_object(key, name, keras.losses.Loss)  # the project's, registered with Keras
        if own is None:
            raise unknown_name(key, name, keras_loss_names()) from None
        return own
    return name


def check_metric(key: str, name: str) -> Any:
    """What ``compile(metrics=[…])`` takes for a metric name: Keras' name, or the project's registered
    metric class (made with its defaults) or function."""
    try:
        keras.metrics.get(name)
    except (ValueError, TypeError):
        from lossexp.training.users_keras import users_names, users_object

        own = users_object(key, name, keras.metrics.Metric)
        if own is None:
            registered = users_names(keras.metrics.Metric)
            raise invalid_value(key, "Keras metric names (accuracy, mean_absolute_error, auc, …)"
                                + (f" or the project's registered {', '.join(registered)}" if registered else ""),
                                name) from None
        return own
    return name


def outputs_logits(y_pred: Any, elementwise: bool = False) -> bool:
    """Whether classifier outputs are logits: not rows of probabilities summing to 1 (one unit, or
    ``elementwise`` scores of class 1: not probabilities in [0, 1]). A row sums to 1 within 10⁻³, or
    within the spacing of its dtype at 1 when that is coarser: a softmax computed in bfloat16 (a network
    built under ``mixed_bfloat16``) rounds each probability to 8 bits, its rows summing to 1 ± 0.003."""
    y = np.asarray(y_pred, dtype=np.float64)
    probabilities = np.all(y >= 0) and np.all(y <= 1)
    return not (probabilities and (elementwise or binary(y) or
                                   np.allclose(y.sum(axis=-1), 1.0, atol=max(1e-3, spacing_at_one(y_pred)))))


def spacing_at_one(values: Any) -> float:
    """The distance from 1 to the next number of ``values``' floating-point dtype (bfloat16: 2⁻⁷;
    float16: 2⁻¹⁰); 0 for a dtype that is not floating point."""
    import ml_dtypes  # NumPy's finfo does not know bfloat16; ml_dtypes' knows every float dtype

    dtype = np.asarray(values).dtype
    try:
        return float(ml_dtypes.finfo(dtype).eps)
    except (ValueError, TypeError):
        return 0.0


def binary(y_pred: Any, y_true: Any = None) -> bool:
    """Whether a classifier scores class 1 of two with one number per label: one output unit, or
    outputs shaped like labels per position (a multi-label classifier's K sigmoids on (n, K) 0/1 labels)."""
    if np.shape(y_pred)[-1:] == (1,):
        return True
    labels = checks.label_shape(y_true) if y_true is not None else ()
    return labels != () and tuple(np.shape(y_pred)[1:]) == labels


@dataclass
class Task:
    """The resolved task: its type, and what ``compile`` gets."""

    type: str
    loss: Any
    metrics: Any
    #: the loss name(s) as configured or defaulted (for messages and records)
    loss_name: Any
    #: {output: weight} of a network of several outputs (``compile(loss_weights=…)``); None: each weighs 1
    loss_weights: Optional[Dict[str, float]] = None
    #: the outputs whose losses are parts of their own (``task.split_outputs``); None: one part, ``task``
    split_outputs: Optional[List[str]] = None


def by_position(key: str, value: Any, output_names: List[str]) -> Any:
    """A list given for several outputs — one entry per output in their order, as Keras' ``compile(loss=[…],
    loss_weights=[…])`` takes it — as a mapping by output name; anything else unchanged."""
    if not isinstance(value, (list, tuple)):
        return value
    if len(value) != len(output_names):
        raise invalid_value(key, f"one entry per output of the model, in their order ({', '.join(output_names)})",
                            f"{len(value)} entries: {list(value)}")
    return dict(zip(output_names, value))


def configured_losses(config: Any, output_names: List[str]) -> Dict[str, Any]:
    """``task.loss`` (of the ``task:`` section ``config``) by output name, for a network of several outputs:
    a mapping as it is, a list in the outputs' order, one name (or None) for every output."""
    configured = by_position("task.loss", config.loss, output_names)
    return configured if isinstance(configured, dict) else {name: configured for name in output_names}


def resolve(config: Any, task_type: str, y_true: Any, y_pred: Any, output_names: List[str], outputs: Any) -> Task:
    """The loss and metrics for ``task_type`` under ``config`` (the ``task:`` section).

    ``y_true`` / ``y_pred``: the targets and the network's outputs on the first examples (to tell
    sparse labels from one-hot ones, one unit from one per class, logits from probabilities);
    ``output_names`` / ``outputs`` (per-output task types) for a multi-output model.
    """
    if task_type == "multi_output":
        configured = configured_losses(config, output_names)
        unknown = sorted(set(configured) - set(output_names))
        if unknown:
            raise invalid_value(f"task.loss.{unknown[0]}", f"one of the model's outputs ({', '.join(output_names)})",
                                unknown[0])
        weights = by_position("task.loss_weights", getattr(config, "loss_weights", None), output_names)
        unknown = sorted(set(weights or {}) - set(output_names))
        if unknown:
            raise invalid_value(f"task.loss_weights.{unknown[0]}", f"one of the model's outputs "
                                f"({', '.join(output_names)})", unknown[0])
        resolved = {name: _one_output(f"task.loss.{name}", configured.get(name), outputs[name], y_true[name],
                                      y_pred[name], config) for name in output_names}
        return Task(task_type, loss={name: loss for name, (_, loss, _) in resolved.items()},
                    metrics={name: metrics for name, (_, _, metrics) in resolved.items()},
                    loss_name={name: loss_name for name, (loss_name, _, _) in resolved.items()},
                    loss_weights={name: float((weights or {}).get(name, 1.0)) for name in output_names}
                    if weights else None,
                    split_outputs=list(output_names) if getattr(config, "split_outputs", False) else None)
    if isinstance(config.loss, (dict, list)):
        raise invalid_value("task.loss", "a loss name (a mapping or a list is for several outputs)", config.loss)
    if getattr(config, "split_outputs", False):
        raise invalid_value("task.split_outputs", "false for a network of one output (true splits the task loss of "
                            "a network of several outputs into one part per output)", True)
    if getattr(config, "loss_weights", None) is not None:
        raise invalid_value("task.loss_weights", "null for a network of one output (a mapping of output name to "
                            "weight is for several outputs)", config.loss_weights)
    name, loss, metrics = _one_output("task.loss", config.loss, task_type, y_true, y_pred, config)
    return Task(task_type, loss, metrics, name)


def _one_output(key: str, name: Any, task_type: str, y_true: Any, y_pred: Any, config: Any) -> Tuple[str, Any, list]:
    """(loss name, loss, metrics) of one output. A classifier's default cross-entropy follows its
    labels and outputs: sparse labels, one-hot labels (categorical), or one unit for 0/1 labels
    (binary); ``from_logits`` unless its outputs are probabilities."""
    classification = task_type == "classification"
    one_unit = classification and binary(y_pred, y_true)
    one_hot = classification and checks.one_hot(np.asarray(y_true))
    name = name or ("binary_crossentropy" if one_unit else "categorical_crossentropy" if one_hot
                    else DEFAULT_LOSS[task_type])
    from_logits = config.from_logits
    if from_logits is None:
        from_logits = classification and outputs_logits(y_pred, elementwise=one_unit)
    metrics = [check_metric("task.metrics", m) for m in (config.metrics or DEFAULT_METRICS[task_type])]
    if one_unit:  # Keras would threshold a logit at 0.5
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0 if from_logits else 0.5)
                   if m in ("accuracy", "acc") else m for m in metrics]
    return name, resolve_loss(key, name, from_logits), metrics


def output_activation(network: Any, inputs: Any = None) -> Any:
    """The name of the activation of the network's last layer, if it has one (else None); a loss
    tap after it (pass-through: an activity penalty on the outputs) is looked past. A subclassed
    network has no graph of layers (its last tracked layer need not be its output's): given
    ``inputs``, the op its ``call`` ends in says it (:func:`traced_activation`)."""
    from lossexp.losses.base import LossTap
    from lossexp.training.rewire import symbolic_inputs

    try:
        symbolic_inputs(network)
    except (AttributeError, ValueError):
        return traced_activation(network, inputs) if inputs is not None else None
    layers = [layer for layer in getattr(network, "layers", None) or [] if not isinstance(layer, LossTap)]
    activation = getattr(layers[-1], "activation", None) if layers else None
    return getattr(activation, "__name__", None)


#: TensorFlow ops that end an output activation, by the activation's Keras name
ACTIVATION_OPS = {"Sigmoid": "sigmoid", "Softmax": "softmax"}


def traced_activation(network: Any, inputs: Any) -> Any:
    """"sigmoid" or "softmax" when the network's (one) output is made by that op, read from its
    forward pass traced on ``inputs`` (a few examples) — past identities and casts — else None."""
    import tensorflow as tf

    traced = tf.function(lambda x: network(x, training=False)).get_concrete_function(inputs)
    if len(traced.outputs) != 1:
        return None
    op = traced.outputs[0].op
    while op.type in ("Identity", "Cast") and op.inputs:
        op = op.inputs[0].op
    return ACTIVATION_OPS.get(op.type)


def check_output(task: Task, network: Any, model_name: str) -> None:
    """A loss that takes log ŷ needs an output activation that keeps ŷ > 0 (when the last layer says)."""
    if task.loss_name in NEEDS_POSITIVE_OUTPUT:
        activation = output_activation(network)
        if activation is not None and activation not in POSITIVE_ACTIVATIONS:
            raise invalid_value("model", f"an output activation that keeps ŷ > 0 ({', '.join(POSITIVE_ACTIVATIONS)}) "
                                f"for task.loss={task.loss_name}, e.g. model.output_activation=softplus",
                                f"model={model_name} with output activation {activation}")


def check_finite(task: Task, y_true: Any, y_pred: Any) -> None:
    """The task loss is finite on the first examples, else one line with the likely cause."""
    losses = task.loss if isinstance(task.loss, dict) else {None: task.loss}
    for output, loss in losses.items():
        fn = keras.losses.get(loss) if isinstance(loss, str) else loss
        truth = y_true[output] if output is not None else y_true
        pred = y_pred[output] if output is not None and isinstance(y_pred, dict) else y_pred
        name = task.loss_name[output] if output is not None else task.loss_name
        if keras.backend.standardize_dtype(getattr(pred, "dtype", "float32")) in ("float16", "bfloat16"):
            pred = keras.ops.cast(pred, "float32")  # a Loss computes in float32 under mixed precision: as training does
        try:
            value = float(np.mean(keras.ops.convert_to_numpy(fn(truth, pred))))
        except Exception as exc:  # a loss that does not take these targets (categorical_crossentropy on sparse labels)
            from lossexp.project import one_line, user_frame

            frame = user_frame(exc)  # the project's own loss: where in its file
            where = f" at {frame.filename}:{frame.lineno} (in {frame.name})" if frame is not None else ""
            raise ConfigError(f"Invalid value for task.loss: {name} fails on the first examples{where} (targets of shape "
                              f"{tuple(np.shape(truth)[1:])}, outputs of shape {tuple(np.shape(pred)[1:])}"
                              f"{f' of output {output}' if output is not None else ''}): {type(exc).__name__}: "
                              f"{one_line(str(exc))}") from None
        if not np.isfinite(value):
            hint = HINTS.get(name, "check the data and the model's output activation")
            raise ConfigError(f"Invalid value for task.loss: {name} is not finite on the first examples "
                              f"(got {value}): {hint}")
