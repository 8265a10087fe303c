"""Activity penalty: the tap is a pass-through, the term and its gradient match NumPy for every
norm and reduction, and the penalty reaches the optimizer in the compiled train step."""
from __future__ import annotations

import numpy as np
import pytest

import keras
import tensorflow as tf
from keras import ops

from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty, ActivityTap
from lossexp.losses.base import LossComponent, LossContext
from lossexp.training.rewire import insert_taps

NORMS = ["l2", "l1"]
REDUCTIONS = ["batch_mean", "sum", "mean"]


# --- the independent NumPy reference ---------------------------------------------------------
def np_penalty(h: np.ndarray, norm: str, reduction: str) -> float:
    elementwise = h ** 2 if norm == "l2" else np.abs(h)
    if reduction == "sum":
        return float(elementwise.sum())
    if reduction == "mean":
        return float(elementwise.mean())
    return float(elementwise.sum() / h.shape[0])


def np_penalty_grads(x: np.ndarray, h: np.ndarray, norm: str, reduction: str):
    """∂P/∂W and ∂P/∂b for P = penalty(tanh(xW + b))."""
    scale = {"sum": 1.0, "batch_mean": 1.0 / h.shape[0], "mean": 1.0 / h.size}[reduction]
    d_h = 2.0 * h if norm == "l2" else np.sign(h)
    d_z = scale * d_h * (1.0 - h ** 2)
    return np.asarray(x, np.float64).T @ d_z, d_z.sum(axis=0)


def tapped(network, component):
    component_taps = {layer: [tap] for layer, tap in component.insert_after().items()}
    rewired = insert_taps(network, component_taps)
    component.attach(rewired)
    return rewired


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("norm", NORMS)
def test_term_and_kernel_gradient_match_numpy(norm, reduction, tiny_network, np_forward, regression_data):
    x, y = regression_data
    xb, yb = x[:8], y[:8]
    component = ActivityPenalty(name="activity", layers=["hidden_1"], norm=norm, reduction=reduction)
    network = tapped(tiny_network(), component)
    hidden_1 = network.get_layer("hidden_1")

    with tf.GradientTape() as tape:
        y_pred = network(xb, training=True)
        term = component.term(LossContext(yb, y_pred, network, training=True))
    grad_kernel, grad_bias = tape.gradient(term, [hidden_1.kernel, hidden_1.bias])

    h = np_forward(network, xb)["hidden_1"]
    np.testing.assert_allclose(float(term), np_penalty(h, norm, reduction), rtol=1e-5)
    want_kernel, want_bias = np_penalty_grads(xb, h, norm, reduction)
    np.testing.assert_allclose(np.asarray(grad_kernel), want_kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad_bias), want_bias, rtol=1e-4, atol=1e-6)

    # The term applies in validation too, on the validation batch.
    y_val = network(x[8:24], training=False)
    val_term = component.term(LossContext(y[8:24], y_val, network, training=False))
    np.testing.assert_allclose(float(val_term), np_penalty(np_forward(network, x[8:24])["hidden_1"], norm, reduction),
                               rtol=1e-5)


def test_l2_kernel_gradient_matches_finite_differences(tiny_network, np_forward, regression_data):
    """A second, formula-free reference: central differences of the NumPy penalty."""
    x = regression_data[0][:8]
    component = ActivityPenalty(name="activity", layers=["hidden_1"], norm="l2", reduction="batch_mean")
    network = tapped(tiny_network(), component)
    kernel = network.get_layer("hidden_1").kernel
    with tf.GradientTape() as tape:
        network(x, training=True)
        term = component.term(LossContext(None, None, network, training=True))
    got = np.asarray(tape.gradient(term, kernel))

    w0 = np.asarray(kernel.numpy(), np.float64)
    b = np.asarray(network.get_layer("hidden_1").bias.numpy(), np.float64)
    eps = 1e-6
    numeric = np.zeros_like(w0)
    for idx in np.ndindex(*w0.shape):
        plus, minus = w0.copy(), w0.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (np_penalty(np.tanh(x @ plus + b), "l2", "batch_mean")
                        - np_penalty(np.tanh(x @ minus + b), "l2", "batch_mean")) / (2 * eps)
    np.testing.assert_allclose(got, numeric, rtol=1e-4, atol=1e-5)


