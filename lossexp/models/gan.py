"""The GAN's two players, trained by the adversarial regime (:mod:`lossexp.training.adversarial`).

Both networks use the layer names of ``model=mlp`` (``hidden_1 … hidden_n``, ``output``), so a
loss component's ``layers: [hidden_1]`` means the same layer of whichever player it targets.

* ``generator``: ``noise`` (``latent_dim``) → hidden layers → ``output``, a linear point of the
  data's dimension. With ``batch_norm`` each hidden layer is ``hidden_i`` (Dense, no bias: the
  normalisation's shift replaces it) → ``batch_norm_i`` → ``activation_i``, as in PacGAN's
  generator (Lin et al. 2018); generated samples are drawn in inference mode, from the moving
  statistics.
* ``discriminator``: ``inputs`` (``pack`` points side by side) → hidden layers (Dense with
  ``activation``, or :class:`~lossexp.models.layers.Maxout` units with ``maxout_pieces``) →
  ``output``, one logit.

Packing (``pack: m``, PacGAN): the discriminator judges m samples at once, all real or all
generated; the regime feeds it rows of m real points and m generated points concatenated.
"""
from __future__ import annotations

import typing
from typing import Annotated, Any, Callable, List, Literal, NamedTuple, Optional

from lossexp.models.initializers import InitializerSpec
from lossexp.options import Check, PositiveFloat, PositiveInt, PositiveInts
from lossexp.registry import register_model

#: how the players' steps follow each other on a batch (see :class:`lossexp.training.gan_model.GANModel`)
Updates = Literal["alternating", "simultaneous"]
UPDATES = typing.get_args(Updates)
Momentum = Check("a number with 0 < momentum < 1", lambda v: 0 < v < 1)
MaxoutPieces = Check("null or an integer >= 2", lambda v: v is None or v >= 2)


class Players(NamedTuple):
    """What a model trained by the adversarial regime builds: the two networks and how they play.

    ``pack``: how many samples the discriminator judges at once (its input is ``pack`` points
    side by side); ``updates``: ``alternating`` or ``simultaneous`` steps of the two players.
    """

    generator: Any
    discriminator: Any
    pack: int = 1
    updates: str = "alternating"


def _generator(latent_dim: int, units: List[int], activation: str, point_size: int, batch_norm: bool,
               momentum: float, epsilon: float, kernel_initializer: Callable[[], Any]) -> Any:
    import keras

    inputs = keras.Input(shape=(latent_dim,), name="noise")
    x = inputs
    for i, width in enumerate(units, start=1):
        if not batch_norm:
            x = keras.layers.Dense(width, activation=activation, kernel_initializer=kernel_initializer(),
                                   name=f"hidden_{i}")(x)
            continue
        x = keras.layers.Dense(width, use_bias=False, kernel_initializer=kernel_initializer(), name=f"hidden_{i}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(activation, name=f"activation_{i}")(x)
    outputs = keras.layers.Dense(point_size, kernel_initializer=kernel_initializer(), name="output")(x)
    return keras.Model(inputs, outputs, name="generator")


def _discriminator(input_size: int, units: List[int], activation: str, maxout_pieces: Optional[int],
                   kernel_initializer: Callable[[], Any]) -> Any:
    import keras

    from lossexp.models.layers import Maxout

    inputs = keras.Input(shape=(input_size,), name="inputs")
    x = inputs
    for i, width in enumerate(units, start=1):
        if maxout_pieces:
            x = Maxout(width, maxout_pieces, kernel_initializer=kernel_initializer(), name=f"hidden_{i}")(x)
        else:
            x = keras.layers.Dense(width, activation=activation, kernel_initializer=kernel_initializer(),
                                   name=f"hidden_{i}")(x)
    outputs = keras.layers.Dense(1, kernel_initializer=kernel_initializer(), name="output")(x)
    return keras.Model(inputs, outputs, name="discriminator")


@register_model("gan", trainer="adversarial")
def gan(data: Any, latent_dim: PositiveInt = 16, generator_units: PositiveInts = (128, 128),
        discriminator_units: PositiveInts = (128, 128), activation: str = "relu", batch_norm: bool = False,
        batch_norm_momentum: Annotated[float, Momentum] = 0.99, batch_norm_epsilon: PositiveFloat = 0.001,
        maxout_pieces: Annotated[Optional[int], MaxoutPieces] = None,
        kernel_initializer: InitializerSpec = "glorot_uniform", pack: PositiveInt = 1,
        updates: Updates = "alternating") -> Players:
    """GAN on generation data (``data=ring``): Dense generator and discriminator, each with layers
    ``hidden_1 … hidden_n``, ``output`` (PacGAN's ring setup: ``experiment=ring_pacgan``).

    Options: ``latent_dim`` (generator input: standard normal noise); ``generator_units``;
    ``discriminator_units``; ``activation`` (the generator's, and the discriminator's Dense layers');
    ``batch_norm`` (generator: Dense without bias → batch normalisation → activation) with
    ``batch_norm_momentum`` and ``batch_norm_epsilon`` (Keras' defaults; PacGAN: 0.95, 1e-4);
    ``maxout_pieces`` (null: Dense discriminator layers; k ≥ 2: maxout units of k linear pieces);
    ``kernel_initializer`` (every kernel of both players: a ``keras.initializers`` name or
    ``{name: random_normal, stddev: 0.02}``; biases start at zero); ``pack`` (PacGAN: the
    discriminator judges this many samples at once; 1: a plain GAN); ``updates`` (``alternating``:
    the discriminator steps, then the generator on fresh noise against the updated discriminator;
    ``simultaneous``: both gradients from one forward pass, applied together, as PacGAN's code).
    """
    from lossexp.models.initializers import initializer

    point_size = int(data.input_shape[-1])
    initializer("model.kernel_initializer", kernel_initializer)  # a mistake fails here, once

    def init() -> Any:  # a fresh initialiser per layer: a seeded one would repeat its draws
        return initializer("model.kernel_initializer", kernel_initializer)

    generator = _generator(latent_dim, generator_units, activation, point_size, batch_norm, batch_norm_momentum,
                           batch_norm_epsilon, init)
    discriminator = _discriminator(pack * point_size, discriminator_units, activation, maxout_pieces, init)
    return Players(generator, discriminator, pack, updates)
