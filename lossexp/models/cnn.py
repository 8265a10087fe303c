"""Small CNN for images: conv_i → pool_i blocks, flatten, hidden_1, output."""
from __future__ import annotations

import keras

from lossexp.config import CNNConfig
from lossexp.data import Dataset
from lossexp.models import output_layer
from lossexp.errors import ConfigError


def build(cfg: CNNConfig, data: Dataset) -> keras.Model:
    if len(data.input_shape) != 3:
        raise ConfigError(f"Invalid value for model: cnn needs image data (H, W, C), data {data.name!r} has shape "
                          f"{data.input_shape}; use model=mlp")
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = inputs
    for i, filters in enumerate(cfg.filters, start=1):
        x = keras.layers.Conv2D(filters, cfg.kernel_size, padding="same", activation=cfg.activation,
                                name=f"conv_{i}")(x)
        if min(x.shape[1:3]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(cfg.dense_units, activation=cfg.activation, name="hidden_1")(x)
    return keras.Model(inputs, output_layer(data)(x), name="cnn")
