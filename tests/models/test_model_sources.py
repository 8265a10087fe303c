"""Networks from elsewhere: a saved ``.keras`` file, a ``keras.applications`` architecture, and the
user's own Sequential and subclassed models — each trained end to end with loss components, and
their mistakes answered in one line."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import built, composed_config, subclassed_network
from lossexp.errors import ConfigError

QUICK = {"trainer": {"epochs": 1, "verbose": 0, "batch_size": 16}, "tracking": {"plots": False, "log_model": False}}


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def status(tmp_path, run_id) -> str:
    return MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id).info.status


@pytest.mark.slow
def test_a_saved_keras_file_is_the_network_and_keeps_its_layer_names(in_tmp):
    import keras

    import lossexp

    inputs = keras.Input((4,), name="inputs")
    x = keras.layers.Dense(6, activation="tanh", name="encoder")(inputs)
    keras.Model(inputs, keras.layers.Dense(1, name="head")(x), name="saved_net").save(in_tmp / "net.keras")
    history, run_id = lossexp.fit("keras_file", "regression", loss=["activity", "cross_layer"],
                                  overrides=["model.path=net.keras", "loss.activity.layers=[encoder]",
                                             "loss.cross_layer.layers=[encoder,head]", "data.n_samples=160"], **QUICK)
    assert status(in_tmp, run_id) == "FINISHED" and "term/cross_layer" in history
    with pytest.raises(ConfigError, match=r"loss.activity.layers: layer 'hidden_1' is not in the model \(it is "
                                          r"loss.activity.layers's default, .*\); its layers are inputs, encoder, head"):
        built(composed_config("model=keras_file", f"model.path={in_tmp / 'net.keras'}", "data=regression",
                              "loss=activity"))


def test_a_file_keras_cannot_load_is_one_line(in_tmp):
    """Not a zip archive: Keras' own reason was 'File not found' for a file that is there."""
    (in_tmp / "broken.keras").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"^Invalid value for model.path: expected a Keras 3 .keras model, got "
                                          r"'broken.keras' \(not a zip archive, as model.save\('net.keras'\) "
                                          r"writes\)$"):
        built(composed_config("model=keras_file", "model.path=broken.keras", "data=regression", "loss=none"))


def test_a_file_of_a_class_no_module_registers_names_it_and_where_to_list_its_module(in_tmp):
    """Keras' reason ended 'Full object config: )', naming neither the registered name nor the fix."""
    import keras

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Unlisted(keras.layers.Layer):
        def call(self, x):
            return x

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(1)(Unlisted(name="unlisted")(inputs))).save(in_tmp / "net.keras")
    keras.saving.get_custom_objects().pop("elsewhere>Unlisted")
    with pytest.raises(ConfigError, match=r"^Invalid value for model.path: expected a Keras 3 .keras model, got "
                                          r"'net.keras' \(its class elsewhere>Unlisted is not registered: list the "
                                          r"module that registers it in \[tool.lossexp\] modules of the project's "
                                          r"pyproject.toml\)$"):
        built(composed_config("model=keras_file", "model.path=net.keras", "data=regression", "loss=none"))


def test_a_runs_own_model_keras_continues_from_its_trained_network(in_tmp):
    """model.path naming a run's model.keras (a composed model: network + components) trains its
    trained network on; it was refused with a line for lossexp.fit's users ("give its .network")."""
    import keras

    from lossexp.training.composed_model import ComposedModel
    from lossexp import compose

    inputs = keras.Input((4,), name="inputs")
    hidden = keras.layers.Dense(6, activation="tanh", name="hidden_1")(inputs)
    trained = compose(keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden)),
                      [("activity", {"layers": ["hidden_1"]}), "hist_avg"])
    trained.network.get_layer("head").kernel.assign(np.full((6, 1), 0.25, "float32"))
    trained.save(in_tmp / "model.keras")
    model, _ = built(composed_config("model=keras_file", "model.path=model.keras", "data=regression",
                                     "data.n_samples=40", "loss=hist_avg"))
    assert isinstance(model, ComposedModel) and not isinstance(model.network, ComposedModel)
    assert [layer.name for layer in model.network.layers] == ["inputs", "hidden_1", "head"]
    np.testing.assert_array_equal(model.network.get_layer("head").kernel.numpy(), np.full((6, 1), 0.25))


