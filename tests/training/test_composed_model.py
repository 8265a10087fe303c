"""The composed model: reported totals, per-component metrics, validation without historical
averaging, saving and reloading, and config errors for unknown layer names."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

import keras

# Registers every serialisable class before any model is loaded.
import lossexp.losses.activity  # noqa: F401
import lossexp.losses.coef  # noqa: F401
import lossexp.losses.hist_avg  # noqa: F401
import lossexp.training.composed_model  # noqa: F401
from lossexp import CONF_DIR
from lossexp.config import validate
from lossexp.data import load as load_data
from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty, ActivityTap
from lossexp.losses.coef import TrainableCoefficient
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.training.assemble import build_model
from lossexp.training.composed_model import ComposedModel


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
    assert sorted(model.train_only_metric_names()) == ["loss/hist_avg", "term/hist_avg"]


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
    assert np.abs(hist_avg.reference.numpy()).sum() > 0  # the trained state, not zeros
    assert isinstance(loaded.network.get_layer("activity_on_hidden_1"), ActivityTap)

    # Same composed loss on the same data, and training continues from the saved state.
    np.testing.assert_allclose(loaded.evaluate(x_val, y_val, verbose=0), model.evaluate(x_val, y_val, verbose=0),
                               rtol=1e-6)
    loaded.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    assert float(hist_avg.steps_seen) == 6


# --- assembling from a validated config --------------------------------------------------------
def config_for(loss: dict):
    cfg = OmegaConf.create({
        "model": OmegaConf.load(CONF_DIR / "model" / "mlp.yaml"),
        "data": OmegaConf.load(CONF_DIR / "data" / "regression.yaml"),
        "loss": loss,
        "optimizer": OmegaConf.load(CONF_DIR / "optimizer" / "sgd.yaml"),
        "trainer": OmegaConf.load(CONF_DIR / "trainer" / "default.yaml"),
        "tracking": {"enabled": False},
    })
    cfg.model.hidden_units = [8, 4]
    cfg.data.n_samples = 40
    return validate(cfg)


@pytest.mark.parametrize("name", ["activity", "hist_avg", "coef"])
def test_typo_in_a_layer_name_lists_the_layers(name):
    config = config_for({name: {"layers": ["hiden_1"]}})
    with pytest.raises(ConfigError) as info:
        build_model(config, load_data(config.data))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid value for loss.{name}.layers: layer 'hiden_1' is not in the model")
    assert message.endswith("its layers are inputs, hidden_1, hidden_2, output")


def test_build_model_from_the_shipped_loss_yaml():
    loss = {}
    for name in ("hist_avg", "activity", "coef"):
        loss.update(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "loss" / f"{name}.yaml")))
    config = config_for(loss)
    data = load_data(config.data)
    model = build_model(config, data)
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
