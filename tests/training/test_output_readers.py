"""A subclassed network's layer outputs for the components that read them
(``lossexp.training.output_readers``): the same terms and the same SGD step as the functional network
of the same weights, a masked sequence's too; a layer the term cannot read is one line naming it."""
import keras
import numpy as np
import pytest

from conftest import masked_tagger, subclassed_heads
from lossexp.errors import ConfigError
from lossexp.losses.aux_output import AuxiliaryOutput
from lossexp.losses.closure import Closure
from lossexp.losses.kl import KLDivergence
from lossexp.training.supervised import compose


class Encoder(keras.Model):
    """``hidden_1`` (tanh), then ``z_mean`` and ``z_log_var`` from it, and ``output`` of their sum."""

    def __init__(self) -> None:
        super().__init__(name="encoder")
        self.hidden_1 = keras.layers.Dense(6, activation="tanh", name="hidden_1")
        self.z_mean = keras.layers.Dense(2, name="z_mean")
        self.z_log_var = keras.layers.Dense(2, name="z_log_var")
        self.out = keras.layers.Dense(1, name="output")

    def call(self, x):
        h = self.hidden_1(x)
        return self.out(keras.ops.concatenate([self.z_mean(h), self.z_log_var(h)], axis=-1))


def both_networks():
    """The subclassed :class:`Encoder` and the functional network of the same layers' weights."""
    keras.utils.set_random_seed(0)
    subclassed = Encoder()
    subclassed(np.zeros((2, 4), "float32"))
    inputs = keras.Input((4,))
    h = keras.layers.Dense(6, activation="tanh", name="hidden_1")(inputs)
    joined = keras.layers.Concatenate()([keras.layers.Dense(2, name="z_mean")(h), keras.layers.Dense(2, name="z_log_var")(h)])
    functional = keras.Model(inputs, keras.layers.Dense(1, name="output")(joined))
    for name in ("hidden_1", "z_mean", "z_log_var", "output"):
        functional.get_layer(name).set_weights(subclassed.get_layer(name).get_weights())
    return subclassed, functional


def components():
    return [Closure(name="closure", layer="hidden_1", fn="error_weighted", weight=0.3),
            KLDivergence(name="kl", weight=0.2), AuxiliaryOutput(name="aux_output", layer="z_mean", weight=0.1)]


def test_the_read_terms_and_one_sgd_step_are_the_functional_networks(regression_data):
    """``closure`` (hidden_1), ``kl`` (z_mean, z_log_var) and ``aux_output`` (z_mean) read a subclassed
    network's layers (each was one line refusing it): the same values as the functional network of
    the same weights, and after one SGD step the same weights (the gradient flows through the reads)."""
    x, y = regression_data
    logs, weights = [], []
    for network in both_networks():
        model = compose(network, components())
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        logs.append(model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True))
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
        weights.append(network.get_weights())
    for key in ("term/closure", "term/kl", "term/aux_output", "loss"):
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-6)
    h = np.tanh(x.astype(np.float64) @ both_networks()[0].get_layer("hidden_1").kernel.numpy()
                + both_networks()[0].get_layer("hidden_1").bias.numpy())
    assert logs[0]["term/closure"] != pytest.approx(np.mean(h ** 2), rel=1e-3)  # error-weighted, not plain
    for mine, graph in zip(*weights):
        np.testing.assert_allclose(mine, graph, rtol=1e-5, atol=1e-7)


def test_a_masked_sequences_read_output_keeps_its_mask():
    """``aux_output`` on an ``LSTM(return_sequences=True)`` after ``Embedding(mask_zero=True)``: the
    padded steps left out, as in the functional network (NumPy: Σ over the real steps of h²)."""

    network, x, h = masked_tagger()
    real = (x > 0)[..., None]
    model = compose(network, [AuxiliaryOutput(name="aux_output", layer="rnn", loss="sum_squares")])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = model.evaluate(x, np.zeros((3, 5, 1), "float32"), batch_size=3, verbose=0, return_dict=True)
    per_example = np.sum(h ** 2 * real, axis=(1, 2))
    np.testing.assert_allclose(logs["term/aux_output"], np.mean(per_example), rtol=1e-5)


class Twice(keras.Model):
    """``hidden_1`` called on the input and on its own output; ``spare`` never called."""

    def __init__(self) -> None:
        super().__init__(name="twice")
        self.hidden_1 = keras.layers.Dense(4, name="hidden_1")
        self.spare = keras.layers.Dense(4, name="spare")
        self.out = keras.layers.Dense(1, name="output")

    def call(self, x):
        return self.out(self.hidden_1(self.hidden_1(x)))


