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


@pytest.mark.slow
def test_a_resumed_run_continues_reduce_lr_on_plateau_and_ends_as_the_run_that_never_stopped(tmp_path, monkeypatch):
    """ReduceLROnPlateau's epochs since its best are kept with the checkpoint: afresh, a run resumed after
    epoch 3 reduced its rate an epoch later (epoch 5 at 0.05 where the run that never stopped had 0.025)."""
    monkeypatch.chdir(tmp_path)
    x, y = data()
    settings = {**SETTINGS, "trainer": {**SETTINGS["trainer"], "epochs": 6}}

    def plateau():
        return keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_delta=0.5)

    whole, _ = lossexp.fit(network(), (x, y), callbacks=[plateau()], **settings)
    assert len(set(whole["learning_rate"])) >= 3  # it reduced more than once, one epoch without improvement apart
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(network(), (x, y), callbacks=[plateau(), InterruptAt(3)], **settings)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    stopped = next(run for run in client.search_runs(["0", "1"]) if run.info.status == "KILLED")
    resumed, _ = lossexp.fit(network(), (x, y), callbacks=[plateau()], resume=stopped.info.run_id, **settings)
    assert resumed["learning_rate"] == whole["learning_rate"][3:]
    assert resumed["val_loss"] == whole["val_loss"][3:]


def test_keras_stateful_callbacks_get_their_memory_back_after_their_own_train_begin():
    """The memory goes back in after the callback's on_train_begin, which resets ReduceLROnPlateau's; a
    callback of another class at that place, or EarlyStopping restoring best weights (not kept), is left as is."""
    import json

    from lossexp.training.callback_memory import CallbackMemory, memory

    plateau = keras.callbacks.ReduceLROnPlateau(patience=3)
    plateau.best, plateau.wait, plateau.cooldown_counter = np.float32(0.25), 2, 1
    saving = keras.callbacks.ModelCheckpoint("best.keras", save_best_only=True)
    saving.best = 0.125
    restoring = keras.callbacks.EarlyStopping(restore_best_weights=True)
    kept = json.loads(json.dumps(memory([plateau, saving, restoring])))
    assert kept[2] == {"class": "EarlyStopping"}

    again = [keras.callbacks.ReduceLROnPlateau(patience=3), keras.callbacks.EarlyStopping(),
             keras.callbacks.EarlyStopping(restore_best_weights=True)]
    for callback in [*again, CallbackMemory(again, kept)]:
        callback.on_train_begin()
    assert (again[0].best, again[0].wait, again[0].cooldown_counter) == (0.25, 2, 1)
    assert again[1].wait == 0 and again[2].wait == 0  # not the stopped run's ModelCheckpoint: left as it is


@pytest.mark.parametrize("callback", [keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0),
                                      keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5)],
                         ids=["plateau", "scheduler"])
def test_a_callback_that_sets_the_rate_of_a_scheduled_optimizer_is_one_line_before_any_run(tmp_path, monkeypatch,
                                                                                           callback):
    """Keras cannot set a schedule's rate: ReduceLROnPlateau failed with a TypeError traceback at its first
    reduction, after epochs of training (the run FAILED after 2 of 3), LearningRateScheduler at the first epoch."""
    from lossexp.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    schedule = {"schedule": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 100}
    with pytest.raises(ConfigError, match=rf"^Invalid value for optimizer.learning_rate: expected a number for "
                                          rf"{type(callback).__name__}, which sets the optimizer's rate \(a schedule's "
                                          r"rate cannot be set\), got \{'schedule': 'cosine_decay'"):
        lossexp.fit(network(), data(), callbacks=[callback], **{**SETTINGS, "optimizer": {"name": "sgd",
                                                                                       "learning_rate": schedule}})
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
