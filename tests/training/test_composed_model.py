"""The composed model: reported totals, per-component metrics, validation without historical
averaging, saving and reloading, and config errors for unknown layer names."""
from __future__ import annotations

import numpy as np
import pytest

import keras

# Registers every serialisable class before any model is loaded.
import lossexp.losses.activity  # noqa: F401
import lossexp.losses.coef  # noqa: F401
import lossexp.losses.hist_avg  # noqa: F401
import lossexp.training.composed_model  # noqa: F401
from conftest import built, composed_config
from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty, ActivityTap
from lossexp.losses.base import LossComponent
from lossexp.losses.coef import TrainableCoefficient
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.training.composed_model import ComposedModel, RunningMeans, unowned_losses


# --- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def data():
    rng = np.random.default_rng(11)
    x = rng.random((52, 4)).astype("float32")
    y = (x[:, :1] - 2.0 * x[:, 2:3] ** 2 + x[:, 1:2] * x[:, 3:4]).astype("float32")
    return (x[:36], y[:36]), (x[36:], y[36:])


def three_components():
    return [
        HistoricalAverage(name="hist_avg", weight=0.5, mode="mean"),
        ActivityPenalty(name="activity", weight=0.05, layers=["hidden_1", "hidden_2"]),
        TrainableCoefficient(name="coef", weight={"value": 0.08, "trainable": True}, layers=["hidden_1"]),
    ]


# --- the reported losses -----------------------------------------------------------------------
def test_total_loss_is_task_plus_weighted_terms(data, tiny_network, compose):
    (x, y), validation = data
    components = three_components()
    model = compose(tiny_network(), components, learning_rate=0.05)
    # 36 rows in batches of 8: the last batch is smaller, so the means are batch-size weighted.
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=validation, verbose=0).history
    names = [c.name for c in components]
    for epoch in range(2):
        total = history["loss/task"][epoch] + sum(history[f"loss/{n}"][epoch] for n in names)
        np.testing.assert_allclose(history["loss"][epoch], total, rtol=1e-5)
        for component in components[:2]:  # constant weights (coef's is trained within the epoch)
            n = component.name
            np.testing.assert_allclose(history[f"loss/{n}"][epoch], component.weight * history[f"term/{n}"][epoch],
                                       rtol=1e-5)
        assert all(history[f"term/{n}"][epoch] > 0 for n in names)
        val_total = sum(history[f"val_loss/{n}"][epoch] for n in ("task", "activity", "coef"))
        np.testing.assert_allclose(history["val_loss"][epoch], val_total, rtol=1e-5)
    assert "loss/other" not in history
    assert sorted(model.composition.train_only_metric_names()) == ["loss/hist_avg", "term/hist_avg"]


@pytest.mark.parametrize("compiled", [False, True])
def test_the_breakdown_accumulator_equals_a_batch_size_weighted_mean_per_name(compiled):
    """The breakdown's one vector of running means reads, name by name, as a ``Mean`` per name weighted
    by each batch's size would: over batches of 8 and a short last one of 3, eagerly and in a graph."""
    import tensorflow as tf

    names = ["loss/task", "term/a", "loss/a"]
    fused = RunningMeans(names)
    separate = {name: keras.metrics.Mean(name=name) for name in names}
    rng = np.random.default_rng(3)
    batches = [(rng.random(3).astype("float32"), size) for size in (8, 8, 3)]

    def update(values, size):
        fused.update_state(list(tf.unstack(values)), sample_weight=tf.cast(size, tf.float32))
        return fused.result()

    step = tf.function(update) if compiled else update
    for values, size in batches:
        result = step(tf.constant(values), tf.constant(size))
        for name, value in zip(names, values):
            separate[name].update_state(value, sample_weight=float(size))
        assert list(result) == names
        for name in names:
            np.testing.assert_allclose(float(result[name]), float(separate[name].result()), rtol=1e-6)
    fused.reset_state()
    assert all(float(value) == 0.0 for value in fused.result().values())


