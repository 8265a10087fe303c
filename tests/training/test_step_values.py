"""The learning rate comes out of the compiled step with its logs (lossexp/training/step_values.py): no
variable read after each call, and nothing else changes — what callbacks see and what a run records."""
from __future__ import annotations

import keras
import pytest
from mlflow.tracking import MlflowClient

from lossexp.training import step_values


def halving() -> keras.callbacks.Callback:
    """Keras' own callback that sets the rate at each epoch's beginning: 0.1, then 0.05."""
    return keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.1 / 2 ** epoch)


def test_the_last_calls_rate_is_kept_and_the_logs_callbacks_see_are_keras_own(tiny_network, compose, regression_data):
    seen = []

    class Keys(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(sorted(logs))

    keras.utils.set_random_seed(0)
    model = compose(tiny_network(), [])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", steps_per_execution=2)
    x, y = regression_data
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[halving(), Keys()])
    assert seen and all(keys == ["loss", "loss/task"] for keys in seen)
    assert sorted(history.history) == ["learning_rate", "loss", "loss/task"]  # the scheduler's epoch logs add the rate
    assert float(step_values.last(model)["learning_rate"]) == pytest.approx(0.05)


def test_the_recorded_rate_follows_a_callback_that_sets_it(tmp_path, monkeypatch, tiny_network, regression_data):
    import lossexp

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    x, y = regression_data
    _, run_id = lossexp.fit(tiny_network(), (x, y), optimizer={"name": "sgd", "learning_rate": 0.1}, callbacks=[halving()],
                            trainer={"epochs": 2, "batch_size": 8, "validation_split": 0.0, "log_every_n_steps": 2,
                                     "steps_per_execution": 2, "checkpoint": False, "verbose": 0},
                            tracking={"plots": False, "log_model": False, "drift": False, "gradients": False})
    logged = {m.step: m.value for m in MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
              .get_metric_history(run_id, "learning_rate")}
    # 40 rows in batches of 8: 5 steps an epoch, sampled every 2 and at each epoch's end
    assert logged == pytest.approx({0: 0.1, 2: 0.1, 4: 0.1, 5: 0.1, 7: 0.05, 9: 0.05, 10: 0.05})


def test_a_constant_weight_a_callback_changes_is_recorded_from_the_next_sample_on(tiny_network, compose,
                                                                                  regression_data):
    """Each sample saw whether a constant weight changed by reading its variable (0.1–0.2 ms a component after
    each call); it now sees the value the last call carried out, and records the change as it did."""
    from lossexp.losses.cross_layer import CrossLayerNorm
    from lossexp.tracking.callback import MetricSink, RunRecorder

    class Warmup(keras.callbacks.Callback):
        """The user's own: the weight to 0.2 after the second call (step 4)."""

        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                next(v for v in self.model.variables if v.path == "cross_layer/loss_weight").assign(0.2)

    keras.utils.set_random_seed(0)
    model = compose(tiny_network(), [CrossLayerNorm(name="cross_layer", weight=0.01)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", steps_per_execution=2)
    sink = MetricSink(None, None)
    x, y = regression_data
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[RunRecorder(sink, 2, drift=False), Warmup()])
    assert dict(sink.history["weight/cross_layer"]) == pytest.approx({5: 0.2, 7: 0.2, 9: 0.2, 10: 0.2})
    assert float(step_values.last(model)[step_values.constant_weight("cross_layer")]) == pytest.approx(0.2)
