"""What a run records of a component's non-trainable state (``weight/state/<c>/<v>``), against NumPy."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from lossexp.errors import ConfigError
from lossexp.losses.base import LossComponent, attach
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.tracking.callback import MetricSink, RunRecorder


class Centered(LossComponent):
    """term = mean ‖h − c‖² over hidden_1's outputs h; c (2×8) moves half way to the batch mean at each training
    step, λ by ascent (λ ← λ + 0.1·term), ``seen`` counts steps. A frozen inner Dense is not its state."""

    def attach(self, network):
        self.centers = self.add_weight(name="centers", shape=(2, 8), initializer="zeros", trainable=False)
        self.lam = self.add_weight(name="lam", shape=(), initializer="zeros", trainable=False)
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", dtype="int64", trainable=False)
        self.frozen = keras.layers.Dense(3, trainable=False, name="frozen")
        self.frozen.build((None, 8))

    def outputs_needed(self):
        return ["hidden_1"]

    def term(self, context):
        h = context.outputs["hidden_1"]
        term = ops.mean(ops.sum(ops.square(h - self.centers[0]), axis=-1)) + 0.0 * ops.sum(self.frozen(h))
        if context.training:
            mean = ops.stop_gradient(ops.mean(h, axis=0))
            self.centers.assign(0.5 * self.centers + 0.5 * ops.stack([mean, -mean]))
            self.lam.assign(self.lam + 0.1 * ops.stop_gradient(term))
            self.seen.assign_add(1)
        return term


class Snapshots(keras.callbacks.Callback):
    """The component's state after each training step, copied to NumPy (the reference the summaries are checked on)."""

    def __init__(self, component):
        super().__init__()
        self.component, self.taken = component, []

    def on_train_batch_end(self, batch, logs=None):
        self.taken.append({v.name: np.asarray(v.numpy(), dtype=np.float64)
                           for v in (self.component.centers, self.component.lam, self.component.seen)})


def test_a_components_own_state_is_recorded_at_each_sample_as_a_scalar_or_a_norm(tiny_network, compose,
                                                                                   regression_data):
    """Before, a run recorded none of it (docs/own_problem.md: "non-trainable state is not recorded"): now each
    sample records a scalar's value and a tensor's norm, computed by one compiled function; the weight's own
    variable (a dual λ, recorded as weight/<c>) and the inner layer's weights are not the component's state."""
    x, y = regression_data
    component = Centered(name="centered", weight={"value": 0.0, "trainable": True, "parametrization": "dual",
                                                   "lr": 0.5, "epsilon": 0.05})
    model = compose(tiny_network(), [component])
    sink, snapshots = MetricSink(None, None), Snapshots(component)
    model.fit(x[:24], y[:24], batch_size=8, epochs=1, verbose=0, shuffle=False,
              callbacks=[RunRecorder(sink, every_n_steps=1, drift=False), snapshots])
    recorded = {key for key in sink.history if key.startswith("weight/")}
    assert recorded == {"weight/centered", "weight/coef/centered", "weight/state/centered/centers.norm",
                        "weight/state/centered/lam", "weight/state/centered/seen"}
    for key in {key for key in recorded if "/state/" in key}:
        assert [step for step, _ in sink.history[key]] == [0, 1, 2, 3]
        assert sink.history[key][0][1] == 0.0  # as attach made it
    for step, state in enumerate(snapshots.taken, start=1):
        np.testing.assert_allclose(sink.history["weight/state/centered/centers.norm"][step][1],
                                   np.linalg.norm(state["centers"]), rtol=1e-6)
        assert sink.history["weight/state/centered/lam"][step][1] == pytest.approx(float(state["lam"]), rel=1e-6)
        assert sink.history["weight/state/centered/seen"][step][1] == step == state["seen"]
    assert snapshots.taken[-1]["lam"] > 0 and np.linalg.norm(snapshots.taken[-1]["centers"]) > 0
    assert model.composition._state._function.experimental_get_tracing_count() == 1  # one graph, every sample


def test_a_component_records_only_the_state_its_class_names(tiny_network, compose, regression_data):
    """``recorded_state`` names what is worth recording: hist_avg declares none (a reference per weight
    tensor), a class of one's own a subset; the optimizer's moving average (``use_ema``) holds none of it."""
    x, y = regression_data

    class CentersOnly(Centered):
        recorded_state = ("centers",)

    component = CentersOnly(name="centered")
    model = compose(tiny_network(), [component, HistoricalAverage(name="hist_avg")])
    model.compile(optimizer=keras.optimizers.SGD(0.01, use_ema=True), loss="mse")
    sink = MetricSink(None, None)
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[RunRecorder(sink, 1, drift=False)])
    assert {key for key in sink.history if "state" in key} == {"weight/state/centered/centers.norm"}


def test_recorded_state_naming_a_variable_the_component_lacks_is_one_line(tiny_network):
    class Misnamed(Centered):
        recorded_state = ("centres",)

    with pytest.raises(ConfigError, match=r"^Invalid loss component Misnamed: its recorded_state names 'centres', "
                                          r"which is not a non-trainable variable it made in attach "
                                          r".*the ones it made: centers, lam, seen$"):
        attach(Misnamed(name="misnamed"), tiny_network())
