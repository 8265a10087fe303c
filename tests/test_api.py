"""The Python API on a notebook's own objects: ``lossexp.fit`` trains and records a run through the
CLI's machinery (validated sections, a real MLflow store) and ``lossexp.compose`` gives the Keras
model to fit yourself."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import lossexp
from conftest import numpy_cross_entropy, output_first_network
from lossexp.errors import ConfigError


def network():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,), name="inputs")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden_1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="output")(hidden), name="notebook_net")


def data(n: int = 160):
    x = np.random.default_rng(0).random((n, 5)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def interrupt_at_second_epoch():
    """A callback raising KeyboardInterrupt as the second epoch begins: a notebook's Ctrl-C between epochs,
    after the first one's checkpoint."""
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    return Interrupt()


@pytest.mark.slow
def test_fit_trains_the_users_model_with_named_and_instantiated_components_and_records_it(tmp_path, monkeypatch):
    from lossexp.losses.hist_avg import HistoricalAverage

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    history, run_id = lossexp.fit(network(), data(), loss=[("activity", {"weight": 0.01}),
                                                           HistoricalAverage(name="hist_avg", weight=0.1)],
                                  trainer={"epochs": 2, "verbose": 0}, optimizer={"name": "adamw", "weight_decay": 1e-4},
                                  task={"loss": "huber"})
    assert len(history["loss"]) == 2 and {"loss/activity", "term/hist_avg", "val_loss/activity"} <= set(history)
    # logging the model went through MLflow's fluent API, whose setter exports the store: not left behind
    # (a notebook's next fit in another directory would be recorded here)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "notebook_net·activity+hist_avg"
    params = run.data.params
    assert params["loss.activity.weight"] == "0.01" and params["loss.hist_avg.weight"] == "0.1"
    assert params["optimizer.name"] == "adamw" and params["optimizer.weight_decay"] == "0.0001"
    assert params["task.loss"] == "huber" and params["model.source"] == "python"
    # the loss is the Huber loss of the task plus the weighted terms
    np.testing.assert_allclose(history["loss"][-1], history["loss/task"][-1] + history["loss/activity"][-1]
                               + history["loss/hist_avg"][-1], rtol=1e-5)


def test_compose_gives_a_keras_model_that_adds_every_component():
    import keras

    model = lossexp.compose(network(), ["coef", ("cross_layer", {"weight": 0.5, "layers": ["hidden_1", "output"]})])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x, y = data(32)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    kernels = [model.network.get_layer(n).kernel.numpy() for n in ("hidden_1", "output")]
    assert {"loss/coef", "term/cross_layer"} <= set(history)
    assert model.components[1].weighting.spec.value == 0.5 and kernels[0].shape == (5, 16)


@pytest.mark.parametrize("loss, names", [("hist_avg", ["hist_avg"]), ("hist_avg+coef", ["hist_avg", "coef"]),
                                         (("coef", {"weight": 0.5}), ["coef"]), ("none", []), (["coef"], ["coef"]),
                                         ({"hist_avg": None, "coef": {}}, ["hist_avg", "coef"]),
                                         (["hist_avg", {"coef": {"weight": 0.5}}], ["hist_avg", "coef"])])
def test_loss_is_a_list_of_entries_one_entry_alone_or_the_command_lines_string(loss, names):
    assert [c.name for c in lossexp.compose(network(), loss).components] == names


def test_a_dict_of_options_by_name_configures_each_component_as_a_config_does():
    """``loss={"coef": {"weight": 0.5}, …}``, the form of a config's ``loss:``: each its own options."""
    model = lossexp.compose(network(), {"coef": {"weight": 0.5}, "cross_layer": {"layers": ["hidden_1"]}})
    coef, cross_layer = model.components
    assert coef.weighting.spec.value == 0.5 and cross_layer.layers == ["hidden_1"]


@pytest.mark.parametrize("loss, got", [({"coef": 0.5}, "got 'coef': 0.5"), ({"coef": ["a"]}, "got 'coef': a list")])
def test_a_dict_of_loss_options_holding_something_else_is_one_line(loss, got):
    with pytest.raises(ConfigError) as error:
        lossexp.compose(network(), loss)
    assert str(error.value) == ("Invalid value for loss: expected a dict of each component's options by its name "
                                "({'hist_avg': {'weight': 0.1}}), " + got)


def test_a_composed_model_compiled_without_a_loss_trains_on_its_task_loss_and_reloads_compiled(tmp_path):
    """compose(…, task_loss=…) then compile(optimizer=…) as Keras users write it: the task part is the
    composed task loss (it was a TypeError in the step); a reload compiles it again, optimizer state too."""
    import keras

    model = lossexp.compose(network(), [("cross_layer", {"layers": ["hidden_1"]})], task_loss="mean_absolute_error")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    x, y = data(64)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    mae = float(np.mean(np.abs(model.network.predict(x, verbose=0) - y)))
    assert model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)["loss/task"] == pytest.approx(mae, rel=1e-5)
    assert history["loss"][0] == pytest.approx(history["loss/task"][0] + history["loss/cross_layer"][0], rel=1e-5)
    model.save(tmp_path / "composed.keras")
    reloaded = keras.saving.load_model(tmp_path / "composed.keras")
    assert reloaded.compiled and int(reloaded.optimizer.iterations.numpy()) == 4
    assert reloaded.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)["loss/task"] == pytest.approx(mae, rel=1e-5)



def my_loss(y_true, y_pred):
    """A notebook's own task loss, given to lossexp.fit as a function."""
    return (y_true - y_pred) ** 2


