"""Taps inserted into a functional network: the same layers and weights, the same predictions, the
inputs in the structure the network takes (one tensor, a list or a dict of named inputs), and each
tap's penalty the NumPy value of the layer it follows."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from lossexp.losses.activity import ActivityPenalty, ActivityTap
from lossexp.losses.base import LossContext
from lossexp.training.rewire import insert_taps, with_layer_outputs


def two_input_network(form: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(5, name="dense_a")(a), keras.layers.Dense(5, name="dense_b")(b)])
    hidden = keras.layers.Dense(6, activation="tanh", name="hidden")(joined)
    inputs = {"a": a, "b": b} if form == "dict" else [a, b]
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


@pytest.mark.parametrize("form", ["dict", "list"])
def test_a_tap_into_a_network_of_several_inputs_keeps_its_inputs_weights_and_predictions(form):
    network = two_input_network(form)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 3)).astype("float32")
    x = {"a": a, "b": b} if form == "dict" else [a, b]
    component = ActivityPenalty(name="activity", layers=["hidden"], norm="l2", reduction="batch_mean")
    rewired = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    component.attach(rewired)

    assert type(rewired.input) is type(network.input)
    if form == "dict":
        assert set(rewired.input) == {"a", "b"}
    assert all(rewired.get_layer(layer.name) is layer for layer in network.layers if layer.name not in ("a", "b"))
    y_pred = rewired(x, training=True)
    np.testing.assert_allclose(np.asarray(y_pred), np.asarray(network(x)), rtol=1e-6)

    layers = {name: network.get_layer(name) for name in ("dense_a", "dense_b", "hidden")}
    weights = {name: [np.asarray(w, np.float64) for w in layer.get_weights()] for name, layer in layers.items()}
    joined = np.concatenate([a @ weights["dense_a"][0] + weights["dense_a"][1],
                             b @ weights["dense_b"][0] + weights["dense_b"][1]], axis=1)
    hidden = np.tanh(joined @ weights["hidden"][0] + weights["hidden"][1])
    term = component.term(LossContext(None, y_pred, rewired, training=True))
    np.testing.assert_allclose(float(term), float((hidden ** 2).sum() / len(hidden)), rtol=1e-5)


@pytest.mark.parametrize("declared_input", [True, False])
def test_a_tap_into_a_sequential_network_follows_its_layer(declared_input):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).normal(size=(8, 5)).astype("float32")
    layers = [keras.layers.Dense(6, activation="tanh", name="hidden"), keras.layers.Dense(1, name="out")]
    network = keras.Sequential(([keras.Input((5,))] if declared_input else []) + layers, name="stack")
    if not declared_input:
        network(x)  # built on the data, as lossexp builds a network without an Input
    component = ActivityPenalty(name="activity", layers=["hidden"], norm="l1", reduction="sum")
    rewired = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    component.attach(rewired)

    assert rewired.name == "stack" and rewired.get_layer("hidden") is network.get_layer("hidden")
    y_pred = rewired(x, training=True)
    np.testing.assert_allclose(np.asarray(y_pred), np.asarray(network(x)), rtol=1e-6)
    kernel, bias = (np.asarray(w, np.float64) for w in network.get_layer("hidden").get_weights())
    term = component.term(LossContext(None, y_pred, rewired, training=True))
    np.testing.assert_allclose(float(term), float(np.abs(np.tanh(x @ kernel + bias)).sum()), rtol=1e-5)


def test_a_rewired_networks_layer_outputs_are_those_of_its_own_graph():
    """The layers of a rewired network also belong to the original graph: a view of its intermediate
    outputs (closure reads them) must come from the rewired graph, taps and all."""
    network = two_input_network("dict")
    rng = np.random.default_rng(3)
    x = {"a": rng.normal(size=(8, 4)).astype("float32"), "b": rng.normal(size=(8, 3)).astype("float32")}
    expected = keras.Model(network.input, network.get_layer("hidden").output)(x)
    component = ActivityPenalty(name="activity", layers=["hidden"])
    rewired = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    view = with_layer_outputs(rewired, ["hidden", "dense_b"])
    outputs = view(x, training=True)
    np.testing.assert_allclose(np.asarray(outputs["hidden"]), np.asarray(expected), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(outputs["y_pred"]), np.asarray(network(x)), rtol=1e-6)
    assert set(outputs) == {"y_pred", "hidden", "dense_b"} and len(view.losses) == 1  # the tap's penalty


def test_a_tap_after_a_masking_layer_passes_the_mask_on():
    """An activity tap after ``Embedding(mask_zero=True)``: the LSTM behind it still skips the padding."""
    import warnings

    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    hidden = keras.layers.LSTM(3, name="lstm")(keras.layers.Embedding(20, 4, mask_zero=True, name="emb")(tokens))
    network = keras.Model(tokens, keras.layers.Dense(1, name="out")(hidden))
    padded = np.array([[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0]])
    component = ActivityPenalty(layers=["emb"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when a layer drops a mask
        tapped = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
        np.testing.assert_allclose(tapped.predict(padded, verbose=0), network.predict(padded, verbose=0), rtol=1e-6)
    trimmed = network.predict(padded[:, :3], verbose=0)  # the padding removed: the mask is what makes it equal
    np.testing.assert_allclose(network.predict(padded, verbose=0)[0], trimmed[0], rtol=1e-5)


def test_a_tap_after_a_shared_layer_sums_the_penalty_of_every_use():
    """A siamese network's shared ``hidden`` is called on two inputs: the activity penalty is the
    NumPy sum over both outputs (Keras sums a shared layer's add_loss terms the same way), once per
    forward pass however many passes ran before."""
    keras.utils.set_random_seed(0)
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    shared = keras.layers.Dense(4, name="hidden")
    both = keras.layers.Concatenate()([shared(a), shared(b)])
    network = keras.Model({"a": a, "b": b}, keras.layers.Dense(1, name="out")(both))
    component = ActivityPenalty(layers=["hidden"])
    tapped = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    x = {"a": np.random.default_rng(0).normal(size=(5, 3)).astype("float32"),
         "b": np.random.default_rng(1).normal(size=(5, 3)).astype("float32")}
    tapped(x)
    tapped(x)
    term = float(component.term(LossContext(y_true=None, y_pred=None, network=tapped, training=True)))
    kernel, bias = shared.kernel.numpy(), shared.bias.numpy()
    expected = sum(np.sum((x[k] @ kernel + bias) ** 2) for k in ("a", "b")) / 5  # l2, batch_mean
    assert term == pytest.approx(expected, rel=1e-5)


def test_a_tap_inside_a_nested_model_shared_by_two_inputs_sums_both_uses():
    """A siamese network whose shared tower is a nested model: the tap after tower/hidden is
    inserted once into the rebuilt tower and its penalty sums both uses, as NumPy computes."""
    from lossexp.losses.layer_paths import find_layer

    keras.utils.set_random_seed(0)
    inner = keras.Input((3,))
    tower = keras.Model(inner, keras.layers.Dense(2, name="proj")(keras.layers.Dense(4, name="hidden")(inner)),
                        name="tower")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    network = keras.Model({"a": a, "b": b}, keras.layers.Dense(1, name="out")(
        keras.layers.Concatenate()([tower(a), tower(b)])))
    component = ActivityPenalty(layers=["tower/hidden"])
    tapped = insert_taps(network, {layer: [tap] for layer, tap in component.insert_after().items()})
    assert isinstance(find_layer(tapped, component.tap_path("tower/hidden")), ActivityTap)  # beside tower/hidden
    assert [layer.name for layer in tapped.layers].count("tower") == 1
    x = {"a": np.random.default_rng(0).normal(size=(5, 3)).astype("float32"),
         "b": np.random.default_rng(1).normal(size=(5, 3)).astype("float32")}
    np.testing.assert_allclose(tapped(x), network(x), rtol=1e-6)
    term = float(component.term(LossContext(y_true=None, y_pred=None, network=tapped, training=True)))
    hidden = tower.get_layer("hidden")
    expected = sum(np.sum((x[k] @ hidden.kernel.numpy() + hidden.bias.numpy()) ** 2) for k in ("a", "b")) / 5
    assert term == pytest.approx(expected, rel=1e-5)


def test_reading_the_output_of_a_shared_layer_is_one_line_naming_it():
    from lossexp.errors import ConfigError
    from lossexp.losses.closure import Closure
    from lossexp.training.output_readers import SharedLayer
    from lossexp.training.supervised import compose

    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    shared = keras.layers.Dense(4, name="hidden")
    network = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([shared(a), shared(b)])))
    with pytest.raises(SharedLayer, match="layer 'hidden' is called 2 times"):
        with_layer_outputs(network, ["hidden"])
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.closure: expected a layer the network calls once "
                                          r".* got \"'hidden', called 2 times\"$"):
        compose(network, [Closure(layer="hidden", name="closure")])


def test_reading_the_output_of_a_layer_of_several_tensors_is_one_line_naming_it():
    from lossexp.errors import ConfigError
    from lossexp.losses.closure import Closure
    from lossexp.training.output_readers import SeveralOutputs
    from lossexp.training.supervised import compose

    inputs = keras.Input((6, 2))
    _, state_h, _ = keras.layers.LSTM(4, return_sequences=True, return_state=True, name="lstm")(inputs)
    network = keras.Model(inputs, keras.layers.Dense(1)(state_h))
    with pytest.raises(SeveralOutputs, match="layer 'lstm' returns 3 tensors"):
        with_layer_outputs(network, ["lstm"])
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.closure: expected a layer of one output tensor "
                                          r".*Identity.* got \"'lstm', which returns 3 tensors\"$"):
        compose(network, [Closure(layer="lstm", name="closure")])


def test_keras_warning_of_dict_inputs_keyed_unlike_their_names_is_the_users_once_not_again_per_rebuild():
    import warnings

    from lossexp.training.class_weights import output_mask

    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dense(4, name="hidden")(keras.layers.Concatenate()([a, b]))
    with pytest.warns(UserWarning, match="all keys in the dict must match the names"):  # the user's, once
        network = keras.Model({"a_in": a, "b_in": b}, keras.layers.Dense(3, name="out")(hidden))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        insert_taps(network, {"hidden": [ActivityTap(ActivityPenalty(name="activity"), name="tap")]})
        with_layer_outputs(network, ["hidden"])
        output_mask(network)
    assert not [w for w in caught if "must match the names" in str(w.message)]
