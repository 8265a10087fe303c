"""Small CNN for images: conv_i → pool_i blocks, flatten, hidden_1, output."""
from __future__ import annotations

from typing import Any

from lossexp.errors import ConfigError
from lossexp.models import output_layer
from lossexp.options import PositiveInt, PositiveInts
from lossexp.registry import register_model


@register_model("cnn")
def cnn(data: Any, filters: PositiveInts = (16, 32), kernel_size: PositiveInt = 3, dense_units: PositiveInt = 64,
        activation: str = "relu") -> Any:
    """Small CNN for images (H, W, C). Layers: ``conv_i``, ``pool_i``, ``flatten``, ``hidden_1``, ``output``.

    Options: ``filters`` (one conv block per entry); ``kernel_size``; ``dense_units``; ``activation``.
    """
    import keras

    if len(data.input_shape) != 3:
        raise ConfigError(f"Invalid value for model: cnn needs image data (H, W, C), data {data.name!r} has shape "
                          f"{data.input_shape}; use model=mlp")
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = inputs
    for i, count in enumerate(filters, start=1):
        x = keras.layers.Conv2D(count, kernel_size, padding="same", activation=activation, name=f"conv_{i}")(x)
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation=activation, name="hidden_1")(x)
    return keras.Model(inputs, output_layer(data)(x), name="cnn")
