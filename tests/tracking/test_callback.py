"""docs/tracking.md's "metrics are buffered and written with one ``log_batch`` per epoch from a background
thread", on a real SQLite store: the client's ``log_batch`` is wrapped by a counter that still writes
and notes the thread it ran on, and a probe callback placed after the recorder reads how many calls
the training thread made at every step and epoch end."""
from __future__ import annotations

import signal
import threading
from typing import Any, Dict, List

import keras
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from lossexp.losses.activity import ActivityPenalty
from lossexp.tracking import store
from lossexp.tracking.callback import MetricSink, RunRecorder


class CountingLogBatch:
    """Calls the client's real ``log_batch`` and remembers the thread and size of each call."""

    def __init__(self, client: MlflowClient) -> None:
        self.real = client.log_batch
        self.calls: List[Dict[str, Any]] = []

    def __call__(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append({"thread": threading.current_thread().name, "metrics": len(kwargs.get("metrics", ()))})
        return self.real(run_id, *args, **kwargs)


class Probe(keras.callbacks.Callback):
    """How many log_batch calls the training thread had made after each step and each epoch's end."""

    def __init__(self, counter: CountingLogBatch) -> None:
        super().__init__()
        self.counter = counter
        self.after_step: List[List[int]] = []
        self.after_epoch: List[int] = []

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.after_step.append([])

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.after_step[-1].append(self.on_training_thread())

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.after_epoch.append(self.on_training_thread())

    def on_training_thread(self) -> int:
        return sum(call["thread"] == threading.current_thread().name for call in self.counter.calls)


def test_one_background_log_batch_per_epoch_and_every_point_lands(tmp_path, tiny_network, compose,
                                                                 regression_data):
    x, y = regression_data  # 40 rows: 32 to train on in batches of 4 (8 steps an epoch), 8 to validate
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    run_id = store.start_run(client, store.ensure_experiment(client, "t", uri), "r", {})
    counter = CountingLogBatch(client)
    client.log_batch = counter  # instrumentation: every call still reaches the store
    sink = MetricSink(client, run_id)
    model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=0.05, layers=["hidden_1"])])
    probe = Probe(counter)
    model.fit(x[:32], y[:32], batch_size=4, epochs=3, validation_data=(x[32:], y[32:]), verbose=0,
              callbacks=[RunRecorder(sink, every_n_steps=2, drift=True, drift_every_n_steps=2), probe])

    sink.close()  # waits for the background writes

    assert probe.after_step == [[0] * 8] * 3 and probe.after_epoch == [0] * 3  # training never waits for the store
    assert [call["thread"].startswith("lossexp-metrics") for call in counter.calls] == [True] * 3  # one per epoch
    assert all(0 < call["metrics"] <= 1000 for call in counter.calls)
    # what was buffered is what the store holds (an epoch's end repeats its last sample: one row)
    reader = MlflowClient(uri)
    for key, points in sink.history.items():
        assert {(m.step, m.value) for m in reader.get_metric_history(run_id, key)} == set(points), key
    assert sorted({step for step, _ in sink.history["loss"]}) == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    assert {"val_loss", "term/activity", "weight_drift/from_init/hidden_1"} <= set(sink.history)
    assert np.isfinite([value for points in sink.history.values() for _, value in points]).all()


