"""``regularizer``: Keras' kernel/bias/activity regularizers on named layers, the term and its
gradient against NumPy (activity divided by the batch size, Keras ≥ 3.14) and against Keras' own
``kernel_regularizer`` / ``activity_regularizer`` set on a copy of the network; reported as the
component's own term and not as ``loss/other``; the user's layers left as built; bad factors, reload."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras

from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty
from lossexp.losses.base import LossContext
from lossexp.losses.regularizer import KerasRegularizer, make_regularizer
from lossexp.training.rewire import insert_taps
import lossexp.training.composed_model  # noqa: F401  (registers ComposedModel for reloading)


def test_l1_l2_and_l1l2_objects_are_built_from_the_factors():
    assert isinstance(make_regularizer(0.1, 0.0), keras.regularizers.L1)
    assert isinstance(make_regularizer(0.0, 0.2), keras.regularizers.L2)
    both = make_regularizer(0.1, 0.2)
    assert isinstance(both, keras.regularizers.L1L2) and both.get_config() == {"l1": 0.1, "l2": 0.2}
    assert make_regularizer(0.0, 0.0) is None


def tapped(network, component):
    """The network with the component's taps inserted and the component attached, as composing does."""
    rewired = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    component.attach(rewired)
    return rewired


def test_the_users_layers_are_left_as_they_built_them(tiny_network, compose, regression_data):
    """No regularizer is set on the network's layers or variables, during a run or after it: the same
    network trained afterwards without the component (a baseline) has no penalty in its loss."""
    x, y = regression_data
    network = tiny_network()
    before = network.get_config()
    component = KerasRegularizer(name="regularizer", layers=["hidden_1"], kernel={"l1": 0.1, "l2": 0.2},
                                 bias={"l2": 0.3}, activity={"l1": 0.4})
    history = compose(network, [component]).fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history
    assert history["term/regularizer"][0] > 0
    layer = network.get_layer("hidden_1")
    assert layer.kernel.regularizer is None and layer.bias.regularizer is None and layer.activity_regularizer is None
    assert network.get_config() == before and not network.losses
    baseline = compose(network, []).fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history
    assert "loss/other" not in baseline
    np.testing.assert_allclose(baseline["loss"], baseline["loss/task"], rtol=1e-6)


def test_term_and_gradient_match_numpy(tiny_network, np_forward, regression_data):
    x = regression_data[0][:12]
    component = KerasRegularizer(name="regularizer", layers=["hidden_1", "hidden_2"], kernel={"l1": 0.01, "l2": 0.02},
                                 bias={"l1": 0.03}, activity={"l1": 0.05, "l2": 0.1})
    network = tapped(tiny_network(), component)
    kernel = network.get_layer("hidden_2").kernel
    with tf.GradientTape() as tape:
        network(x, training=True)  # the taps record the activity penalties of this call
        term = component.term(LossContext(None, None, network, training=True))
    hidden = np_forward(network, x)
    expected = 0.0
    for name in ("hidden_1", "hidden_2"):
        w, b = (np.asarray(v.numpy(), np.float64) for v in network.get_layer(name).weights)
        h = hidden[name]
        expected += 0.01 * np.abs(w).sum() + 0.02 * (w ** 2).sum() + 0.03 * np.abs(b).sum()
        expected += (0.05 * np.abs(h).sum() + 0.1 * (h ** 2).sum()) / len(x)  # ÷ batch size (Keras ≥ 3.14)
    np.testing.assert_allclose(float(term), expected, rtol=1e-5)
    # ∂/∂W₂ of the kernel penalty alone (the activity penalty of hidden_2 also depends on W₂):
    w2 = np.asarray(kernel.numpy(), np.float64)
    h1, h2 = hidden["hidden_1"], hidden["hidden_2"]
    d_pre = (0.05 * np.sign(h2) + 0.2 * h2) / len(x) * (1 - h2 ** 2)  # through tanh
    expected_grad = 0.01 * np.sign(w2) + 0.04 * w2 + h1.T @ d_pre
    np.testing.assert_allclose(np.asarray(tape.gradient(term, kernel)), expected_grad, rtol=1e-4, atol=1e-6)


def test_the_term_is_what_keras_own_regularizers_set_on_the_layers_add(tiny_network, regression_data):
    """R3(b) as Keras users write it — ``Dense(…, kernel_regularizer=…, bias_regularizer=…,
    activity_regularizer=…)`` — on a copy of the network with the same weights: its ``losses`` sum to the term."""
    x = regression_data[0][:12]
    factors = {"kernel": {"l1": 0.01, "l2": 0.02}, "bias": {"l2": 0.03}, "activity": {"l1": 0.05, "l2": 0.1}}
    component = KerasRegularizer(name="regularizer", layers=["hidden_1"], **factors)
    network = tapped(tiny_network(), component)
    network(x, training=True)
    term = float(component.term(LossContext(None, None, network, training=True)))
    config = tiny_network().get_config()
    for layer in config["layers"]:
        if layer["config"]["name"] == "hidden_1":
            for target, factor in factors.items():
                layer["config"][f"{target}_regularizer"] = keras.saving.serialize_keras_object(
                    make_regularizer(factor.get("l1", 0.0), factor.get("l2", 0.0)))
    keras_way = keras.Model.from_config(config)
    keras_way.set_weights(tiny_network().get_weights())
    keras_way(x, training=True)
    assert len(keras_way.losses) == 3
    np.testing.assert_allclose(term, float(sum(keras_way.losses)), rtol=1e-5)


