"""The global step after a compiled call: true at an epoch's short last call, read once per epoch when
Keras knows the epoch's length and once per call when it does not, fresh in every ``fit``; the logged
steps and values do not depend on how many steps run per call."""
from __future__ import annotations

from typing import List

import keras
import numpy as np
import pytest

from lossexp.training import step_count
from lossexp.training.step_count import IntervalCallback


class Seen(IntervalCallback):
    """Keeps the global step it was given after every call."""

    def __init__(self) -> None:
        super().__init__(every_n_steps=1)
        self.steps: List[int] = []

    def on_steps_done(self, previous_step: int, logs: dict) -> None:
        self.steps.append(self.step)


def model(steps_per_execution: int) -> keras.Model:
    keras.backend.clear_session()
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    network.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", steps_per_execution=steps_per_execution)
    return network


def data(rows: int):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 2)).astype("float32"), rng.normal(size=(rows, 1)).astype("float32")


def counted_reads(monkeypatch) -> List[int]:
    """Appends to the returned list at every read of the optimizer's count."""
    reads: List[int] = []
    convert = keras.ops.convert_to_numpy
    monkeypatch.setattr(step_count.keras.ops, "convert_to_numpy", lambda x: reads.append(1) or convert(x))
    return reads


def test_every_callback_sees_the_true_step_and_the_variable_is_read_once_per_fit(monkeypatch):
    network = model(steps_per_execution=3)
    reads = counted_reads(monkeypatch)
    watchers = [Seen() for _ in range(4)]
    network.fit(*data(10), batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=watchers)
    # 5 steps an epoch in calls of 3: the second call of each epoch runs 2 (Keras' batch index says 3)
    assert [w.steps for w in watchers] == [[3, 5, 8, 10]] * 4
    assert len(reads) == 1  # at the first epoch: the second starts where the first ended
    assert int(network.optimizer.iterations.numpy()) == 10


def test_without_the_epochs_length_the_count_is_read_once_per_call(monkeypatch):
    """A dataset of unknown cardinality: Keras cannot say how many batches an epoch has, so the
    nominal batch index of the last call cannot be corrected; the count is read after each call."""
    import tensorflow as tf

    x, y = data(10)
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(zip(x.reshape(5, 2, 2), y.reshape(5, 2, 1))),
        output_signature=(tf.TensorSpec((2, 2), tf.float32), tf.TensorSpec((2, 1), tf.float32)))
    assert dataset.cardinality() == tf.data.UNKNOWN_CARDINALITY
    network = model(steps_per_execution=3)
    reads = counted_reads(monkeypatch)
    watchers = [Seen() for _ in range(4)]
    network.fit(dataset, epochs=2, verbose=0, callbacks=watchers)
    assert [w.steps for w in watchers] == [[3, 5, 8, 10]] * 4
    assert len(reads) == 4


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_second_fit_reads_anew_where_its_calls_have_the_first_ones_numbers(epochs):
    network = model(steps_per_execution=2)  # 4 rows, batch 2: one call of 2 steps an epoch, always (epoch, 1)
    first, second = Seen(), Seen()
    network.fit(*data(4), batch_size=2, epochs=epochs, verbose=0, callbacks=[first])
    network.fit(*data(4), batch_size=2, epochs=epochs, verbose=0, callbacks=[second])
    assert first.steps == [2 * e for e in range(1, epochs + 1)]
    assert second.steps == [2 * (epochs + e) for e in range(1, epochs + 1)]


def recorded_history(steps_per_execution: int, drift_every_n_steps: int = 100) -> dict:
    from lossexp.tracking.callback import MetricSink, RunRecorder

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh", name="hidden"),
                              keras.layers.Dense(1, name="output")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3)).astype("float32")  # 100 rows / batch 10: 10 steps an epoch
    y = x.sum(axis=1, keepdims=True)
    sink = MetricSink(None, None)
    model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, callbacks=[RunRecorder(sink, 3, drift=True, drift_every_n_steps=drift_every_n_steps)])
    return {key: points for key, points in sink.history.items() if key != "startup_seconds"}


def test_steps_and_values_are_the_same_with_one_or_three_steps_per_call():
    one, batched = recorded_history(1), recorded_history(3)
    assert [step for step, _ in one["loss"]] == [3, 6, 9, 10, 13, 16, 19, 20]  # every 3 steps of an epoch, its end
    assert one.keys() == batched.keys()
    for key in one:
        assert [step for step, _ in one[key]] == [step for step, _ in batched[key]], key
        np.testing.assert_allclose([v for _, v in one[key]], [v for _, v in batched[key]], rtol=1e-5, err_msg=key)


