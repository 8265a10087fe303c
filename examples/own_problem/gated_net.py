"""The project's model: Dense layers whose outputs pass through a learned sigmoid gate.

``GatedDense`` is a custom Keras layer; registering it as serialisable lets the saved model
reload (``lossexp evaluate``, ``keras.saving.load_model`` after importing this module).
"""
from typing import Sequence

import keras
from keras import ops

import lossexp


@keras.saving.register_keras_serializable(package="own_problem")
class GatedDense(keras.layers.Layer):
    """h = activation(x·W + b) ⊙ sigmoid(x·V + c): a Dense layer that learns which units to let through."""

    def __init__(self, units: int, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        width = input_shape[-1]
        self.kernel = self.add_weight(shape=(width, self.units), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.gate_kernel = self.add_weight(shape=(width, self.units), initializer="glorot_uniform", name="gate_kernel")
        self.gate_bias = self.add_weight(shape=(self.units,), initializer="ones", name="gate_bias")

    def call(self, x):
        value = self.activation(ops.matmul(x, self.kernel) + self.bias)
        return value * ops.sigmoid(ops.matmul(x, self.gate_kernel) + self.gate_bias)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


@lossexp.register_model("gated_net")
def gated_net(data, units: Sequence[int] = (64, 32), activation: str = "relu"):
    """Gated dense layers ``gate_1 … gate_n``, then a linear ``output``.

    Options: ``units`` (one gated layer per entry); ``activation``.
    """
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = inputs
    for i, width in enumerate(units, start=1):
        x = GatedDense(width, activation, name=f"gate_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(data.num_outputs, name="output")(x), name="gated_net")
