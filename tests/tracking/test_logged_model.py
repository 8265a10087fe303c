"""The trained model that cannot be saved: a warning that says where, the run kept."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def _raising_in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function of a project's own module (``mine.py``, line 3) that raises, as a regime's
    ``serving_network`` may; the working directory is the project's."""
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["mine"]\n')
    (tmp_path / "mine.py").write_text("def serving_network(model):\n    model = model\n"
                                      "    raise RuntimeError('no serving network')\n")
    spec = importlib.util.spec_from_file_location("mine_for_logged_model", tmp_path / "mine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
    return module.serving_network


def test_a_failure_in_the_projects_code_is_named_by_its_file_and_line(tmp_path, monkeypatch, capsys):
    """It said 'Give your classes a get_config()' whatever failed: for a regime's serving_network
    that raised, the line now names where (and the model file half written is removed)."""
    from lossexp.tracking.logged_model import unsaved_model_is_a_warning

    serving_network = _raising_in_a_project(tmp_path, monkeypatch)
    saved = tmp_path / "model.keras"
    saved.write_bytes(b"half")
    with unsaved_model_is_a_warning(SimpleNamespace(run_id=None), saved):
        serving_network(object())
    warning = capsys.readouterr().err.strip()
    assert warning == ("lossexp: warning: the trained model was not saved (RuntimeError: no serving network); the run "
                       f"and its metrics are recorded. It failed in your code at {tmp_path / 'mine.py'}:3 (in "
                       "serving_network) or set tracking.log_model=false")
    assert not saved.exists()


def test_a_failure_in_keras_says_to_give_the_classes_a_get_config(tmp_path, monkeypatch, capsys):
    from lossexp.tracking.logged_model import unsaved_model_is_a_warning

    monkeypatch.chdir(tmp_path)
    with unsaved_model_is_a_warning(SimpleNamespace(run_id=None), tmp_path / "model.keras"):
        raise NotImplementedError("Object Unsaveable was created by passing non-serializable argument values")
    assert "Give your classes a get_config() (see Keras' serialization guide) or set tracking.log_model=false" in \
        capsys.readouterr().err


def test_a_network_keras_cannot_save_is_warned_about_once_before_training(tmp_path, monkeypatch, capsys):
    """It was warned about twice, before training and again at the end: the end now stays quiet when it
    fails as foretold, and the first line says what the run will do."""
    import keras

    from lossexp.tracking.logged_model import unsaved_model_is_a_warning, warn_if_unsaveable

    class Settings:  # a value Keras cannot serialise
        factor = 2.0

    class Scale(keras.layers.Layer):
        def __init__(self, settings, **kwargs):
            super().__init__(**kwargs)
            self.settings = settings

        def call(self, x):
            return x * self.settings.factor

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((2,))
    network = keras.Model(inputs, Scale(Settings())(inputs))
    warned = warn_if_unsaveable(network)
    first = capsys.readouterr().err
    assert first.count("\n") == 1 and first.startswith("lossexp: warning: Keras cannot save this network (Not")
    assert "the run will train and record its metrics without the model (tag lossexp.model_not_logged)" in first
    with unsaved_model_is_a_warning(SimpleNamespace(run_id=None), tmp_path / "model.keras", warned=warned):
        keras.saving.serialize_keras_object(network)  # as saving the run's model fails
    assert capsys.readouterr().err == ""
    assert warn_if_unsaveable(keras.Model(inputs, keras.layers.Dense(1)(inputs))) is None


# --- the serving SavedModel: each weight once ------------------------------------------------------
def _dense(keras, rows):
    network = keras.Sequential([keras.Input((40,)), keras.layers.Dense(300), keras.layers.Dense(3)])
    return network, rows


def _lookup(keras, rows):
    """A TextVectorization's lookup table is tracked only by ``ExportArchive.track``: without it the
    export failed."""
    text = np.array(["a b c", "b c d", "c d e", "a a a", "e d"], dtype=object)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=3)
    vectorize.adapt(text)
    words = keras.Input((), dtype="string")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(20, 100)(vectorize(words)))
    return keras.Model(words, keras.layers.Dense(1)(embedded)), text


