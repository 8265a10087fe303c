"""Trainable coefficient: term = a·P, ∂/∂s = weight·P·da/ds, and one real SGD step moves the raw
coefficient by exactly −η times that gradient, for every penalty and parametrization."""
from __future__ import annotations

import numpy as np
import pytest

import keras
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses import coefficient
from lossexp.losses.base import LossContext
from lossexp.losses.coef import TrainableCoefficient

PARAMETRIZATIONS = ["raw", "softplus", "exp"]
PENALTIES = ["kernel_norm", "prediction_mean"]


# --- the independent NumPy reference ---------------------------------------------------------
def np_a(s: float, parametrization: str) -> float:
    return {"raw": s, "softplus": np.log1p(np.exp(s)), "exp": np.exp(s)}[parametrization]


def np_da_ds(s: float, parametrization: str) -> float:
    return {"raw": 1.0, "softplus": 1.0 / (1.0 + np.exp(-s)), "exp": np.exp(s)}[parametrization]


def np_penalty(network, x, penalty, layers, np_forward) -> float:
    if penalty == "prediction_mean":
        return float(np.mean(np_forward(network, x)["output"]))
    return float(sum(np.sqrt(np.sum(np.asarray(network.get_layer(n).kernel.numpy(), np.float64) ** 2))
                     for n in layers))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_term_gradient_and_one_sgd_step(penalty, parametrization, tiny_network, compose, np_forward, regression_data):
    x, y = regression_data[0][:8], regression_data[1][:8]
    weight, lr, initial = 0.5, 0.1, 0.7
    layers = ["hidden_1", "hidden_2"]
    component = TrainableCoefficient(name="coef", weight=weight, penalty=penalty, layers=layers,
                                     initial=initial, parametrization=parametrization)
    model = compose(tiny_network(), [component], learning_rate=lr)
    raw = component.raw_coefficient
    assert any(v is raw for v in model.trainable_variables)

    s0 = float(raw.numpy())
    a0 = np_a(s0, parametrization)
    np.testing.assert_allclose(a0, initial, rtol=1e-6)
    P = np_penalty(model.network, x, penalty, layers, np_forward)

    # term and its gradients, straight from the component
    kernels = [model.network.get_layer(n).kernel for n in layers]
    with tf.GradientTape() as tape:
        y_pred = model.network(x, training=True)
        term = component.term(LossContext(y, y_pred, model.network, training=True))
    grad_s, *grad_kernels = tape.gradient(term, [raw, *kernels])
    np.testing.assert_allclose(float(term), a0 * P, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(grad_s), P * np_da_ds(s0, parametrization), rtol=1e-5, atol=1e-7)
    if penalty == "kernel_norm":  # ∂(a·||W||_F)/∂W = a·W/||W||_F
        for kernel, grad in zip(kernels, grad_kernels):
            w = np.asarray(kernel.numpy(), np.float64)
            np.testing.assert_allclose(np.asarray(grad), a0 * w / np.linalg.norm(w), rtol=1e-4, atol=1e-7)

    # through the composed loss (task + weight·term), ∂L/∂s = weight·P·da/ds
    with tf.GradientTape() as tape:
        total = model.compute_loss(x, y, model(x, training=True), training=True)
    np.testing.assert_allclose(float(tape.gradient(total, raw)), weight * P * np_da_ds(s0, parametrization),
                               rtol=1e-5, atol=1e-8)

    # the composed model's real train step, plain SGD: the update applied to s is −η·∂L/∂s
    model.train_on_batch(x, y)
    s1 = float(raw.numpy())
    expected_grad = weight * P * np_da_ds(s0, parametrization)
    np.testing.assert_allclose(s1 - s0, -lr * expected_grad, rtol=1e-4, atol=1e-7)
    assert s1 != s0
    # the logged coefficient is the effective a of the updated raw value
    np.testing.assert_allclose(float(model.coefficients()["coef"]), np_a(s1, parametrization), rtol=1e-6)


