"""The task: lossexp's own task losses against NumPy (with squared_log_error's gradient), name
resolution for ``compile``, logits told from probabilities, and reloading a model compiled with one."""
from __future__ import annotations

import numpy as np

import tensorflow as tf

import keras

import pytest

from conftest import numpy_cross_entropy, output_first_network
from lossexp.errors import ConfigError
from lossexp.training.task import (output_activation, outputs_logits, resolve_loss, squared_log_error,
                                   summed_binary_crossentropy)


def resolve(name):
    return resolve_loss("task.loss", name)


def test_summed_binary_crossentropy_sums_over_features_per_example():
    rng = np.random.default_rng(0)
    y = rng.random((5, 8, 8)).astype("float32")  # soft targets in [0, 1], like scaled pixels
    p = rng.uniform(0.01, 0.99, (5, 64)).astype("float32")
    got = np.asarray(summed_binary_crossentropy(y, p))
    y64, p64 = y.reshape(5, 64).astype(np.float64), p.astype(np.float64)
    want = -(y64 * np.log(p64) + (1 - y64) * np.log(1 - p64)).sum(axis=1)
    assert got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_resolve_maps_lossexp_names_and_passes_keras_names_through():
    assert resolve("summed_binary_crossentropy") is summed_binary_crossentropy
    assert resolve("mean_squared_error") == "mean_squared_error"
    assert resolve("squared_log_error") is squared_log_error
    assert resolve("huber") == "huber"
    with pytest.raises(ConfigError, match=r"^Unknown task.loss 'hubr': valid choices are .*huber"):
        resolve("hubr")


def test_logits_are_told_from_probabilities():
    probabilities = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert not outputs_logits(probabilities)
    assert outputs_logits(np.array([[2.0, -1.0], [0.1, 0.3]]))
    assert outputs_logits(np.array([[0.2, 0.3], [0.5, 0.1]]))  # in [0, 1] but not a distribution
    assert not outputs_logits(np.array([[0.2], [0.9]]))  # one unit: the probability of class 1
    assert outputs_logits(np.array([[0.2], [-0.9]]))


@pytest.mark.parametrize("from_logits", [False, True])
def test_one_output_unit_for_two_classes_is_binary_cross_entropy_and_accuracy_against_numpy(from_logits):
    from lossexp.training.task import resolve as resolve_task

    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    raw = rng.normal(size=(8, 1)).astype("float32")
    outputs = raw if from_logits else 1 / (1 + np.exp(-raw))
    task = resolve_task(_task_config(), "classification", labels, outputs, [], {})
    assert task.loss_name == "binary_crossentropy" and task.loss.get_config()["from_logits"] is from_logits
    p = 1 / (1 + np.exp(-raw[:, 0]))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert float(task.loss(labels, outputs)) == pytest.approx(expected, rel=1e-5)
    [accuracy] = task.metrics
    accuracy.update_state(labels, outputs)
    assert accuracy.name == "accuracy"
    assert float(accuracy.result()) == pytest.approx(np.mean((p > 0.5) == labels))


