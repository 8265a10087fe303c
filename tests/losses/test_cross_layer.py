"""cross_layer's norm of a layer's kernels against NumPy: one kernel (Dense), several taken together
(a GRU's input and recurrent kernels), with its gradient; a layer without a kernel is one line."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.cross_layer import CrossLayerNorm


def network():
    inputs = keras.Input((5, 3))
    hidden = keras.layers.GRU(4, return_sequences=True, name="gru")(inputs)
    embedded = keras.layers.Embedding(10, 2, name="embedding")(keras.ops.cast(hidden[..., 0] > 0, "int32"))
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(embedded)))


@pytest.mark.parametrize("norm", ["fro", "l2", "l1"])
def test_the_norm_of_all_a_layers_kernels_and_its_gradient_match_numpy(norm):
    keras.utils.set_random_seed(0)
    model = network()
    component = CrossLayerNorm(name="cross_layer", layers=["gru", "dense"], norm=norm)
    component.attach(model)
    gru = model.get_layer("gru")
    kernels = [w for w in gru.trainable_weights if w.name.endswith("kernel")] + [model.get_layer("dense").kernel]
    assert [w.name for w in kernels] == ["kernel", "recurrent_kernel", "kernel"]
    context = LossContext(y_true=None, y_pred=None, network=model, training=True)
    with tf.GradientTape() as tape:
        term = component.term(context)
    gradients = tape.gradient(term, kernels)
    values = [k.numpy().astype(np.float64) for k in kernels]
    groups = [values[:2], values[2:]]  # the GRU's two kernels together, the Dense's alone
    if norm == "l1":
        expected, grads = sum(np.abs(w).sum() for w in values), [np.sign(w) for w in values]
    elif norm == "l2":
        expected, grads = sum((w ** 2).sum() for w in values), [2 * w for w in values]
    else:
        norms = [np.sqrt(sum((w ** 2).sum() for w in group)) for group in groups]
        expected = sum(norms)
        grads = [w / norms[0] for w in groups[0]] + [w / norms[1] for w in groups[1]]
    assert float(term) == pytest.approx(expected, rel=1e-5)
    for got, want in zip(gradients, grads):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-7)


def test_a_layer_without_a_kernel_is_one_line():
    with pytest.raises(ConfigError) as info:
        CrossLayerNorm(name="cross_layer", layers=["embedding"]).attach(network())
    assert str(info.value) == ("Invalid value for loss.cross_layer.layers: expected layers that have a kernel (Dense, "
                               "Conv, GRU, LSTM, MultiHeadAttention), got 'embedding'")


def test_a_frozen_layer_is_penalised_with_a_warning_that_its_norm_moves_no_weight(capsys):
    """A frozen LSTM still has its kernels (the norm of all of them, in NumPy); the term is legal but
    constant in the network's weights, which one warning line says."""
    inputs = keras.Input((3, 2))
    lstm = keras.layers.LSTM(4, name="frozen_lstm")
    network = keras.Model(inputs, keras.layers.Dense(1, name="head")(lstm(inputs)))
    lstm.trainable = False
    component = CrossLayerNorm(name="cross_layer", layers=["frozen_lstm", "head"])
    component.attach(network)
    assert capsys.readouterr().err == ("lossexp: warning: loss.cross_layer.layers names frozen layer(s) 'frozen_lstm' "
                                       "(trainable=False): the term is a constant of the network's weights and moves "
                                       "none of them\n")
    kernels = [np.asarray(w.numpy()) for w in lstm.weights if w.name.endswith("kernel")]
    expected = np.sqrt(sum((k ** 2).sum() for k in kernels)) + np.linalg.norm(network.get_layer("head").kernel.numpy())
    assert float(component.term(LossContext(None, None, network, training=True))) == pytest.approx(expected, rel=1e-5)
