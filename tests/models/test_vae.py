"""The VAE: documented layer names, the reconstruction data set it trains on, a seeded sampling
layer that is stochastic in training and decodes the mean in inference, a forward pass equal to
an independent NumPy one, and a composed VAE that saves and reloads with equal predictions."""
from __future__ import annotations

import numpy as np
import pytest

import keras

import lossexp.losses.kl  # noqa: F401  registers the component for reloading
import lossexp.training.composed_model  # noqa: F401
from conftest import built, composed_config, dataset, network
from lossexp.data import Dataset
from lossexp.errors import ConfigError
from lossexp.models.layers import Sampling
from lossexp.training.composed_model import ComposedModel

SMALL = dict(encoder_units=[16, 8], latent_dim=3, decoder_units=[8, 16], seed=7)
SMALL_OVERRIDES = ("model=vae", "model.encoder_units=[16,8]", "model.latent_dim=3", "model.decoder_units=[8,16]",
                   "model.seed=7")


def digits(n: int = 96) -> Dataset:
    return dataset("digits", n_samples=n).autoencoding()


def np_vae_inference(network, x: np.ndarray) -> dict:
    """z_mean, z_log_var and the decoded mean (z = z_mean), in float64 from the layers' weights."""
    def dense(name, h, activation=None):
        kernel, bias = (np.asarray(v.numpy(), np.float64) for v in network.get_layer(name).weights)
        out = h @ kernel + bias
        return np.maximum(out, 0.0) if activation == "relu" else out

    h = np.asarray(x, np.float64)
    for i in range(1, len(SMALL["encoder_units"]) + 1):
        h = dense(f"encoder_hidden_{i}", h, "relu")
    z_mean, z_log_var = dense("z_mean", h), dense("z_log_var", h)
    h = z_mean
    for i in range(1, len(SMALL["decoder_units"]) + 1):
        h = dense(f"decoder_hidden_{i}", h, "relu")
    return {"z_mean": z_mean, "z_log_var": z_log_var, "output": 1.0 / (1.0 + np.exp(-dense("output", h)))}


def test_digits_become_a_reconstruction_of_their_64_pixels():
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    config = composed_config(*SMALL_OVERRIDES, "data.n_samples=50")
    raw = load(config.data)
    data = for_config(config).prepare(raw)  # the model's task: reconstruction
    assert data.task == "reconstruction" and data.num_outputs == 64
    assert data.x.shape == (50, 64) and data.input_shape == (64,)
    np.testing.assert_array_equal(data.y, data.x)
    np.testing.assert_array_equal(data.x, raw.x.reshape(50, 64))
    assert data.x.min() >= 0.0 and data.x.max() == pytest.approx(1.0)
    train, _ = data.split(0.2)
    (x_train, y_train) = train.arrays
    assert len(x_train) == 40 and train.size == 40
    np.testing.assert_array_equal(y_train, x_train)
    model, _ = built(config)
    assert model.task_loss == "summed_binary_crossentropy"
    assert [m.name for m in model.metrics if m.name not in ("loss", "breakdown")] == ["compile_metrics"]


def test_inputs_outside_0_1_are_a_config_error(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "shifted.npz", x=(3.0 * rng.random((20, 4))).astype("float32"), y=rng.random(20))
    with pytest.raises(ConfigError, match=r"^Invalid value for data: expected inputs in \[0, 1\] for model=vae's "
                                          r"reconstruction with binary cross-entropy \(or set task.loss="
                                          r"mean_squared_error\), got 'npz with values in \[0\.\d+, 2\.\d+\]'$"):
        built(composed_config(*SMALL_OVERRIDES, "data=npz", f"data.path={tmp_path / 'shifted.npz'}"))


