"""Keras callbacks of the user's, given to ``lossexp.fit``: what they change in training is what a
stopped and resumed run continues from."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import lossexp


def network():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32"))[:, None]


SETTINGS = {"loss": "hist_avg", "optimizer": {"name": "sgd", "learning_rate": 0.2},
            "trainer": {"epochs": 3, "batch_size": 8, "verbose": 0}, "tracking": {"log_model": False, "plots": False}}


class Halve(keras.callbacks.Callback):
    """The user's decay of the rate at each epoch's end (as ReduceLROnPlateau's reduction is made)."""

    def on_epoch_end(self, epoch, logs=None):
        rate = self.model.optimizer.learning_rate
        rate.assign(rate * 0.5)


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_a_resumed_run_continues_at_the_learning_rate_a_callback_set_at_the_epochs_end(tmp_path, monkeypatch):
    """The checkpoint is taken after the user's callbacks' epoch end: it held the rate from before their
    change, so a run resumed after epoch 2 trained epoch 3 at 0.1 where the run that never stopped
    trained at 0.05 (its val_loss differed)."""
    monkeypatch.chdir(tmp_path)
    x, y = data()
    whole, whole_id = lossexp.fit(network(), (x, y), callbacks=[Halve()], **SETTINGS)
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(network(), (x, y), callbacks=[Halve(), InterruptAt(2)], **SETTINGS)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    stopped = next(run for run in client.search_runs(["0", "1"]) if run.info.status == "KILLED")
    resumed, _ = lossexp.fit(network(), (x, y), callbacks=[Halve()], resume=stopped.info.run_id, **SETTINGS)
    rates = [point.value for point in client.get_metric_history(stopped.info.run_id, "learning_rate")]
    assert rates[-1] == pytest.approx(0.05)  # the rate epoch 3 trained at, as in the run that never stopped
    assert resumed["val_loss"] == whole["val_loss"][2:]
