import numpy as np

from lossexp.config import DigitsConfig, RegressionConfig
from lossexp.data import load
from lossexp.data.regression import target


def test_digits_are_bundled_images_in_unit_range():
    data = load(DigitsConfig())
    assert data.x.shape == (1797, 8, 8, 1) and data.x.dtype == np.float32
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert sorted(np.unique(data.y)) == list(range(10))
    assert data.task_loss == "sparse_categorical_crossentropy"


def test_digits_subsample_and_split_are_deterministic():
    a, b = load(DigitsConfig(n_samples=100, seed=3)), load(DigitsConfig(n_samples=100, seed=3))
    np.testing.assert_array_equal(a.x, b.x)
    (xt, yt), (xv, yv) = a.split(0.25)
    assert len(xt) == 75 and len(xv) == 25


def test_regression_is_the_seed_function():
    data = load(RegressionConfig(n_samples=50, seed=1))
    x = data.x.astype(np.float64)
    expected = x[:, 0] * x[:, 1] + 2 * x[:, 1] ** 2 + x[:, 2] / x[:, 3] + 3 * x[:, 3]
    np.testing.assert_allclose(data.y[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(target(x), expected)
    assert data.split(0.0)[1] is None