def test_tap_is_a_pass_through(tiny_network, regression_data):
    x = regression_data[0]
    network = tiny_network()
    plain = network(x).numpy()
    component = ActivityPenalty(name="activity", layers=["hidden_1", "hidden_2"])
    rewired = tapped(network, component)
    names = [layer.name for layer in rewired.layers]
    assert names == ["inputs", "hidden_1", "activity_on_hidden_1", "hidden_2", "activity_on_hidden_2", "output"]
    assert all(isinstance(rewired.get_layer(f"activity_on_{n}"), ActivityTap) for n in ("hidden_1", "hidden_2"))
    # Same layer objects (same weights), identical outputs.
    assert rewired.get_layer("hidden_1") is network.get_layer("hidden_1")
    np.testing.assert_array_equal(rewired(x).numpy(), plain)
    hidden = keras.Model(network.input, network.get_layer("hidden_1").output)(x).numpy()
    tap_out = keras.Model(rewired.input, rewired.get_layer("activity_on_hidden_1").output)(x).numpy()
    np.testing.assert_array_equal(tap_out, hidden)


def test_term_sums_layers_and_reflects_only_the_last_forward_pass(tiny_network, np_forward, regression_data):
    x = regression_data[0]
    component = ActivityPenalty(name="activity", layers=["hidden_1", "hidden_2"], norm="l1", reduction="sum")
    network = tapped(tiny_network(), component)
    network(x[:20], training=True)
    network(x[20:28], training=True)  # a second call replaces the first call's losses
    term = float(component.term(LossContext(None, None, network, training=True)))
    outs = np_forward(network, x[20:28])
    expected = np_penalty(outs["hidden_1"], "l1", "sum") + np_penalty(outs["hidden_2"], "l1", "sum")
    np.testing.assert_allclose(term, expected, rtol=1e-5)


@pytest.mark.parametrize("reduction, factor", [("batch_mean", 1.0), ("mean", 1.0), ("sum", 2.0)])
def test_batch_size_dependence_of_reductions(reduction, factor, tiny_network, regression_data):
    x = regression_data[0][:8]
    component = ActivityPenalty(name="activity", layers=["hidden_1"], reduction=reduction)
    network = tapped(tiny_network(), component)

    def term_on(batch):
        network(batch, training=True)
        return float(component.term(LossContext(None, None, network, training=True)))

    np.testing.assert_allclose(term_on(np.concatenate([x, x])), factor * term_on(x), rtol=1e-5)


def test_penalty_reaches_the_optimizer_in_the_train_step(tiny_network, compose, np_forward, regression_data):
    """One SGD step with the penalty minus one without it = −lr·weight·∂P/∂W (NumPy)."""
    x, y = regression_data[0][:8], regression_data[1][:8]
    weight, lr = 0.5, 0.1
    with_penalty = compose(tiny_network(seed=7), [ActivityPenalty(name="activity", weight=weight, layers=["hidden_1"])],
                           learning_rate=lr)
    without = compose(tiny_network(seed=7), [], learning_rate=lr)
    h = np_forward(with_penalty.network, x)["hidden_1"]
    w_before = with_penalty.network.get_layer("hidden_1").kernel.numpy().astype(np.float64)
    np.testing.assert_array_equal(w_before, without.network.get_layer("hidden_1").kernel.numpy())

    logs = with_penalty.train_on_batch(x, y, return_dict=True)
    without.train_on_batch(x, y)

    np.testing.assert_allclose(logs["term/activity"], np_penalty(h, "l2", "batch_mean"), rtol=1e-5)
    np.testing.assert_allclose(logs["loss/activity"], weight * np_penalty(h, "l2", "batch_mean"), rtol=1e-5)
    grad_kernel, grad_bias = np_penalty_grads(x, h, "l2", "batch_mean")
    layer_a, layer_b = with_penalty.network.get_layer("hidden_1"), without.network.get_layer("hidden_1")
    np.testing.assert_allclose(layer_a.kernel.numpy() - layer_b.kernel.numpy(), -lr * weight * grad_kernel,
                               rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(layer_a.bias.numpy() - layer_b.bias.numpy(), -lr * weight * grad_bias,
                               rtol=1e-3, atol=1e-7)


class _Consistency(LossComponent):
    """A term that calls the network again, on a shifted input (a consistency or smoothness term)."""

    def term(self, context):
        shifted = context.network(ops.convert_to_tensor(np.full((8, 4), 5.0, "float32")), training=context.training)
        return ops.mean(ops.square(shifted - context.y_pred))


@pytest.mark.parametrize("first", ["consistency", "activity"])
def test_a_term_calling_the_network_again_leaves_the_taps_penalty_that_of_the_batch(first, tiny_network, compose,
                                                                                  np_forward, regression_data):
    """The second forward pass (on other inputs) runs the taps too; the activity term stays the
    batch's, in training and validation, whichever component comes first."""
    x, y = regression_data[0][:8], regression_data[1][:8]
    components = {"consistency": _Consistency(name="consistency", weight=0.01),
                  "activity": ActivityPenalty(name="activity", layers=["hidden_1"])}
    model = compose(tiny_network(seed=7), sorted(components.values(), key=lambda c: c.name != first))
    expected = np_penalty(np_forward(model.network, x)["hidden_1"], "l2", "batch_mean")
    evaluated = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["term/activity"], expected, rtol=1e-5)
    np.testing.assert_allclose(model.train_on_batch(x, y, return_dict=True)["term/activity"], expected, rtol=1e-5)


