"""The 8-Gaussian ring: eight distinct modes on the circle, seeded draws with the configured spread."""
import numpy as np

from conftest import dataset
from lossexp.data.ring import modes


def test_eight_distinct_modes_at_multiples_of_45_degrees_on_the_circle():
    centres = modes(2.0)
    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0)
    angles = np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-12)


def test_points_are_seeded_and_spread_by_std_around_their_mode():
    cfg = dict(n_samples=4000, seed=5, radius=1.0, std=0.05)
    data, again = dataset("ring", **cfg), dataset("ring", **cfg)
    np.testing.assert_array_equal(data.x, again.x)
    assert data.x.shape == (4000, 2) and data.x.dtype == np.float32
    offsets = data.x - modes(1.0)[data.y]
    assert abs(offsets.std() - 0.05) < 0.003 and abs(offsets.mean()) < 0.003
    assert sorted(np.unique(data.y)) == list(range(8))
    assert data.task == "generation" and data.scorer.modes.shape == (8, 2)
    assert not np.array_equal(dataset("ring", n_samples=4000, seed=6).x, data.x)
