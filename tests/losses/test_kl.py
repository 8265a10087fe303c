"""The ``kl`` component against NumPy: the term and its gradients with respect to z_mean and
z_log_var, the term a real train step reports, the validation loss of a composed VAE, a real
fit whose sampled ``weight/kl`` equals the schedule at every logged step, the one-line error on
a model without the layers, and its entry in ``lossexp components``."""
from __future__ import annotations

import numpy as np
import pytest

import keras
import tensorflow as tf

from conftest import dataset, network
from lossexp.catalog import render
from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.kl import KLDivergence
from lossexp.losses.weight_spec import parse_weight
from lossexp.tracking.callback import MetricSink, RunRecorder
from lossexp.training.supervised import compose
from lossexp.training.task import summed_binary_crossentropy

SMALL = dict(encoder_units=[16], latent_dim=3, decoder_units=[16], seed=5)


# --- the independent NumPy reference ---------------------------------------------------------
def np_kl(mean: np.ndarray, log_var: np.ndarray) -> float:
    """mean over the batch of KL(N(μ, σ²) ‖ N(0, 1)) summed over dimensions, written per element
    as log(1/σ) + (σ² + μ²)/2 − ½ (the closed form for two Gaussians)."""
    sigma2 = np.exp(log_var)
    per_element = -0.5 * log_var + 0.5 * (sigma2 + mean ** 2) - 0.5
    return float(per_element.sum(axis=1).mean())


def np_kl_gradients(mean: np.ndarray, log_var: np.ndarray):
    batch = mean.shape[0]
    return mean / batch, 0.5 * (np.exp(log_var) - 1.0) / batch


def np_summed_bce(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=1).mean())


def np_encoder(network, x: np.ndarray):
    """z_mean, z_log_var of the one-hidden-layer VAE, float64."""
    def dense(name, h):
        kernel, bias = (np.asarray(v.numpy(), np.float64) for v in network.get_layer(name).weights)
        return h @ kernel + bias

    h = np.maximum(dense("encoder_hidden_1", np.asarray(x, np.float64)), 0.0)
    return dense("z_mean", h), dense("z_log_var", h)


def np_decoder(network, z: np.ndarray) -> np.ndarray:
    def dense(name, h):
        kernel, bias = (np.asarray(v.numpy(), np.float64) for v in network.get_layer(name).weights)
        return h @ kernel + bias

    return 1.0 / (1.0 + np.exp(-dense("output", np.maximum(dense("decoder_hidden_1", z), 0.0))))


@pytest.fixture
def digits():
    return dataset("digits", n_samples=80).autoencoding()


def composed_vae(data, weight, learning_rate=0.01):
    model = compose(network("vae", data, **SMALL), [KLDivergence(name="kl", weight=weight)],
                    task_loss="summed_binary_crossentropy")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss=summed_binary_crossentropy)
    return model


# --- the term ----------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_term_and_gradients_match_numpy(scale):
    rng = np.random.default_rng(int(scale * 10))
    mean_np = (scale * rng.standard_normal((6, 4))).astype("float32")
    log_var_np = (scale * rng.standard_normal((6, 4))).astype("float32")
    component = KLDivergence(name="kl")
    mean, log_var = tf.constant(mean_np), tf.constant(log_var_np)
    with tf.GradientTape() as tape:
        tape.watch([mean, log_var])
        term = component.term(LossContext(None, None, None, training=True,
                                          outputs={"z_mean": mean, "z_log_var": log_var}))
    grad_mean, grad_log_var = tape.gradient(term, [mean, log_var])
    np.testing.assert_allclose(float(term), np_kl(mean_np.astype(np.float64), log_var_np.astype(np.float64)),
                               rtol=1e-5)
    want_mean, want_log_var = np_kl_gradients(mean_np.astype(np.float64), log_var_np.astype(np.float64))
    np.testing.assert_allclose(grad_mean.numpy(), want_mean, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(grad_log_var.numpy(), want_log_var, rtol=1e-5, atol=1e-8)


def test_term_is_zero_at_the_prior_and_reads_the_configured_layers():
    component = KLDivergence(name="kl", mean_layer="mu", log_var_layer="logvar")
    assert component.outputs_needed() == ["mu", "logvar"]
    zeros = np.zeros((3, 2), "float32")
    context = LossContext(None, None, None, training=False, outputs={"mu": zeros, "logvar": zeros})
    assert float(component.term(context)) == 0.0


def test_train_step_reports_the_kl_of_the_batch_before_the_update(digits):
    x = digits.x[:16]
    model = composed_vae(digits, weight=0.5)
    mean, log_var = np_encoder(model.network, x)
    logs = model.train_on_batch(x, x, return_dict=True)
    np.testing.assert_allclose(logs["term/kl"], np_kl(mean, log_var), rtol=1e-5)
    np.testing.assert_allclose(logs["loss/kl"], 0.5 * np_kl(mean, log_var), rtol=1e-5)


def test_validation_loss_is_bce_of_the_decoded_mean_plus_weighted_kl(digits):
    x = digits.x[:24]
    model = composed_vae(digits, weight=0.3)
    model.fit(digits.x[24:], digits.x[24:], batch_size=16, epochs=1, verbose=0)
    mean, log_var = np_encoder(model.network, x)
    logs = model.evaluate(x, x, batch_size=24, verbose=0, return_dict=True)
    reconstruction = np_summed_bce(np.asarray(x, np.float64), np_decoder(model.network, mean))
    np.testing.assert_allclose(logs["loss/task"], reconstruction, rtol=1e-4)
    np.testing.assert_allclose(logs["term/kl"], np_kl(mean, log_var), rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], reconstruction + 0.3 * np_kl(mean, log_var), rtol=1e-4)