@pytest.mark.parametrize("call, message", [
    (lambda: lossexp.fit(network(), data(), loss=["hist_avgg"]), "Unknown loss component 'hist_avgg'"),
    (lambda: lossexp.fit(network(), data(), trainer={"epochz": 1}), "Unknown key trainer.epochz"),
    (lambda: lossexp.fit(network(), data(), trainers={"epochs": 1}), "Unknown keyword trainers: fit() takes"),
    (lambda: lossexp.fit(network(), data(), epochs=3), "Unknown keyword epochs: fit() takes the sections trainer, "
     "optimizer, weighting, task, tracking, objective, e.g. trainer={'epochs': 3}"),
    (lambda: lossexp.fit(network(), data(), weighting="mgdaa"), "Unknown weighting 'mgdaa': valid choices are "),
    (lambda: lossexp.fit(network(), data(), weighting={"name": "cagrad", "c": -1}), "Invalid value for weighting.c: "
     "expected a finite number >= 0, got -1"),
    (lambda: lossexp.fit(network(), data(), loss=[3]), "Invalid value for loss: expected component names"),
    (lambda: lossexp.fit(network(), data(), loss=keras_object("MeanSquaredError")), "Invalid value for loss: "
     "expected component names, (name, options) pairs, a dict of options by name or LossComponent instances (a Keras loss is the task loss: "
     "task={'loss': 'huber'} by name; a Keras object, compose and compile yourself: lossexp.compose(network, "
     "loss=[...]).compile(loss=...)), got a MeanSquaredError"),
    (lambda: lossexp.fit(network(), data(), loss=[component_class()]), "Invalid value for loss: expected component "
     "names, (name, options) pairs, a dict of options by name or LossComponent instances (give an instance, HistoricalAverage(name=..., "
     "weight=...), or its registered name), got the class HistoricalAverage"),
    (lambda: lossexp.fit(network(), data(), optimizer="adamm"), "Unknown optimizer 'adamm'"),
    (lambda: lossexp.fit(own_step_network(), data()), "Invalid value for model: expected a network that lossexp's "
     "step trains"),
    (lambda: lossexp.fit(lossexp.compose(network(), "hist_avg"), data()), "Invalid value for model: expected a "
     "network of yours (lossexp.fit composes it with loss=[...] itself; a composed model is for your own compile and "
     "fit), got \"model=notebook_net_composed, lossexp.compose's composed model of notebook_net: give its .network\""),
    (lambda: lossexp.fit(network(), (data()[0][:, :3], data()[1])), "Invalid value for model: notebook_net cannot "
     "take the inputs of data 'python' (shape (3,)): ValueError: Input 0 with name 'inputs' of layer 'notebook_net' is "
     "incompatible with the layer: expected shape=(None, 5), found shape=(8, 3)"),
    (lambda: lossexp.fit(network(), data(), loss=[unregistered_component()]), "Invalid loss component 'mine': its "
     "class Unregistered is not registered; decorate it with @lossexp.register_component('mine')"),  # its name
    (lambda: lossexp.fit(network(), (data()[0], np.arange(160) % 3 - 1)), "Invalid value for data (python): expected "
     "class labels 0…k-1 (padding: a valid label weighted 0 by sample weights; numbers: task.type=regression or "
     "float targets), got '-1 at example 0'"),
    (lambda: lossexp.fit(network(), (np.array([["good film"], ["bad plot"]] * 8), np.arange(16) % 2)),
     "Invalid value for data (python): expected text inputs of one text per example, an array of one dimension"),
    (lambda: lossexp.fit(network(), data(), task={"loss": keras_object("SparseCategoricalCrossentropy")}),
     "Invalid value for task.loss: expected what a config holds (a name, number, list or mapping; e.g. "
     "'sparse_categorical_crossentropy', {'name': 'adam', 'learning_rate': 0.001}), got a "
     "SparseCategoricalCrossentropy object; to train with Keras objects, compose the model and compile it yourself"),
    (lambda: lossexp.fit(network(), data(), task={"loss": my_loss}), "Invalid value for task.loss: expected what a "
     "config holds (a name, number, list or mapping; e.g. 'sparse_categorical_crossentropy', {'name': 'adam', "
     "'learning_rate': 0.001}), got a function object; to train with Keras objects, compose the model and compile it "
     "yourself: model = lossexp.compose(network, loss=[...]); model.compile(optimizer=..., loss=..., metrics=...); "
     "model.fit(...); or, a loss of your own, register it with @keras.saving.register_keras_serializable() in a module "
     "of your project and give its name: 'my_loss'"),
    (lambda: lossexp.fit(network(), data(), optimizer={"name": "adam", "learning_rate": keras_object("CosineDecay")}),
     "Invalid value for optimizer.learning_rate: expected what a config holds"),
    (lambda: lossexp.fit(network(), data(), optimizer=keras_object("SGD")),
     "Invalid value for optimizer: expected what a config holds (a name, number, list or mapping; e.g. "
     "'sparse_categorical_crossentropy', {'name': 'adam', 'learning_rate': 0.001}), got a SGD object"),
])
def test_mistakes_are_one_line_config_errors(call, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def component_class():
    from lossexp.losses.hist_avg import HistoricalAverage

    return HistoricalAverage


def keras_object(name: str):
    """A Keras loss, schedule or optimizer object, as a Keras user passes one."""
    import keras

    return {"SparseCategoricalCrossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(),
            "MeanSquaredError": lambda: keras.losses.MeanSquaredError(),
            "CosineDecay": lambda: keras.optimizers.schedules.CosineDecay(0.01, 100),
            "SGD": lambda: keras.optimizers.SGD(0.01)}[name]()


NOTEBOOK_COMPONENT = """
import os, numpy as np, keras, lossexp
from keras import ops
os.chdir({cwd!r})


@lossexp.register_component("pred_variance")
class PredictionVariance(lossexp.LossComponent):
    \"\"\"Variance of the predictions. Options: ``weight``; ``scale``.\"\"\"

    def __init__(self, weight=0.1, scale: float = 1.0, **kwargs):
        super().__init__(weight=weight, **kwargs)
        self.scale = self.require_number("scale", scale, minimum=0.0)

    def term(self, context):
        return self.scale * ops.var(context.y_pred)


x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
result = lossexp.fit(network, (x, x[:, :1]), loss=[("pred_variance", {{"weight": 0.5, "scale": 2.0}})],
                     trainer={{"epochs": 1, "verbose": 0}}, tracking={{"plots": False, "log_model": False}})
print(result.history["loss/pred_variance"][0] / result.history["term/pred_variance"][0])
"""


@pytest.mark.slow
def test_a_component_a_notebook_registers_is_chosen_by_name_with_its_options(tmp_path):
    """No YAML: the name and its options compose as a shipped component's do (its own process: the
    registration would stay in this one)."""
    import subprocess
    import sys

    from conftest import lossexp_env

    result = subprocess.run([sys.executable, "-c", NOTEBOOK_COMPONENT.format(cwd=str(tmp_path))], env=lossexp_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(0.5, rel=1e-5)


def unregistered_component():
    """A component class a notebook defines without registering it."""
    class Unregistered(lossexp.LossComponent):
        def term(self, context):
            return 0.0

    return Unregistered(name="mine")


def own_step_network():
    """A network of a class with its own train_step (a contrastive or custom-loss model, say)."""
    import keras

    class OwnStep(keras.Model):
        def train_step(self, data):
            raise AssertionError("never reached: lossexp refuses the network first")

    inputs = keras.Input((5,))
    return OwnStep(inputs, keras.layers.Dense(1)(inputs))


def several_inputs_network(form: str):
    import keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(8, name="dense_a")(a), keras.layers.Dense(8, name="dense_b")(b)])
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(joined)
    return keras.Model({"a": a, "b": b} if form == "dict" else [a, b], keras.layers.Dense(2, name="out")(hidden),
                       name="two_inputs")


@pytest.mark.slow
@pytest.mark.parametrize("form", ["dict", "list-stream"])
def test_a_network_of_several_inputs_trains_with_a_tap_and_is_served_by_input_name(form, tmp_path, monkeypatch):
    import mlflow
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 4)).astype("float32"), rng.normal(size=(1000, 3)).astype("float32")
    y = (a[:, 0] + b[:, 1] > 0).astype("int64")
    data = ({"a": a, "b": b}, y) if form == "dict" else tf.data.Dataset.from_tensor_slices(((a, b), y))
    history, run_id = lossexp.fit(several_inputs_network(form.split("-")[0]), data,
                                  loss=["hist_avg", ("activity", {"layers": ["hidden"]})],
                                  trainer={"epochs": 6, "verbose": 0}, optimizer={"name": "adam", "learning_rate": 0.01})
    assert history["val_accuracy"][-1] > 0.9 and history["term/activity"][-1] > 0
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED" and "weight_grad/task/norm" in run.data.metrics
    mlflow.set_tracking_uri(uri)
    rows = {"a": a[:3], "b": b[:3]}  # a list of inputs is served by its keras.Input names
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(rows)
    trained = mlflow.keras.load_model(f"runs:/{run_id}/model").predict(rows, verbose=0)
    np.testing.assert_allclose(served, trained, rtol=1e-5)


class WeightedSquaredError(lossexp.LossComponent):
    """Σ wᵢ(ŷᵢ − yᵢ)² / Σ wᵢ of the data's sample weights, written without a case for None."""

    def term(self, context):
        import keras

        weights = keras.ops.cast(context.sample_weight, "float32")
        return keras.ops.sum(weights * keras.ops.square(context.y_pred - context.y_true)[:, 0]) / keras.ops.sum(weights)


def test_the_check_before_a_run_gives_a_term_the_sample_weights_of_the_first_examples(tmp_path, monkeypatch,
                                                                                      restored_registry):
    """The check of every term before the run passed sample_weight=None although the arrays carry weights: a
    term reading them was refused ("term() failed … Attempt to convert a value (None)") before training."""
    monkeypatch.chdir(tmp_path)
    lossexp.register_component("weighted_squared_error")(WeightedSquaredError)
    x, y = data(48)
    weights = np.linspace(0.5, 1.5, 48).astype("float32")
    history, _ = lossexp.fit(network(), (x, y, weights), loss=[WeightedSquaredError(name="weighted_squared_error")],
                             trainer={"epochs": 1, "verbose": 0}, tracking={"enabled": False})
    assert np.isfinite(history["term/weighted_squared_error"][-1])
    assert np.isfinite(history["val_term/weighted_squared_error"][-1])