def test_unknown_layer_is_a_config_error_listing_layers(tiny_network):
    component = ActivityPenalty(name="act", layers=["hidden_1", "dense_9"])
    with pytest.raises(ConfigError) as info:
        component.attach(tiny_network())
    message = str(info.value)
    assert "loss.act.layers" in message and "'dense_9'" in message
    assert "inputs, hidden_1, hidden_2, output" in message
    assert "\n" not in message and "default" not in message


def test_the_default_layer_missing_from_a_network_of_ones_own_says_it_is_the_default():
    import keras

    inputs = keras.Input((3,), name="inputs")  # named: Keras' default name counts the inputs made before
    network = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(4, name="body")(inputs)))
    with pytest.raises(ConfigError) as info:
        ActivityPenalty(name="activity").attach(network)
    assert str(info.value) == ("Invalid value for loss.activity.layers: layer 'hidden_1' is not in the model (it is "
                               "loss.activity.layers's default, a layer of lossexp's own mlp and cnn: name a layer "
                               "of yours); its layers are inputs, body, out")


def test_tap_config_round_trip():
    tap = ActivityTap("l1", "sum", name="activity_on_hidden_1")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tap))
    assert isinstance(clone, ActivityTap)
    assert (clone.norm, clone.reduction, clone.name) == ("l1", "sum", "activity_on_hidden_1")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_a_masked_sequences_padding_is_left_out_of_the_penalty(reduction):
    """Embedding(mask_zero=True) → LSTM: the tap after the LSTM sees its mask; NumPy on the real
    steps only (the LSTM's outputs at padded steps repeat its last state)."""
    keras.utils.set_random_seed(0)
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2], [5, 0, 0, 0, 0]])
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(9, 3, mask_zero=True)(inputs)
    hidden = keras.layers.LSTM(4, return_sequences=True, name="hidden")(embedded)
    network = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    states = np.asarray(keras.Model(inputs, hidden)(tokens), np.float64)
    component = ActivityPenalty(name="act", layers=["hidden"], reduction=reduction)
    rewired = tapped(network, component)
    y_pred = rewired(tokens, training=True)
    real = (tokens != 0)[..., None]
    squares = states ** 2 * real
    expected = {"batch_mean": squares.sum() / 3, "sum": squares.sum(), "mean": squares.sum() / (real.sum() * 4)}
    term = component.term(LossContext(None, y_pred, rewired, training=True))
    np.testing.assert_allclose(float(term), expected[reduction], rtol=1e-5)


def test_a_layer_of_several_outputs_is_penalised_on_each_as_keras_activity_regularizer_does():
    """LSTM(return_sequences, return_state) behind a mask: the term is the sequence's penalty over its
    real steps plus the two states' (which have no mask), in NumPy (Keras' activity_regularizer also
    adds one penalty per output tensor)."""
    keras.utils.set_random_seed(0)
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2], [5, 0, 0, 0, 0]])
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(9, 3, mask_zero=True)(inputs)
    lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True, name="hidden")
    sequence, state_h, state_c = lstm(embedded)
    network = keras.Model(inputs, keras.layers.Dense(2)(state_h))
    outputs = [np.asarray(t, np.float64) for t in keras.Model(inputs, [sequence, state_h, state_c])(tokens)]
    component = ActivityPenalty(name="act", layers=["hidden"])
    rewired = tapped(network, component)
    rewired(tokens, training=True)
    real = (tokens != 0)[..., None]
    expected = ((outputs[0] ** 2 * real).sum() + (outputs[1] ** 2).sum() + (outputs[2] ** 2).sum()) / 3
    term = component.term(LossContext(None, None, rewired, training=True))
    np.testing.assert_allclose(float(term), expected, rtol=1e-5)


def test_an_input_layer_is_refused_in_one_line_naming_the_layers_that_compute(tiny_network, compose):
    """A tap after an input layer is never called (its output is the data): refused, not a term that fails."""
    with pytest.raises(ConfigError) as info:
        compose(tiny_network(), [ActivityPenalty(name="activity", layers=["hidden_1", "inputs"])])
    assert str(info.value) == ("Invalid value for loss.activity.layers: expected a layer that computes something (an "
                               "input layer's output is the data: name a layer after it, one of hidden_1, hidden_2, "
                               "output), got 'inputs'")


