"""The in-graph WeightDrift against NumPy (float64, the definitions of lossexp/training/drift.py), on
hand-made variables changed between measurements, and in a real run."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import logged_model_file
from lossexp.training.drift import WeightDrift


def flat(arrays):
    return np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])


def rel(diff, ref):
    scale = np.linalg.norm(ref)
    return np.linalg.norm(diff) / (scale if scale > 0 else 1.0)


@pytest.fixture
def variables():
    import keras

    rng = np.random.default_rng(5)
    return {
        "dense": [keras.Variable(rng.normal(size=(3, 2)).astype("float32"), name="kernel"),
                  keras.Variable(rng.normal(size=(2,)).astype("float32"), name="bias")],
        "out": [keras.Variable(rng.normal(size=(2, 1)).astype("float32"), name="kernel")],
    }


def values(variables):
    return {name: [np.asarray(v.numpy(), np.float64) for v in vs] for name, vs in variables.items()}


def perturb(variables, rng, scale):
    for vs in variables.values():
        for v in vs:
            v.assign(v.numpy() + scale * rng.normal(size=v.shape).astype("float32"))


def test_measure_matches_numpy_over_several_measurements(variables):
    rng = np.random.default_rng(0)
    drift = WeightDrift(variables)
    drift.start()
    snapshots = [values(variables)]  # θ_0
    steps = [0]
    for step, scale in [(5, 0.1), (8, 0.3), (20, 0.05)]:
        perturb(variables, rng, scale)
        snapshots.append(values(variables))
        steps.append(step)
        stats = drift.measure(step)
        assert set(stats) == {f"weight_drift/{s}/{n}" for n in variables for s in ("from_init", "per_step", "from_avg")}
        k = steps[-1] - steps[-2]
        for name in variables:
            theta = flat(snapshots[-1][name])
            theta_0 = flat(snapshots[0][name])
            previous = flat(snapshots[-2][name])
            mean = np.mean([flat(s[name]) for s in snapshots], axis=0)
            np.testing.assert_allclose(stats[f"weight_drift/from_init/{name}"], rel(theta - theta_0, theta_0),
                                       rtol=1e-5)
            np.testing.assert_allclose(stats[f"weight_drift/per_step/{name}"], rel(theta - previous, previous) / k,
                                       rtol=1e-5)
            np.testing.assert_allclose(stats[f"weight_drift/from_avg/{name}"], rel(theta - mean, mean), rtol=1e-5)
            assert stats[f"weight_drift/from_init/{name}"] > 0


def test_unchanged_weights_have_zero_drift(variables):
    drift = WeightDrift(variables)
    drift.start()
    stats = drift.measure(10)
    assert all(value == 0.0 for value in stats.values())


def test_zero_reference_gives_absolute_distance():
    import keras

    kernel = keras.Variable(np.zeros((2, 2), "float32"))
    drift = WeightDrift({"layer": [kernel]})
    drift.start()
    new = np.array([[3.0, 0.0], [0.0, 4.0]], "float32")
    kernel.assign(new)
    stats = drift.measure(2)
    assert stats["weight_drift/from_init/layer"] == pytest.approx(5.0)            # ||θ − 0|| / 1
    assert stats["weight_drift/per_step/layer"] == pytest.approx(5.0 / 2)         # previous is 0 too
    mean = new / 2.0
    assert stats["weight_drift/from_avg/layer"] == pytest.approx(np.linalg.norm(new - mean) / np.linalg.norm(mean))


def test_the_float32_running_mean_stays_accurate_over_many_measurements(variables):
    """200 snapshots of slowly moving weights: the float32 running mean against NumPy's float64 sum."""
    rng = np.random.default_rng(2)
    drift = WeightDrift(variables)
    drift.start()
    total = {name: flat(v) for name, v in values(variables).items()}
    for step in range(1, 201):
        perturb(variables, rng, 1e-3)
        stats = drift.measure(step)
        for name, v in values(variables).items():
            total[name] = total[name] + flat(v)
    for name, v in values(variables).items():
        theta, mean = flat(v), total[name] / 201
        np.testing.assert_allclose(stats[f"weight_drift/from_avg/{name}"], rel(theta - mean, mean), rtol=1e-3)