def test_layer_names_and_a_forward_pass_equal_to_numpy():
    data = digits()
    network_ = network("vae", data, **SMALL)
    assert [layer.name for layer in network_.layers] == [
        "inputs", "encoder_hidden_1", "encoder_hidden_2", "z_mean", "z_log_var", "z",
        "decoder_hidden_1", "decoder_hidden_2", "output"]
    assert network_.get_layer("z_mean").output.shape == (None, 3)
    prediction = network_.predict(data.x[:10], verbose=0)
    assert prediction.shape == (10, 64) and prediction.min() > 0.0 and prediction.max() < 1.0
    np.testing.assert_allclose(prediction, np_vae_inference(network_, data.x[:10])["output"], rtol=1e-5, atol=1e-6)


def test_sampling_is_reparameterised_seeded_and_the_mean_in_inference():
    mean = np.tile(np.array([[0.5, -1.0, 2.0]], "float32"), (4000, 1))
    log_var = np.tile(np.log(np.array([[0.25, 1.0, 4.0]], "float32")), (4000, 1))
    layer = Sampling(seed=3)
    np.testing.assert_array_equal(layer([mean, log_var], training=False), mean)
    z = np.asarray(layer([mean, log_var], training=True), np.float64)
    eps = (z - mean) / np.exp(0.5 * log_var)  # the standard normal noise, recovered
    assert abs(eps.mean()) < 0.05 and abs(eps.std() - 1.0) < 0.05
    assert abs(np.corrcoef(eps[:, 0], eps[:, 1])[0, 1]) < 0.05
    np.testing.assert_allclose(z.std(axis=0), [0.5, 1.0, 2.0], rtol=0.05)
    again = np.asarray(layer([mean, log_var], training=True))
    assert not np.allclose(again, z)  # fresh noise on every call
    np.testing.assert_array_equal(Sampling(seed=3)([mean, log_var], training=True), z)  # same seed, same stream


def test_vae_config_is_range_checked():
    from omegaconf import OmegaConf

    from lossexp.config import validate

    base = {"data": {"name": "digits"}, "loss": {}, "optimizer": {}, "trainer": {}}
    for key, value, message in [("latent_dim", 0, "model.latent_dim"), ("encoder_units", [], "model.encoder_units"),
                                ("decoder_units", [4, -1], "model.decoder_units")]:
        with pytest.raises(ConfigError, match=f"Invalid value for {message}"):
            validate(OmegaConf.create({**base, "model": {"name": "vae", key: value}}))


def test_composed_vae_saves_and_reloads_with_equal_predictions(tmp_path):
    config = composed_config(*SMALL_OVERRIDES, "data.n_samples=96", "optimizer.learning_rate=0.01",
                             "loss.kl.weight={schedule: linear, start: 0.0, end: 1.0, steps: 10}")
    model, data = built(config)
    model.fit(data.x[:64], data.y[:64], batch_size=16, epochs=2, verbose=0)
    path = tmp_path / "vae.keras"
    model.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ComposedModel)
    assert isinstance(loaded.network.get_layer("z"), Sampling) and loaded.network.get_layer("z").seed == 7
    # the noise stream continues where it was (the seed generator's state is saved)
    np.testing.assert_array_equal(loaded.network.get_layer("z").seed_generator.state.numpy(),
                                  model.network.get_layer("z").seed_generator.state.numpy())
    x_val, y_val = data.x[64:], data.y[64:]
    prediction = model.predict(x_val, verbose=0)
    np.testing.assert_array_equal(model.predict(x_val, verbose=0), prediction)  # deterministic in inference
    np.testing.assert_allclose(loaded.predict(x_val, verbose=0), prediction, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(prediction, np_vae_inference(model.network, x_val)["output"], rtol=1e-5, atol=1e-6)
    # the same composed loss (summed BCE + scheduled KL weight, 8 steps into the warm-up)
    np.testing.assert_allclose(float(loaded.tracked_weights()["weight/kl"]), 0.8, rtol=1e-6)
    np.testing.assert_allclose(loaded.evaluate(x_val, y_val, verbose=0), model.evaluate(x_val, y_val, verbose=0),
                               rtol=1e-6)
