"""``closure``: each fn's term and gradient against NumPy, the layer it reads through the composed
model's multi-output view, and a real train step whose logged term is the NumPy value."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.closure import FUNCTIONS, Closure


def numpy_closure(fn: str, y: np.ndarray, y_hat: np.ndarray, h: np.ndarray) -> tuple:
    """(term, ∂term/∂h, ∂term/∂ŷ) in float64 for a flat (N, units) h and (N, k) targets."""
    n, units = h.shape
    error = np.sum((y - y_hat) ** 2, axis=1)          # e_i
    act = np.mean(h ** 2, axis=1)                     # mean_j h_ij²
    if fn == "mean_square":
        return np.mean(act), 2 * h / (n * units), np.zeros_like(y_hat)
    d_h = (error / n)[:, None] * 2 * h / units
    d_yhat = (act / n)[:, None] * -2 * (y - y_hat)
    if fn == "error_weighted":
        return np.mean(error * act), d_h, d_yhat
    return np.mean(error * act), d_h, np.zeros_like(y_hat)  # error_gated: e_i is a constant


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_term_and_gradients_match_numpy(fn):
    rng = np.random.default_rng(3)
    y, y_hat, h = rng.random((6, 2)), rng.random((6, 2)), rng.normal(size=(6, 5))
    tensors = [tf.constant(a, tf.float32) for a in (y, y_hat, h)]
    component = Closure(name="closure", layer="hidden_1", fn=fn)
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        term = component.term(LossContext(tensors[0], tensors[1], None, training=True,
                                          outputs={"hidden_1": tensors[2]}))
    grad_yhat, grad_h = tape.gradient(term, tensors[1:])
    expected, d_h, d_yhat = numpy_closure(fn, y, y_hat, h)
    np.testing.assert_allclose(float(term), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grad_h), d_h, rtol=1e-4, atol=1e-7)
    if fn == "mean_square":
        assert grad_yhat is None  # y_pred is not read
    else:
        np.testing.assert_allclose(np.zeros_like(y_hat) if grad_yhat is None else np.asarray(grad_yhat), d_yhat,
                                   rtol=1e-4, atol=1e-7)


def test_integer_labels_are_one_hot_against_class_probabilities():
    labels = tf.constant([2, 0], tf.int32)
    probabilities = tf.constant([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    h = tf.constant([[1.0, -1.0], [2.0, 0.0]])
    term = Closure(name="closure", fn="error_weighted").term(
        LossContext(labels, probabilities, None, training=True, outputs={"hidden_1": h}))
    errors = np.array([0.01 + 0.04 + 0.09, 0.25 + 0.0625 + 0.0625])
    np.testing.assert_allclose(float(term), np.mean(errors * np.array([1.0, 2.0])), rtol=1e-6)
    rows = Closure(name="closure", fn="error_weighted").term(  # one-hot rows of integers are the targets
        LossContext(tf.one_hot(labels, 3, dtype=tf.int32), probabilities, None, training=True, outputs={"hidden_1": h}))
    np.testing.assert_allclose(float(rows), float(term), rtol=1e-6)


@pytest.mark.parametrize("trailing_axis", [False, True])
def test_integer_labels_per_position_are_one_hot_at_each_position(trailing_axis):
    """A tagger's labels (n, T) against probabilities (n, T, classes): each position's label one-hot
    to the classes. They were one-hot to T·classes and reshaped: 'Input to reshape is a tensor with
    2400 values, but the requested shape has 240', a term that failed before training."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(4, 5))
    probabilities = rng.dirichlet(np.ones(3), size=(4, 5)).astype("float32")
    h = rng.normal(size=(4, 5, 2)).astype("float32")
    given = labels[..., None] if trailing_axis else labels
    term = Closure(name="closure", fn="error_weighted").term(
        LossContext(tf.constant(given, tf.int32), tf.constant(probabilities), None, training=True,
                    outputs={"hidden_1": tf.constant(h)}))
    errors = ((np.eye(3)[labels] - probabilities) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(float(term), np.mean(errors * (h ** 2).mean(axis=(1, 2))), rtol=1e-5)


def test_train_step_logs_the_numpy_term_of_the_batch(tiny_network, np_forward, compose, regression_data):
    """One real step on one batch: term/closure is the term of the weights before the update."""
    x, y = regression_data
    network = tiny_network()
    before = np_forward(network, x[:16])
    model = compose(network, [Closure(name="closure", layer="hidden_2", fn="error_weighted", weight=0.5)])
    history = model.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0).history
    expected, _, _ = numpy_closure("error_weighted", y[:16].astype(np.float64), before["output"], before["hidden_2"])
    np.testing.assert_allclose(history["term/closure"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(history["loss/closure"][0], 0.5 * expected, rtol=1e-5)
    assert np.allclose(model.predict(x[:4], verbose=0), model.network(x[:4]).numpy())  # predict: the network's own


def test_unknown_layer_and_fn_are_config_errors(tiny_network, compose):
    with pytest.raises(ConfigError, match=r"loss\.closure\.layer: layer 'hidden_9' is not in the model"):
        compose(tiny_network(), [Closure(name="closure", layer="hidden_9")])
    with pytest.raises(ConfigError) as info:  # its output is the data: refused, not a KeyError
        compose(tiny_network(), [Closure(name="closure", layer="inputs")])
    assert str(info.value) == ("Invalid value for loss.closure.layer: expected a layer that computes something (an "
                               "input layer's output is the data: name a layer after it, one of hidden_1, hidden_2, "
                               "output), got 'inputs'")
    with pytest.raises(ConfigError, match=r"loss\.closure\.fn: expected one of mean_square, error_weighted"):
        Closure(name="closure", fn="cube")


def test_an_error_weighted_term_on_a_network_of_several_outputs_is_one_line_naming_them():
    """``error_weighted`` and ``error_gated`` read one output's error: on a network of a dict of outputs
    they failed inside TensorFlow; they are one line naming the option and the outputs, and
    ``mean_square``, which reads no output, attaches."""
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, name="hidden_1")(inputs)
    network = keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                                   "reg": keras.layers.Dense(1, name="reg")(hidden)})
    for fn in ("error_weighted", "error_gated"):
        with pytest.raises(ConfigError) as info:
            Closure(name="closure", layer="hidden_1", fn=fn).attach(network)
        assert str(info.value) == ("Invalid value for loss.closure.fn: expected mean_square (the other functions read "
                                   f"one output's error) for a network of several outputs (cls, reg), got '{fn}'")
    Closure(name="closure", layer="hidden_1").attach(network)