def test_training_total_equals_an_independent_numpy_computation(data, tiny_network, compose, np_forward):
    """Two real SGD steps on the whole batch, from known weights: the total Keras reports for each
    step is, in float64 NumPy on the weights before that step, MSE + 0.5·Σ(θ − r)² (r the running
    mean of θ_1..θ_t) + 0.05·Σ_{hidden_1, hidden_2} Σh²/n + a·‖W_hidden_1‖_F, with the raw trainable
    ``a`` = 0.08 moved by plain SGD by −lr·‖W_hidden_1‖_F in between. Nothing here is read from the
    model's own loss parts, so a weight applied twice, a term dropped from the total or taken with
    the wrong sign or reduction shows."""
    (x, y), _ = data
    lr, a = 0.05, 0.08
    components = [
        HistoricalAverage(name="hist_avg", weight=0.5, mode="mean"),
        ActivityPenalty(name="activity", weight=0.05, layers=["hidden_1", "hidden_2"]),
        TrainableCoefficient(name="coef", weight={"value": a, "trainable": True, "parametrization": "raw"},
                             layers=["hidden_1"]),
    ]
    model = compose(tiny_network(), components, learning_rate=lr)
    thetas = []
    for step in (1, 2):
        thetas.append([np.asarray(w.numpy(), np.float64) for w in model.network.trainable_weights])
        h = np_forward(model.network, x)
        task = np.mean((h["output"] - y.astype(np.float64)) ** 2)
        running_mean = [np.mean(tensors, axis=0) for tensors in zip(*thetas)]
        hist_avg = sum(np.sum((theta - r) ** 2) for theta, r in zip(thetas[-1], running_mean))
        activity = (np.sum(h["hidden_1"] ** 2) + np.sum(h["hidden_2"] ** 2)) / len(x)
        kernel_norm = np.linalg.norm(thetas[-1][0])  # hidden_1's kernel
        expected = task + 0.5 * hist_avg + 0.05 * activity + a * kernel_norm
        [total] = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history["loss"]
        np.testing.assert_allclose(total, expected, rtol=2e-6, err_msg=f"step {step}")
        assert step == 1 or hist_avg > 1e-6  # the second step exercises the historical average
        a -= lr * kernel_norm  # ∂L/∂a = ‖W_hidden_1‖_F


def test_validation_excludes_hist_avg(data, tiny_network, compose, np_forward):
    (x, y), (x_val, y_val) = data
    hist_avg = HistoricalAverage(name="hist_avg", weight=0.5)
    activity = ActivityPenalty(name="activity", weight=0.05, layers=["hidden_1"])
    model = compose(tiny_network(), [hist_avg, activity], learning_rate=0.05)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x_val, y_val), verbose=0).history

    assert "val_loss/activity" in history and "val_term/activity" in history
    assert not [key for key in history if key.startswith("val_") and "hist_avg" in key]
    assert history["loss/hist_avg"][1] > 0
    for epoch in range(2):
        np.testing.assert_allclose(history["val_loss"][epoch],
                                   history["val_loss/task"][epoch] + history["val_loss/activity"][epoch], rtol=1e-5)
    # The last validation ran with the final weights: NumPy gives the same task + activity value
    # (batch_mean and MSE are both batch-size weighted, so batching does not matter).
    outputs = np_forward(model.network, x_val)
    task = np.mean((outputs["output"] - y_val) ** 2)
    term = np.sum(outputs["hidden_1"] ** 2) / len(x_val)
    np.testing.assert_allclose(history["val_loss/task"][-1], task, rtol=1e-5)
    np.testing.assert_allclose(history["val_term/activity"][-1], term, rtol=1e-5)
    np.testing.assert_allclose(history["val_loss"][-1], task + 0.05 * term, rtol=1e-5)

    # Validation neither used nor updated the historical average: 2 epochs × 5 train batches.
    assert float(hist_avg.steps_seen) == 10
    before = hist_avg.reference_values()
    results = model.evaluate(x_val, y_val, batch_size=8, verbose=0, return_dict=True)
    assert float(hist_avg.steps_seen) == 10
    for got, want in zip(hist_avg.reference_values(), before):
        np.testing.assert_array_equal(got, want)
    assert set(results) == {"loss", "loss/task", "loss/activity", "term/activity"}
    np.testing.assert_allclose(results["loss"], task + 0.05 * term, rtol=1e-5)


def test_losses_no_component_owns_are_reported_as_other(data, tiny_network, compose):
    (x, y), _ = data
    activity = ActivityPenalty(name="activity", weight=0.05, layers=["hidden_2"])
    model = compose(tiny_network(regularizer=keras.regularizers.L2(0.01)), [activity], learning_rate=0.05)
    kernel = model.network.get_layer("hidden_2").kernel.numpy().astype(np.float64)
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history  # a single step
    np.testing.assert_allclose(history["loss/other"][0], 0.01 * np.sum(kernel ** 2), rtol=1e-5)
    total = history["loss/task"][0] + history["loss/activity"][0] + history["loss/other"][0]
    np.testing.assert_allclose(history["loss"][0], total, rtol=1e-5)