def test_a_file_saved_compiled_says_its_optimizer_is_not_the_runs(in_tmp, capsys):
    """A network saved after model.compile(SGD(0.5)) trained with the run's Adam(1e-3) without a word."""
    import keras

    inputs = keras.Input((4,))
    saved = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    saved.compile(optimizer=keras.optimizers.SGD(0.5), loss="mean_squared_error")
    saved.save(in_tmp / "net.keras")
    built(composed_config("model=keras_file", "model.path=net.keras", "data=regression", "loss=none"))
    assert capsys.readouterr().err.splitlines() == [
        "lossexp: warning: model.path net.keras was saved compiled (optimizer SGD, learning_rate 0.5; loss "
        "mean_squared_error): the run trains it with its own optimizer (optimizer=…) and task loss, starting its "
        "optimizer afresh"]
    keras.Model(inputs, keras.layers.Dense(1)(inputs)).save(in_tmp / "plain.keras")
    built(composed_config("model=keras_file", "model.path=plain.keras", "data=regression", "loss=none"))
    assert capsys.readouterr().err == ""


def test_a_network_with_nothing_to_train_is_one_line(in_tmp):
    """model.trainable=false and no trainable loss weight: Keras' optimizer failed mid-run with a
    traceback, 'not enough values to unpack (expected 2, got 0)'; a trainable weight still trains."""
    import keras

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(1, name="head")(inputs)).save(in_tmp / "net.keras")
    frozen = ["model=keras_file", "model.path=net.keras", "model.trainable=false", "data=regression"]
    with pytest.raises(ConfigError, match=r"^Invalid value for model: expected a network with a weight to train "
                                          r"\(or a loss component with a trainable weight\), got 'model=keras_file "
                                          r"with every weight frozen \(trainable=False\)'$"):
        built(composed_config(*frozen, "loss=none"))
    model, _ = built(composed_config(*frozen, "loss=activity", "loss.activity.layers=[head]",
                                     "loss.activity.weight={value: 0.01, trainable: true, parametrization: softplus}"))
    assert model.trainable_variables


@pytest.mark.slow
@pytest.mark.integration  # a Keras application trained on images, 20 s: the CI budget
def test_a_keras_application_by_name_trains_on_images(in_tmp):
    import tensorflow as tf

    import lossexp

    rng = np.random.default_rng(1)
    for label in ("a", "b"):
        (in_tmp / "pics" / label).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (32, 32, 3)).astype("uint8")
            tf.io.write_file(str(in_tmp / "pics" / label / f"{i}.png"), tf.io.encode_png(pixels))
    # without the gradient diagnostics, whose extra backward passes cost MobileNetV3 ~15 s of tracing, nor
    # the weight drift, whose graphs over its ~200 weights cost ~8 s (neither is read here; both are
    # the same code for any network, tested in tests/training/)
    quick = {**QUICK, "tracking": {**QUICK["tracking"], "gradients": False, "drift": False}}
    history, run_id = lossexp.fit("applications", "images", loss=["hist_avg"],
                                  overrides=["model.architecture=MobileNetV3Small", "data.directory=pics",
                                             "data.image_size=[32,32]"], **quick)
    assert status(in_tmp, run_id) == "FINISHED" and "term/hist_avg" in history


def test_an_unknown_application_lists_the_architectures():
    with pytest.raises(ConfigError, match=r"^Unknown model.architecture 'ResNet5': valid choices are .*ResNet50"):
        built(composed_config("model=applications", "model.architecture=ResNet5", "data=digits", "loss=none"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sequential", "subclassed"])
def test_the_users_own_sequential_and_subclassed_models_train_with_every_kind_of_term(in_tmp, kind):
    import keras

    import lossexp

    network = subclassed_network() if kind == "subclassed" else keras.Sequential(
        [keras.layers.Dense(8, activation="relu", name="hidden_1"), keras.layers.Dense(1, name="output")],
        name="sequential")
    rng = np.random.default_rng(0)
    x = rng.random((96, 4)).astype("float32")
    history, run_id = lossexp.fit(network, (x, x.sum(1)), loss=["hist_avg", "cross_layer", "coef", "activity",
                                                                 "closure"], **QUICK)
    assert status(in_tmp, run_id) == "FINISHED"
    assert {"term/hist_avg", "term/cross_layer", "term/coef", "term/activity", "term/closure"} <= set(history)


@pytest.mark.slow
def test_a_keras_file_holding_a_lossexp_layer_loads_in_a_cli_run_that_names_no_component(tmp_path, run_cli):
    """A network saved with an activity tap in it, trained from the CLI with loss=none: loading the
    file registers lossexp's classes (a training process registers nothing at Keras' import)."""
    import keras

    from lossexp.losses.activity import ActivityTap

    inputs = keras.Input((4,))
    tapped = ActivityTap(name="tap")(keras.layers.Dense(3, name="hidden_1")(inputs))
    keras.Model(inputs, keras.layers.Dense(1)(tapped)).save(tmp_path / "net.keras")
    result = run_cli("train", "model=keras_file", "model.path=net.keras", "data=regression", "data.n_samples=100",
                     "loss=none", "trainer.epochs=1", "tracking.plots=false", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-3000:]