@pytest.mark.parametrize("parametrization, models", [("raw", 16), ("softplus", 4), ("exp", 4)])
def test_every_train_step_uses_the_coefficient_from_before_its_update(parametrization, models, tiny_network, compose,
                                                                      regression_data):
    """In real train steps: the reported term is a_t·P_t, s moves by −η·w·P_t·a'(s_t), and the kernel
    receives the extra −η·w·a_t·W_t/||W_t||_F (measured against a task-only twin model synchronised
    before every step), all with a_t the coefficient *before* step t.

    Several freshly compiled models, because whether a compiled step reads ``a`` before or after
    the optimizer writes it can differ from one trace of the train function to the next.
    """
    x, y = regression_data[0][:8], regression_data[1][:8]
    weight, lr = 0.5, 0.1
    twin = compose(tiny_network(), [], learning_rate=lr)
    twin_kernel = twin.network.get_layer("hidden_1").kernel
    for trial in range(models):
        component = TrainableCoefficient(name="coef", weight=weight, penalty="kernel_norm", layers=["hidden_1"],
                                         initial=0.7, parametrization=parametrization)
        model = compose(tiny_network(seed=trial), [component], learning_rate=lr)
        kernel = model.network.get_layer("hidden_1").kernel
        for step in range(2):
            where = f"model {trial}, step {step}"
            twin.network.set_weights(model.network.get_weights())
            s_t = float(component.raw_coefficient.numpy())
            a_t = np_a(s_t, parametrization)
            w_t = np.asarray(kernel.numpy(), np.float64)
            P_t = float(np.linalg.norm(w_t))
            logs = model.train_on_batch(x, y, return_dict=True)
            twin.train_on_batch(x, y)
            s_next = float(component.raw_coefficient.numpy())
            np.testing.assert_allclose(s_next - s_t, -lr * weight * P_t * np_da_ds(s_t, parametrization),
                                       rtol=1e-4, atol=1e-7, err_msg=f"raw update, {where}")
            np.testing.assert_allclose(logs["term/coef"], a_t * P_t, rtol=1e-5,
                                       err_msg=f"reported term/coef, {where} (a before the step = {a_t:.6f})")
            np.testing.assert_allclose(logs["loss/coef"], weight * a_t * P_t, rtol=1e-5, err_msg=f"loss/coef, {where}")
            np.testing.assert_allclose(kernel.numpy() - twin_kernel.numpy(), -lr * weight * a_t * w_t / P_t,
                                       rtol=1e-3, atol=1e-6, err_msg=f"extra kernel update, {where}")


def test_prediction_mean_gradient_wrt_predictions(tiny_network, regression_data):
    """∂(a·mean(ŷ))/∂ŷ = a/N for every prediction."""
    y_pred = tf.constant(regression_data[1][:10])
    component = TrainableCoefficient(name="coef", penalty="prediction_mean", initial=2.5, parametrization="exp")
    network = tiny_network()
    component.attach(network)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        term = component.term(LossContext(None, y_pred, network, training=True))
    np.testing.assert_allclose(float(term), 2.5 * float(np.mean(regression_data[1][:10])), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tape.gradient(term, y_pred)), np.full((10, 1), 2.5 / 10), rtol=1e-5)


@pytest.mark.parametrize("parametrization, stays_positive", [("raw", False), ("softplus", True), ("exp", True)])
def test_raw_coefficient_runs_through_zero_positive_ones_do_not(parametrization, stays_positive, tiny_network,
                                                               compose, regression_data):
    x, y = regression_data
    component = TrainableCoefficient(name="coef", weight=1.0, penalty="kernel_norm", layers=["hidden_1"],
                                     initial=0.1, parametrization=parametrization)
    model = compose(tiny_network(), [component], learning_rate=0.5)
    values = []
    for _ in range(3):
        model.train_on_batch(x, y)
        values.append(float(model.coefficients()["coef"]))
    assert values[0] < 0.1  # ∂L/∂a = P > 0 always pushes a down
    assert all(b < a for a, b in zip(values, values[1:]))
    assert (min(values) > 0) == stays_positive


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("initial", [1e-3, 0.7, 1.0, 20.0, 50.0])
def test_raw_initial_inverts_effective(parametrization, initial):
    s = coefficient.raw_initial(parametrization, initial)
    np.testing.assert_allclose(np_a(s, parametrization), initial, rtol=1e-9)
    np.testing.assert_allclose(float(coefficient.effective(parametrization, keras.ops.convert_to_tensor(s))),
                               initial, rtol=1e-6)


def test_kernel_norm_needs_layers_with_a_kernel(tiny_network):
    component = TrainableCoefficient(name="coef", layers=["inputs"])
    with pytest.raises(ConfigError, match=r"loss\.coef\.layers.*kernel.*'inputs'"):
        component.attach(tiny_network())


def test_prediction_mean_does_not_need_layers(tiny_network):
    component = TrainableCoefficient(name="coef", penalty="prediction_mean", layers=[])
    component.attach(tiny_network())  # no layer is looked up
    with pytest.raises(ConfigError, match=r"loss\.coef\.layers"):
        TrainableCoefficient(name="coef", penalty="kernel_norm", layers=[])