def test_a_nested_models_input_layer_is_refused_naming_the_layers_beside_it(compose):
    features = keras.Input((4,), name="features")
    backbone = keras.Model(features, keras.layers.Dense(8, name="hidden")(features), name="backbone")
    inputs = keras.Input((4,), name="x")
    network = keras.Model(inputs, keras.layers.Dense(1, name="out")(backbone(inputs)))
    with pytest.raises(ConfigError) as info:
        compose(network, [ActivityPenalty(name="activity", layers=["backbone/features"])])
    assert str(info.value) == ("Invalid value for loss.activity.layers: expected a layer that computes something (an "
                               "input layer's output is the data: name a layer after it, one of backbone/hidden), "
                               "got 'backbone/features'")


def test_a_layer_called_twice_is_penalised_on_each_calls_output_as_keras_activity_regularizer_does():
    """A shared layer (one Dense applied twice, its weights tied): the term is the penalty of each
    call's output, summed, in NumPy — and the sum of the losses Keras' ``activity_regularizer`` adds
    on that layer, one per call."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    inputs = keras.Input((3,))
    shared = keras.layers.Dense(3, activation="tanh", name="shared")
    network = keras.Model(inputs, keras.layers.Dense(2)(shared(shared(inputs))))
    kernel, bias = (np.asarray(w, np.float64) for w in shared.get_weights())
    first = np.tanh(x @ kernel + bias)
    second = np.tanh(first @ kernel + bias)
    component = ActivityPenalty(name="act", layers=["shared"])
    rewired = tapped(network, component)
    rewired(x, training=True)
    term = float(component.term(LossContext(None, None, rewired, training=True)))
    np.testing.assert_allclose(term, ((first ** 2).sum() + (second ** 2).sum()) / 5, rtol=1e-5)
    shared.activity_regularizer = keras.regularizers.L2(1.0)
    network(x, training=True)
    np.testing.assert_allclose(term, sum(float(loss) for loss in network.losses), rtol=1e-5)


def test_a_penalty_on_a_layer_no_trainable_weight_reaches_is_warned_of(capsys):
    """A frozen backbone's layer (``trainable=False`` from the input up to it): its output is the same
    whatever the network learns, so the term is a constant that moves nothing — said in one line, as
    ``cross_layer`` says it of a frozen kernel; a layer after the backbone, which the training moves, is not."""
    import lossexp
    from lossexp.training.network_checks import check_terms

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden")],
                                name="backbone")
    backbone.trainable = False
    inputs = keras.Input((4,))
    head = keras.layers.Dense(8, activation="tanh", name="head")(backbone(inputs))
    network = keras.Model(inputs, keras.layers.Dense(1, name="output")(head))
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 1), "float32")
    check_terms(lossexp.compose(network, [("activity", {"layers": ["backbone/hidden"]})]), x, y)
    assert capsys.readouterr().err == (
        "lossexp: warning: loss.activity reads layer(s) backbone/hidden, which no trainable weight reaches "
        "(trainable=False up to them): the term is a constant and moves none of the network's weights\n")
    check_terms(lossexp.compose(network, [("activity", {"layers": ["head"]})]), x, y)
    assert capsys.readouterr().err == ""


def test_in_a_subclassed_network_the_term_is_keras_activity_regularizer_on_the_same_layer():
    """Keras 3 divides an ``activity_regularizer``'s penalty by the batch size: L2(w) is ``w·term`` of
    ``norm: l2, reduction: batch_mean`` (NumPy), and a subclassed network's tapped layer
    (:mod:`lossexp.training.call_taps`) gives ``loss/activity`` equal to that ``loss/other``."""
    from conftest import subclassed_network
    from lossexp.training.supervised import compose

    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    layer = keras.layers.Dense(3, activation="tanh", activity_regularizer=keras.regularizers.L2(0.01))
    h = np.asarray(layer(x))
    assert float(layer.losses[0]) == pytest.approx(0.01 * np.mean(np.sum(h.astype("float64") ** 2, axis=1)), rel=1e-6)
    logs = []
    for tapped in (True, False):
        keras.utils.set_random_seed(0)
        network = subclassed_network("tanh", name="mine")
        if not tapped:
            network.hidden_1.activity_regularizer = keras.regularizers.L2(0.01)
        network(x)
        model = compose(network, [ActivityPenalty(name="activity", weight=0.01, layers=["hidden_1"])] if tapped else [])
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        logs.append(model.evaluate(x, x[:, :1], batch_size=5, verbose=0, return_dict=True))
    assert "loss/other" not in logs[0]
    assert logs[0]["loss/activity"] == pytest.approx(logs[1]["loss/other"], rel=1e-6)
    assert logs[0]["loss"] == pytest.approx(logs[1]["loss"], rel=1e-6)
