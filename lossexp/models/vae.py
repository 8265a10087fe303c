"""Variational autoencoder (Kingma & Welling 2014), dense, for R2's ``reconstruction + kl_weight·KL``.

inputs → ``encoder_hidden_1 … n`` → ``z_mean``, ``z_log_var`` → ``z`` (reparameterised sample)
→ ``decoder_hidden_1 … m`` → ``output`` (sigmoid, one unit per input feature).

The model is registered with ``task="reconstruction"``: whatever the data, it trains on
reconstructing its (flattened) inputs with the per-example summed binary cross-entropy
(:mod:`lossexp.training.task`), which needs inputs in [0, 1]. The KL term is not part of the
model: it is the ``kl`` loss component, which reads ``z_mean`` and ``z_log_var`` by name, so its
weight can be scheduled (``conf/model/vae.yaml`` brings ``loss=kl``).
"""
from __future__ import annotations

from typing import Any, Optional

from lossexp.options import PositiveInt, PositiveInts
from lossexp.registry import register_model


@register_model("vae", task="reconstruction")
def vae(data: Any, encoder_units: PositiveInts = (64, 32), latent_dim: PositiveInt = 8,
        decoder_units: PositiveInts = (32, 64), activation: str = "relu", seed: Optional[int] = None) -> Any:
    """Dense VAE reconstructing its inputs. Layers: ``encoder_hidden_i``, ``z_mean``, ``z_log_var``,
    ``z``, ``decoder_hidden_i``, ``output``; brings ``loss=kl``.

    Options: ``encoder_units``; ``latent_dim`` (units of ``z_mean``, ``z_log_var`` and ``z``);
    ``decoder_units``; ``activation``; ``seed`` (of the sampling noise; null: from ``trainer.seed``).
    """
    import keras

    from lossexp.models.layers import Sampling

    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(data.input_shape) > 1 else inputs
    for i, units in enumerate(encoder_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"encoder_hidden_{i}")(x)
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(x)
    x = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    for i, units in enumerate(decoder_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"decoder_hidden_{i}")(x)
    outputs = keras.layers.Dense(data.num_outputs, activation="sigmoid", name="output")(x)
    return keras.Model(inputs, outputs, name="vae")
