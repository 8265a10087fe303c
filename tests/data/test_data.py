import numpy as np

from conftest import dataset
from lossexp.data.regression import target


def test_digits_are_bundled_images_in_unit_range():
    data = dataset("digits")
    assert data.x.shape == (1797, 8, 8, 1) and data.x.dtype == np.float32
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert sorted(np.unique(data.y)) == list(range(10))
    assert data.task == "classification" and data.num_outputs == 10


def test_digits_subsample_and_split_are_deterministic():
    a, b = dataset("digits", n_samples=100, seed=3), dataset("digits", n_samples=100, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    train, validation = a.split(0.25)
    assert len(train.arrays[0]) == 75 and len(validation.arrays[0]) == 25
    np.testing.assert_array_equal(validation.arrays[0], a.x[75:])


def test_regression_is_the_seed_function():
    data = dataset("regression", n_samples=50, seed=1)
    x = data.x.astype(np.float64)
    expected = x[:, 0] * x[:, 1] + 2 * x[:, 1] ** 2 + x[:, 2] / x[:, 3] + 3 * x[:, 3]
    np.testing.assert_allclose(data.y[:, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(target(x), expected)
    assert data.task == "regression" and data.num_outputs == 1
    assert data.split(0.0)[1] is None


def test_a_data_source_of_the_users_returning_the_wrong_structure_is_named_by_its_file_and_line():
    """What a source of one's own returned is refused naming the source; its file and line say where to
    look (a project's ``blobs()`` returning a dict was named ``data (blobs)`` alone)."""
    import pytest

    from lossexp import registry
    from lossexp.errors import ConfigError

    def probe_wrong_structure():
        return {"inputs": 1, "targets": [1, 2]}

    registry.register("data", "probe_wrong_structure", probe_wrong_structure)
    try:
        with pytest.raises(ConfigError) as info:
            dataset("probe_wrong_structure")
    finally:
        registry._ENTRIES["data"].pop("probe_wrong_structure", None)
    line = probe_wrong_structure.__code__.co_firstlineno
    assert str(info.value).endswith(f"(returned by probe_wrong_structure() of {__file__}:{line})")
    assert str(info.value).startswith("Invalid value for data (probe_wrong_structure): expected (x, y)")
