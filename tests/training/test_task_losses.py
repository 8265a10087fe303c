"""``squared_log_error`` (R4's task loss) against NumPy with its gradient, resolved by name for
``compile`` and restored when a saved model is loaded."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras

from lossexp.training.task_losses import squared_log_error, task_loss


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


def test_names_resolve_to_what_compile_takes():
    assert task_loss("squared_log_error") is squared_log_error
    assert task_loss("mean_squared_error") == "mean_squared_error"


def test_a_compiled_model_reloads_with_it(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="softplus")(inputs))
    model.compile(optimizer="sgd", loss=task_loss("squared_log_error"))
    x, y = np.ones((4, 2), "float32"), np.full((4, 1), 2.0, "float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
