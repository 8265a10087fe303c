"""Variational autoencoder (Kingma & Welling 2014), dense, for R2's ``reconstruction + kl_weight·KL``.

inputs → ``encoder_hidden_1 … n`` → ``z_mean``, ``z_log_var`` → ``z`` (reparameterised sample)
→ ``decoder_hidden_1 … m`` → ``output`` (sigmoid, one unit per input feature).

The model reconstructs its input: :func:`prepare_data` turns any data set whose features lie in
[0, 1] (the digits' 64 pixels are scaled to [0, 1]) into a reconstruction task whose targets are
the flattened inputs and whose task loss is the per-example sum of binary cross-entropies
(``lossexp.training.task_losses``). The KL term is not part of the model: it is the ``kl`` loss
component, which reads ``z_mean`` and ``z_log_var`` by name, so its weight can be scheduled.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras
import numpy as np
from keras import ops

import lossexp.training.task_losses  # noqa: F401  registers the reconstruction loss for compile and reload
from lossexp.config import VAEConfig
from lossexp.data import Dataset
from lossexp.errors import ConfigError


@keras.saving.register_keras_serializable(package="lossexp")
class Sampling(keras.layers.Layer):
    """``z = z_mean + exp(½·z_log_var)·ε``, ε ~ N(0, I), in training; ``z = z_mean`` otherwise.

    The noise comes from a seeded ``SeedGenerator``: its state is a variable, so a compiled step
    draws fresh noise every step, and it is saved with the layer (Keras saves no layer's seed
    state), so a reloaded model continues the same noise stream. In inference the layer is
    deterministic: ``predict`` and validation decode the mean.
    """

    def __init__(self, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: Optional[bool] = None) -> Any:
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}

    def save_own_variables(self, store: Any) -> None:
        store["seed_state"] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store: Any) -> None:
        self.seed_generator.state.assign(store["seed_state"])


def prepare_data(data: Dataset) -> Dataset:
    """The reconstruction task on ``data``'s inputs, which must lie in [0, 1] (binary cross-entropy)."""
    low, high = float(np.min(data.x)), float(np.max(data.x))
    if low < 0.0 or high > 1.0:
        raise ConfigError(f"Invalid value for model: vae reconstructs inputs in [0, 1]; data {data.name!r} has "
                          f"values in [{low:g}, {high:g}]; use data=digits")
    return data.autoencoding()


def build(cfg: VAEConfig, data: Dataset) -> keras.Model:
    """The VAE for ``data`` as returned by :func:`prepare_data` (flat inputs, targets = inputs)."""
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(data.input_shape) > 1 else inputs
    for i, units in enumerate(cfg.encoder_units, start=1):
        x = keras.layers.Dense(units, activation=cfg.activation, name=f"encoder_hidden_{i}")(x)
    z_mean = keras.layers.Dense(cfg.latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(cfg.latent_dim, name="z_log_var")(x)
    x = Sampling(seed=cfg.seed, name="z")([z_mean, z_log_var])
    for i, units in enumerate(cfg.decoder_units, start=1):
        x = keras.layers.Dense(units, activation=cfg.activation, name=f"decoder_hidden_{i}")(x)
    outputs = keras.layers.Dense(data.num_outputs, activation="sigmoid", name="output")(x)
    return keras.Model(inputs, outputs, name="vae")
