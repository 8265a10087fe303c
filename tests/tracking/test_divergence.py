"""Divergence of a raw trainable weight is reported once, tagged on the MLflow run, and stops
training only when asked; bounded parametrizations never trigger it. Real fits, real store."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from lossexp.losses.cross_layer import CrossLayerNorm
from lossexp.tracking import store
from lossexp.tracking.callback import MetricSink
from lossexp.tracking.divergence import DivergenceWatch


def sink_in_store(tmp_path) -> MetricSink:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    run_id = store.start_run(client, store.ensure_experiment(client, "t", uri), "r", {})
    return MetricSink(client, run_id)


def fit_r1(tmp_path, regression_data, tiny_network, compose, parametrization: str, stop: bool = False):
    """R1 on the tiny network: a·||W_hidden_1|| with ``a`` trained from 0.3 at a high rate."""
    x, y = regression_data
    component = CrossLayerNorm(name="cross_layer", layers=["hidden_1"],
                               weight={"value": 0.3, "trainable": True, "parametrization": parametrization})
    model = compose(tiny_network(), [component], learning_rate=0.05)
    sink = sink_in_store(tmp_path)
    watch = DivergenceWatch(sink, every_n_steps=2, stop=stop)
    history = model.fit(x, y, batch_size=4, epochs=4, verbose=0, callbacks=[watch]).history
    return watch, sink, history


def test_raw_weight_crossing_zero_is_warned_and_tagged_once(tmp_path, regression_data, tiny_network, compose, capfd):
    watch, sink, history = fit_r1(tmp_path, regression_data, tiny_network, compose, "raw")
    assert list(watch.diverged) == ["cross_layer"]
    step = watch.diverged["cross_layer"]["step"]
    tags = MlflowClient(sink.client.tracking_uri).get_run(sink.run_id).data.tags
    assert tags["diverged"] == "cross_layer" and tags["diverged.step"] == str(step)
    assert tags["diverged.reason"].startswith("weight crossed zero (a = -")
    assert step % 2 == 0 and 0 < step < 40
    warnings = [line for line in capfd.readouterr().err.splitlines() if "diverged" in line]
    assert warnings == [f"lossexp: warning: loss.cross_layer diverged at step {step}: "
                        f"{watch.diverged['cross_layer']['reason']}; training goes on"]
    assert len(history["loss"]) == 4  # it went on: the failure stays observable


def test_stop_on_divergence_stops_at_the_step_it_is_seen(tmp_path, regression_data, tiny_network, compose):
    watch, _, history = fit_r1(tmp_path, regression_data, tiny_network, compose, "raw", stop=True)
    assert watch.diverged and len(history["loss"]) < 4


@pytest.mark.parametrize("parametrization", ["softplus", "exp"])
def test_bounded_parametrizations_are_not_watched(parametrization, tmp_path, regression_data, tiny_network, compose):
    watch, sink, _ = fit_r1(tmp_path, regression_data, tiny_network, compose, parametrization)
    assert watch._watched == [] and watch.diverged == {}
    assert "diverged" not in MlflowClient(sink.client.tracking_uri).get_run(sink.run_id).data.tags


def test_total_loss_falling_below_zero_blames_the_lowest_contribution(tmp_path, tiny_network, compose):
    """Kendall's ``exp(−s)·L + s`` is unbounded below: a negative total that keeps falling is
    reported, on the watched component whose contribution is lowest; a single negative or
    non-falling value is not."""
    components = [
        CrossLayerNorm(name="first", weight={"value": 1.0, "trainable": True, "parametrization": "uncertainty"}),
        CrossLayerNorm(name="second", weight={"value": 1.0, "trainable": True, "parametrization": "uncertainty"}),
    ]
    watch = DivergenceWatch(sink_in_store(tmp_path), every_n_steps=1)
    watch.set_model(compose(tiny_network(), components))
    watch.on_train_begin()
    for loss in (0.5, -0.1, -0.05, -0.2):  # negative but not falling at every check
        watch.check({"loss": loss, "loss/first": loss, "loss/second": 0.0})
    assert watch.diverged == {}
    for loss in (-0.3, -0.6):
        watch.step += 1
        watch.check({"loss": loss, "loss/first": 0.1, "loss/second": loss})
    assert list(watch.diverged) == ["second"]
    assert watch.diverged["second"]["reason"] == "loss heads to -inf (loss = -0.6)"