def test_value_and_gradient_match_numpy():
    rng = np.random.default_rng(8)
    y, y_hat = rng.uniform(0.2, 3.0, (5, 2)), rng.uniform(0.2, 3.0, (5, 2))
    prediction = tf.constant(y_hat, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(prediction)
        value = squared_log_error(tf.constant(y, tf.float32), prediction)
        total = tf.reduce_sum(value)
    np.testing.assert_allclose(np.asarray(value), np.mean((np.log(y) - np.log(y_hat)) ** 2, axis=-1), rtol=1e-5)
    expected = -2 * (np.log(y) - np.log(y_hat)) / y_hat / 2  # mean over the last axis of 2 columns
    np.testing.assert_allclose(np.asarray(tape.gradient(total, prediction)), expected, rtol=1e-4)


def test_not_keras_mean_squared_logarithmic_error():
    y, y_hat = np.array([[2.0]], "float32"), np.array([[0.5]], "float32")
    assert float(squared_log_error(y, y_hat)[0]) == np.float32(np.log(4.0) ** 2)
    assert float(keras.losses.mean_squared_logarithmic_error(y, y_hat)[0]) != float(squared_log_error(y, y_hat)[0])


def test_a_compiled_model_reloads_with_it(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="softplus")(inputs))
    model.compile(optimizer="sgd", loss=resolve("squared_log_error"))
    x, y = np.ones((4, 2), "float32"), np.full((4, 1), 2.0, "float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)


def _task_config(**values):
    from omegaconf import OmegaConf

    return OmegaConf.create({"loss": None, "metrics": None, "from_logits": None, **values})


@pytest.mark.parametrize("from_logits", [False, True])
def test_one_hot_labels_are_categorical_cross_entropy_against_numpy(from_logits):
    from lossexp.training.task import resolve as resolve_task

    rng = np.random.default_rng(4)
    labels = np.eye(3, dtype="float32")[[0, 2, 1, 1, 0, 2]]  # keras.utils.to_categorical's floats
    logits = rng.normal(size=(6, 3)).astype("float32")
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    task = resolve_task(_task_config(), "classification", labels, logits if from_logits else p, [], {})
    assert task.loss_name == "categorical_crossentropy"
    expected = -np.mean(np.sum(labels * np.log(p), axis=1))
    loss = task.loss if not isinstance(task.loss, str) else keras.losses.get(task.loss)
    assert float(np.mean(loss(labels, logits if from_logits else p))) == pytest.approx(expected, rel=1e-5)


def test_each_output_of_several_is_resolved_like_one_logits_included():
    from lossexp.training.task import resolve as resolve_task

    y_true = {"cls": np.array([0, 1, 1]), "reg": np.array([[0.5], [1.0], [2.0]], dtype="float32")}
    y_pred = {"cls": np.array([[2.0, -1.0], [0.3, 0.1], [-1.0, 1.5]], dtype="float32"),
              "reg": np.array([[0.4], [1.1], [2.2]], dtype="float32")}
    task = resolve_task(_task_config(), "multi_output", y_true, y_pred, ["cls", "reg"],
                        {"cls": "classification", "reg": "regression"})
    assert task.loss_name == {"cls": "sparse_categorical_crossentropy", "reg": "mean_squared_error"}
    assert task.loss["cls"].get_config()["from_logits"] is True  # the head outputs logits
    p = np.exp(y_pred["cls"]) / np.exp(y_pred["cls"]).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(3), y_true["cls"]]))
    assert float(task.loss["cls"](y_true["cls"], y_pred["cls"])) == pytest.approx(expected, rel=1e-5)
    assert task.metrics == {"cls": ["accuracy"], "reg": ["mean_absolute_error"]}


def test_labels_per_position_are_cross_entropy_over_every_position_against_numpy():
    from lossexp.training.task import resolve as resolve_task

    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 4, size=(3, 6))  # a sequence's tokens, one class each
    logits = rng.normal(size=(3, 6, 4)).astype("float32")
    task = resolve_task(_task_config(), "classification", tokens, logits, [], {})
    assert task.loss_name == "sparse_categorical_crossentropy"
    expected = np.mean(numpy_cross_entropy(logits, tokens))
    assert float(np.mean(task.loss(tokens, logits))) == pytest.approx(expected, rel=1e-5)

    mask = rng.integers(0, 2, size=(3, 4, 4))  # a binary segmentation, one unit per pixel
    p = rng.uniform(0.05, 0.95, size=(3, 4, 4, 1)).astype("float32")
    task = resolve_task(_task_config(), "classification", mask, p, [], {})
    assert task.loss_name == "binary_crossentropy"
    q = p[..., 0].astype(np.float64)
    expected = -np.mean(mask * np.log(q) + (1 - mask) * np.log(1 - q))
    assert float(np.mean(task.loss(mask, p))) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("from_logits", [False, True])
def test_multi_label_outputs_shaped_like_their_labels_are_binary_cross_entropy_per_label(from_logits):
    from lossexp.training.task import resolve as resolve_task

    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, size=(6, 4))  # several labels per example, 0/1 each
    logits = rng.normal(size=(6, 4)).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    task = resolve_task(_task_config(), "classification", labels, logits if from_logits else p.astype("float32"),
                        [], {})
    assert task.loss_name == "binary_crossentropy"
    assert task.loss.get_config()["from_logits"] is from_logits
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert float(task.loss(labels, logits if from_logits else p.astype("float32"))) == pytest.approx(expected,
                                                                                                    rel=1e-5)
    [accuracy] = task.metrics
    accuracy.update_state(labels, logits if from_logits else p.astype("float32"))
    assert float(accuracy.result()) == pytest.approx(np.mean((p > 0.5) == labels))