@pytest.mark.slow
@pytest.mark.parametrize("form", ["arrays", "stream"])
def test_sample_weights_of_zero_leave_corrupted_examples_out_of_training_and_validation(form, tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype("float32")
    corrupted = rng.random(1200) < 0.3
    y[corrupted] += 50.0  # outliers that would pull every prediction up
    weight = np.where(corrupted, 0.0, 1.0).astype("float32")

    def fit(data):
        import keras

        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        network = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16, activation="relu")(inputs)))
        return lossexp.fit(network, data, loss=["hist_avg"], trainer={"epochs": 8, "verbose": 0},
                           optimizer={"name": "adam", "learning_rate": 0.01})

    weighted = (x, y, weight) if form == "arrays" else tf.data.Dataset.from_tensor_slices((x, y, weight))
    history, run_id = fit(weighted)
    # the weighted run fits the clean examples (its validation loss weighs the corrupted ones by 0)
    assert history["val_loss/task"][-1] < 0.5
    assert history["val_mean_absolute_error"][-1] < 0.6  # the metric weighs them as the loss does
    if form == "arrays":  # without the weights, the outliers pull every prediction up
        assert fit((x, y))[0]["val_loss/task"][-1] > 100
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED" and "weight_grad/task/norm" in run.data.metrics


@pytest.mark.slow
def test_a_network_of_several_outputs_is_served_as_one_array_whose_columns_the_metadata_names(tmp_path, monkeypatch):
    import keras
    import mlflow

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = {"reg": x[:, 1:2] * 2, "cls": (x[:, 0] > 0).astype("int64")}
    inputs = keras.Input((4,), name="inputs")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    network = keras.Model(inputs, {"reg": keras.layers.Dense(1, name="reg")(hidden),
                                   "cls": keras.layers.Dense(2, name="cls")(hidden)})
    _, run_id = lossexp.fit(network, (x, y), loss=[("activity", {"layers": ["hidden"]})],
                            trainer={"epochs": 1, "verbose": 0})
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    uri = f"runs:/{run_id}/model"
    served = mlflow.pyfunc.load_model(uri).predict(x[:5])
    trained = mlflow.keras.load_model(uri).predict(x[:5], verbose=0)
    np.testing.assert_allclose(served, np.concatenate([trained["cls"], trained["reg"]], axis=1), rtol=1e-5)
    assert mlflow.models.get_model_info(uri).metadata["lossexp.python_function.outputs"] == "cls: 0–1, reg: 2"