@pytest.mark.parametrize("layer, message", [
    ("hidden_1", r"^Invalid value for loss.closure: expected a layer the network calls once .* got \"'hidden_1', "
                 r"called 2 times\"$"),
    ("spare", r"^Invalid value for loss.closure: expected a layer twice's call\(\) calls \(its output is read\), "
              r"got \"'spare', which its forward pass does not call\"$"),
])
def test_a_layer_that_cannot_be_read_is_one_line_on_the_first_forward_pass(regression_data, layer, message):
    x, y = regression_data
    network = Twice()
    network(x[:2])
    model = compose(network, [Closure(name="closure", layer=layer)])
    with pytest.raises(ConfigError, match=message):
        model.forward(x[:4], training=False)


def test_a_subclassed_networks_layers_of_two_shapes_are_one_line_for_kl(regression_data):
    """``kl``'s layers must be of one shape: a subclassed network's too, as it is composed."""
    x, _ = regression_data
    network = Encoder()
    network(x[:2])
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.kl.log_var_layer: expected a layer with the "
                                          r"output shape of hidden_1 \(None, 6\), got 'z_mean \(None, 2\)'$"):
        compose(network, [KLDivergence(name="kl", mean_layer="hidden_1", log_var_layer="z_mean")])


class Sequence(keras.Model):
    """Embedding, LSTM (sequences), an Activation (no weights: not built on a shape) and a Dense."""

    def __init__(self) -> None:
        super().__init__(name="sequence")
        self.embed = keras.layers.Embedding(10, 3, name="embed")
        self.rnn = keras.layers.LSTM(4, return_sequences=True, name="rnn")
        self.act = keras.layers.Activation("relu", name="act")
        self.unused = keras.layers.Activation("relu", name="unused")
        self.out = keras.layers.Dense(2, name="output")

    def call(self, x):
        return self.out(self.act(self.rnn(self.embed(x))))


def test_a_layers_output_shape_is_the_functional_networks_and_reading_it_leaves_no_tap():
    """``LossComponent.output_shape`` (a state sized by a layer's width, in ``attach``) of a subclassed
    network's layers equals ``layer.output.shape`` of the functional network of the same layers — from
    the shape a layer was built on, or traced for one without weights; a layer never called is one line."""
    network = Sequence()
    network(np.ones((2, 5), "int32"))
    component = Closure(name="closure")
    shapes = {name: component.output_shape(network, name) for name in ("embed", "rnn", "act", "output")}
    assert "call" not in vars(network.act) and len(network.layers) == 5  # the traced read took its tap off
    inputs = keras.Input((5,), dtype="int32")
    outputs = inputs
    for layer in (network.embed, network.rnn, network.act, network.out):  # the same layers, in a graph (after:
        outputs = layer(outputs)  # a layer called in a graph has an output, which output_shape would read)
    functional = keras.Model(inputs, outputs)
    assert shapes == {name: tuple(functional.get_layer(name).output.shape) for name in shapes}
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.closure: expected a layer sequence's call\(\) "
                                          r"calls \(its output is read\), got \"'unused', which its forward pass "
                                          r"does not call\"$"):
        component.output_shape(network, "unused")


class Doubling(keras.layers.Layer):
    """A layer of the user's without weights or ``compute_output_shape``: ``[t, t]`` on the last axis."""

    def call(self, x):
        return keras.ops.concatenate([x, x], axis=-1)


class Widening(keras.layers.Layer):
    """A block of the user's holding ``wide``, a :class:`Doubling` (never built on a shape)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.wide = Doubling(name="wide")

    def call(self, x):
        return self.wide(x)


def test_an_inner_layers_output_shape_in_a_functional_network_is_traced_on_its_inputs():
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(1)(Widening(name="block")(inputs)))
    assert Closure(name="closure").output_shape(network, "block/wide") == (None, 6)


def test_a_subclassed_network_returning_a_dict_names_its_outputs_by_its_keys(regression_data):
    """Its outputs named before a batch runs, as a functional network's: the task loss per output and
    split_outputs' parts (it failed mid-fit with "None values not supported")."""
    import lossexp
    from lossexp.models.outputs import output_names

    x, y = regression_data
    network = subclassed_heads("two_heads", "hidden_1", {"value": ("first", 1), "pair": ("second", 2)})
    network(x[:2])
    assert output_names(network) == ["pair", "value"]
    targets = {"value": y, "pair": np.concatenate([y, -y], axis=1)}
    history, _ = lossexp.fit(network, (x, targets), loss=["activity"], task={"split_outputs": True},
                             trainer={"epochs": 1, "verbose": 0}, tracking={"enabled": False})
    assert {"pair_loss", "value_loss", "term/activity"} <= set(history)
    assert history["loss/task"][-1] == pytest.approx(history["pair_loss"][-1] + history["value_loss"][-1], rel=1e-5)