# --- the scheduled weight in a real fit --------------------------------------------------------
def np_cyclical(t: int, steps: float, cycles: float, ratio: float, start: float = 0.0, end: float = 1.0) -> float:
    """Fu et al. 2019, eq. 5: a period restarts every ⌈steps/cycles⌉ steps and rises linearly during
    the first ``ratio`` of steps/cycles (before the first step, t = 0, the weight is the start of a
    period); once ``steps`` have run it stays at ``end``."""
    if t > steps:
        return end
    position = np.mod(max(t, 1) - 1, np.ceil(steps / cycles)) / (steps / cycles)
    return start + (end - start) * min(1.0, position / ratio)


def test_fit_logs_the_scheduled_weight_at_every_logged_step(digits):
    schedule = {"schedule": "cyclical", "start": 0.0, "end": 1.0, "steps": 12, "cycles": 2, "ratio": 0.5}
    model = composed_vae(digits, weight=schedule)
    sink = MetricSink(None, None)
    model.fit(digits.x, digits.y, batch_size=16, epochs=3, verbose=0,  # 5 steps per epoch: 15 steps
              callbacks=[RunRecorder(sink, every_n_steps=2, drift=False)])
    logged = sink.history["weight/kl"]
    spec = parse_weight("loss.kl.weight", schedule)
    assert [step for step, _ in logged] == [0, 2, 4, 5, 7, 9, 10, 12, 14, 15]  # every 2 steps of an epoch, its end
    for step, value in logged:
        np.testing.assert_allclose(value, spec.at_step(step), rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
        np.testing.assert_allclose(value, np_cyclical(step, 12, 2, 0.5), rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
    values = [value for _, value in logged[1:]]
    assert 1.0 in values and any(b < a for a, b in zip(values, values[1:]))  # it reached the end and restarted
    assert [value for step, value in logged if step > 12] == [1.0, 1.0]  # the schedule has run: it holds its maximum


# --- errors and documentation ------------------------------------------------------------------
def test_a_model_without_the_layers_is_one_config_error(tiny_network):
    with pytest.raises(ConfigError) as info:
        compose(tiny_network(), [KLDivergence(name="kl")], task_loss="mean_squared_error")
    assert str(info.value) == ("Invalid value for loss.kl: needs model=vae (layers z_mean, z_log_var); "
                               "the model has inputs, hidden_1, hidden_2, output")


def test_layers_of_different_shapes_are_a_config_error(tiny_network):
    component = KLDivergence(name="kl", mean_layer="hidden_1", log_var_layer="hidden_2")
    with pytest.raises(ConfigError, match=r"Invalid value for loss.kl.log_var_layer: expected a layer with the "
                                          r"output shape of hidden_1 \(None, 8\), got 'hidden_2 \(None, 4\)'"):
        compose(tiny_network(), [component], task_loss="mean_squared_error")


def test_an_input_layer_is_refused_under_the_option_that_names_it():
    """The check of every component's outputs names the option holding the input layer: mean_layer, not layer."""
    z_mean = keras.Input((2,), name="z_mean")
    z_log_var = keras.layers.Dense(2, name="z_log_var")(z_mean)
    network = keras.Model(z_mean, keras.layers.Dense(1, name="output")(z_log_var))
    with pytest.raises(ConfigError) as info:
        compose(network, [KLDivergence(name="kl")], task_loss="mean_squared_error")
    assert str(info.value) == ("Invalid value for loss.kl.mean_layer: expected a layer that computes something (an "
                               "input layer's output is the data: name a layer after it, one of z_log_var, output), "
                               "got 'z_mean'")


@pytest.mark.parametrize("options, key", [({"mean_layer": ""}, "loss.kl.mean_layer"),
                                          ({"log_var_layer": 3}, "loss.kl.log_var_layer"),
                                          ({"weight": {"schedule": "cosine"}}, "loss.kl.weight.schedule")])
def test_bad_options_name_their_key(options, key):
    with pytest.raises(ConfigError, match=f"^Invalid value for {key}: "):
        KLDivergence(name="kl", **options)


def test_components_lists_kl_its_options_and_the_schedules():
    listing = render()
    assert "  kl " in listing
    for option in ("weight: 1.0", "mean_layer: z_mean", "log_var_layer: z_log_var", "constant|linear|sigmoid|cyclical"):
        assert option in listing
    detail = render("kl")
    for word in ("−½ Σ", "Bowman", "Fu et al. 2019", "schedule: linear", "schedule: sigmoid", "schedule: cyclical",
                 "schedule: constant", "weight/kl"):
        assert word in detail
    assert "vae" in render("vae") and "z_log_var" in render("vae")
