"""Divergence of a raw trainable weight is reported once, tagged on the MLflow run, and stops
training only when asked; bounded parametrizations never trigger it. Real fits, real store."""
from __future__ import annotations

import keras
import pytest
from mlflow.tracking import MlflowClient

from conftest import logged_model_file
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
    return watch, sink, history, model


def test_raw_weight_crossing_zero_is_warned_and_tagged_once(tmp_path, regression_data, tiny_network, compose, capfd):
    watch, sink, history, _ = fit_r1(tmp_path, regression_data, tiny_network, compose, "raw")
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
    """One step per compiled call here: the optimizer has taken exactly the steps up to the check
    that saw the divergence, in the middle of an epoch (10 steps an epoch, checks every 2)."""
    watch, sink, history, model = fit_r1(tmp_path, regression_data, tiny_network, compose, "raw", stop=True)
    step = watch.diverged["cross_layer"]["step"]
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == step
    assert MlflowClient(sink.client.tracking_uri).get_run(sink.run_id).data.tags["diverged.step"] == str(step)
    steps_per_epoch = 40 // 4
    assert step % steps_per_epoch != 0  # so a stop deferred to the epoch's end would be seen
    assert len(history["loss"]) == step // steps_per_epoch + 1  # the epoch it stopped in is the last


@pytest.mark.slow
def test_cli_stop_on_divergence_ends_training_at_the_tagged_step(run_cli, store_uri, tmp_path):
    """R1 with the seed's raw ``a`` and ``trainer.stop_on_divergence=true``: the saved model's
    optimizer stopped at the tagged step (a check every 10 steps, 10 steps per compiled call), the
    last metrics are that step's, and the run ends FINISHED, long before its 5 epochs."""
    result = run_cli("train", "experiment=cross_layer_coef", "loss.cross_layer.weight.parametrization=raw",
                     "trainer.stop_on_divergence=true", "tracking.plots=false")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    tags = run.data.tags
    step = int(tags["diverged.step"])
    assert run.info.status == "FINISHED" and tags["diverged"] == "cross_layer"
    assert (f"lossexp: warning: loss.cross_layer diverged at step {step}: {tags['diverged.reason']}; "
            "stopping (trainer.stop_on_divergence=true)") in result.stderr
    steps_per_epoch = -(-1000 // 32)
    assert step % 10 == 0 and step < 5 * steps_per_epoch
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert max(loss_steps) == step
    import lossexp.losses.cross_layer  # noqa: F401  (registers what the saved model contains)
    import lossexp.training.composed_model  # noqa: F401

    path = logged_model_file(store_uri, run.info.run_id)
    model = keras.saving.load_model(path)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == step


@pytest.mark.parametrize("parametrization", ["softplus", "exp"])
def test_bounded_parametrizations_are_not_watched(parametrization, tmp_path, regression_data, tiny_network, compose):
    watch, sink, _, _ = fit_r1(tmp_path, regression_data, tiny_network, compose, parametrization)
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


def test_a_trained_weight_of_a_negative_term_growing_at_every_check_is_reported(tmp_path, regression_data,
                                                                                 tiny_network, compose, capfd):
    """A project's term that is negative (Pereyra's confidence penalty −H(p)) with a softplus-trained
    weight: ∂L/∂w = term < 0 at every step, so w grows without bound and the loss with it to −∞
    (a softplus 0.1 reached 2.0 in 4 epochs of a digits MLP under Adam) — and nothing said so, since only
    ``raw`` and ``uncertainty`` were watched. A constant weight on the same term is not reported."""
    from keras import ops

    import lossexp

    @lossexp.register_component("negative_spread")
    class NegativeSpread(lossexp.LossComponent):
        def term(self, context):
            return -1.0 - ops.mean(ops.square(ops.cast(context.y_pred, "float32")))

    x, y = regression_data
    for weight, reported in ((0.5, False), ({"value": 0.5, "trainable": True, "parametrization": "softplus"}, True)):
        model = compose(tiny_network(), [NegativeSpread(name="negative_spread", weight=weight)], learning_rate=0.05)
        watch = DivergenceWatch(sink_in_store(tmp_path / str(reported)), every_n_steps=2)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[watch])
        assert list(watch.diverged) == (["negative_spread"] if reported else [])
    reason = watch.diverged["negative_spread"]["reason"]
    assert watch.diverged["negative_spread"]["step"] == 8  # the fourth check that saw it grow
    assert reason.startswith("weight grows without bound (w = ") and "its term is negative (term = -" in reason
    assert f"lossexp: warning: loss.negative_spread diverged at step 8: {reason}; training goes on" \
        in capfd.readouterr().err.splitlines()
