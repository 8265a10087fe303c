"""The training state saved at an epoch's end puts a model built again from the same config back
where it was: every variable (weights, normalisation and dropout state, the components', every
optimizer slot and step count) and the weight-drift references; training then goes on exactly as
if it had never stopped."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from lossexp.errors import ConfigError
from lossexp.training.checkpoint import Checkpoint, restore, state_variables
from lossexp.training.checkpoint_files import PROGRESS, progress, resumable
from lossexp.training.drift import WeightDrift
from lossexp.training.supervised import compose

X = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
Y = X[:, :1] * 2.0 + 1.0


def composed():
    """The same network and components each call (a trainable coefficient, historical averages,
    dropout and batch normalisation: state of every kind), compiled with Adam."""
    from lossexp.losses.coef import TrainableCoefficient
    from lossexp.losses.hist_avg import HistoricalAverage

    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden_1")(inputs)
    hidden = keras.layers.BatchNormalization()(keras.layers.Dropout(0.3)(hidden))
    network = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model = compose(network, [HistoricalAverage(name="hist_avg"),
                              TrainableCoefficient(name="coef", weight={"value": 0.1, "trainable": True})])
    model.compile(keras.optimizers.Adam(0.01), "mean_squared_error")
    return model


def plain():
    """A plain Keras model: a checkpoint holds any model's state."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu", name="hidden_1"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mean_squared_error")
    return model


def values(model) -> list:
    return [v.numpy() for v in state_variables(model)]


def test_a_restored_model_trains_on_exactly_as_the_one_that_never_stopped(tmp_path):
    first = composed()
    first.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    saving = Checkpoint(tmp_path / "checkpoint")
    saving.set_model(first)
    saving.on_epoch_end(1)  # as at the second epoch's end
    assert progress(tmp_path / "checkpoint") == {"epochs": 2, "step": 6, "state": "state-2.npz",
                                                 "variables": len(state_variables(first))}
    again = composed()
    assert restore(again, tmp_path / "checkpoint") == ([], None, [])  # no drift, no early stopping, no callbacks kept
    for saved, restored in zip(values(first), values(again)):
        np.testing.assert_array_equal(saved, restored)
    # the dropout masks, the averages, the coefficient and Adam's moments all continue: one more epoch each
    first.fit(X, Y, batch_size=16, epochs=3, initial_epoch=2, shuffle=False, verbose=0)
    again.fit(X, Y, batch_size=16, epochs=3, initial_epoch=2, shuffle=False, verbose=0)
    for continued, resumed in zip(values(first), values(again)):
        np.testing.assert_array_equal(continued, resumed)


def test_a_run_that_ends_deletes_its_checkpoint_and_a_stopped_one_keeps_the_last_epochs(tmp_path):
    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    model = plain()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=16, epochs=4, verbose=0, callbacks=[Checkpoint(tmp_path / "c"), Stop()])
    assert json.loads((tmp_path / "c" / PROGRESS).read_text())["epochs"] == 2
    # the second epoch's state only: the first's removed once the progress named the second, no partial file
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [PROGRESS, "state-2.npz"]
    saving = Checkpoint(tmp_path / "c")
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0, callbacks=[saving])
    assert progress(tmp_path / "c")["epochs"] == 2  # kept until the run is recorded whole
    saving.discard()
    assert not (tmp_path / "c").exists() and progress(tmp_path / "c") is None


def test_the_last_epoch_is_not_saved_only_to_be_deleted(tmp_path):
    """A run that ends deletes its checkpoint: the last epoch's state, written at its end, was never
    read (a network of 204 weight tensors: 1,437 variables read and written, 0.16 s of CPU an epoch; a 1-epoch sweep job's
    whole checkpoint). The epochs before it are saved, and a stop at the last epoch's end — or while the run
    records its model and plots, before :meth:`Checkpoint.discard` — continues from the one before."""
    seen = []

    class Look(keras.callbacks.Callback):  # after the checkpoint, as the run's later callbacks
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(p.name for p in (tmp_path / "c").iterdir()))

    saving = Checkpoint(tmp_path / "c")
    plain().fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[saving, Look()])
    assert seen == [[PROGRESS, "state-1.npz"], [PROGRESS, "state-2.npz"], [PROGRESS, "state-2.npz"]]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [PROGRESS, "state-2.npz"]
    saving.discard()
    assert not (tmp_path / "c").exists()


def test_a_progress_file_without_the_state_it_names_is_no_checkpoint(tmp_path):
    (tmp_path / PROGRESS).write_text('{"epochs": 3, "step": 9, "state": "state-3.npz"}')
    assert progress(tmp_path) is None