@keras.saving.register_keras_serializable(package="tests")
class HalfMeanSquare(keras.layers.Layer):
    """A layer of a user's network adding 0.5·mean(h²) of its input with ``add_loss`` in ``call``."""

    def call(self, h):
        self.add_loss(0.5 * keras.ops.mean(keras.ops.square(h)))
        return h


class SubclassedNetwork(keras.Model):
    """A subclassed network adding the same term itself: ``self.add_loss`` in its ``call``."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out = keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)

    def call(self, x):
        h = self.hidden(x)
        self.add_loss(0.5 * keras.ops.mean(keras.ops.square(h)))
        return self.out(h)


@pytest.mark.parametrize("form", ["subclassed_add_loss", "layer_add_loss", "nested_regularizer"])
def test_add_loss_in_a_call_and_a_nested_models_regularizers_are_trained_and_reported_as_other(data, form):
    """Keras 3's own ways of adding a loss inside a network: counted in the loss once and reported
    as loss/other, so that loss = loss/task + loss/other (a subclassed network's own add_loss used
    to be left out of the loss, the others out of the breakdown)."""
    from lossexp.training.supervised import compose

    (x, y), _ = data
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    if form == "subclassed_add_loss":
        network = SubclassedNetwork()
    elif form == "layer_add_loss":
        network = keras.Model(inputs, keras.layers.Dense(1)(HalfMeanSquare()(
            keras.layers.Dense(8, activation="tanh", name="hidden")(inputs))))
    else:
        inner = keras.Input((4,))
        backbone = keras.Model(inner, keras.layers.Dense(8, activation="tanh", name="hidden",
                                                         kernel_regularizer=keras.regularizers.L2(0.01))(inner))
        network = keras.Model(inputs, keras.layers.Dense(1)(backbone(inputs)))
    network(x[:8])  # the forward pass a run makes before composing: an add_loss shows after it
    other_losses = unowned_losses(network, [])
    assert len(other_losses) == 1
    model = compose(network, [], other_losses=bool(other_losses))
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mean_squared_error")
    hidden = network.hidden if form == "subclassed_add_loss" else next(
        layer for layer in network._flatten_layers() if layer.name == "hidden")
    kernel, bias = (v.numpy().astype(np.float64) for v in hidden.weights)
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history  # a single step
    h = np.tanh(x[:8].astype(np.float64) @ kernel + bias)
    expected = 0.01 * np.sum(kernel ** 2) if form == "nested_regularizer" else 0.5 * np.mean(h ** 2)
    np.testing.assert_allclose(history["loss/other"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(history["loss"][0], history["loss/task"][0] + history["loss/other"][0], rtol=1e-5)
    if form == "layer_add_loss":  # the saved model keeps reporting it
        assert ComposedModel.from_config(model.get_config()).has_other_losses


class MetricNetwork(keras.Model):
    """A subclassed network with its own metric (Keras 3's add_metric: an attribute updated in call),
    in a layer of its own too."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(8, activation="tanh", name="hidden")
        self.out = keras.layers.Dense(1, name="output")
        self.mean_h = keras.metrics.Mean(name="mean_h")

    def call(self, x, training=False):
        h = self.hidden(x)
        self.mean_h.update_state(keras.ops.mean(h, axis=-1))
        return self.out(h)


def test_a_subclassed_networks_own_metric_is_reported_as_its_own_fit_reports_it(data):
    """Keras skips a nested model's metrics, so the composed model dropped the network's own metric
    (``mean_h`` in the network's own fit's history, absent from lossexp's): now in training and validation."""
    from lossexp.training.supervised import compose

    (x, y), (x_val, y_val) = data
    keras.utils.set_random_seed(0)
    network = MetricNetwork()
    network(x[:8])
    kernel, bias = (v.numpy().astype(np.float64) for v in network.hidden.weights)
    model = compose(network, [HistoricalAverage(name="hist_avg", weight=0.1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mean_squared_error")  # weights stay: NumPy checks
    history = model.fit(x, y, batch_size=36, epochs=2, validation_data=(x_val, y_val), verbose=0).history
    for key, inputs in (("mean_h", x), ("val_mean_h", x_val)):
        expected = np.mean(np.tanh(inputs.astype(np.float64) @ kernel + bias))
        np.testing.assert_allclose(history[key], [expected] * 2, rtol=1e-5)  # reset at each epoch, as Keras'


def test_an_add_loss_unseen_when_composed_stops_the_first_step_with_what_to_do(data):
    from lossexp.training.supervised import compose

    (x, y), _ = data
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1)(HalfMeanSquare()(keras.layers.Dense(8)(inputs))))
    model = compose(network, [])  # never called: its add_loss cannot be seen yet
    model.compile(optimizer="sgd", loss="mean_squared_error")
    with pytest.raises(ValueError, match=r"adds Keras losses in a call\(\) \(add_loss\) that were not seen when it "
                                         r"was composed: call the network once on a batch before composing it"):
        model.fit(x[:8], y[:8], verbose=0)


def test_without_components_the_loss_is_the_task_loss(data, tiny_network, compose):
    (x, y), _ = data
    model = compose(tiny_network(), [], learning_rate=0.05)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert sorted(history) == ["loss", "loss/task"]
    np.testing.assert_allclose(history["loss"][0], history["loss/task"][0], rtol=1e-6)


# --- saving and reloading ----------------------------------------------------------------------
def test_saved_model_reloads_with_equal_predictions_and_state(data, tmp_path, tiny_network, compose):
    (x, y), (x_val, y_val) = data
    model = compose(tiny_network(), three_components(), learning_rate=0.05)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "composed.keras"
    model.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ComposedModel)
    np.testing.assert_allclose(loaded.predict(x_val, verbose=0), model.predict(x_val, verbose=0), rtol=1e-6,
                               atol=1e-7)
    assert list(loaded.tracked_weights()) == ["weight/coef", "weight/coef/coef"]
    trained = float(model.tracked_weights()["weight/coef/coef"])
    np.testing.assert_allclose(float(loaded.tracked_weights()["weight/coef/coef"]), trained, rtol=1e-7)
    assert float(model.tracked_weights()["weight/coef/coef"]) != pytest.approx(0.08)  # trained, not just re-initialised

    original = {c.name: c for c in model.components}
    for component in loaded.components:
        assert type(component) is type(original[component.name])
        assert component.get_config() == original[component.name].get_config()
    hist_avg = {c.name: c for c in loaded.components}["hist_avg"]
    assert float(hist_avg.steps_seen) == float(original["hist_avg"].steps_seen) == 5
    for got, want in zip(hist_avg.reference_values(), original["hist_avg"].reference_values()):
        np.testing.assert_array_equal(got, want)
    assert sum(np.abs(r).sum() for r in hist_avg.reference_values()) > 0  # the trained state, not zeros
    assert isinstance(loaded.network.get_layer("activity_on_hidden_1"), ActivityTap)

    # Same composed loss on the same data, and training continues from the saved state.
    np.testing.assert_allclose(loaded.evaluate(x_val, y_val, verbose=0), model.evaluate(x_val, y_val, verbose=0),
                               rtol=1e-6)
    loaded.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    assert float(hist_avg.steps_seen) == 6


def as_saved_with_float32_references(path) -> None:
    """Rewrite a ``.keras`` file as lossexp before 6 December saved it: hist_avg's references in float32."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO(entries["model.weights.h5"])
    with h5py.File(buffer, "r+") as weights:
        datasets = []
        weights.visititems(lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None)
        for name in datasets:
            if weights[name].dtype == np.float64:
                value = weights[name][()].astype(np.float32)
                del weights[name]
                weights[name] = value
    entries["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def test_a_model_saved_with_float32_references_loads_them_widened(data, tmp_path, tiny_network, compose):
    """lossexp before 6 December kept hist_avg's references in float32 (r + rate·(θ − r) lost increments
    under half an ulp of r): such a ``.keras`` file (a run's, a logged model's) still loads, and trains on."""
    (x, y), _ = data
    model = compose(tiny_network(), three_components(), learning_rate=0.05)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "composed.keras"
    model.save(path)
    as_saved_with_float32_references(path)
    loaded = keras.saving.load_model(path)
    hist_avg = {c.name: c for c in loaded.components}["hist_avg"]
    original = {c.name: c for c in model.components}["hist_avg"]
    for got, want in zip(hist_avg.reference_values(), original.reference_values()):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    assert int(hist_avg.steps_seen) == 6


# --- assembling from a validated config --------------------------------------------------------
SMALL_MLP = ("model=mlp", "model.hidden_units=[8,4]", "data=regression", "data.n_samples=40", "optimizer=sgd",
             "tracking.enabled=false")


@pytest.mark.parametrize("name", ["activity", "hist_avg", "coef"])
def test_typo_in_a_layer_name_lists_the_layers(name):
    config = composed_config(*SMALL_MLP, f"loss={name}", f"loss.{name}.layers=[hiden_1]")
    with pytest.raises(ConfigError) as info:
        built(config)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid value for loss.{name}.layers: layer 'hiden_1' is not in the model")
    assert message.endswith("its layers are inputs, hidden_1, hidden_2, output")


def nested_network():
    inner = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inner)
    backbone = keras.Model(inner, keras.layers.Dense(3, name="inner_out")(hidden), name="backbone")
    inputs = keras.Input((4,), name="x")
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(backbone(inputs)))


def test_a_layer_inside_a_nested_model_is_named_by_its_path_and_otherwise_told_where_it_is():
    from lossexp.training.supervised import compose

    with pytest.raises(ConfigError) as info:
        compose(nested_network(), [ActivityPenalty(name="activity", layers=["hidden"])])
    assert str(info.value) == (
        "Invalid value for loss.activity.layers: layer 'hidden' is not in the model (it is inside 'backbone': "
        "name it 'backbone/hidden'); its layers are x, backbone, head")
    from lossexp.losses.closure import Closure

    with pytest.raises(ConfigError, match=r"^Invalid value for loss.closure.layer: layer 'hidden' is not in the model "
                                          r"\(it is inside 'backbone': name it 'backbone/hidden'\)"):
        compose(nested_network(), [Closure(name="closure", layer="hidden")])  # a layer read, by its path


class Block(keras.layers.Layer):
    """A user's block: a custom Layer (not a model) holding its own Dense."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(3, name="inner")

    def call(self, x):
        return self.inner(x)