def _batch_norm(keras, rows):
    """Non-trainable weights (moving statistics) not at their initial values."""
    network = keras.Sequential([keras.Input((40,)), keras.layers.Dense(200), keras.layers.BatchNormalization(),
                                keras.layers.Dense(2)])
    network.layers[1].moving_mean.assign(np.linspace(-1, 1, 200, dtype="float32"))
    network.layers[1].moving_variance.assign(np.full(200, 4.0, "float32"))
    return network, rows


def _several(keras, rows):
    first, second = keras.Input((40,), name="first"), keras.Input((4,), name="second")
    hidden = keras.layers.Dense(200)(keras.layers.Concatenate()([first, second]))
    outputs = {"cls": keras.layers.Dense(2)(hidden), "reg": keras.layers.Dense(1)(hidden)}
    return keras.Model({"first": first, "second": second}, outputs), {"first": rows, "second": rows[:, :4]}


@pytest.mark.parametrize("make", [_dense, _lookup, _batch_norm, _several], ids=lambda make: make.__name__[1:])
def test_the_serving_savedmodel_stores_each_weight_once_and_predicts_as_the_network(make, tmp_path):
    """Keras' ExportArchive checkpointed each weight twice, as its TensorFlow variable and as the Keras
    variable ``track`` lists (``serving/`` was 2× the weights); the served predictions are the
    network's."""
    import keras
    import tensorflow as tf
    from mlflow.models import infer_signature

    from lossexp.tracking.logged_model import fed, save_serving, served

    network, example = make(keras, np.random.default_rng(0).standard_normal((5, 40)).astype("float32"))
    predicted = np.asarray(served(network.predict(fed(example), verbose=0)))
    save_serving(network, tmp_path, infer_signature(example, predicted), example)

    stored = sum(f.stat().st_size for f in (tmp_path / "data" / "model" / "variables").iterdir())
    weights = sum(np.asarray(v.numpy()).nbytes for v in network.variables)
    assert weights <= stored < weights * 1.1 + 4096  # the checkpoint's own index and object graph
    loaded = tf.saved_model.load(str(tmp_path / "data" / "model"))
    np.testing.assert_allclose(loaded.serve(fed(example)).numpy(), predicted, rtol=1e-6, atol=1e-6)


# --- the run's model.keras: no optimizer slots, written once --------------------------------------
def _trained_composed(keras, x, y, optimizer):
    from conftest import make_tiny_network
    from lossexp.losses.hist_avg import HistoricalAverage
    from lossexp.training.supervised import compose

    model = compose(make_tiny_network(), [HistoricalAverage(name="hist_avg", weight=0.5)])
    model.compile(optimizer=optimizer)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("optimizer", ["adam", "loss_scaled"])