@pytest.mark.slow
def test_integer_token_ids_are_served_as_the_data_holds_them_and_cast_in_the_graph(tmp_path, monkeypatch):
    import keras
    import mlflow

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    tokens = np.random.default_rng(0).integers(0, 50, size=(200, 12))  # int64, as NumPy makes them
    labels = (tokens.sum(axis=1) > 300).astype("int64")
    inputs = keras.Input((12,), dtype="int32", name="tokens")
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(keras.layers.Embedding(50, 8)(inputs))
    _, run_id = lossexp.fit(keras.Model(inputs, keras.layers.Dense(2)(pooled)), (tokens, labels),
                            loss=[("activity", {"layers": ["pool"]})], trainer={"epochs": 1, "verbose": 0})
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    uri = f"runs:/{run_id}/model"
    assert mlflow.models.get_model_info(uri).signature.inputs.to_dict()[0]["tensor-spec"]["dtype"] == "int64"
    served = mlflow.pyfunc.load_model(uri).predict(tokens[:4])
    np.testing.assert_allclose(served, mlflow.keras.load_model(uri).predict(tokens[:4], verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_a_network_taking_sequences_of_any_length_is_logged_and_served_at_every_length(tmp_path, monkeypatch):
    """keras.Input((None,)) before Embedding(mask_zero=True): the model is logged (its example is the
    data's rows, not noise shaped by a None) and the served model takes other lengths than the
    example's, as the network does."""
    import keras
    import mlflow

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    tokens = np.random.default_rng(0).integers(1, 50, size=(200, 12))
    tokens[:, 9:] = 0
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    hidden = keras.layers.LSTM(4, name="lstm")(keras.layers.Embedding(50, 8, mask_zero=True)(inputs))
    _, run_id = lossexp.fit(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden)),
                            (tokens, (tokens[:, 0] > 25).astype("int64")),
                            loss=[("activity", {"layers": ["lstm"]})], trainer={"epochs": 1, "verbose": 0})
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    assert "lossexp.model_not_logged" not in MlflowClient(uri).get_run(run_id).data.tags
    mlflow.set_tracking_uri(uri)
    served, trained = mlflow.pyfunc.load_model(f"runs:/{run_id}/model"), mlflow.keras.load_model(f"runs:/{run_id}/model")
    assert served.metadata.signature.inputs.inputs[0].shape == (-1, -1)
    for rows in (tokens[:4], tokens[:4, :5], np.pad(tokens[:4], ((0, 0), (0, 8)))):
        np.testing.assert_allclose(served.predict(rows), trained.predict(rows, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_text_as_numpy_makes_it_trains_through_text_vectorization_and_is_served(tmp_path, monkeypatch):
    """``np.array(list_of_str)`` is a fixed-width ``<U…`` array, which Keras' fit refuses; lossexp
    passes text as objects, as a ``TextVectorization`` layer takes it."""
    import keras
    import mlflow

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    text = np.array(["good film", "bad plot", "great acting", "awful film"] * 25)
    assert text.dtype.kind == "U"
    labels = np.array([1, 0, 1, 0] * 25)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=3)
    vectorize.adapt(text)
    inputs = keras.Input((), dtype="string", name="text")
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(keras.layers.Embedding(20, 8)(vectorize(inputs)))
    history, run_id = lossexp.fit(keras.Model(inputs, keras.layers.Dense(2)(pooled)), (text, labels),
                                  loss=["hist_avg", ("activity", {"layers": ["pool"]})],
                                  trainer={"epochs": 8, "verbose": 0}, optimizer={"name": "adam", "learning_rate": 0.05})
    assert history["val_accuracy"][-1] == 1.0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    uri = f"runs:/{run_id}/model"
    served = mlflow.pyfunc.load_model(uri).predict(np.array(["good acting", "awful plot"]))
    assert served.shape == (2, 2) and served[0].argmax() == 1 and served[1].argmax() == 0


@pytest.mark.slow
def test_a_stream_of_word_tokens_trains_through_string_lookup_and_is_logged_and_served(tmp_path, monkeypatch):
    """Tokens of text, several per example, from a tf.data stream: the model was not saved (Keras
    predicts on no NumPy array of objects of two dimensions, ``Invalid dtype: object``) and the run
    blamed the user's classes; it is logged, its example and signature text, and served."""
    import keras
    import mlflow
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    words = np.array(["good", "bad", "fine", "awful"])
    chosen = np.random.default_rng(0).integers(0, 4, size=(60, 3))
    tokens, labels = words[chosen], (chosen[:, 0] % 2).astype("int64")
    inputs = keras.Input((3,), dtype="string", name="tokens")
    embedded = keras.layers.Embedding(6, 4, mask_zero=True)(keras.layers.StringLookup(vocabulary=list(words))(inputs))
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(embedded)
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    _, run_id = lossexp.fit(network, tf.data.Dataset.from_tensor_slices((tokens, labels)).batch(8),
                            loss=[("activity", {"layers": ["pool"]})], trainer={"epochs": 1, "verbose": 0})
    uri = f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}"
    assert "lossexp.model_not_logged" not in MlflowClient(uri).get_run(run_id).data.tags
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert served.metadata.signature.inputs.inputs[0].shape == (-1, 3)
    np.testing.assert_allclose(served.predict(tokens[:4].astype(object)),
                               network.predict(tf.constant(tokens[:4]), verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_a_binary_classifier_of_one_logit_trains_and_reloads(tmp_path, monkeypatch):
    """Labels 0/1 (here booleans, as a comparison makes them) and one output unit, as Keras' binary
    classifiers have: binary cross-entropy."""
    import keras
    import mlflow

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
    y = x[:, 0] - x[:, 1] > 0
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    history, run_id = lossexp.fit(keras.Model(inputs, keras.layers.Dense(1)(hidden)), (x, y), loss=["hist_avg"],
                                  trainer={"epochs": 5, "verbose": 0}, optimizer={"name": "adam", "learning_rate": 0.05})
    assert history["val_accuracy"][-1] > 0.9
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    reloaded = mlflow.keras.load_model(f"runs:/{run_id}/model")
    logits = reloaded.predict(x[-60:], verbose=0)  # the validation split: the last 20 %
    assert np.mean((logits[:, 0] > 0) == y[-60:]) == pytest.approx(history["val_accuracy"][-1])


@pytest.mark.slow
def test_one_hot_labels_train_a_softmax_classifier_with_categorical_cross_entropy(tmp_path, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
    labels = keras.utils.to_categorical(np.argmax(x[:, :3], axis=1), 3)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    history, _ = lossexp.fit(network, (x, labels), loss=[("activity", {"layers": ["hidden"]})],
                             trainer={"epochs": 8, "verbose": 0}, optimizer={"name": "adam", "learning_rate": 0.02})
    assert history["val_accuracy"][-1] > 0.85
    p = network.predict(x[-60:], verbose=0)
    cross_entropy = -np.mean(np.sum(labels[-60:] * np.log(p), axis=1))
    assert history["val_loss/task"][-1] == pytest.approx(cross_entropy, rel=1e-4)


@pytest.mark.slow
def test_a_keras_py_dataset_trains_and_validates_on_its_last_batches_in_a_fixed_order(tmp_path, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")

    class Loader(keras.utils.PyDataset):
        epochs_ended = 0

        def __len__(self):
            return 10

        def __getitem__(self, index):
            return x[index * 30:(index + 1) * 30], y[index * 30:(index + 1) * 30]

        def on_epoch_end(self):  # a loader's reshuffle would move examples across the split
            Loader.epochs_ended += 1

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    network = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    history, _ = lossexp.fit(network, Loader(), loss=["hist_avg"], trainer={"epochs": 4, "verbose": 0},
                             optimizer={"name": "adam", "learning_rate": 0.05}, tracking={"enabled": False})
    assert Loader.epochs_ended == 0
    logits = network.predict(x[-60:], verbose=0)
    assert history["val_accuracy"][-1] == pytest.approx(np.mean(logits.argmax(-1) == y[-60:]))
    assert history["val_accuracy"][-1] > 0.9


@pytest.mark.slow
def test_a_network_of_a_list_of_outputs_trains_on_a_list_of_targets_each_scored_as_numpy_does(tmp_path, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    labels, values = (x[:, 0] > 0).astype("int64"), (2.0 * x[:, 1:3]).astype("float32")
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    network = keras.Model(inputs, [keras.layers.Dense(2, name="cls")(hidden),
                                   keras.layers.Dense(2, name="reg")(hidden)])
    history, _ = lossexp.fit(network, (x, [labels, values]), loss=[("activity", {"layers": ["hidden"]})],
                             trainer={"epochs": 2, "verbose": 0, "batch_size": 40}, tracking={"enabled": False})
    # one validation batch: Keras' per-output losses are means over batches, not weighted by their size
    logits, predicted = (p.astype(np.float64) for p in network.predict(x[-40:], verbose=0))
    assert history["val_cls_loss"][-1] == pytest.approx(np.mean(numpy_cross_entropy(logits, labels[-40:])), rel=1e-4)
    assert history["val_reg_loss"][-1] == pytest.approx(np.mean((predicted - values[-40:]) ** 2), rel=1e-4)
    assert history["val_loss/task"][-1] == pytest.approx(history["val_cls_loss"][-1] + history["val_reg_loss"][-1],
                                                         rel=1e-5)


@pytest.mark.slow
def test_a_tagger_learns_labels_per_position_weighted_per_token_in_loss_and_accuracy_as_numpy(tmp_path, monkeypatch):
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 30, size=(300, 10))
    tags = (tokens % 3).astype("int64")
    weight = (np.arange(10)[None, :] < rng.integers(3, 11, size=(300, 1))).astype("float32")  # 0 on the padding
    inputs = keras.Input((10,), dtype="int32")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(keras.layers.Embedding(30, 8)(inputs))
    network = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    history, _ = lossexp.fit(network, (tokens, tags, weight), loss=[("activity", {"layers": ["hidden"]})],
                             trainer={"epochs": 6, "verbose": 0, "batch_size": 60},
                             optimizer={"name": "adam", "learning_rate": 0.05}, tracking={"enabled": False})
    logits = network.predict(tokens[-60:], verbose=0).astype(np.float64)  # one validation batch
    cross_entropy = numpy_cross_entropy(logits, tags[-60:])
    w = weight[-60:]
    # Keras' reduction: the weighted sum over every token of the batch, divided by their number
    assert history["val_loss/task"][-1] == pytest.approx(np.sum(cross_entropy * w) / w.size, rel=1e-4)
    correct = logits.argmax(-1) == tags[-60:]
    assert history["val_accuracy"][-1] == pytest.approx(np.sum(correct * w) / np.sum(w), rel=1e-5)
    assert history["val_accuracy"][-1] > 0.9  # labels per position are learnt, position by position


@pytest.mark.slow
def test_a_network_keras_cannot_save_costs_the_run_its_model_not_the_run(tmp_path, monkeypatch, capsys):
    """A subclassed network whose constructor takes an argument and which has no get_config: Keras
    refuses to save it, after training went well."""
    import keras

    class Unsaveable(keras.Model):
        def __init__(self, units):
            super().__init__()
            self.hidden, self.out = keras.layers.Dense(units, activation="relu"), keras.layers.Dense(1)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    monkeypatch.chdir(tmp_path)
    history, run_id = lossexp.fit(Unsaveable(8), data(), loss=["hist_avg"], trainer={"epochs": 1, "verbose": 0})
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lossexp: warning:")]
    [before] = warnings  # once, before training: the end does not say it again
    assert before.startswith("lossexp: warning: Keras cannot save this network (NotImplementedError: Object "
                             "Unsaveable was created by passing") and "the run will train and record" in before
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and len(history["loss"]) == 1
    assert run.data.tags["lossexp.model_not_logged"].startswith("NotImplementedError: Object Unsaveable")
    traceback_file = Path(client.download_artifacts(run_id, "error/model_not_logged.txt"))
    assert "get_config" in traceback_file.read_text() and not list(tmp_path.glob("outputs/**/model.keras"))
    from lossexp.tracking.model_source import resolve  # what lossexp evaluate says of it

    with pytest.raises(ConfigError, match=r"the run saved no model \(NotImplementedError: Object Unsaveable"):
        resolve(f"runs:/{run_id}/model")


@pytest.mark.slow
def test_validation_data_with_validation_turned_off_is_one_line(tmp_path, monkeypatch, tiny_network):
    """Keras' fit validates on its validation_data whatever validation_split says; lossexp's
    trainer.validation_split=0 turned validation off and dropped the set without a word (no val_*
    recorded, the objective the training loss). One line now, before any run."""
    import lossexp

    monkeypatch.chdir(tmp_path)
    x, y = np.zeros((16, 4), "float32"), np.zeros((16, 1), "float32")
    refusal = (r"^Invalid value for trainer.validation_split: expected its default \(or any value > 0\) with data "
               r"of its own validation set \(data 'python': 16 examples; validation_data=, .*\), which validates in "
               r"place of the split; 0 turns validation off \(then give no validation set\), got 0(\.0)?$")
    with pytest.raises(ConfigError, match=refusal):
        lossexp.fit(tiny_network(), (x, y), validation_data=(x, y), trainer={"validation_split": 0})
    with pytest.raises(ConfigError, match=refusal):  # the same set in the data's own form
        lossexp.fit(tiny_network(), {"train": (x, y), "validation": (x, y)}, trainer={"validation_split": 0})
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_validation_data_of_ones_own_validates_in_place_of_the_last_examples(tmp_path, monkeypatch):
    """Keras' fit(validation_data=…): the held-out set's loss, as NumPy computes it on the trained
    network; its examples are not trained on."""
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, xv = rng.normal(size=(60, 3)).astype("float32"), rng.normal(size=(25, 3)).astype("float32")
    y, yv = (x[:, 0] > 0).astype("int64"), (xv[:, 0] > 0).astype("int64")
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    history, run_id = lossexp.fit(network, (x, y), validation_data=(xv, yv), loss=["hist_avg"],
                                  trainer={"epochs": 2, "verbose": 0, "batch_size": 20})
    p = np.asarray(network(xv), dtype="float64")
    expected = -np.mean(np.log(p[np.arange(25), yv]))
    np.testing.assert_allclose(history["val_loss/task"][-1], expected, rtol=1e-5)
    params = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id).data.params
    assert params["data.examples"] == "85" and params["data.held_out"] == "25"
    with pytest.raises(ConfigError, match=r"Invalid value for validation_data: expected None with data of a "
                                          r"registered name"):
        lossexp.fit(network, "regression", validation_data=(xv, yv))


@pytest.mark.parametrize("form", ["sequential", "subclassed"])
def test_float_multi_hot_targets_of_a_sigmoid_network_are_binary_cross_entropy_per_label(form, tmp_path, monkeypatch):
    """Multi-label targets stored as floats (MultiLabelBinarizer's rows as float32) against sigmoid
    outputs: a classifier's binary cross-entropy (NumPy's, on the held-out set), not a regression's MSE.
    The subclassed network tracks its output layer first, its hidden ReLU last."""
    import keras

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    x, xv = rng.normal(size=(40, 3)).astype("float32"), rng.normal(size=(20, 3)).astype("float32")
    y, yv = (x[:, :2] > 0).astype("float32"), (xv[:, :2] > 0).astype("float32")
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid")]) \
        if form == "sequential" else output_first_network(2, "sigmoid")
    history, _ = lossexp.fit(network, (x, y), validation_data=(xv, yv), trainer={"epochs": 1, "verbose": 0})
    p = np.asarray(network(xv), dtype="float64")
    expected = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))
    np.testing.assert_allclose(history["val_loss/task"][-1], expected, rtol=1e-5)
    assert "accuracy" in history and "mean_absolute_error" not in history


@pytest.mark.slow
def test_float_labels_of_a_network_built_from_the_config_classify_as_one_given_in_python(tmp_path, monkeypatch):
    """model=keras_file (a network of one's own, loaded while building): its sigmoid outputs, even
    behind an activity tap on them, make float multi-hot targets labels, as for a network given in
    Python; the validation loss is NumPy's binary cross-entropy of the saved model."""
    import keras

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = (x[:, :2] > 0).astype("float32")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid", name="probs")]).save("net.keras")
    history, _ = lossexp.fit("keras_file", (x, y), loss=[("activity", {"layers": ["probs"]})],
                             overrides=["model.path=net.keras"], trainer={"epochs": 1, "verbose": 0})
    [saved] = tmp_path.glob("outputs/runs/*/*/model.keras")
    p = np.asarray(keras.saving.load_model(saved).predict(x[40:], verbose=0), dtype="float64")
    expected = -np.mean(y[40:] * np.log(p) + (1 - y[40:]) * np.log(1 - p))
    np.testing.assert_allclose(history["val_loss/task"][-1], expected, rtol=1e-5)
    assert "accuracy" in history and "mean_absolute_error" not in history


def test_a_stream_whose_passes_differ_in_length_is_one_line_and_its_run_ends_failed(tmp_path, monkeypatch):
    """A generator yielding fewer examples after its first passes: tf.data's check of lossexp's count
    fails mid-training; one line, not TensorFlow's graph error, and no run left RUNNING."""
    import keras
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    passes = []

    def examples():
        passes.append(1)
        for i in range(200 if len(passes) <= 2 else 150):  # counted at 200; later passes shorter
            yield np.full(3, i, "float32"), np.float32(i % 7)

    stream = tf.data.Dataset.from_generator(examples, output_signature=(tf.TensorSpec((3,), tf.float32),
                                                                        tf.TensorSpec((), tf.float32)))
    with pytest.raises(ConfigError) as raised:
        lossexp.fit(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), stream,
                    trainer={"epochs": 2, "verbose": 0}, tracking={"plots": False})
    assert str(raised.value) == ("Invalid value for data (python): expected a stream that yields the same examples "
                                 "at every pass (lossexp counts them once and splits the stream by that count), got "
                                 "'only 150 examples in a split counted at 160'")
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED"


