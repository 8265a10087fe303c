"""Weights at run time, against NumPy: every trainable parametrization's contribution, its
gradient and the update one real SGD step applies; dual ascent; schedules inside the compiled
step; and the order "read the weight, then update it" in every step."""
from __future__ import annotations

import math

import numpy as np
import pytest

import keras
import tensorflow as tf

from lossexp.losses.coef import TrainableCoefficient
from lossexp.losses.cross_layer import CrossLayerNorm

GRADIENT_TRAINED = ["raw", "softplus", "exp", "uncertainty"]


# --- the independent NumPy reference ---------------------------------------------------------
def np_weight(s: float, parametrization: str) -> float:
    return {"raw": s, "softplus": np.log1p(np.exp(s)), "exp": np.exp(s), "uncertainty": np.exp(-s)}[parametrization]


def np_contribution(s: float, P: float, parametrization: str) -> float:
    extra = s if parametrization == "uncertainty" else 0.0
    return np_weight(s, parametrization) * P + extra


def np_dcontribution_ds(s: float, P: float, parametrization: str) -> float:
    return {"raw": P, "softplus": P / (1.0 + np.exp(-s)), "exp": P * np.exp(s),
            "uncertainty": 1.0 - np.exp(-s) * P}[parametrization]


def np_kernel_norm(network, layer: str = "hidden_1") -> float:
    return float(np.linalg.norm(np.asarray(network.get_layer(layer).kernel.numpy(), np.float64)))


def trainable(value: float, parametrization: str, **extra) -> dict:
    return {"value": value, "trainable": True, "parametrization": parametrization, **extra}


@pytest.mark.parametrize("parametrization", GRADIENT_TRAINED)
def test_contribution_gradient_and_one_sgd_step(parametrization, tiny_network, compose, regression_data):
    x, y = regression_data[0][:8], regression_data[1][:8]
    lr, initial = 0.1, 0.7
    component = CrossLayerNorm(name="cross_layer", weight=trainable(initial, parametrization), layers=["hidden_1"])
    model = compose(tiny_network(), [component], learning_rate=lr)
    raw = component.weighting.raw_weight
    assert any(v is raw for v in model.trainable_variables)
    s0 = float(raw.numpy())
    np.testing.assert_allclose(np_weight(s0, parametrization), initial, rtol=1e-6)
    P = np_kernel_norm(model.network)

    task = float(keras.losses.mean_squared_error(y, model(x)).numpy().mean())
    with tf.GradientTape() as tape:
        total = model.compute_loss(x, y, model(x, training=True), training=True)
    np.testing.assert_allclose(float(total) - task, np_contribution(s0, P, parametrization), rtol=1e-5)
    np.testing.assert_allclose(float(tape.gradient(total, raw)), np_dcontribution_ds(s0, P, parametrization),
                               rtol=1e-5, atol=1e-7)

    logs = model.train_on_batch(x, y, return_dict=True)
    s1 = float(raw.numpy())
    np.testing.assert_allclose(s1 - s0, -lr * np_dcontribution_ds(s0, P, parametrization), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logs["loss/cross_layer"], np_contribution(s0, P, parametrization), rtol=1e-5)
    tracked = {k: float(v) for k, v in model.tracked_weights().items()}
    np.testing.assert_allclose(tracked["weight/cross_layer"], np_weight(s1, parametrization), rtol=1e-6)
    expected_coef = s1 if parametrization == "uncertainty" else np_weight(s1, parametrization)
    np.testing.assert_allclose(tracked["weight/coef/cross_layer"], expected_coef, rtol=1e-6)