def test_mean_squared_error_of_targets_without_the_outputs_unit_axis_is_numpys():
    """(n, T) targets against (n, T, 1) outputs: matched position by position, not broadcast to (n, T, T)."""
    rng = np.random.default_rng(7)
    y, p = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(3, 5, 1)).astype("float32")
    got = float(np.mean(keras.losses.get(resolve("mean_squared_error"))(y, p)))
    assert got == pytest.approx(np.mean((p[..., 0].astype(np.float64) - y) ** 2), rel=1e-5)


@pytest.mark.parametrize("activation, told", [("sigmoid", "sigmoid"), ("softmax", "softmax"), (None, None),
                                               ("tanh", None)])
def test_a_subclassed_networks_output_activation_is_read_from_its_traced_call(activation, told):
    """Its last tracked layer (here the hidden ReLU) is not its output layer: the op its call ends in says."""
    network = output_first_network(3, activation)
    x = np.zeros((2, 5), "float32")
    network(x)
    assert output_activation(network) is None  # nothing to trace without inputs
    assert output_activation(network, x) == told


def test_a_subclassed_mixed_precision_sigmoid_output_is_seen_past_its_cast():
    network = output_first_network(2, "sigmoid", dtype="mixed_float16")
    x = np.zeros((2, 5), "float32")
    assert output_activation(network, x) == "sigmoid"


def test_a_task_loss_that_cannot_take_the_targets_is_one_line_naming_it_and_the_shapes():
    """categorical_crossentropy chosen for sparse labels: Keras' ValueError was a Hydra traceback."""
    from lossexp.training.task import Task, check_finite

    labels, outputs = np.arange(8) % 10, np.full((8, 10), 0.1, "float32")
    task = Task("classification", "categorical_crossentropy", ["accuracy"], "categorical_crossentropy")
    with pytest.raises(ConfigError) as info:
        check_finite(task, labels, outputs)
    message = str(info.value)
    assert message.startswith("Invalid value for task.loss: categorical_crossentropy fails on the first examples "
                              "(targets of shape (), outputs of shape (10,)): ValueError: ") and "\n" not in message
    check_finite(Task("classification", "sparse_categorical_crossentropy", ["accuracy"],
                      "sparse_categorical_crossentropy"), labels, outputs)


def test_float16_outputs_are_checked_in_float32_as_a_loss_computes_them_in_training():
    """Under mixed_float16 the check ran mean_squared_error in float16: targets in the hundreds overflowed to inf and
    a run Keras trains was refused ("not finite … check the data")."""
    from lossexp.training.task import Task, check_finite

    targets = np.full((8, 1), 300.0, "float32")
    task = Task("regression", "mean_squared_error", ["mean_absolute_error"], "mean_squared_error")
    assert not np.isfinite(np.mean(keras.losses.get("mean_squared_error")(targets, tf.zeros((8, 1), "float16"))))
    check_finite(task, targets, tf.zeros((8, 1), "float16"))  # 90,000 in float32
    with pytest.raises(ConfigError, match="mean_squared_error is not finite on the first examples"):
        check_finite(task, targets, tf.fill((8, 1), float("nan")))


def test_a_list_of_task_losses_or_weights_is_one_per_output_in_their_order():
    from lossexp.training.task import by_position

    names = ["cls", "value"]
    assert by_position("task.loss", ["sparse_categorical_crossentropy", "mse"], names) == {
        "cls": "sparse_categorical_crossentropy", "value": "mse"}
    assert by_position("task.loss_weights", [0.5, 2.0], names) == {"cls": 0.5, "value": 2.0}
    assert by_position("task.loss", "mse", names) == "mse"
    with pytest.raises(ConfigError, match=r"^Invalid value for task.loss_weights: expected one entry per output of the "
                                          r"model, in their order \(cls, value\), got '3 entries: \[1, 1, 1\]'$"):
        by_position("task.loss_weights", [1, 1, 1], names)