@pytest.mark.slow
def test_sequences_of_varying_length_train_padded_per_batch_behind_a_mask(tmp_path, monkeypatch):
    """A stream of sequences of 3 to 8 steps (no padding of one's own): batched with zeros to the
    longest of each batch; the network's masking layer leaves the padding out."""
    import keras
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(rng.integers(3, 9), 2)).astype("float32") for _ in range(120)]
    labels = np.array([int(s[:, 0].sum() > 0) for s in sequences])
    stream = tf.data.Dataset.from_generator(lambda: zip(sequences, labels), output_signature=(
        tf.TensorSpec((None, 2), tf.float32), tf.TensorSpec((), tf.int64)))
    inputs = keras.Input((None, 2))
    hidden = keras.layers.GRU(8, name="hidden")(keras.layers.Masking()(inputs))
    network = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
    history, _ = lossexp.fit(network, stream, loss=["hist_avg", ("activity", {"layers": ["hidden"]})],
                             trainer={"epochs": 2, "verbose": 0, "batch_size": 16}, tracking={"log_model": False})
    assert np.isfinite(history["val_loss"][-1]) and "val_loss/activity" in history


def test_taps_after_a_masking_embedding_and_the_layer_it_masks_train_a_network_built_before_the_run(tmp_path, monkeypatch):
    """Rewiring calls the embedding again, which makes a new mask operation; named after the network
    was built, it must not take the name of the network's own (Keras refuses a graph of two)."""
    import keras

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    tokens = keras.Input((12,), dtype="int32")
    embedded = keras.layers.Embedding(30, 4, mask_zero=True, name="emb")(tokens)
    network = keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(keras.layers.GRU(6, name="gru")(embedded)))
    x = rng.integers(1, 30, (64, 12)).astype("int32")
    x[:, 9:] = 0
    history, _ = lossexp.fit(network, (x, (x[:, 0] > 15).astype("int64")), loss=[("activity", {"layers": ["emb", "gru"]})],
                             trainer={"epochs": 1, "verbose": 0}, tracking={"enabled": False})
    assert np.isfinite(history["loss/activity"][-1])