@pytest.mark.parametrize("parametrization, models", [("raw", 16), ("softplus", 4), ("exp", 4)])
def test_every_train_step_uses_the_weight_from_before_its_update(parametrization, models, tiny_network, compose,
                                                                 regression_data):
    """In real train steps: the reported contribution is a_t·P_t, s moves by −η·P_t·a'(s_t), and the
    kernel receives the extra −η·a_t·W_t/||W_t||_F (measured against a task-only twin model
    synchronised before every step), all with a_t the coefficient *before* step t.

    Several freshly compiled models, because whether a compiled step reads ``a`` before or after
    the optimizer writes it can differ from one trace of the train function to the next.
    """
    x, y = regression_data[0][:8], regression_data[1][:8]
    lr = 0.1
    twin = compose(tiny_network(), [], learning_rate=lr)
    twin_kernel = twin.network.get_layer("hidden_1").kernel
    for trial in range(models):
        component = TrainableCoefficient(name="coef", weight=trainable(0.35, parametrization), layers=["hidden_1"])
        model = compose(tiny_network(seed=trial), [component], learning_rate=lr)
        kernel = model.network.get_layer("hidden_1").kernel
        raw = component.weighting.raw_weight
        for step in range(2):
            where = f"model {trial}, step {step}"
            twin.network.set_weights(model.network.get_weights())
            s_t = float(raw.numpy())
            a_t = np_weight(s_t, parametrization)
            w_t = np.asarray(kernel.numpy(), np.float64)
            P_t = float(np.linalg.norm(w_t))
            logs = model.train_on_batch(x, y, return_dict=True)
            twin.train_on_batch(x, y)
            np.testing.assert_allclose(float(raw.numpy()) - s_t, -lr * np_dcontribution_ds(s_t, P_t, parametrization),
                                       rtol=1e-4, atol=1e-7, err_msg=f"raw update, {where}")
            np.testing.assert_allclose(logs["term/coef"], P_t, rtol=1e-5, err_msg=f"term/coef, {where}")
            np.testing.assert_allclose(logs["loss/coef"], a_t * P_t, rtol=1e-5,
                                       err_msg=f"loss/coef, {where} (a before the step = {a_t:.6f})")
            np.testing.assert_allclose(kernel.numpy() - twin_kernel.numpy(), -lr * a_t * w_t / P_t,
                                       rtol=1e-3, atol=1e-6, err_msg=f"extra kernel update, {where}")


@pytest.mark.parametrize("parametrization, stays_positive", [("raw", False), ("softplus", True), ("exp", True)])
def test_raw_coefficient_runs_through_zero_positive_ones_do_not(parametrization, stays_positive, tiny_network,
                                                               compose, regression_data):
    x, y = regression_data
    component = TrainableCoefficient(name="coef", weight=trainable(0.1, parametrization), layers=["hidden_1"])
    model = compose(tiny_network(), [component], learning_rate=0.5)
    values = []
    for _ in range(3):
        model.train_on_batch(x, y)
        values.append(float(model.tracked_weights()["weight/coef/coef"]))
    assert values[0] < 0.1  # ∂L/∂a = P > 0 always pushes a down
    assert all(b < a for a, b in zip(values, values[1:]))
    assert (min(values) > 0) == stays_positive


def test_dual_ascent_moves_the_weight_by_the_constraint_violation(tiny_network, compose, regression_data):
    """w ← max(0, w + lr·(P − ε)) after each step, P the term of that step; the optimizer leaves w alone."""
    x, y = regression_data[0][:8], regression_data[1][:8]
    eta = 0.5
    network = tiny_network()
    P0 = np_kernel_norm(network)
    epsilon = P0 - 0.3  # violated at first: w grows
    component = CrossLayerNorm(name="cross_layer", weight=trainable(0.2, "dual", lr=eta, epsilon=epsilon))
    model = compose(network, [component], learning_rate=0.05)
    assert all(v is not component.weighting.loss_weight for v in model.trainable_variables)
    w = 0.2
    for step in range(4):
        P_t = np_kernel_norm(model.network)
        logs = model.train_on_batch(x, y, return_dict=True)
        np.testing.assert_allclose(logs["loss/cross_layer"], w * P_t, rtol=1e-5, err_msg=f"step {step}")
        w = max(0.0, w + eta * (P_t - epsilon))
        np.testing.assert_allclose(float(model.tracked_weights()["weight/cross_layer"]), w, rtol=1e-5, atol=1e-7)
    # a satisfied constraint drives w down to 0 and keeps it there
    component = CrossLayerNorm(name="cross_layer", weight=trainable(w, "dual", lr=eta, epsilon=P0 + 100.0))
    model = compose(tiny_network(), [component], learning_rate=0.05)
    for _ in range(3):
        model.train_on_batch(x, y)
    assert float(component.weighting.loss_weight.numpy()) == 0.0