def test_an_epoch_whose_loss_is_not_finite_is_not_saved(tmp_path):
    saving = Checkpoint(tmp_path)
    saving.set_model(plain())
    saving.on_epoch_end(0, {"loss": 1.5})
    saving.on_epoch_end(1, {"loss": float("nan")})
    assert progress(tmp_path)["epochs"] == 1  # the last epoch worth continuing from


def test_the_drift_references_continue_from_the_first_weights():
    model = plain()
    layers = {"hidden_1": model.get_layer("hidden_1").trainable_weights}
    drift = WeightDrift(layers)
    drift.start()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    drift.measure(3)
    kept = drift.state()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    resumed = WeightDrift(layers)
    resumed.start()  # from the weights now, as a resumed run's recorder starts
    resumed.restore(kept)
    assert resumed.measure(6) == drift.measure(6)


def test_the_first_weights_of_the_drift_are_written_once_a_run_not_at_every_epoch(tmp_path):
    """θ₀ never changes: at an 11M-parameter network its copy was 45 MB rewritten at every epoch's
    end. It is written at the callback's first save, read back beside the rest of the drift's state."""
    model = plain()
    drift = WeightDrift({"all": model.trainable_weights})
    drift.start()
    saving = Checkpoint(tmp_path / "c", drift_state=drift.state_values)
    saving.set_model(model)
    saving.on_epoch_end(0, {"loss": 1.0})
    initial = tmp_path / "c" / "drift-initial.npz"
    first = initial.stat()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    drift.measure(3)
    saving.on_epoch_end(1, {"loss": 1.0})
    assert initial.stat().st_ino == first.st_ino and initial.stat().st_mtime_ns == first.st_mtime_ns
    with np.load(tmp_path / "c" / "state-2.npz") as state:
        drifts = [name for name in state.files if name.startswith("drift_")]
    assert len(drifts) == len(drift.state()) - len(model.trainable_weights)
    restored = restore(plain(), tmp_path / "c")
    assert len(restored.drift) == len(drift.state())
    for kept, loaded in zip(drift.state(), restored.drift):
        np.testing.assert_array_equal(kept, loaded)
    resumed = Checkpoint(tmp_path / "c", drift_state=drift.state_values)  # a resumed run's process
    resumed.set_model(model)
    resumed.on_epoch_end(2, {"loss": 1.0})
    assert initial.stat().st_ino != first.st_ino  # written again once: it is this run's own
    initial.write_bytes(initial.read_bytes()[:200])
    with pytest.raises(ConfigError, match=rf"^Invalid checkpoint file {initial}: BadZipFile"):
        restore(plain(), tmp_path / "c")


def test_a_checkpoint_that_keeps_all_the_drift_in_its_state_file_still_restores(tmp_path):
    """Written before θ₀ was kept apart: every drift array in the state file, no drift_initial."""
    model = plain()
    drift = WeightDrift({"all": model.trainable_weights})
    drift.start()
    saving = Checkpoint(tmp_path, drift_state=lambda: ([], [*drift.state_values().initial,
                                                            *drift.state_values().changing]))
    saving.set_model(model)
    saving.on_epoch_end(0, {"loss": 1.0})
    assert "drift_initial" not in progress(tmp_path) and not (tmp_path / "drift-initial.npz").exists()
    for kept, loaded in zip(drift.state(), restore(plain(), tmp_path).drift, strict=True):
        np.testing.assert_array_equal(kept, loaded)


def test_a_checkpoint_that_does_not_fit_the_model_is_one_line(tmp_path):
    saving = Checkpoint(tmp_path)
    saving.set_model(plain())
    saving.save(1, 3)
    wider = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5), keras.layers.Dense(1)])
    wider.compile(keras.optimizers.Adam(0.01), "mean_squared_error")
    with pytest.raises(ConfigError, match=r"^Invalid checkpoint .*: it holds \d+ variables that do not fit the \d+ of "
                                          r"the model the run's config builds \(was its code changed\?\)$"):
        restore(wider, tmp_path)


def test_a_stop_with_a_checkpoint_carries_the_command_that_continues_the_run(tmp_path):
    with pytest.raises(KeyboardInterrupt) as stopped, resumable(tmp_path, lambda: "abc123"):
        raise KeyboardInterrupt
    assert not hasattr(stopped.value, "resume_command")  # nothing saved yet: nothing to continue
    (tmp_path / "state-1.npz").write_bytes(b"")
    (tmp_path / PROGRESS).write_text('{"epochs": 1, "step": 5, "state": "state-1.npz"}')
    with pytest.raises(KeyboardInterrupt) as stopped, resumable(tmp_path, lambda: "abc123"):
        raise KeyboardInterrupt
    assert stopped.value.resume_command == "lossexp train --resume abc123"