def test_drift_is_measured_first_then_once_per_block_of_steps_and_at_the_end():
    """Samples at 3, 6, 9, 10 (epoch end), 13, …, 20; drift every 6 steps: the first sample, the
    first sample at or after 6, 12 and 18, and the last step."""
    history = recorded_history(1, drift_every_n_steps=6)
    assert [step for step, _ in history["loss"]] == [3, 6, 9, 10, 13, 16, 19, 20]
    for key in (key for key in history if key.startswith("weight_drift/")):
        assert [step for step, _ in history[key]] == [3, 6, 13, 19, 20], key
    per_step = [value for _, value in history["weight_drift/per_step/hidden"]]
    from_init = [value for _, value in history["weight_drift/from_init/hidden"]]
    assert all(value > 0 for value in per_step) and from_init == sorted(from_init)  # moving away from θ_0


def test_under_gradient_accumulation_the_step_counts_batches_across_epochs():
    """``iterations`` counts weight updates under gradient accumulation (one per 4 batches here): the
    second epoch's steps began at 2 (8 batches // 4) and overlapped the first's; they follow it."""
    keras.backend.clear_session()
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    network.compile(optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=4), loss="mse")
    watcher = Seen()
    network.fit(*data(16), batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=[watcher])
    assert watcher.steps == list(range(1, 17))
    assert int(network.optimizer.iterations.numpy()) == 4  # the updates, which schedules follow


def loss_scaled_network() -> keras.Model:
    """A mixed_float16 network whose LossScaleOptimizer starts at a scale its first steps overflow (skipped)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=2.0 ** 17)
    network.compile(optimizer=optimizer, loss="mse", steps_per_execution=3)
    return network


def test_the_steps_a_loss_scaling_optimizer_skips_are_counted():
    """``mixed_float16``'s LossScaleOptimizer does not count a step it skips (non-finite gradients at a
    loss scale too high: 2 of the first epoch's 5 here); the steps count the batches all the same.
    The second epoch's steps began at the optimizer's count again, 3: 3, 5, then 6, 8."""
    network = loss_scaled_network()
    watcher = Seen()
    network.fit(*data(10), batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=[watcher])
    assert int(network.optimizer.iterations.numpy()) < 10  # steps were skipped
    assert watcher.steps == [3, 5, 8, 10]


class Intervals(IntervalCallback):
    """Keeps the steps of its intervals."""

    def __init__(self) -> None:
        super().__init__(every_n_steps=3)
        self.steps: List[int] = []

    def on_interval(self, logs: dict) -> None:
        self.steps.append(self.step)


def test_a_resumed_fit_acts_at_the_steps_of_the_run_it_continues():
    """Four epochs of 5 steps in one fit, or two and then two more from epoch 2 (a resumed run's fit):
    intervals of 3 steps from each epoch's start, 3, 8, 13, 18. The resumed fit counted its first
    epoch's steps from 0, so its first call (step 11) was an interval: 11, 14, 18."""
    network, x, y = model(steps_per_execution=1), *data(10)
    whole = Intervals()
    network.fit(x, y, batch_size=2, epochs=4, shuffle=False, verbose=0, callbacks=[whole])
    network = model(steps_per_execution=1)
    network.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    resumed = Intervals()
    network.fit(x, y, batch_size=2, initial_epoch=2, epochs=4, shuffle=False, verbose=0, callbacks=[resumed])
    assert whole.steps == [3, 8, 13, 18]
    assert resumed.steps == [13, 18]


def test_a_fit_resumed_after_skipped_steps_starts_at_the_batches_of_its_first_epochs():
    """Two epochs of 5 batches under a loss scale that skips 3, then two more from epoch 2 (a resumed
    run's fit): the steps follow 10. They began at the optimizer's count, 7: 10, 12, 15, 17 — a resumed
    run's points at steps its stopped attempt had recorded were dropped."""
    network = loss_scaled_network()
    network.fit(*data(10), batch_size=2, epochs=2, shuffle=False, verbose=0)
    assert int(network.optimizer.iterations.numpy()) < 10  # steps were skipped
    resumed = Seen()
    network.fit(*data(10), batch_size=2, initial_epoch=2, epochs=4, shuffle=False, verbose=0, callbacks=[resumed])
    assert resumed.steps == [13, 15, 18, 20]