def test_a_stream_batched_by_tf_data_trains_in_its_own_batches_unless_a_batch_size_is_given(tmp_path, monkeypatch,
                                                                                          capsys):
    """As Keras' fit does with a batched tf.data.Dataset: batches of 20 over 128 training examples are 7
    steps an epoch; trainer.batch_size, given, wins (one line says so)."""
    import keras
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    x, y = data()
    stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(20).prefetch(2)

    class Steps(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.steps = int(self.model.optimizer.iterations.numpy())

    for trainer, steps in [({"epochs": 2}, 14), ({"epochs": 2, "batch_size": 64}, 4)]:
        counted = Steps()
        lossexp.fit(network(), stream, trainer={**trainer, "verbose": 0}, callbacks=[counted],
                    tracking={"enabled": False})
        assert counted.steps == steps
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lossexp: data python came in batches of 20; it trains in batches of trainer.batch_size = 64")


def test_a_stream_of_targets_by_output_name_trains_each_head_as_the_same_arrays_do(tmp_path, monkeypatch):
    """Three heads (3 classes, a 0/1 flag on a sigmoid, two numbers) from a batched stream: the same
    metrics as from arrays, within what a different shuffle moves."""
    import keras
    import tensorflow as tf

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 6)).astype("float32")
    targets = {"cls": (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0), "flag": x[:, 4] > 0, "reg": 2.0 * x[:, 2:4]}

    def heads():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,))
        shared = keras.layers.Dense(16, activation="relu", name="shared")(inputs)
        return keras.Model(inputs, {"cls": keras.layers.Dense(3, name="cls")(shared),
                                    "flag": keras.layers.Dense(1, activation="sigmoid", name="flag")(shared),
                                    "reg": keras.layers.Dense(2, name="reg")(shared)})

    fits = [lossexp.fit(heads(), data, loss=["hist_avg"], trainer={"epochs": 2, "verbose": 0},
                        tracking={"enabled": False})[0]
            for data in ((x, targets), tf.data.Dataset.from_tensor_slices((x, targets)).batch(32))]
    assert sorted(fits[0]) == sorted(fits[1])
    for key in ("val_cls_loss", "val_flag_loss", "val_reg_loss", "val_cls_accuracy", "val_reg_mean_absolute_error"):
        np.testing.assert_allclose(fits[1][key], fits[0][key], rtol=0.03)


def test_a_callback_with_batch_hooks_is_told_they_run_once_per_compiled_call(tmp_path, monkeypatch, capsys):
    """lossexp compiles several steps per call (one logging interval): a callback's batch hooks run once per
    call — one line says so — and every step with trainer={'steps_per_execution': 1}."""
    import keras

    monkeypatch.chdir(tmp_path)

    class Counter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def on_train_batch_end(self, batch, logs=None):
            self.calls += 1

    quiet = {"tracking": {"plots": False, "log_model": False, "gradients": False}}
    x, y = data(80)  # 64 training examples: 8 steps of 8
    counted = Counter()
    lossexp.fit(network(), (x, y), callbacks=[counted], trainer={"epochs": 1, "batch_size": 8, "verbose": 0}, **quiet)
    assert counted.calls == 1
    assert "lossexp: warning: Counter's batch hooks run once per 10 steps" in capsys.readouterr().err
    every_step = Counter()
    lossexp.fit(network(), (x, y), callbacks=[every_step, keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"))],
                trainer={"epochs": 1, "batch_size": 8, "verbose": 0, "steps_per_execution": 1}, **quiet)
    assert every_step.calls == 8 and "warning" not in capsys.readouterr().err


def test_loss_weights_weigh_the_outputs_of_a_network_of_two_heads(tmp_path, monkeypatch):
    """task.loss_weights as Keras' compile(loss_weights=…): the task loss is Σ weight · the output's loss,
    checked on the validation split in NumPy; a name that is not an output is one line."""
    import keras

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    net = keras.Model(inputs, {"cls": keras.layers.Dense(2, activation="softmax", name="cls")(hidden),
                               "reg": keras.layers.Dense(1, name="reg")(hidden)})
    x = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    y = {"cls": (x[:, 0] > 0).astype("int64"), "reg": x[:, 1:2] * 2.0}
    quiet = {"tracking": {"plots": False, "log_model": False}}
    history = lossexp.fit(net, (x, y), trainer={"epochs": 1, "verbose": 0, "validation_split": 0.2},
                          task={"loss_weights": {"reg": 0.25}}, **quiet).history
    predicted = net.predict(x[80:], verbose=0)
    cross_entropy = float(np.mean(numpy_cross_entropy(np.log(predicted["cls"]), y["cls"][80:])))
    squared = float(np.mean((predicted["reg"] - y["reg"][80:]) ** 2))
    assert history["val_loss/task"][-1] == pytest.approx(cross_entropy + 0.25 * squared, rel=1e-4)
    with pytest.raises(ConfigError, match=r"^Invalid value for task.loss_weights.head: expected one of the model's "
                                          r"outputs \(cls, reg\), got 'head'$"):
        lossexp.fit(net, (x, y), trainer={"epochs": 1, "verbose": 0}, task={"loss_weights": {"head": 2.0}}, **quiet)


@pytest.mark.slow
def test_numpy_numbers_of_a_notebooks_sweep_are_the_numbers_they_hold(tmp_path, monkeypatch):
    """``np.arange``'s epochs, a ``float32`` array's weights and learning rates: refused before as "Keras
    objects" or as "not a finite number >= 0" (np.float32(0.5)), or a TypeError from JSON."""
    from lossexp.losses.activity import ActivityPenalty

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    weights = np.array([0.5, 0.25], dtype="float32")
    history, run_id = lossexp.fit(network(), data(64), loss=[("hist_avg", {"weight": weights[1]}),
                                                             ActivityPenalty(name="activity", weight=weights[0],
                                                                             layers=["hidden_1"])],
                                  trainer={"epochs": np.arange(1, 3)[-1], "verbose": 0, "checkpoint": np.bool_(False)},
                                  optimizer={"name": "adam", "learning_rate": np.float32(0.125)},
                                  tracking={"log_model": False, "plots": False})
    assert len(history["loss"]) == 2
    params = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id).data.params
    assert params["loss.hist_avg.weight"] == "0.25" and params["loss.activity.weight"] == "0.5"
    assert params["optimizer.learning_rate"] == "0.125" and params["trainer.epochs"] == "2"


@pytest.mark.slow
def test_an_interrupted_fit_names_its_killed_run_and_the_call_that_continues_it(tmp_path, monkeypatch, capsys):
    """A notebook's interrupt button mid-fit: the KeyboardInterrupt propagates, and one line says which
    run ended KILLED and that resume= continues it (before, nothing named the run to resume)."""

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    quick = {"trainer": {"epochs": 2, "verbose": 0}, "tracking": {"log_model": False, "plots": False}}
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(network(), data(64), loss="hist_avg", callbacks=[interrupt_at_second_epoch()], **quick)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.info.status == "KILLED"
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"lossexp: interrupted; the run {run.info.run_id} ended KILLED (continue it: the same lossexp.fit(...) call "
        f"with resume={run.info.run_id!r})")
    history, run_id = lossexp.fit(network(), data(64), loss="hist_avg", resume=run.info.run_id, **quick)
    assert run_id == run.info.run_id and client.get_run(run_id).info.status == "FINISHED" and len(history["loss"]) == 1


def test_a_fit_stopped_while_it_records_its_model_continues_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    """A Ctrl-C or SIGTERM after the last epoch, while the run recorded its model and plots (seconds), left a
    KILLED run with neither and no checkpoint (deleted as training ended): every epoch lost, and resume=
    refused it as one that "stopped before its first epoch ended". The checkpoint stays until the run is
    recorded whole: it continues from the epoch before the last and finishes."""
    import keras

    armed = []

    class StoppedWhenSaved(keras.layers.Dense):
        def get_config(self):
            if armed:  # a Ctrl-C as the trained model is saved
                raise KeyboardInterrupt
            return super().get_config()

    class Arm(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            armed.append(True)

    def stoppable():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,), name="inputs")
        hidden = keras.layers.Dense(16, activation="relu", name="hidden_1")(inputs)
        return keras.Model(inputs, StoppedWhenSaved(1, name="output")(hidden))

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    quick = {"trainer": {"epochs": 3, "verbose": 0}, "tracking": {"plots": False}}
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(stoppable(), data(64), loss="hist_avg", callbacks=[Arm()], **quick)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    [run] = client.search_runs(["1"])
    assert run.info.status == "KILLED" and f"resume={run.info.run_id!r}" in capsys.readouterr().err
    progress = json.loads((Path(run.data.tags["lossexp.checkpoint"]) / "progress.json").read_text())
    assert progress["epochs"] == 2  # the epoch before the last
    armed.clear()
    history, run_id = lossexp.fit(stoppable(), data(64), loss="hist_avg", resume=run.info.run_id, **quick)
    assert run_id == run.info.run_id and client.get_run(run_id).info.status == "FINISHED" and len(history["loss"]) == 1
    [model] = client.search_logged_models([run.info.experiment_id])
    assert model.source_run_id == run_id and not Path(run.data.tags["lossexp.checkpoint"]).exists()