def test_an_epochs_checkpoint_is_committed_only_once_its_points_are_in_the_store(tmp_path):
    """A SIGKILL while an epoch's points were being written left a checkpoint of that epoch and none
    of its points: the resumed run recorded from the checkpoint's step on, a gap of the whole epoch
    (steps 85–150 of a 5-epoch run killed after its second). The progress now waits for the store."""
    import threading

    from lossexp.tracking import store
    from lossexp.tracking.callback import MetricSink

    client = store.open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")  # a copy of an empty store: fast
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    sink = MetricSink(client, run_id)
    model = plain()
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    saving = Checkpoint(tmp_path / "checkpoint", once_recorded=sink.once_written)
    saving.set_model(model)

    held = threading.Event()
    store.after_pending_writes(held.wait)  # the writer busy, as with a slow store
    sink.add({"loss": 1.0, "epoch": 1}, step=3)
    sink.flush()
    saving.on_epoch_end(0, {"loss": 1.0})
    assert (tmp_path / "checkpoint" / "state-1.npz").is_file()
    assert progress(tmp_path / "checkpoint") is None  # a kill now: no checkpoint ahead of the store
    held.set()
    sink.close()
    assert progress(tmp_path / "checkpoint")["epochs"] == 1
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(3, 1.0)]

    lost = MetricSink(client, "no-such-run")  # a batch the store refused: its epoch is not committed
    saving = Checkpoint(tmp_path / "refused", once_recorded=lost.once_written)
    saving.set_model(model)
    lost.add({"loss": 1.0}, step=3)
    saving.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(Exception):
        lost.close()
    assert progress(tmp_path / "refused") is None


@pytest.mark.parametrize("text", ['{"epochs": 1, "st', "[1, 2]", '{"epochs": "one", "step": 5, "state": "state-1.npz"}'])
def test_a_progress_file_lossexp_did_not_write_is_one_line_naming_it(tmp_path, text):
    """It was a JSONDecodeError's traceback (or an AttributeError's) out of ``lossexp train --resume``."""
    (tmp_path / "state-1.npz").write_bytes(b"")
    (tmp_path / PROGRESS).write_text(text)
    with pytest.raises(ConfigError, match=rf"^Invalid checkpoint file {tmp_path / PROGRESS}: .+ \(the run cannot "
                                          r"continue from it; lossexp train --from-run RUN_ID trains its config "
                                          r"again\)$"):
        progress(tmp_path)


def test_a_damaged_state_file_is_one_line_naming_it(tmp_path):
    """A state file cut short (a disk's damage, a copy that stopped) was zipfile.BadZipFile's traceback
    at --resume: one line now, before anything is recorded."""
    model = plain()
    saving = Checkpoint(tmp_path)
    saving.set_model(model)
    saving.on_epoch_end(0, {"loss": 1.0})
    state = tmp_path / "state-1.npz"
    state.write_bytes(state.read_bytes()[:300])
    with pytest.raises(ConfigError, match=rf"^Invalid checkpoint file {state}: BadZipFile: .+ \(the run cannot "
                                          r"continue from it; .+\)$"):
        restore(plain(), tmp_path)


