"""``aux_output``: each loss against NumPy with its gradient, a target, and the same term as
``activity`` (batch_mean) on the same batch through real train steps."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty
from lossexp.losses.aux_output import LOSSES, AuxiliaryOutput
from lossexp.losses.base import LossContext

NUMPY = {  # (term, ∂term/∂h) for h of shape (N, units), d = h − target
    "sum_squares": lambda d: (np.mean(np.sum(d ** 2, axis=1)), 2 * d / d.shape[0]),
    "mean_squared_error": lambda d: (np.mean(d ** 2), 2 * d / d.size),
    "mean_absolute_error": lambda d: (np.mean(np.abs(d)), np.sign(d) / d.size),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("target", [0.0, 0.5])
def test_term_and_gradient_match_numpy(loss, target):
    h = np.random.default_rng(5).normal(size=(7, 3))
    tensor = tf.constant(h, tf.float32)
    component = AuxiliaryOutput(name="aux_output", layer="hidden_1", loss=loss, target=target)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        term = component.term(LossContext(None, None, None, training=True, outputs={"hidden_1": tensor}))
    expected, gradient = NUMPY[loss](h - target)
    np.testing.assert_allclose(float(term), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tape.gradient(term, tensor)), gradient, rtol=1e-4, atol=1e-7)


def test_sum_squares_of_an_image_layer_sums_over_every_axis_but_the_batch():
    h = np.random.default_rng(6).normal(size=(4, 2, 2, 3))
    term = AuxiliaryOutput(name="aux_output", layer="conv_1").term(
        LossContext(None, None, None, training=True, outputs={"conv_1": tf.constant(h, tf.float32)}))
    np.testing.assert_allclose(float(term), np.sum(h ** 2) / 4, rtol=1e-5)


def test_same_training_as_activity_at_the_same_weight(tiny_network, compose, regression_data):
    """(a) an extra output with its own loss and (c) a pass-through add_loss layer: one penalty."""
    x, y = regression_data
    histories, kernels = [], []
    for component in (AuxiliaryOutput(name="penalty", layer="hidden_1", weight=0.05),
                      ActivityPenalty(name="penalty", layers=["hidden_1"], weight=0.05)):
        model = compose(tiny_network(seed=4), [component])
        histories.append(model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history)
        kernels.append(model.network.get_layer("hidden_1").kernel.numpy())
    for key in ("term/penalty", "loss/penalty", "loss"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
    np.testing.assert_allclose(kernels[0], kernels[1], rtol=1e-5, atol=1e-7)


def test_bad_options_are_config_errors(tiny_network, compose):
    with pytest.raises(ConfigError, match=r"loss\.aux_output\.loss: expected one of sum_squares"):
        AuxiliaryOutput(name="aux_output", loss="huber")
    with pytest.raises(ConfigError, match=r"loss\.aux_output\.target"):
        AuxiliaryOutput(name="aux_output", target="zeros")
    with pytest.raises(ConfigError, match=r"loss\.aux_output\.layer: layer 'dense' is not in the model"):
        compose(tiny_network(), [AuxiliaryOutput(name="aux_output", layer="dense")])


def test_an_input_layer_is_refused_in_one_line_naming_the_layers_that_compute(tiny_network, compose):
    """An input layer's output is the data, never computed by the multi-output view: refused, not a KeyError."""
    with pytest.raises(ConfigError) as info:
        compose(tiny_network(), [AuxiliaryOutput(name="aux_output", layer="inputs")])
    assert str(info.value) == ("Invalid value for loss.aux_output.layer: expected a layer that computes something (an "
                               "input layer's output is the data: name a layer after it, one of hidden_1, hidden_2, "
                               "output), got 'inputs'")


@pytest.mark.parametrize("loss", ["sum_squares", "mean_squared_error", "mean_absolute_error"])
def test_a_masked_sequences_padding_is_left_out_as_keras_leaves_it_out_of_an_outputs_loss(loss, compose):
    """Embedding(mask_zero=True) → Dense: the Dense layer's outputs at padded steps are not 0 (the
    bias, the padding's embedding); as an output of a Keras model its loss would leave them out, and
    ``activity`` does: the term counted them (1.15 against 0.75 after a transformer's attention)."""
    import keras

    keras.utils.set_random_seed(0)
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2], [5, 0, 0, 0, 0]])
    inputs = keras.Input((5,), dtype="int32")
    hidden = keras.layers.Dense(4, name="hidden", bias_initializer="ones")(
        keras.layers.Embedding(9, 3, mask_zero=True)(inputs))
    network = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(2)(hidden)))
    h = np.asarray(keras.Model(inputs, hidden)(tokens), np.float64) - 0.5
    real = np.broadcast_to((tokens != 0)[..., None], h.shape)
    expected = {"sum_squares": (h ** 2 * real).sum() / 3, "mean_squared_error": (h ** 2)[real].mean(),
                "mean_absolute_error": np.abs(h)[real].mean()}[loss]
    model = compose(network, [AuxiliaryOutput(name="aux_output", layer="hidden", loss=loss, target=0.5, weight=1.0)])
    result = model.evaluate(tokens, np.zeros((3, 2), "float32"), verbose=0, return_dict=True)
    assert result["term/aux_output"] == pytest.approx(expected, rel=1e-5)