def test_a_runs_model_leaves_out_the_optimizer_slots_and_reloads_to_the_same_state(optimizer, tmp_path,
                                                                                    regression_data):
    """Adam's two moments were two more copies of the network in every run's file; what a reader uses
    stays: the weights, hist_avg's reference, the step count (scheduled weights follow it), the loss;
    the reload builds no slots (no Keras warning that the file holds fewer) and training goes on."""
    import warnings

    import keras

    from lossexp.tracking.logged_model import save_trained

    x, y = regression_data
    adam = keras.optimizers.Adam(0.01)
    model = _trained_composed(keras, x, y, adam if optimizer == "adam" else
                              keras.optimizers.LossScaleOptimizer(adam))
    save_trained(model, tmp_path / "run.keras")
    model.save(tmp_path / "whole.keras")  # Keras' own save keeps everything, as before
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "run.keras")
        whole = keras.saving.load_model(tmp_path / "whole.keras")
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]

    slots = sum(int(np.prod(v.shape)) for v in model.network.trainable_variables) * 2 * 4
    saved, kept = (tmp_path / "run.keras").stat().st_size, (tmp_path / "whole.keras").stat().st_size
    assert kept - saved > 0.9 * slots
    assert model.saves_optimizer_slots and "saves_optimizer_slots" not in vars(model)  # restored after
    assert [v.path for v in loaded.optimizer.variables] == [v.path for v in type(model.optimizer).from_config(
        model.optimizer.get_config()).variables]  # unbuilt: step count, learning rate
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 5
    assert len(whole.optimizer.variables) == len(model.optimizer.variables)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    reference = {c.name: c for c in loaded.components}["hist_avg"].reference_values()
    for got, want in zip(reference, model.components[0].reference_values()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(loaded.optimizer.iterations) == 10


def test_the_logged_keras_flavor_is_the_runs_file_not_a_second_save(tmp_path, monkeypatch):
    """The run's model.keras and the MLflow model's data/model.keras were two serialisations of the
    same model (8.2 s for a 75M-parameter network): the logged one is now the written file."""
    import filecmp

    import lossexp
    from conftest import make_tiny_network, logged_model_file
    from lossexp.evaluate import load_model

    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    _, run_id = lossexp.fit(make_tiny_network(), (x, x[:, :1]), loss="hist_avg", optimizer={"name": "adam"},
                            trainer={"epochs": 1, "batch_size": 8, "verbose": 0}, tracking={"plots": False})
    [written] = (tmp_path / "outputs" / "runs").rglob("model.keras")
    logged = logged_model_file(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}", run_id)
    assert filecmp.cmp(written, logged, shallow=False)
    np.testing.assert_allclose(load_model(logged).predict(x, verbose=0), load_model(written).predict(x, verbose=0))


def test_logging_the_model_reads_no_metric_history(tmp_path, monkeypatch):
    """MLflow's ``Model.log(step=…)`` read the whole history of every metric of the run to find the points
    at the last step (9.5 s at the end of a 100-epoch run of 163,000 points, growing with the run). The
    model is still linked to the run at that step, with the run's metrics at it, and no history is read."""
    import sqlite3

    from mlflow import MlflowClient

    import lossexp
    from conftest import make_tiny_network

    monkeypatch.chdir(tmp_path)
    reads = []
    history = MlflowClient.get_metric_history
    monkeypatch.setattr(MlflowClient, "get_metric_history", lambda self, *a, **k: reads.append(a) or history(self, *a, **k))
    x = np.random.default_rng(0).random((40, 4)).astype("float32")
    _, run_id = lossexp.fit(make_tiny_network(), (x, x[:, :1]), loss="hist_avg", optimizer={"name": "adam"},
                            trainer={"epochs": 2, "batch_size": 8, "verbose": 0, "log_every_n_steps": 2,
                                     "checkpoint": False},
                            tracking={"plots": False, "gradients": False, "drift": False})
    assert reads == []
    database = tmp_path / "outputs" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")
    run = client.get_run(run_id)
    [model] = client.search_logged_models([run.info.experiment_id])
    assert [(o.model_id, o.step) for o in run.outputs.model_outputs] == [(model.model_id, 8)]  # 2 epochs of 4 steps
    at_last_step = {m.key: m.value for m in run.to_proto().data.metrics if m.step == 8 and m.key != "objective"}
    assert {m.key: m.value for m in model.metrics} == at_last_step and "loss" in at_last_step
    with sqlite3.connect(database) as db:  # linked, not recorded twice
        assert db.execute("select count(*) from metrics where step = 8 and key = 'loss'").fetchone() == (1,)
    from mlflow.models import Model

    from urllib.parse import urlparse

    assert Model.load(urlparse(model.artifact_location).path).run_id == run_id  # the MLmodel names the run