def test_the_state_is_written_one_variable_at_a_time_not_copied_to_the_host_whole(tmp_path):
    """np.savez took the whole state as host arrays: at ResNet50 with hist_avg and drift, 630 MB of
    copies at every epoch's end. Each variable is now read as its entry is written (the same .npz)."""
    import tracemalloc

    model = keras.Sequential([keras.Input((512,)), *(keras.layers.Dense(512) for _ in range(4))])
    model.compile(keras.optimizers.Adam(0.01), "mean_squared_error")
    drift = WeightDrift({"all": model.trainable_weights})
    drift.start()
    saving = Checkpoint(tmp_path / "c", drift_state=drift.state_values)
    saving.set_model(model)
    state = sum(int(np.prod(v.shape)) * 4 for v in state_variables(model)) + 3 * 4 * 512 * 513 * 4  # 25 MB
    tracemalloc.start()
    try:
        saving.save(1, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < state / 5, (peak, state)  # a kernel (1 MB) and its bytes at a time
    again = keras.Sequential([keras.Input((512,)), *(keras.layers.Dense(512) for _ in range(4))])
    again.compile(keras.optimizers.Adam(0.01), "mean_squared_error")
    restored = restore(again, tmp_path / "c")
    for saved, loaded in zip(values(model), values(again)):
        np.testing.assert_array_equal(saved, loaded)
    for kept, loaded in zip(drift.state(), restored.drift):
        np.testing.assert_array_equal(kept, loaded)


def test_the_step_a_checkpoint_names_counts_the_batches_a_loss_scale_skipped(tmp_path):
    """Its progress (and a resumed run's tag, "from epoch 2 (step …)") names the batches trained: the
    optimizer's count, which leaves out the steps Keras' loss scale skipped (4 of the first 6 here),
    named steps 0 and 2 for 3 and 6."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    network.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=2.0 ** 17),
                    loss="mse")
    seen = []

    class Look(keras.callbacks.Callback):  # after the checkpoint
        def on_epoch_end(self, epoch, logs=None):
            seen.append(progress(tmp_path / "c")["step"])

    network.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=[Checkpoint(tmp_path / "c"), Look()])
    assert int(network.optimizer.iterations.numpy()) < 9  # steps were skipped
    assert seen[:2] == [3, 6]


def test_a_gans_gradient_sample_retried_at_the_checkpoint_is_retried_after_the_restore(tmp_path):
    """A discriminator whose loss scale overflows its first updates: its sample due at step 1 is retried at each
    next step. A checkpoint after the first epoch (2 steps, the retry pending) keeps that, so the resumed fit takes
    the sample at step 3, as the fit that never stopped does (it waited for step 4, the next one due)."""
    from conftest import dataset, network
    from lossexp.training.gan_model import GANModel
    from lossexp.training.step_gradients import Reader

    x = dataset("ring", n_samples=32, seed=1).x  # 2 steps of 16 an epoch

    def gan():
        keras.utils.set_random_seed(3)
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            generator, discriminator, *_ = network("gan", dataset("ring", n_samples=16), latent_dim=3,
                                                   generator_units=[8], discriminator_units=[8], activation="tanh")
            model = GANModel(generator, discriminator, seed=5)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        scaled = {"generator": 2.0 ** 10, "discriminator": 2.0 ** 19}
        model.compile(**{f"{p}_optimizer": keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=s)
                         for p, s in scaled.items()}, steps_per_execution=2, jit_compile=False)
        model.watch_gradients(3, 2)
        return model

    def fit(model, start, end, *callbacks):
        model.fit(x, batch_size=16, initial_epoch=start, epochs=end, shuffle=False, verbose=0,
                  callbacks=[Reader(model.step_gradients), *callbacks])
        return [step for step, values in model.step_gradients.read() if "weight_grad/discriminator/norm" in values]

    stopped = gan()
    assert fit(stopped, 0, 1) == [] and stopped.step_gradients.retrying() == ["discriminator"]
    saving = Checkpoint(tmp_path)
    saving.set_model(stopped)
    saving.save(1, 2)
    assert json.loads((tmp_path / PROGRESS).read_text())["gradients_retry"] == ["discriminator"]
    resumed = gan()
    restore(resumed, tmp_path)
    assert resumed.step_gradients.retrying() == ["discriminator"]
    assert fit(resumed, 1, 2) == [3, 4]  # as a fit of 2 epochs from the start: the retry at 3, 4 due


def test_a_checkpoint_with_float32_references_restores_into_the_float64_ones(tmp_path):
    """lossexp before 6 December kept hist_avg's references in float32 (where r + rate·(θ − r) loses the
    increment once it is under half an ulp of r): its state files still restore, the references widened."""
    first = composed()
    first.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    saving = Checkpoint(tmp_path / "checkpoint")
    saving.set_model(first)
    saving.on_epoch_end(0)
    path = tmp_path / "checkpoint" / "state-1.npz"
    with np.load(path) as saved:  # as the older lossexp wrote it
        arrays = {name: saved[name].astype("float32") if saved[name].dtype == np.float64 else saved[name]
                  for name in saved.files}
    np.savez(path, **arrays)
    again = composed()
    restore(again, tmp_path / "checkpoint")
    [hist_avg] = [c for c in again.components if c.name == "hist_avg"]
    [original] = [c for c in first.components if c.name == "hist_avg"]
    assert int(hist_avg.steps_seen) == 3
    for got, want in zip(hist_avg.reference_values(), original.reference_values()):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want.astype("float32"))