def test_a_ctrl_c_while_a_batch_is_handed_over_sends_it_once(tmp_path, monkeypatch):
    """Seen in CI: a Ctrl-C while ``ThreadPoolExecutor.submit`` started the writer thread left the
    submitted points on the pending list, and the run's close sent them again (each step twice)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    run_id = store.start_run(client, store.ensure_experiment(client, "t", uri), "r", {})
    sink = MetricSink(client, run_id)
    real = store.log_metrics

    def then_ctrl_c(*args, **kwargs):
        futures = real(*args, **kwargs)  # handed to the writer: now the user presses Ctrl-C
        signal.raise_signal(signal.SIGINT)
        return futures

    monkeypatch.setattr(store, "log_metrics", then_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for step in range(1, 6):
            sink.add({"loss": 1.0 / step}, step)
        with pytest.raises(KeyboardInterrupt):
            sink.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.setattr(store, "log_metrics", real)
    sink.close()  # what the run's context manager does on the way out
    steps = sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, "loss"))
    assert steps == [1, 2, 3, 4, 5]


def test_the_learning_rate_is_recorded_at_each_sample_as_its_schedule_gives_it(tmp_path, monkeypatch):
    """A schedule's rate after step s is its value at s updates (the next update's), from step 0 on."""
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(4, name="hidden_1")(inputs)))
    x = np.random.default_rng(0).random((48, 3)).astype("float32")
    schedule = {"schedule": "cosine_decay", "initial_learning_rate": 0.1, "decay_steps": 10}
    _, run_id = lossexp.fit(network, (x, x.sum(axis=1, keepdims=True)), optimizer={"name": "sgd", "learning_rate": schedule},
                            trainer={"epochs": 2, "batch_size": 8, "validation_split": 0.25, "log_every_n_steps": 2,
                                     "verbose": 0},
                            tracking={"plots": False, "log_model": False, "drift": False, "gradients": False})
    logged = {m.step: m.value for m in MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
              .get_metric_history(run_id, "learning_rate")}
    cosine = keras.optimizers.schedules.CosineDecay(0.1, 10)
    # 36 training rows in batches of 8: 5 steps an epoch, sampled every 2 and at each epoch's end
    assert sorted(logged) == [0, 2, 4, 5, 7, 9, 10]
    # computed in the compiled step, as the update's is: 1 + cos(π·9/10) cancels 4 bits of float32, which
    # differ from the eager schedule's in the last bits at step 9 (2.5e-6 relative)
    for step, value in logged.items():
        assert value == pytest.approx(float(cosine(step)), rel=1e-5), step


def test_a_key_sampled_again_at_its_step_is_one_point_that_a_logged_model_can_link(tmp_path):
    """Under ``trainer.distribute=mirrored`` an epoch's end repeated its last sample's ``loss/task`` at the
    same step with another last bit (2.3627117, 2.3627119): two rows at one step and timestamp, and
    MLflow's logged model, which links the final step's metrics, failed on SQLite's UNIQUE constraint."""
    from mlflow.entities import Metric

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    experiment = store.ensure_experiment(client, "t", uri)
    run_id = store.start_run(client, experiment, "r", {})
    sink = MetricSink(client, run_id)
    sink.add({"loss/task": 2.5}, 5)
    sink.flush()
    sink.add({"loss/task": 2.5000002}, 5)  # a point already sent is kept
    sink.add({"loss/task": 2.3627117}, 10)  # the interval's sample
    sink.add({"loss/task": 2.3627119, "val_loss": 1.5}, 10)  # the epoch's end, at the same step
    sink.close()
    history = MlflowClient(uri).get_metric_history(run_id, "loss/task")
    assert sorted((m.step, m.value) for m in history) == [(5, 2.5), (10, 2.3627119)]
    assert sink.history["loss/task"] == [(5, 2.5), (10, 2.3627119)]
    model = client.create_logged_model(experiment, name="model", source_run_id=run_id)
    client.log_batch(run_id, metrics=[Metric(m.key, m.value, m.timestamp, m.step, run_id=run_id,
                                             model_id=model.model_id) for m in history if m.step == 10])


def test_the_recorded_points_are_kept_packed_in_memory():
    """The sink keeps every point for the plots and summary: as tuples in a list, about 120 bytes each —
    a 100-epoch run of 125,000 steps grew 0.20 MB an epoch, about 160 MB at 10⁶ steps; now 16."""
    import tracemalloc

    from lossexp.tracking.callback import MetricSink

    sink = MetricSink(None, None, recorded={"loss": [(0, 1.0), (10, 0.5)]})
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for step in range(20, 50_020, 10):
        sink.add({"loss": 1.0 / step, "loss/task": 0.5 / step}, step=step)
        sink.flush()  # no store: what stays is the history
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 40 * 10_000  # 10,000 points: 17 bytes each with the arrays' spare room (102 each before)
    assert sink.history["loss"][:2] == [(0, 1.0), (10, 0.5)] and sink.history["loss"][-1] == (50_010, 1.0 / 50_010)
    steps, values = zip(*sink.history["loss/task"])
    assert len(steps) == 5_000 and steps[0] == 20 and values[-1] == 0.5 / 50_010


def test_a_resumed_run_records_what_its_stopped_attempt_left_out_of_a_step():
    """Stopped between step 80's sampled points and its epoch-end points: the resumed run trains epoch 2
    again and records ``epoch`` and ``val_loss`` at 80, not ``loss`` twice (it skipped the whole step:
    the run's epochs read 1, 3)."""
    sink = MetricSink(None, None, recorded={"loss": [(40, 2.0), (80, 1.0)], "epoch": [(40, 1.0)],
                                            "val_loss": [(40, 3.0)]})
    sink.add({"loss": 1.1}, step=60)
    sink.add({"loss": 1.2, "epoch": 2.0, "val_loss": 2.5}, step=80)
    sink.add({"loss": 0.9, "epoch": 3.0}, step=120)
    assert sink.history["loss"] == [(40, 2.0), (80, 1.0), (120, 0.9)]
    assert sink.history["epoch"] == [(40, 1.0), (80, 2.0), (120, 3.0)] and sink.history["val_loss"][-1] == (80, 2.5)