def test_component_instances_given_again_start_afresh_from_their_config(tmp_path):
    """A notebook's loop over seeds passes the same instances to every compose or fit. ``attach`` creates
    a component's state, so a second model attached the same instance again: hist_avg held two sets of
    references (6 variables, then 11), the second model's file did not reload ("1 objects could not be
    loaded"), and a trainable weight started at the value the first model trained it to (0.5 → 0.56 in
    a digits run) while the run's config said 0.5. Each model now gets a component of the instance's config."""
    import keras

    from lossexp.losses.coef import TrainableCoefficient
    from lossexp.losses.hist_avg import HistoricalAverage

    loss = [HistoricalAverage(name="hist_avg", weight=0.1),
            TrainableCoefficient(name="coef", weight={"value": 0.5, "trainable": True, "parametrization": "softplus"})]
    x, y = data(32)
    first = lossexp.compose(network(), loss)
    first.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    first.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert first.components[0] is loss[0]  # a first model trains the instances given
    assert float(first.components[1].weighting.multiplier()) != pytest.approx(0.5)

    second = lossexp.compose(network(), loss)
    assert [len(c.weights) for c in second.components] == [len(c.weights) for c in first.components] == [6, 1]
    assert float(second.components[1].weighting.multiplier()) == pytest.approx(0.5)
    assert [c.get_config() for c in second.components] == [c.get_config() for c in loss]
    second.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    second.fit(x, y, batch_size=8, epochs=1, verbose=0)
    second.save(tmp_path / "second.keras")
    reloaded = keras.saving.load_model(tmp_path / "second.keras")
    np.testing.assert_array_equal(reloaded.components[0].references[0].numpy(),
                                  second.components[0].references[0].numpy())


@pytest.mark.slow
def test_an_interrupted_fit_resumes_with_the_same_component_instances(tmp_path, monkeypatch, restored_registry):
    """The same ``lossexp.fit(…)`` call with ``resume=``, its loss list the one the stopped fit was given:
    a component whose ``attach`` makes state (a center loss's centers) was attached a second time and
    the checkpoint no longer fit ("it holds 17 variables that do not fit the 18 of the model")."""
    from keras import ops

    @lossexp.register_component("resumed_centers")
    class Centers(lossexp.LossComponent):
        """term = mean_i ||h_i − c||², c a non-trainable center that moves halfway to the batch mean each step."""

        def attach(self, network):
            self.center = self.add_weight(name="center", shape=(16,), initializer="zeros", trainable=False)

        def outputs_needed(self):
            return ["hidden_1"]

        def term(self, context):
            h = ops.cast(context.outputs["hidden_1"], "float32")
            value = ops.mean(ops.sum(ops.square(h - ops.convert_to_tensor(self.center)), axis=-1))
            if context.training:
                self.center.assign(0.5 * self.center + 0.5 * ops.stop_gradient(ops.mean(h, axis=0)))
            return value

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    loss = [Centers(name="resumed_centers", weight=0.1)]
    quick = {"trainer": {"epochs": 2, "verbose": 0}, "tracking": {"plots": False}}
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(network(), data(64), loss=loss, callbacks=[interrupt_at_second_epoch()], **quick)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    history, run_id = lossexp.fit(network(), data(64), loss=loss, resume=run.info.run_id, **quick)
    assert run_id == run.info.run_id and client.get_run(run_id).info.status == "FINISHED"
    assert len(loss[0].weights) == 2  # loss_weight and the one center: attached once


@pytest.mark.parametrize("form", ["arrays", "stream"])
def test_a_masked_tagger_takes_one_weight_per_example_as_that_weight_at_each_of_its_positions(form, tmp_path,
                                                                                               monkeypatch):
    """Weights of shape (n,) beside labels (n, T): Keras' losses multiply them with the per-position
    values (and a mask) of shape (batch, T) and failed (``Incompatible shapes: [32] vs. [32,10]``), a
    traceback after the checks had accepted them."""
    import keras

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 9, size=(60, 6)) * (np.arange(6)[None, :] < rng.integers(2, 7, size=(60, 1)))
    tags = (tokens % 2).astype("int64")
    weight = rng.uniform(0.5, 2.0, size=60).astype("float32")

    def tagger():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6,), dtype="int32")
        hidden = keras.layers.Embedding(9, 4, mask_zero=True)(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))

    def given(weights):
        import tensorflow as tf

        return (tokens, tags, weights) if form == "arrays" else tf.data.Dataset.from_tensor_slices((tokens, tags, weights))

    options = {"trainer": {"epochs": 1, "verbose": 0, "batch_size": 20, "shuffle": "none"}, "tracking": {"enabled": False}}
    per_example, _ = lossexp.fit(tagger(), given(weight), **options)
    per_position, _ = lossexp.fit(tagger(), given(np.repeat(weight[:, None], 6, axis=1)), **options)
    assert per_example == per_position


@pytest.mark.slow
def test_sample_weights_by_output_name_train_as_keras_fit_does(tmp_path, monkeypatch):
    """A head with missing labels, weighted 0 where they are missing, and the other heads unweighted:
    lossexp.fit's histories equal Keras' own fit(sample_weight={output: …}) from the same weights, losses
    and metrics of each head, training and validation (refused before: one weight per example only)."""
    import keras

    monkeypatch.chdir(tmp_path)

    def heads() -> keras.Model:
        keras.utils.set_random_seed(3)
        inputs = keras.Input((4,), name="x")
        hidden = keras.layers.Dense(8, activation="tanh", name="trunk")(inputs)
        return keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(hidden),
                                    "reg": keras.layers.Dense(1, name="reg")(hidden)})

    x = np.random.default_rng(1).normal(size=(40, 4)).astype("float32")
    y = {"cls": np.argmax(x[:, :3], axis=1), "reg": 10.0 * x[:, 3:]}
    known = (np.random.default_rng(2).random(40) > 0.4).astype("float32")
    history = lossexp.fit(heads(), (x, y, {"cls": known}), optimizer={"name": "sgd", "learning_rate": 0.01},
                          trainer={"epochs": 2, "batch_size": 8, "shuffle": "none", "verbose": 0},
                          tracking={"plots": False, "log_model": False, "gradients": False, "drift": False}).history
    network = heads()
    network.compile(optimizer=keras.optimizers.SGD(0.01), loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                    weighted_metrics={"cls": ["accuracy"], "reg": ["mean_absolute_error"]})
    expected = network.fit(x, y, sample_weight={"cls": known, "reg": np.ones(40, "float32")}, batch_size=8, epochs=2,
                           shuffle=False, validation_split=0.2, verbose=0).history
    for key in ("loss", "val_loss", "cls_loss", "val_cls_loss", "cls_accuracy", "val_cls_accuracy", "val_reg_loss"):
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-5, err_msg=key)


