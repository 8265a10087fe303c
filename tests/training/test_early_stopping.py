"""``trainer.patience``: training stops once ``trainer.monitor`` has not improved for that many
epochs; the network ends with its best epoch's weights, and the run's objective is that epoch's."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import lossexp
from lossexp.errors import ConfigError
from lossexp.training.early_stopping import higher_is_better


def network():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden_1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32"))[:, None] + rng.normal(0, 0.5, (60, 1)).astype("float32")


QUIET = ["tracking.plots=false", "tracking.log_model=false", "trainer.verbose=0"]


def test_training_stops_on_its_monitor_and_ends_with_its_best_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net, (x, y) = network(), data()
    history, run_id = lossexp.fit(net, (x, y), loss=["hist_avg"], optimizer={"name": "sgd", "learning_rate": 0.2},
                                  trainer={"epochs": 60, "patience": 2, "batch_size": 8}, overrides=QUIET)
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 3 < 60  # two epochs without improvement after the best, then stop
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert run.data.tags["lossexp.early_stopping"] == (f"stopped after epoch {best + 3}; weights of epoch {best + 1} "
                                                       f"(val_loss {val[best]:.6g})")
    assert run.data.metrics["objective"] == pytest.approx(val[best])
    # the network is the best epoch's: its validation loss (the last 20 %, no component in it) is that epoch's
    predicted = np.asarray(net(x[48:]), dtype="float64")
    assert np.mean((predicted - y[48:]) ** 2) == pytest.approx(history["val_loss/task"][best], rel=1e-5)


def test_a_monitor_without_patience_is_one_warning_and_every_epoch_trains(tmp_path, monkeypatch, capsys):
    """Only early stopping reads trainer.monitor: set alone it changed nothing, silently."""
    monkeypatch.chdir(tmp_path)
    history, _ = lossexp.fit(network(), data(), trainer={"epochs": 2, "monitor": "val_loss/task"},
                             overrides=[*QUIET, "tracking.enabled=false"])
    assert len(history["val_loss"]) == 2
    assert [line for line in capsys.readouterr().err.splitlines() if "trainer.monitor" in line] == [
        "lossexp: warning: trainer.monitor=val_loss/task is read by early stopping only, which trainer.patience=null "
        "leaves off: every epoch trains (set trainer.patience=N to stop after N epochs without improvement)"]


@pytest.mark.slow
def test_a_run_stopped_after_its_best_epoch_and_resumed_ends_as_the_one_that_never_stopped(tmp_path, monkeypatch):
    """The checkpoint keeps early stopping's memory: resumed after its best epoch, the run stops when the
    uninterrupted one does, with that epoch's weights and objective (it ended with the best since the resume)."""
    monkeypatch.chdir(tmp_path)
    x, y = data()
    settings = {"loss": ["hist_avg"], "optimizer": {"name": "sgd", "learning_rate": 0.2},
                "trainer": {"epochs": 60, "patience": 2, "batch_size": 8}, "overrides": QUIET}
    net = network()
    history, whole = lossexp.fit(net, (x, y), **settings)
    best = int(np.argmin(history["val_loss"]))
    assert best >= 1

    class StopAfterTheBest(keras.callbacks.Callback):  # a Ctrl-C the epoch after the best one
        def on_epoch_begin(self, epoch, logs=None):  # a Ctrl-C between epochs (checkpoint written)
            if epoch == best + 2:
                raise KeyboardInterrupt

    stopped = network()
    with pytest.raises(KeyboardInterrupt) as interrupted:
        lossexp.fit(stopped, (x, y), callbacks=[StopAfterTheBest()], **settings)
    _, resumed = lossexp.fit(stopped, (x, y), resume=interrupted.value.run_id, **settings)
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    ended, continued = client.get_run(whole), client.get_run(resumed)
    assert continued.data.tags["lossexp.early_stopping"] == ended.data.tags["lossexp.early_stopping"]
    assert continued.data.metrics["objective"] == ended.data.metrics["objective"]
    for ours, theirs in zip(stopped.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(ours, theirs)


def test_a_monitor_the_run_does_not_record_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^Invalid value for trainer.monitor: expected a metric the run records "
                                          r"at each epoch's end: loss, .*val_loss.*, got 'val_acc'$"):
        lossexp.fit(network(), data(), trainer={"epochs": 3, "patience": 1, "monitor": "val_acc"}, overrides=QUIET)
    [run] = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["1"])
    assert run.info.status == "FAILED"


def test_accuracy_like_monitors_are_maximised_and_losses_minimised():
    assert higher_is_better("val_accuracy") and higher_is_better("val_auc") and higher_is_better("ring/modes_covered")
    assert not higher_is_better("val_loss") and not higher_is_better("val_loss/task")
    assert not higher_is_better("val_mean_absolute_error")


def test_the_users_own_keras_early_stopping_that_restores_its_best_weights_sets_the_objective(tmp_path, monkeypatch):
    """Keras' EarlyStopping(restore_best_weights=True) of the user's puts its best epoch's weights back as
    training ends, so the saved network is that epoch's: the objective and the tag are that epoch's too (they
    were the last epoch's: 0.1506 for a network that scores 0.1460)."""
    monkeypatch.chdir(tmp_path)
    net, (x, y) = network(), data()
    own = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1.0, restore_best_weights=True)
    history, run_id = lossexp.fit(net, (x, y), loss=["hist_avg"], optimizer={"name": "sgd", "learning_rate": 0.2},
                                  trainer={"epochs": 10, "batch_size": 8}, overrides=QUIET, callbacks=[own])
    val = history["val_loss"]
    assert len(val) == 2 and own.best_epoch == 0 and val[1] != val[0]  # no improvement of 1.0: stopped at epoch 2
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert run.data.metrics["objective"] == pytest.approx(val[0])
    assert run.data.tags["lossexp.early_stopping"] == (f"stopped after epoch 2; weights of epoch 1 "
                                                       f"(val_loss {val[0]:.6g})")
    predicted = np.asarray(net(x[48:]), dtype="float64")
    assert np.mean((predicted - y[48:]) ** 2) == pytest.approx(history["val_loss/task"][0], rel=1e-5)


def test_the_users_own_keras_early_stopping_without_restoring_leaves_the_last_epochs_objective(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net, (x, y) = network(), data()
    own = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=1.0)
    history, run_id = lossexp.fit(net, (x, y), loss=["hist_avg"], optimizer={"name": "sgd", "learning_rate": 0.2},
                                  trainer={"epochs": 10, "batch_size": 8}, overrides=QUIET, callbacks=[own])
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert len(history["val_loss"]) == 2
    assert run.data.metrics["objective"] == pytest.approx(history["val_loss"][-1])
    assert "lossexp.early_stopping" not in run.data.tags