def test_every_gradient_sample_is_recorded_also_when_two_fall_between_the_recorders_samples(
        tmp_path, tiny_network, compose, regression_data):
    """Diagnostics every 5 steps, metrics every 10 (8 steps an epoch: at its end): each sample is
    recorded at its step. Only read at the recorder's samples, step 1 was measured and then replaced
    by step 6 before being read: 6 alone was recorded."""
    from lossexp.training.gradient_probe import GradientProbe

    x, y = regression_data
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    sink = MetricSink(client, store.start_run(client, store.ensure_experiment(client, "t", uri), "r", {}))
    model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=0.05, layers=["hidden_1"])])
    model.watch_gradients()
    model.fit(x[:32], y[:32], batch_size=4, epochs=1, verbose=0,
              callbacks=[GradientProbe(lambda step: (x[:4], y[:4]), 5), RunRecorder(sink, every_n_steps=10, drift=False)])
    sink.close()

    assert [step for step, _ in sink.history["weight_grad/norm"]] == [1, 6]
    assert [step for step, _ in sink.history["loss"]] == [8]


@pytest.mark.parametrize("use_ema", [True, False])
def test_with_use_ema_the_coefficient_the_saved_model_holds_is_recorded_beside_the_trained_one(use_ema):
    # Keras swaps the optimizer's moving average into the weights as fit ends: the model (and so the saved
    # one) held a = 0.0093 while the record's last weight/coef/coef was the last update's 0.0061
    from lossexp.losses.coef import TrainableCoefficient
    from lossexp.training.supervised import compose

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(6, name="hidden_1")(inputs)))
    model = compose(network, [TrainableCoefficient(name="coef", weight={"value": 0.1, "trainable": True})])
    model.compile(keras.optimizers.Adam(0.05, use_ema=use_ema, ema_momentum=0.9), "mean_squared_error")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    sink = MetricSink(None, None)
    model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0, callbacks=[RunRecorder(sink, every_n_steps=4, drift=False)])
    saved = float(model.tracked_weights()["weight/coef/coef"])  # what model.save writes
    trained = sink.history["weight/coef/coef"][-1]
    if not use_ema:
        assert not [key for key in sink.history if key.startswith("weight_ema/")] and trained == (8, pytest.approx(saved))
        return
    assert sink.history["weight_ema/coef/coef"][-1] == (8, pytest.approx(saved, rel=1e-6))
    assert sink.history["weight_ema/coef"][-1] == (8, pytest.approx(float(model.tracked_weights()["weight/coef"]), rel=1e-6))
    assert trained[0] == 8 and abs(trained[1] - saved) > 1e-3  # the last update's a, not the average's


def test_with_use_ema_the_last_drift_is_the_trained_weights():
    """The drift series is of the trained weights to its end: ``fit`` puts the optimizer's moving average into
    the weights after the last epoch and before ``on_train_end``, where the last point was measured, of the
    average (``from_init`` 0.24 where the trained weights' was 0.49). Checked against NumPy's ‖θ − θ₀‖/‖θ₀‖ of the layer's
    weights as the last epoch ended."""
    from lossexp.training.supervised import compose

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(6, name="hidden_1")(inputs)))
    model = compose(network, [])
    model.compile(keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9), "mean_squared_error")
    layer = model.network.get_layer("hidden_1")
    seen = {}
    capture = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.update(start=[w.numpy().copy() for w in layer.trainable_weights]),
        on_epoch_end=lambda epoch, logs: seen.update(trained=[w.numpy().copy() for w in layer.trainable_weights]))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    sink = MetricSink(None, None)
    model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0,
              callbacks=[RunRecorder(sink, every_n_steps=4, drift_every_n_steps=100), capture])

    def from_init(weights):
        start = np.concatenate([w.ravel() for w in seen["start"]]).astype(np.float64)
        return np.linalg.norm(np.concatenate([w.ravel() for w in weights]) - start) / np.linalg.norm(start)

    averaged = [w.numpy() for w in layer.trainable_weights]  # the average, swapped in
    assert abs(from_init(averaged) - from_init(seen["trained"])) > 0.1 * from_init(seen["trained"])
    assert sink.history["weight_drift/from_init/hidden_1"][-1] == (8, pytest.approx(from_init(seen["trained"]), rel=1e-5))