def test_start_resets_the_history(variables):
    rng = np.random.default_rng(1)
    drift = WeightDrift(variables)
    drift.start()
    perturb(variables, rng, 0.5)
    drift.measure(4)
    drift.start()  # a new θ_0, no snapshots, step 0
    restart = values(variables)
    perturb(variables, rng, 0.2)
    stats = drift.measure(2)
    now = values(variables)
    theta, theta_0 = flat(now["out"]), flat(restart["out"])
    np.testing.assert_allclose(stats["weight_drift/from_init/out"], rel(theta - theta_0, theta_0), rtol=1e-5)
    np.testing.assert_allclose(stats["weight_drift/per_step/out"], rel(theta - theta_0, theta_0) / 2, rtol=1e-5)
    mean = (theta + theta_0) / 2
    np.testing.assert_allclose(stats["weight_drift/from_avg/out"], rel(theta - mean, mean), rtol=1e-5)


@pytest.mark.slow
def test_drift_of_a_real_run_is_each_layers_kernel_and_bias_together(run_cli, store_uri, all_runs, tmp_path):
    """A sweep over ``trainer.epochs=1,2`` (bit-identical up to step 5, 5 steps an epoch, drift measured at
    steps 5 and 10): the second run's ``per_step`` at step 10 is ||θ_10 − θ_5|| / (5·||θ_5||) with θ a
    layer's kernel and bias, read from the two saved models; one series per layer with weights."""
    from mlflow.tracking import MlflowClient

    from lossexp.evaluate import load_model

    layers = ("hidden_1", "hidden_2", "output")
    result = run_cli("train", "-m", "trainer.epochs=1,2", "model=mlp", "model.hidden_units=[8,4]", "data=regression",
                     "data.n_samples=200", "loss=none", "trainer.log_every_n_steps=5", "tracking.plots=false")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    runs = {r.data.params["trainer.epochs"]: r for r in all_runs(store_uri) if "mlflow.parentRunId" in r.data.tags}
    assert sorted(runs) == ["1", "2"]

    def drift(run, layer: str, stat: str) -> dict:
        return {m.step: m.value for m in client.get_metric_history(run.info.run_id, f"weight_drift/{stat}/{layer}")}

    def theta(run) -> dict:
        network = load_model(logged_model_file(store_uri, run.info.run_id)).network
        return {layer: np.concatenate([np.asarray(w.numpy(), np.float64).ravel()
                                       for w in network.get_layer(layer).trainable_weights]) for layer in layers}

    drift_keys = {key for key in runs["2"].data.metrics if key.startswith("weight_drift/")}
    assert drift_keys == {f"weight_drift/{stat}/{layer}" for layer in layers
                          for stat in ("from_init", "per_step", "from_avg")}
    theta_5, theta_10 = theta(runs["1"]), theta(runs["2"])
    for layer in layers:
        assert len(theta_5[layer]) == {"hidden_1": 4 * 8 + 8, "hidden_2": 8 * 4 + 4, "output": 4 + 1}[layer]
        from_init = drift(runs["2"], layer, "from_init")
        assert sorted(from_init) == [5, 10] and from_init[5] == drift(runs["1"], layer, "from_init")[5] > 0
        per_step = drift(runs["2"], layer, "per_step")
        np.testing.assert_allclose(per_step[5], from_init[5] / 5, rtol=1e-6)  # θ_0 is the previous snapshot
        expected = np.linalg.norm(theta_10[layer] - theta_5[layer]) / (5 * np.linalg.norm(theta_5[layer]))
        np.testing.assert_allclose(per_step[10], expected, rtol=1e-5, err_msg=layer)


def test_a_run_not_tracked_keeps_no_copies_of_the_weights_for_drift(monkeypatch, tmp_path):
    """θ₀, the last snapshot and their mean (three float32 copies of every weight: 300 MB at 25M
    parameters) were made and updated for a run whose drift went nowhere (``tracking.enabled=false``)."""
    import keras

    import lossexp
    from lossexp.tracking import callback

    made = []
    monkeypatch.setattr(callback, "WeightDrift", lambda layers: made.append(layers) or WeightDrift(layers))
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    result = lossexp.fit(network, (x, x.sum(1, keepdims=True)), overrides=["trainer.epochs=1", "tracking.enabled=false"])
    assert result.history["loss"] and made == []  # (a tracked run's drift: the tests above)
