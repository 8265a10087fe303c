"""The recipes' generated data sets: ``uniform`` (R1's fake data) and ``positive`` (R4), seeded,
with the shapes their configs ask for."""
from __future__ import annotations

import numpy as np

from conftest import dataset
from lossexp.data.positive import log_target


def test_uniform_has_the_configured_shapes_and_is_seeded():
    data = dataset("uniform", n_samples=50, n_features=7, n_targets=3, seed=4)
    assert data.x.shape == (50, 7) and data.y.shape == (50, 3) and data.num_outputs == 3
    assert data.x.dtype == np.float32 and 0 <= data.x.min() and data.y.max() < 1
    assert data.task == "regression"
    np.testing.assert_array_equal(dataset("uniform", n_samples=50, n_features=7, n_targets=3, seed=4).x, data.x)
    assert not np.array_equal(dataset("uniform", n_samples=50, n_features=7, n_targets=3, seed=5).x, data.x)


def test_positive_targets_follow_their_log_model():
    data = dataset("positive", n_samples=2000, noise=0.1)
    assert data.y.shape == (2000, 1) and (data.y > 0).all()
    residual = np.log(data.y[:, 0].astype(np.float64)) - log_target(data.x.astype(np.float64))
    assert abs(residual.mean()) < 0.01 and abs(residual.std() - 0.1) < 0.01
    assert data.task == "regression"
    noiseless = dataset("positive", n_samples=20, noise=0.0)
    np.testing.assert_allclose(np.log(noiseless.y[:, 0]), log_target(noiseless.x), rtol=1e-5, atol=1e-6)