def np_schedule(name: str, t: int, **o) -> float:
    """Written from the papers' formulas, independently of WeightSpec.at_step."""
    start, end = o.get("start", 0.0), o.get("end", 1.0)
    if name == "linear":
        frac = min(max((t - o.get("delay", 0)) / o["steps"], 0.0), 1.0)
        return start + (end - start) * frac
    if name == "sigmoid":
        return start + (end - start) / (1.0 + math.exp(-o["sharpness"] * (t - o["midpoint"])))
    if name == "cyclical":  # Fu et al. 2019, eq. 5; held at its maximum once the schedule has run
        if t > o["steps"]:
            return end
        tau = ((t - 1) % math.ceil(o["steps"] / o["cycles"])) / (o["steps"] / o["cycles"])
        return start + (end - start) * (tau / o["ratio"] if tau <= o["ratio"] else 1.0)
    return end


SCHEDULES = [
    ("linear", {"start": 0.0, "end": 2.0, "steps": 5, "delay": 2}),
    ("sigmoid", {"start": 0.1, "end": 1.0, "midpoint": 6, "sharpness": 0.8}),
    ("cyclical", {"start": 0.0, "end": 1.0, "steps": 10, "cycles": 3, "ratio": 0.5}),  # past steps at 11–14
    ("constant", {"end": 0.3}),
]


@pytest.mark.parametrize("name, options", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_scheduled_weight_follows_the_schedule_in_the_compiled_step(name, options, tiny_network, compose,
                                                                    regression_data):
    x, y = regression_data[0][:8], regression_data[1][:8]
    component = CrossLayerNorm(name="cross_layer", weight={"schedule": name, **options})
    model = compose(tiny_network(), [component], learning_rate=0.01)
    spec = component.weighting.spec
    for t in range(1, 15):
        P_t = np_kernel_norm(model.network)
        logs = model.train_on_batch(x, y, return_dict=True)
        expected = np_schedule(name, t, **options)
        np.testing.assert_allclose(spec.at_step(t), expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(float(model.tracked_weights()["weight/cross_layer"]), expected, rtol=1e-5,
                                   atol=1e-6, err_msg=f"step {t}")
        np.testing.assert_allclose(logs["loss/cross_layer"], expected * P_t, rtol=1e-4, atol=1e-6)
    # validation uses the weight of the last training step and does not move it
    before = float(model.tracked_weights()["weight/cross_layer"])
    model.evaluate(x, y, verbose=0)
    assert float(model.tracked_weights()["weight/cross_layer"]) == before


def test_constant_weight_is_not_tracked(tiny_network, compose):
    model = compose(tiny_network(), [CrossLayerNorm(name="cross_layer", weight=0.5)])
    assert model.tracked_weights() == {}


def test_a_constant_weight_a_callback_changes_is_tracked_from_then_on(tiny_network, compose):
    """A warm-up of the user's own — a callback assigning the weight's variable, which the compiled step
    reads — trains at the new weight, so the record must say so: ``weight/<c>`` from the change on, also
    when it comes back to the configured value (it was never recorded: 0.1, 0.2, 0.3 trained as 0.01)."""
    model = compose(tiny_network(), [CrossLayerNorm(name="cross_layer", weight=0.01)])
    variable = next(v for v in model.variables if v.path == "cross_layer/loss_weight")
    variable.assign(0.2)
    assert float(model.tracked_weights()["weight/cross_layer"]) == pytest.approx(0.2)
    variable.assign(0.01)
    assert float(model.tracked_weights()["weight/cross_layer"]) == pytest.approx(0.01)


def test_a_schedule_counts_every_step_past_two_to_the_24(tiny_network, compose, regression_data):
    """The optimizer's count past 2**24 = 16,777,216 steps: a float32 step count rounded it (2**24 + 1
    and 2**24 + 2 both became 2**24 + 2), so a cyclical schedule with 8-step cycles skipped and repeated
    phases, and PCGrad's per-step order repeated; the schedule now follows the exact count."""
    x, y = regression_data[0][:8], regression_data[1][:8]
    options = {"start": 0.0, "end": 1.0, "steps": 2 ** 26, "cycles": 2 ** 23, "ratio": 1.0}  # 8-step cycles
    component = CrossLayerNorm(name="cross_layer", weight={"schedule": "cyclical", **options})
    model = compose(tiny_network(), [component], learning_rate=0.0)
    model.train_on_batch(x, y)  # builds the optimizer
    first = 2 ** 24 - 2
    model.optimizer.iterations.assign(first - 1)
    seen = []
    for t in range(first, first + 6):
        model.train_on_batch(x, y)
        seen.append(float(model.tracked_weights()["weight/cross_layer"]))
    expected = [np_schedule("cyclical", t, **options) for t in range(first, first + 6)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6, atol=1e-7)
