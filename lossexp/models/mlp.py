"""Multi-layer perceptron: (flatten) → hidden_1 … hidden_n → output."""
from __future__ import annotations

from typing import Any, Optional

from lossexp.models import output_layer
from lossexp.options import PositiveInts
from lossexp.registry import register_model


@register_model("mlp")
def mlp(data: Any, hidden_units: PositiveInts = (64, 32), activation: str = "relu",
        output_activation: Optional[str] = None) -> Any:
    """Dense stack. Layers (for loss components): ``hidden_1 … hidden_n``, ``output``.

    Options: ``hidden_units``; ``activation``; ``output_activation`` (null: softmax for
    classification, linear for regression; softplus/exp keep ŷ > 0; any Keras activation).
    """
    import keras

    inputs = keras.Input(shape=data.input_shape, name="inputs")
    # one number per example (inputs of shape (n,)) is one feature, as images' pixels are many
    x = keras.layers.Flatten(name="flatten")(inputs) if len(data.input_shape) != 1 else inputs
    for i, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, output_layer(data, output_activation)(x), name="mlp")
