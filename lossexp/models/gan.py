"""The GAN's two players: Dense generator and discriminator, trained by the adversarial regime.

Both networks use the layer names of ``model=mlp`` (``hidden_1 … hidden_n``, ``output``), so a
loss component's ``layers: [hidden_1]`` means the same layer of whichever player it targets.

* ``generator``: ``noise`` (``latent_dim``) → hidden layers → ``output``, a linear point of the
  data's dimension;
* ``discriminator``: ``inputs`` (a point) → hidden layers → ``output``, one logit.
"""
from __future__ import annotations

from typing import Any, List, NamedTuple

from lossexp.options import PositiveInt, PositiveInts
from lossexp.registry import register_model


class Players(NamedTuple):
    """What a model trained by the adversarial regime builds."""

    generator: Any
    discriminator: Any


def _dense_stack(inputs: Any, units: List[int], activation: str, outputs: int, name: str) -> Any:
    import keras

    x = inputs
    for i, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation=activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="output")(x), name=name)


@register_model("gan", trainer="adversarial")
def gan(data: Any, latent_dim: PositiveInt = 16, generator_units: PositiveInts = (128, 128),
        discriminator_units: PositiveInts = (128, 128), activation: str = "relu") -> Players:
    """GAN on generation data (``data=ring``): Dense generator and discriminator, each with layers
    ``hidden_1 … hidden_n``, ``output``.

    Options: ``latent_dim`` (generator input: standard normal noise); ``generator_units``;
    ``discriminator_units``; ``activation``.
    """
    import keras

    point_size = int(data.input_shape[-1])
    generator = _dense_stack(keras.Input(shape=(latent_dim,), name="noise"), generator_units, activation,
                             point_size, name="generator")
    discriminator = _dense_stack(keras.Input(shape=data.input_shape, name="inputs"), discriminator_units,
                                 activation, 1, name="discriminator")
    return Players(generator, discriminator)