def test_a_layer_inside_a_custom_layer_is_reached_by_its_path(data, tmp_path):
    """``block/inner``, a Dense a custom layer of the user's holds (it was refused: "whose inner layers
    have no path"): ``coef`` on its kernel and ``activity`` on its output — the tap run after its call
    (:mod:`lossexp.training.call_taps`) — as NumPy computes them; named alone, the line says the path; a
    saved model reloads with the tap, which its config does not hold."""
    from lossexp.training.supervised import compose

    (x, y), _ = data
    keras.utils.set_random_seed(0)
    inputs = keras.Input((x.shape[1],), name="x")
    network = keras.Model(inputs, keras.layers.Dense(1, name="output")(Block(name="block")(inputs)))
    with pytest.raises(ConfigError) as info:
        compose(network, [TrainableCoefficient(name="coef", layers=["inner"])])
    assert str(info.value) == ("Invalid value for loss.coef.layers: layer 'inner' is not in the model (it is inside "
                               "'block': name it 'block/inner'); its layers are x, block, output")
    model = compose(network, [ActivityPenalty(name="activity", layers=["block/inner"], weight=0.5)])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    inner = network.get_layer("block").inner
    h = x[:8].astype(np.float64) @ inner.kernel.numpy() + inner.bias.numpy()
    logs = model.evaluate(x[:8], y[:8], batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["term/activity"], np.sum(h ** 2) / 8, rtol=1e-5)
    assert "loss/other" not in logs
    model.save(tmp_path / "composed.keras")
    reloaded = keras.saving.load_model(tmp_path / "composed.keras", custom_objects={"Block": Block})
    again = reloaded.evaluate(x[:8], y[:8], batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(again["term/activity"], logs["term/activity"], rtol=1e-6)


def test_taps_and_weight_terms_reach_a_nested_models_layer_by_its_path(data, tmp_path):
    """An activity tap after backbone/hidden and hist_avg on its weights: values as NumPy computes
    them, counted once (not again as loss/other), and saved and reloaded with the tap inside."""
    from lossexp.training.supervised import compose

    (x, y), _ = data
    keras.utils.set_random_seed(0)
    network = nested_network()
    components = [ActivityPenalty(name="activity", weight=0.1, layers=["backbone/hidden"]),
                  HistoricalAverage(name="hist_avg", weight=0.5, layers=["backbone/hidden"])]
    model = compose(network, components)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mean_squared_error")
    kernel, bias = (w.numpy().astype(np.float64) for w in network.get_layer("backbone").get_layer("hidden").weights)
    history = model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history  # one step
    h = np.tanh(x[:8].astype(np.float64) @ kernel + bias)
    np.testing.assert_allclose(history["term/activity"][0], np.mean(np.sum(h ** 2, axis=1)), rtol=1e-5)
    assert history["term/hist_avg"][0] == 0.0  # the first step's reference is the weights themselves
    assert "loss/other" not in history
    np.testing.assert_allclose(history["loss"][0], history["loss/task"][0] + history["loss/activity"][0], rtol=1e-6)
    assert [w.name for w in components[1].references] == ["reference_0", "reference_1"]
    model.save(tmp_path / "nested.keras")
    loaded = keras.saving.load_model(tmp_path / "nested.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)


def test_build_model_from_the_shipped_loss_yaml():
    model, data = built(composed_config(*SMALL_MLP, "loss=hist_avg+activity+coef"))
    assert [c.name for c in model.components] == ["hist_avg", "activity", "coef"]
    assert [layer.name for layer in model.network.layers] == [
        "inputs", "hidden_1", "activity_on_hidden_1", "hidden_2", "output"]
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    history = model.fit(data.x, data.y, batch_size=16, epochs=1, verbose=0).history
    total = history["loss/task"][0] + sum(history[f"loss/{c.name}"][0] for c in model.components)
    np.testing.assert_allclose(history["loss"][0], total, rtol=1e-5)
    assert "mean_absolute_error" in history


def test_every_variable_is_trained_once(tiny_network, compose):
    """Components that refer to the network's weights (hist_avg) must not own them too: the
    optimizer would apply each of their gradients twice."""
    model = compose(tiny_network(), three_components())
    trainable = [id(v) for v in model.trainable_variables]
    assert len(trainable) == len(set(trainable))
    network = {id(v) for v in model.network.trainable_variables}
    for component in model.components:
        assert not network & {id(v) for v in component.trainable_variables}, component.name


class Consistency(LossComponent):
    """term = mean (f(x + shift) − f(x))²: the network called again on its batch's inputs, shifted."""

    def term(self, context):
        shifted = context.network(context.x + 0.1, training=context.training)
        return keras.ops.mean(keras.ops.square(shifted - context.y_pred))


def test_a_term_reads_the_batchs_inputs_to_call_the_network_again_in_training_and_validation(data):
    """The contract offered a consistency term (the network again, on a perturbed input) but gave it
    no inputs to perturb. For a linear network f(x + 0.1) − f(x) = 0.1·ΣW: the term is (0.1·ΣW)²."""
    (x, y), validation = data
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    expected = (0.1 * np.sum(network.get_weights()[0], dtype=np.float64)) ** 2
    model = ComposedModel(network, [Consistency(name="consistency")])
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    history = model.fit(x, y, batch_size=len(x), epochs=1, validation_data=validation, verbose=0).history
    assert history["term/consistency"][0] == pytest.approx(expected, rel=1e-4)
    assert history["val_term/consistency"][0] == pytest.approx(expected, rel=1e-4)


def test_a_sparse_gradient_is_added_into_a_closed_form_one_in_place_with_the_same_sums():
    """hist_avg's dense 2(θ − r) plus an Embedding's slices (ids repeated): the slices' rows are added where they
    are, by one op writing a tensor of the variable's shape; made dense first, two such ops (a scatter into
    zeros, then the add) passed over all 50,000 × 64 of a text classifier's embedding every step."""
    import tensorflow as tf

    from lossexp.training.composed_model import add_gradients

    variable = tf.Variable(tf.zeros((6, 2)))
    indices = tf.constant([4, 1, 4, 0, 4], tf.int64)
    values = tf.constant(np.arange(10, dtype="float32").reshape(5, 2) / 3)
    closed = tf.constant(np.linspace(-1, 1, 12, dtype="float32").reshape(6, 2))

    @tf.function
    def added(values, closed):
        return add_gradients([tf.IndexedSlices(values, indices, tf.constant([6, 2], tf.int64))], [variable],
                             [(variable, closed)])[0]

    expected = closed.numpy().copy()
    np.add.at(expected, indices.numpy(), values.numpy())
    np.testing.assert_array_equal(added(values, closed).numpy(), expected)
    graph = added.get_concrete_function(values, closed).graph
    full = [op.type for op in graph.get_operations() if op.outputs and op.outputs[0].shape == (6, 2)
            and op.type not in ("Placeholder", "Identity")]
    assert full == ["TensorScatterAdd"], full