def nested_and_flat_networks():
    """A functional network whose Sequential ``backbone`` holds ``d1`` and ``d2`` (tanh), and the flat
    functional network of the same weights."""
    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="tanh", name="d1"),
                                 keras.layers.Dense(5, activation="tanh", name="d2")], name="backbone")
    inputs = keras.Input((4,))
    nested = keras.Model(inputs, keras.layers.Dense(1, name="output")(backbone(inputs)))
    inputs = keras.Input((4,))
    h = keras.layers.Dense(5, activation="tanh", name="d2")(keras.layers.Dense(6, activation="tanh", name="d1")(inputs))
    flat = keras.Model(inputs, keras.layers.Dense(1, name="output")(h))
    for name in ("d1", "d2"):
        flat.get_layer(name).set_weights(backbone.get_layer(name).get_weights())
    flat.get_layer("output").set_weights(nested.get_layer("output").get_weights())
    return nested, flat


def test_a_layer_inside_a_nested_model_is_read_by_its_path_and_saves_without_its_readers(regression_data, tmp_path):
    """``closure`` on ``backbone/d1`` and ``aux_output`` on ``backbone/d2`` of a Sequential backbone (each
    was one line: "takes the network's own layers"): the terms are NumPy's, one SGD step is the flat
    network's, and the saved model's backbone lists its own layers only (a Sequential's config lists
    every layer it tracks: the readers made the file unloadable) and reloads to the same losses."""
    x, y = regression_data
    nested, flat = nested_and_flat_networks()
    (w1, b1), (w2, b2) = (nested.get_layer("backbone").get_layer(name).get_weights() for name in ("d1", "d2"))
    h1 = np.tanh(x.astype(np.float64) @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    models, logs = [], []
    for network, paths in ((nested, ("backbone/d1", "backbone/d2")), (flat, ("d1", "d2"))):
        model = compose(network, [Closure(name="closure", layer=paths[0], weight=0.3),
                                  AuxiliaryOutput(name="aux_output", layer=paths[1], weight=0.1)])
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        logs.append(model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True))
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
        models.append(model)
    np.testing.assert_allclose(logs[0]["term/closure"], np.mean(h1 ** 2), rtol=1e-5)
    np.testing.assert_allclose(logs[0]["term/aux_output"], np.mean(np.sum(h2 ** 2, axis=1)), rtol=1e-5)
    for key in ("term/closure", "term/aux_output", "loss"):
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-6)
    for after_nested, after_flat in zip(nested.get_weights(), flat.get_weights()):
        np.testing.assert_allclose(after_nested, after_flat, rtol=1e-5, atol=1e-7)
    listed = [layer["config"]["name"] for layer in nested.get_layer("backbone").get_config()["layers"]]
    assert listed[1:] == ["d1", "d2"]  # after its input layer
    models[0].save(tmp_path / "nested.keras")
    reloaded = keras.saving.load_model(tmp_path / "nested.keras")
    before = models[0].evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    after = reloaded.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    for key in ("term/closure", "term/aux_output", "loss"):
        np.testing.assert_allclose(after[key], before[key], rtol=1e-6)


def test_a_layer_a_wrapper_calls_per_step_is_one_line_naming_the_wrapper(regression_data):
    """``TimeDistributed`` calls its layer once per time step: the line says to read the wrapper's output."""
    inputs = keras.Input((3, 2))
    steps = keras.layers.TimeDistributed(keras.layers.Dense(4, name="inner"), name="per_step")(inputs)
    network = keras.Model(inputs, keras.layers.Dense(1, name="output")(keras.layers.Flatten()(steps)))
    model = compose(network, [Closure(name="closure", layer="per_step/inner")])
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.closure: expected a layer the network calls once "
                                          r".* got \"'per_step/inner', called 3 times by 'per_step' \(a wrapper: name "
                                          r"'per_step' to read its whole output\)\"$"):
        model.forward(np.zeros((2, 3, 2), "float32"), training=False)


def test_a_network_composed_again_keeps_one_reader_of_a_nested_layer(regression_data):
    """A notebook's fits of one network: each composition reads ``backbone/d1`` through the one reader
    the first hooked (they stacked up, one per fit), and each composed model's term is its own."""
    from lossexp.training.call_taps import taps_on

    x, y = regression_data
    network, _ = nested_and_flat_networks()
    models = [compose(network, [Closure(name="closure", layer="backbone/d1", weight=weight)]) for weight in (0.1, 1.0)]
    assert [tap.name for tap in taps_on(network.get_layer("backbone").get_layer("d1"))] == ["lossexp_reads_backbone_d1"]
    values = []
    for model in models:
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        values.append(model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss/closure"])
    np.testing.assert_allclose(values[1], 10 * values[0], rtol=1e-6)
