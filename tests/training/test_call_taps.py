"""Loss taps in a subclassed network (``lossexp.training.call_taps``): a tapped layer's ``call`` runs
its taps, which give the term a graph's tap gives — checked against NumPy and against the same
weights in a functional network, one SGD step included — masks and nested models included; tapped
again, a layer's taps are replaced; a saved composed model reloads tapped; untapped, the network is
as it was."""
import keras
import numpy as np
import pytest

from conftest import masked_tagger
from lossexp.losses.activity import ActivityPenalty
from lossexp.losses.base import LossTap
from lossexp.training.call_taps import has_graph, remove_taps
from lossexp.training.supervised import compose


@keras.saving.register_keras_serializable(package="lossexp_tests")
class TwoLayers(keras.Model):
    """A subclassed network: ``hidden`` (tanh) then ``output``; ``backbone``: ``hidden`` is a Dense
    inside a functional model the network holds."""

    def __init__(self, backbone: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        hidden = keras.layers.Dense(6, activation="tanh", name="hidden")
        if backbone:
            inputs = keras.Input((4,))
            self.body = keras.Model(inputs, hidden(inputs), name="body")
        else:
            self.body = hidden
        self.out = keras.layers.Dense(1, name="output")

    def call(self, x):
        return self.out(self.body(x))

    def get_config(self):
        return {**super().get_config(), "backbone": self.backbone}


def built(backbone: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    network = TwoLayers(backbone=backbone, name="mine")
    network(np.zeros((2, 4), "float32"))
    return network


def evaluated(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict:
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    return model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)


def hidden_output(network: keras.Model, x: np.ndarray, path: str) -> np.ndarray:
    layer = network.get_layer("body").get_layer("hidden") if "/" in path else network.get_layer("hidden")
    kernel, bias = (v.numpy().astype(np.float64) for v in layer.weights)
    return np.tanh(x.astype(np.float64) @ kernel + bias)


@pytest.mark.parametrize("backbone", [False, True])
def test_a_subclassed_networks_tapped_layer_gives_the_numpy_activity_term(regression_data, backbone):
    """``activity`` on ``hidden`` (or ``body/hidden``, a layer of a functional model the network holds):
    Σ h² / batch, as NumPy computes it (it was one line refusing a subclassed network)."""
    x, y = regression_data
    network = built(backbone)
    path = "body/hidden" if backbone else "hidden"
    model = compose(network, [ActivityPenalty(name="activity", layers=[path], weight=0.5)])
    assert not has_graph(network)
    h = hidden_output(network, x, path)
    logs = evaluated(model, x, y)
    np.testing.assert_allclose(logs["term/activity"], np.sum(h ** 2) / len(x), rtol=1e-5)
    np.testing.assert_allclose(logs["loss/activity"], 0.5 * np.sum(h ** 2) / len(x), rtol=1e-5)
    assert "loss/other" not in logs  # the tap's loss is the component's, not the network's own


def test_one_sgd_step_moves_a_subclassed_network_as_the_same_functional_network(regression_data):
    """The gradient through the tap: after one SGD step of task + activity the subclassed network's
    weights are the functional network's of the same weights."""
    x, y = regression_data
    subclassed = built()
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(1, name="output")(
        keras.layers.Dense(6, activation="tanh", name="hidden")(inputs)))
    functional.set_weights(subclassed.get_weights())
    after = []
    for network in (subclassed, functional):
        model = compose(network, [ActivityPenalty(name="activity", layers=["hidden"], weight=0.5)])
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
        after.append(network.get_weights())
    for mine, graph in zip(*after):
        np.testing.assert_allclose(mine, graph, rtol=1e-5, atol=1e-7)
    assert not np.allclose(after[0][0], built().get_weights()[0])  # the step moved it


def test_a_masked_sequence_is_penalised_on_its_real_steps_only():
    """A subclassed network of ``Embedding(mask_zero=True)`` and an ``LSTM(return_sequences=True)``:
    the tap gets the LSTM output's mask (Keras sets it after ``call``; the wrapped ``call`` computes it)."""

    network, x, h = masked_tagger()
    mask = (x > 0).astype(np.float64)[..., None]
    expected = np.sum(h ** 2 * mask) / len(x)
    model = compose(network, [ActivityPenalty(name="activity", layers=["rnn"])])
    logs = evaluated(model, x, np.zeros((3, 5, 1), "float32"))
    np.testing.assert_allclose(logs["term/activity"], expected, rtol=1e-5)
    unmasked = np.sum(h ** 2) / len(x)
    assert abs(unmasked - expected) > 1e-3 * expected  # the padding's steps would have counted


def test_tapped_again_a_layer_has_the_new_taps_only(regression_data):
    """A network composed again (a notebook fitting it again with other options): the new term, one tap."""
    x, y = regression_data
    network = built()
    compose(network, [ActivityPenalty(name="activity", layers=["hidden"], norm="l2")])
    model = compose(network, [ActivityPenalty(name="activity", layers=["hidden"], norm="l1")])
    h = hidden_output(network, x, "hidden")
    np.testing.assert_allclose(evaluated(model, x, y)["term/activity"], np.sum(np.abs(h)) / len(x), rtol=1e-5)
    assert [layer.name for layer in network.layers if isinstance(layer, LossTap)] == ["activity_on_hidden"]
    network(x)
    assert len(network.losses) == 1


def test_a_saved_composed_model_reloads_with_its_taps(regression_data, tmp_path):
    x, y = regression_data
    model = compose(built(), [ActivityPenalty(name="activity", layers=["hidden"], weight=0.5)],
                    task_loss="mean_squared_error")
    before = evaluated(model, x, y)
    model.save(tmp_path / "composed.keras")
    reloaded = keras.saving.load_model(tmp_path / "composed.keras")
    after = reloaded.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    np.testing.assert_allclose(after["term/activity"], before["term/activity"], rtol=1e-6)
    np.testing.assert_allclose(after["loss"], before["loss"], rtol=1e-6)


def test_untapped_the_network_is_as_it_was(regression_data):
    x, _ = regression_data
    network = built()
    expected = network(x).numpy()
    compose(network, [ActivityPenalty(name="activity", layers=["hidden"])])
    remove_taps(network)
    assert not [layer for layer in network._flatten_layers() if isinstance(layer, LossTap)]
    assert "call" not in vars(network.get_layer("hidden"))
    np.testing.assert_array_equal(network(x).numpy(), expected)
    assert not network.losses


def test_a_subclassed_block_inside_a_functional_network_is_tapped_through_its_path(regression_data):
    """``block/hidden``: the graph is rebuilt around the block, whose layer's call is tapped."""
    x, y = regression_data
    block = built()
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1, name="head")(block(inputs)))
    model = compose(network, [ActivityPenalty(name="activity", layers=["mine/hidden"])])
    h = hidden_output(block, x, "hidden")
    np.testing.assert_allclose(evaluated(model, x, y)["term/activity"], np.sum(h ** 2) / len(x), rtol=1e-5)