def test_reported_as_its_own_term_not_as_other(tiny_network, compose, regression_data):
    x, y = regression_data
    regularizer = KerasRegularizer(name="regularizer", layers=["hidden_2"], kernel={"l2": 0.01}, activity=None,
                                   weight=2.0)
    model = compose(tiny_network(), [regularizer])
    w = model.network.get_layer("hidden_2").kernel.numpy().astype(np.float64)
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history  # one step
    assert "loss/other" not in history
    np.testing.assert_allclose(history["term/regularizer"][0], 0.01 * np.sum(w ** 2), rtol=1e-5)
    np.testing.assert_allclose(history["loss/regularizer"][0], 0.02 * np.sum(w ** 2), rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], history["loss/task"][0] + history["loss/regularizer"][0], rtol=1e-5)


def test_other_layers_regularizers_stay_other(tiny_network, compose, regression_data):
    x, y = regression_data
    network = tiny_network(regularizer=keras.regularizers.L2(0.01))  # on hidden_2's kernel
    model = compose(network, [KerasRegularizer(name="regularizer", layers=["hidden_1"], activity={"l2": 0.1})])
    w = network.get_layer("hidden_2").kernel.numpy().astype(np.float64)
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history  # one step
    np.testing.assert_allclose(history["loss/other"][0], 0.01 * np.sum(w ** 2), rtol=1e-5)
    total = history["loss/task"][0] + history["loss/regularizer"][0] + history["loss/other"][0]
    np.testing.assert_allclose(history["loss"][0], total, rtol=1e-5)


def test_activity_l2_equals_the_activity_component(tiny_network, compose, regression_data):
    """(b) Keras' activity_regularizer and (c) a pass-through add_loss layer: the same training."""
    x, y = regression_data
    histories = []
    for component in (KerasRegularizer(name="penalty", layers=["hidden_1"], activity={"l2": 0.05}),
                      ActivityPenalty(name="penalty", layers=["hidden_1"], weight=0.05)):
        model = compose(tiny_network(seed=2), [component])
        histories.append(model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0).history)
    for key in ("loss/penalty", "loss"):
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
    # the factor is inside Keras' regularizer, so it is part of this component's term
    np.testing.assert_allclose(histories[0]["term/penalty"], 0.05 * np.array(histories[1]["term/penalty"]), rtol=1e-5)


def test_saved_model_reloads_with_its_regularizers(tmp_path, tiny_network, compose, regression_data):
    x, y = regression_data
    component = KerasRegularizer(name="regularizer", layers=["hidden_1"], kernel={"l1": 0.01}, activity={"l2": 0.1})
    model = compose(tiny_network(), [component])
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    results = loaded.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    expected = model.evaluate(x, y, batch_size=40, verbose=0, return_dict=True)
    assert "loss/other" not in results
    np.testing.assert_allclose(results["term/regularizer"], expected["term/regularizer"], rtol=1e-5)


def test_bad_options_are_config_errors(tiny_network):
    with pytest.raises(ConfigError, match=r"loss\.regularizer\.kernel\.l2: expected a finite number >= 0"):
        KerasRegularizer(name="regularizer", kernel={"l2": -1})
    with pytest.raises(ConfigError, match=r"loss\.regularizer\.kernel: expected a mapping with keys l1, l2"):
        KerasRegularizer(name="regularizer", kernel={"l3": 1})
    with pytest.raises(ConfigError, match=r"at least one non-zero"):
        KerasRegularizer(name="regularizer", activity={"l2": 0})
    network = tiny_network()
    with pytest.raises(ConfigError, match=r"layer 'conv_9' is not in the model"):
        KerasRegularizer(name="regularizer", layers=["conv_9"]).attach(network)
    inputs = keras.Input((5, 3))
    flat = keras.Model(inputs, keras.layers.Flatten(name="flat")(inputs))
    with pytest.raises(ConfigError) as info:
        KerasRegularizer(name="regularizer", layers=["flat"], kernel={"l2": 0.1}).attach(flat)
    assert str(info.value) == ("Invalid value for loss.regularizer.layers: expected layers that have a kernel (Dense, "
                               "Conv, GRU, LSTM, MultiHeadAttention, wrappers of them), got 'flat'")


def test_an_input_layer_is_refused_for_activity_factors_and_for_kernels(tiny_network, compose):
    with pytest.raises(ConfigError) as info:  # the activity tap after it would never be called
        compose(tiny_network(), [KerasRegularizer(name="regularizer", layers=["inputs"])])
    assert str(info.value) == ("Invalid value for loss.regularizer.layers: expected a layer that computes something "
                               "(an input layer's output is the data: name a layer after it, one of hidden_1, "
                               "hidden_2, output), got 'inputs'")
    with pytest.raises(ConfigError) as info:
        compose(tiny_network(), [KerasRegularizer(name="regularizer", layers=["inputs"], kernel={"l2": 0.1},
                                                  activity=None)])
    assert str(info.value) == ("Invalid value for loss.regularizer.layers: expected layers that have a kernel (Dense, "
                               "Conv, GRU, LSTM, MultiHeadAttention, wrappers of them), got 'inputs'")


