"""The GAN's two players for ``data=ring``: Dense generator and discriminator.

Both networks use the layer names of ``model=mlp`` (``hidden_1 … hidden_n``, ``output``), so a
loss component's ``layers: [hidden_1]`` means the same layer of whichever player it targets.

* ``generator``: ``noise`` (``latent_dim``) → hidden layers → ``output``, a linear 2-D point;
* ``discriminator``: ``inputs`` (a 2-D point) → hidden layers → ``output``, one logit.
"""
from __future__ import annotations

from typing import List, NamedTuple

import keras

from lossexp.config import GANConfig
from lossexp.data import Dataset


class Players(NamedTuple):
    generator: keras.Model
    discriminator: keras.Model


def _dense_stack(inputs: keras.KerasTensor, units: List[int], activation: str, outputs: int,
                 name: str) -> keras.Model:
    x = inputs
    for i, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation=activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="output")(x), name=name)


def build(cfg: GANConfig, data: Dataset) -> Players:
    """Both players, sized for ``data``'s points."""
    point_size = data.input_shape[-1]
    generator = _dense_stack(keras.Input(shape=(cfg.latent_dim,), name="noise"), cfg.generator_units,
                             cfg.activation, point_size, name="generator")
    discriminator = _dense_stack(keras.Input(shape=data.input_shape, name="inputs"), cfg.discriminator_units,
                                 cfg.activation, 1, name="discriminator")
    return Players(generator, discriminator)
