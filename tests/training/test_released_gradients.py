"""The gradient functions of Keras' train step are released from TensorFlow's registry once the session
is cleared; a project's own custom gradient, whose trace may be reused, stays."""
from __future__ import annotations

import numpy as np

from lossexp.training.released_gradients import all_reduce_gradient_names, release_all_reduce_gradients


def registered() -> dict:
    from tensorflow.python.framework import ops

    return ops._gradient_registry._registry


def fit_once() -> None:
    import keras

    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    network.compile("adam", "mse")
    network.fit(x, x[:, :2], epochs=1, verbose=0)


def test_a_fits_all_reduce_gradients_are_released_and_a_projects_own_custom_gradient_stays():
    import keras
    import tensorflow as tf

    @tf.custom_gradient
    def doubled_gradient(x):
        return tf.identity(x), lambda upstream: 2.0 * upstream

    @tf.function
    def gradient_of_own(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = doubled_gradient(x)
        return tape.gradient(y, x)

    assert float(gradient_of_own(tf.constant(1.0))) == 2.0  # traced: its gradient registered
    keras.backend.clear_session()
    release_all_reduce_gradients()
    before = set(registered())
    fit_once()
    assert len(all_reduce_gradient_names()) == 2  # Keras' train step's, kept after the fit
    keras.backend.clear_session()
    assert release_all_reduce_gradients() == 2
    assert set(registered()) == before and len(all_reduce_gradient_names()) == 0
    assert float(gradient_of_own(tf.constant(3.0))) == 2.0  # the cached trace's gradient is still there
    fit_once()  # the next job traces its own
    assert len(all_reduce_gradient_names()) == 2
