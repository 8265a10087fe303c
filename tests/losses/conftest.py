"""Fixtures for the loss-component tests: a tiny named Dense network, a NumPy forward pass
of it (the independent reference), a composed model builder and a small regression batch.

TensorFlow/Keras are imported inside the fixtures so that collecting other test packages
never imports them.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import pytest

LAYERS = ("hidden_1", "hidden_2", "output")


def make_tiny_network(seed: int = 0, activation: str = "tanh", regularizer=None):
    """4 → 8 → 4 → 1 functional network with layers ``inputs, hidden_1, hidden_2, output``."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="inputs")
    x = keras.layers.Dense(8, activation=activation, name="hidden_1")(inputs)
    x = keras.layers.Dense(4, activation=activation, name="hidden_2", kernel_regularizer=regularizer)(x)
    outputs = keras.layers.Dense(1, name="output")(x)
    return keras.Model(inputs, outputs, name="tiny")


def numpy_forward(network, x: np.ndarray) -> Dict[str, np.ndarray]:
    """Outputs of ``hidden_1``, ``hidden_2``, ``output`` of the tanh tiny network, in float64."""
    (w1, b1), (w2, b2), (w3, b3) = (
        [np.asarray(v.numpy(), dtype=np.float64) for v in network.get_layer(name).weights] for name in LAYERS
    )
    h1 = np.tanh(np.asarray(x, np.float64) @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    return {"hidden_1": h1, "hidden_2": h2, "output": h2 @ w3 + b3}


def compose_model(network, components: Sequence, learning_rate: float = 0.1, loss: str = "mean_squared_error"):
    """Insert the components' taps, wrap in a ComposedModel and compile it with plain SGD."""
    import keras

    from lossexp.training.composed_model import ComposedModel
    from lossexp.training.rewire import insert_taps

    taps: Dict[str, list] = {}
    for component in components:
        for layer, tap in component.insert_after().items():
            taps.setdefault(layer, []).append(tap)
    model = ComposedModel(insert_taps(network, taps), list(components), task_loss=loss, name="composed")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss=loss)
    return model


@pytest.fixture
def tiny_network() -> Callable:
    """Factory: ``tiny_network(seed=0)`` → a fresh seeded 4→8→4→1 tanh network."""
    return make_tiny_network


@pytest.fixture
def np_forward() -> Callable:
    return numpy_forward


@pytest.fixture
def compose() -> Callable:
    return compose_model


@pytest.fixture
def regression_data():
    """40 rows of U(0,1)^4 inputs with a smooth target (float32)."""
    rng = np.random.default_rng(123)
    x = rng.random((40, 4)).astype("float32")
    y = (x[:, :1] * x[:, 1:2] + 2.0 * x[:, 1:2] ** 2 - x[:, 3:4]).astype("float32")
    return x, y
