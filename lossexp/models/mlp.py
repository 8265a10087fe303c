"""Multi-layer perceptron: (flatten) → hidden_1 … hidden_n → output."""
from __future__ import annotations

import keras

from lossexp.config import MLPConfig
from lossexp.data import Dataset
from lossexp.models import output_layer


def build(cfg: MLPConfig, data: Dataset) -> keras.Model:
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(data.input_shape) > 1 else inputs
    for i, units in enumerate(cfg.hidden_units, start=1):
        x = keras.layers.Dense(units, activation=cfg.activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, output_layer(data, cfg.output_activation)(x), name="mlp")