def test_targets_and_sample_weights_given_one_array_per_output_are_named_in_output_order():
    """``(x, [y1, y2], [w1, w2])`` as Keras' fit takes them for a network of two outputs: both by output
    name (a list of weights was refused as "one weight per example"); one weight per example stays one."""
    import keras

    from lossexp.api import by_output_name

    inputs = keras.Input((2,))
    network = keras.Model(inputs, [keras.layers.Dense(1, name="first")(inputs), keras.layers.Dense(3, name="second")(inputs)])
    x, y1, y2, w1, w2 = np.zeros((4, 2)), np.zeros((4, 1)), np.arange(4), np.ones(4), np.arange(4.0)
    _, targets, weights = by_output_name((x, [y1, y2], [w1, w2]), network)
    assert list(targets) == ["first", "second"] and targets["second"] is y2
    assert list(weights) == ["first", "second"] and weights["second"] is w2
    assert by_output_name((x, [y1, y2], w2), network)[2] is w2


def test_a_py_dataset_of_the_projects_raising_in_its_first_batches_is_one_line_naming_its_file(tmp_path, monkeypatch):
    """Given to ``lossexp.fit``, a PyDataset whose ``__getitem__`` raised among the batches read before the run
    was TensorFlow's InvalidArgumentError with the generator's traceback as text; nothing is recorded."""
    import importlib.util

    import keras

    (tmp_path / "pyproject.toml").write_text("[tool.lossexp]\nmodules = []\n")
    (tmp_path / "shards.py").write_text(
        "import keras\nimport numpy as np\n\n\nclass Shards(keras.utils.PyDataset):\n"
        "    def __len__(self):\n        return 4\n\n"
        "    def __getitem__(self, i):\n        if i == 1:\n            raise ValueError(f'corrupt shard {i}')\n"
        "        return np.ones((8, 3), 'float32'), np.zeros(8, 'int64')\n")
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("shards", tmp_path / "shards.py")
    shards = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shards)
    with pytest.raises(ConfigError) as raised:
        lossexp.fit(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), shards.Shards(),
                    trainer={"epochs": 1, "verbose": 0}, tracking={"plots": False})
    assert str(raised.value) == (f"Your code failed reading the data at {tmp_path / 'shards.py'}:11 (in __getitem__): "
                                 "ValueError: corrupt shard 1")
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.parametrize("where", ["counted", "in_training"])
def test_a_generator_of_a_scripts_raising_is_one_line_naming_it(where, tmp_path, monkeypatch):
    """A ``tf.data`` generator of a script's or a notebook's (no project) raising at its 300th record, given to
    ``lossexp.fit``: it was TensorFlow's error with the generator's traceback as text (30 lines); now the line the
    CLI gives a project's — as lossexp counts the stream before the run (nothing recorded) or in training
    (with a validation set of its own the stream is not counted first: the run FAILED)."""
    import inspect

    import keras
    import tensorflow as tf

    x = np.ones((400, 3), "float32")  # past the 256 elements lossexp's checks read first

    def records():
        for i in range(400):
            if i == 300:
                raise ValueError(f"corrupt record {i}")
            yield x[i], 0

    monkeypatch.chdir(tmp_path)
    stream = tf.data.Dataset.from_generator(records, output_signature=(tf.TensorSpec((3,), tf.float32),
                                                                       tf.TensorSpec((), tf.int64))).batch(8)
    validation = {"validation_data": (x[:8], np.zeros(8, "int64"))} if where == "in_training" else {}
    with pytest.raises(ConfigError) as raised:
        lossexp.fit(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), stream,
                    trainer={"epochs": 1, "verbose": 0}, tracking={"plots": False}, **validation)
    line = inspect.getsourcelines(records)[1] + 3
    doing = "in training" if where == "in_training" else "preparing the data"
    assert str(raised.value) == f"Your code failed {doing} at {__file__}:{line} (in records): ValueError: corrupt record 300"
    store = tmp_path / "outputs" / "mlflow.db"
    statuses = [run.info.status for run in MlflowClient(f"sqlite:///{store}").search_runs(["1"])] if store.exists() else []
    assert statuses == (["FAILED"] if where == "in_training" else []), statuses


@pytest.mark.parametrize("form, given", [("subclassed", "arrays"), ("functional", "arrays"), ("subclassed", "stream"),
                                         ("functional", "batches")])
def test_a_network_of_a_list_of_outputs_trains_on_targets_and_weights_listed_in_its_order(form, given, tmp_path,
                                                                                          monkeypatch):
    """Keras pairs a list of outputs with a list of targets by position. A subclassed network has no
    output names: lossexp names them ``output_0``, ``output_1`` — also before the network is built (the
    fit refused its list of targets). Each head's held-out loss is NumPy's on the trained network, with
    each head's own sample weights (a list of weights failed mid-step with ``KeyError: 0`` for any
    network of a list of outputs); the functional network's heads are named as the subclassed one's. A
    ``tf.data`` stream of ``(x, (y1, y2), (w1, w2))`` elements, as Keras takes it, trains the same way
    (it failed in an AttributeError traceback), and so does a ``PyDataset`` of such batches. The task
    losses and their weights may be lists in the outputs' order too, as Keras' ``compile`` takes them."""
    import keras

    class ValueAndClass(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="value_and_class")
            self.hidden = keras.layers.Dense(8, activation="tanh")
            self.value, self.classes = keras.layers.Dense(1), keras.layers.Dense(3)

        def call(self, x):
            h = self.hidden(x)
            return [self.value(h), self.classes(h)]

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    x, xv = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(30, 4)).astype("float32")
    targets = [x.sum(1, keepdims=True), np.argmax(x[:, :3], axis=1)]
    held_out = [xv.sum(1, keepdims=True), np.argmax(xv[:, :3], axis=1)]
    weights = [rng.uniform(0.5, 1.5, size=30).astype("float32"), rng.uniform(0.5, 1.5, size=30).astype("float32")]
    network = ValueAndClass()
    if form == "functional":
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(8, activation="tanh")(inputs)
        network = keras.Model(inputs, [keras.layers.Dense(1, name="output_0")(hidden),
                                       keras.layers.Dense(3, name="output_1")(hidden)])
    train, validation = (x, targets), (xv, held_out, weights)
    if given == "stream":
        import tensorflow as tf

        ones = np.ones(len(x), "float32")  # a validation stream's elements are the training stream's
        train = tf.data.Dataset.from_tensor_slices((x, tuple(targets), (ones, ones))).batch(30)
        validation = tf.data.Dataset.from_tensor_slices((xv, tuple(held_out), tuple(weights))).batch(30)
    if given == "batches":
        class Batches(keras.utils.PyDataset):
            def __init__(self, parts) -> None:
                super().__init__()
                self.parts = parts

            def __len__(self) -> int:
                return len(self.parts[0]) // 30

            def __getitem__(self, index: int):
                rows = slice(30 * index, 30 * index + 30)
                return (self.parts[0][rows], *(tuple(a[rows] for a in part) for part in self.parts[1:]))

        ones = np.ones(len(x), "float32")
        train, validation = Batches((x[:60], targets, (ones, ones))), Batches((xv, held_out, weights))
    losses = {"output_0": "mse", "output_1": "sparse_categorical_crossentropy"}
    if given != "arrays":  # in the outputs' order, as Keras' compile(loss=[…]) takes them
        losses = ["mse", "sparse_categorical_crossentropy"]
    history, _ = lossexp.fit(network, train, validation_data=validation, loss=["hist_avg"],
                             task={"loss": losses, "loss_weights": [1.0, 1.0] if given == "batches" else None},
                             trainer={"epochs": 2, "verbose": 0, "batch_size": 30}, tracking={"enabled": False})
    value, logits = (np.asarray(out, dtype="float64") for out in network(xv))
    squared = np.sum(weights[0] * (value[:, 0] - held_out[0][:, 0]) ** 2) / 30
    cross_entropy = np.sum(weights[1] * numpy_cross_entropy(logits, held_out[1])) / 30
    assert history["val_output_0_loss"][-1] == pytest.approx(squared, rel=1e-4)
    assert history["val_output_1_loss"][-1] == pytest.approx(cross_entropy, rel=1e-4)
    assert history["val_loss/task"][-1] == pytest.approx(squared + cross_entropy, rel=1e-4)
    assert "output_1_accuracy" in history and "loss/hist_avg" in history
