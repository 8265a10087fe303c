"""lossexp's own task losses against NumPy, and name resolution for ``compile``."""
from __future__ import annotations

import numpy as np

from lossexp.training.task_losses import resolve, summed_binary_crossentropy


def test_summed_binary_crossentropy_sums_over_features_per_example():
    rng = np.random.default_rng(0)
    y = rng.random((5, 8, 8)).astype("float32")  # soft targets in [0, 1], like scaled pixels
    p = rng.uniform(0.01, 0.99, (5, 64)).astype("float32")
    got = np.asarray(summed_binary_crossentropy(y, p))
    y64, p64 = y.reshape(5, 64).astype(np.float64), p.astype(np.float64)
    want = -(y64 * np.log(p64) + (1 - y64) * np.log(1 - p64)).sum(axis=1)
    assert got.shape == (5,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_resolve_maps_lossexp_names_and_passes_keras_names_through():
    assert resolve("summed_binary_crossentropy") is summed_binary_crossentropy
    assert resolve("mean_squared_error") == "mean_squared_error"
