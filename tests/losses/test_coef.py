"""``coef``: term P (kernel norms or the mean prediction) against NumPy, with a trainable weight
by default; layer checks."""
from __future__ import annotations

import numpy as np
import pytest

import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.coef import TrainableCoefficient


def test_default_weight_is_a_trainable_softplus_coefficient():
    component = TrainableCoefficient(name="coef")
    assert component.weighting.spec.parametrization == "softplus"
    np.testing.assert_allclose(float(component.weighting.multiplier()), 0.01, rtol=1e-6)
    assert component.weighting.raw_weight.trainable


def test_kernel_norm_term_and_gradient(tiny_network):
    network = tiny_network()
    component = TrainableCoefficient(name="coef", layers=["hidden_1", "hidden_2"])
    component.attach(network)
    kernels = [network.get_layer(n).kernel for n in ("hidden_1", "hidden_2")]
    with tf.GradientTape() as tape:
        term = component.term(LossContext(None, None, network, training=True))
    ws = [np.asarray(k.numpy(), np.float64) for k in kernels]
    np.testing.assert_allclose(float(term), sum(np.linalg.norm(w) for w in ws), rtol=1e-5)
    for w, grad in zip(ws, tape.gradient(term, kernels)):
        np.testing.assert_allclose(np.asarray(grad), w / np.linalg.norm(w), rtol=1e-4, atol=1e-7)


def test_prediction_mean_term_and_gradient(tiny_network, regression_data):
    """P = mean(ŷ): ∂P/∂ŷ = 1/N for every prediction (R4's a·ŷ)."""
    y_pred = tf.constant(regression_data[1][:10])
    component = TrainableCoefficient(name="coef", penalty="prediction_mean")
    component.attach(tiny_network())
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        term = component.term(LossContext(None, y_pred, None, training=True))
    np.testing.assert_allclose(float(term), float(np.mean(regression_data[1][:10])), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tape.gradient(term, y_pred)), np.full((10, 1), 1 / 10), rtol=1e-5)


def test_kernel_norm_needs_layers_with_a_kernel(tiny_network):
    component = TrainableCoefficient(name="coef", layers=["inputs"])
    with pytest.raises(ConfigError, match=r"loss\.coef\.layers.*kernel.*'inputs'"):
        component.attach(tiny_network())


def test_prediction_mean_does_not_need_layers(tiny_network):
    component = TrainableCoefficient(name="coef", penalty="prediction_mean", layers=[])
    component.attach(tiny_network())  # no layer is looked up
    with pytest.raises(ConfigError, match=r"loss\.coef\.layers"):
        TrainableCoefficient(name="coef", penalty="kernel_norm", layers=[])


def test_prediction_mean_on_a_network_of_several_outputs_is_one_line_naming_them():
    """``prediction_mean`` averages one output: on a network of a dict of outputs its term failed inside
    TensorFlow (``ValueError: Attempt to convert a value ({'cls': …``, the tensors printed); it is one
    line naming the option and the outputs, when the component attaches."""
    import keras

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, name="hidden_1")(inputs)
    network = keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                                   "reg": keras.layers.Dense(1, name="reg")(hidden)})
    with pytest.raises(ConfigError) as info:
        TrainableCoefficient(name="coef", penalty="prediction_mean").attach(network)
    assert str(info.value) == ("Invalid value for loss.coef.penalty: expected kernel_norm (prediction_mean averages "
                               "one output) for a network of several outputs (cls, reg), got 'prediction_mean'")
    TrainableCoefficient(name="coef", layers=["hidden_1"]).attach(network)  # a kernel's norm needs no output