def test_layers_whose_kernels_are_inside_them_are_regularized_as_keras_regularizers_of_their_parts_would():
    """A Bidirectional GRU (each direction's input kernel, as GRU(kernel_regularizer=…); not the
    recurrent kernels), an LSTM's cell, attention's four projections, a TimeDistributed Dense: the term
    against NumPy; the layers' parts are left as they were."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 3))
    branches = [keras.layers.Bidirectional(keras.layers.GRU(4), name="bi")(inputs),
                keras.layers.LSTM(2, name="lstm")(inputs),
                keras.layers.GlobalAveragePooling1D()(keras.layers.MultiHeadAttention(2, 3, name="mha")(inputs, inputs)),
                keras.layers.Flatten()(keras.layers.TimeDistributed(keras.layers.Dense(2), name="td")(inputs))]
    network = keras.Model(inputs, keras.layers.Concatenate()(branches))
    names = ["bi", "lstm", "mha", "td"]
    component = KerasRegularizer(name="regularizer", layers=names, kernel={"l1": 0.01, "l2": 0.02}, bias={"l2": 0.5},
                                 activity=None)
    component.attach(network)
    term = float(component.term(type("Context", (), {"network": network})()))
    expected = 0.0
    for name in names:
        for variable in network.get_layer(name).weights:
            w = np.asarray(variable.numpy(), np.float64)
            if variable.name == "kernel":
                expected += 0.01 * np.abs(w).sum() + 0.02 * (w ** 2).sum()
            elif variable.name == "bias":
                expected += 0.5 * (w ** 2).sum()
    kernels = [v.path for name in names for v in network.get_layer(name).weights if v.name == "kernel"]
    assert len(kernels) == 2 + 1 + 4 + 1
    np.testing.assert_allclose(term, expected, rtol=1e-5)
    network(np.zeros((2, 5, 3), "float32"))
    assert not network.losses  # nothing set on the layers' parts


def test_kernel_and_activity_factors_work_on_a_subclassed_network(regression_data):
    """The kernel term reads variables; the activity term taps ``hidden_1``'s output, in a subclassed
    network through its layer's call (:mod:`lossexp.training.call_taps`): both equal to NumPy."""
    import lossexp
    from conftest import subclassed_network

    x, y = regression_data
    network = subclassed_network("tanh", name="subnet")
    network(x[:2])
    w, b = (v.numpy().astype(np.float64) for v in network.get_layer("hidden_1").weights)
    model = lossexp.compose(network, [("regularizer", {"kernel": {"l2": 0.1}, "activity": None})])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    results = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    np.testing.assert_allclose(results["term/regularizer"], 0.1 * np.sum(w ** 2), rtol=1e-5)
    assert not network.losses
    built = subclassed_network("tanh", name="subnet")
    built(x[:2])  # one not built yet is refused before (tests/training/test_supervised.py)
    w, b = (v.numpy().astype(np.float64) for v in built.get_layer("hidden_1").weights)
    model = lossexp.compose(built, [("regularizer", {"activity": {"l2": 0.1}})])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    results = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    h = np.tanh(x.astype(np.float64) @ w + b)
    np.testing.assert_allclose(results["term/regularizer"], 0.1 * np.sum(h ** 2) / len(x), rtol=1e-5)


def test_a_layer_inside_a_nested_model_is_named_by_its_path(regression_data):
    """``backbone/hidden`` as ``activity`` and ``coef`` name it: its kernel and its output penalised, equal
    to NumPy (it was refused — "name 'backbone' or build the network flat" —, and naming the backbone
    penalises every kernel in it)."""
    from lossexp.training.supervised import compose

    x, y = regression_data
    keras.utils.set_random_seed(0)
    inner = keras.Input((4,))
    backbone = keras.Model(inner, keras.layers.Dense(3, name="proj")(
        keras.layers.Dense(6, activation="tanh", name="hidden")(inner)), name="backbone")
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1, name="output")(backbone(inputs)))
    component = KerasRegularizer(name="regularizer", layers=["backbone/hidden"], kernel={"l2": 0.1},
                                 activity={"l1": 0.01, "l2": 0.02})
    model = compose(network, [component])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mean_squared_error")
    kernel, bias = (v.numpy().astype(np.float64) for v in backbone.get_layer("hidden").weights)
    h = np.tanh(x[:8].astype(np.float64) @ kernel + bias)
    expected = 0.1 * np.sum(kernel ** 2) + (0.01 * np.sum(np.abs(h)) + 0.02 * np.sum(h ** 2)) / 8
    logs = model.evaluate(x[:8], y[:8], batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["term/regularizer"], expected, rtol=1e-5)
