"""The Maxout layer against NumPy: max over groups of ``pieces`` consecutive affine outputs."""
from __future__ import annotations

import numpy as np
import pytest

import keras

from lossexp.models.layers import Maxout


def np_maxout(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, units: int, pieces: int) -> np.ndarray:
    affine = x @ kernel + bias
    return np.stack([affine[..., j * pieces:(j + 1) * pieces].max(axis=-1) for j in range(units)], axis=-1)


@pytest.mark.parametrize("shape", [(6, 3), (2, 4, 3)])
def test_maxout_output_and_gradient_match_numpy(shape):
    import tensorflow as tf

    layer = Maxout(4, 5, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1),
                   bias_initializer=keras.initializers.RandomNormal(seed=2))
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    out = layer(x)
    assert out.shape == (*shape[:-1], 4) and layer.compute_output_shape(shape) == (*shape[:-1], 4)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    np.testing.assert_allclose(out, np_maxout(x, kernel, bias, 4, 5), rtol=1e-5, atol=1e-6)
    # ∂Σout/∂kernel: 1 at each unit's winning piece, times the input (NumPy: the argmax of each group)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x))
    got = tape.gradient(total, layer.kernel).numpy()
    affine = (x @ kernel + bias).reshape(-1, 4, 5)
    winners = np.zeros_like(affine)
    np.put_along_axis(winners, affine.argmax(axis=-1)[..., None], 1.0, axis=-1)
    expected = x.reshape(-1, shape[-1]).T @ winners.reshape(-1, 20)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_maxout_reloads_with_its_weights(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Maxout(2, 3, kernel_initializer={"class_name": "RandomNormal",
                                                                  "config": {"stddev": 0.02}}, name="m")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(loaded(x), model(x))
    assert (loaded.get_layer("m").units, loaded.get_layer("m").pieces) == (2, 3)
