"""``equal``: α = 1, the plain sum of the parts' gradients, and nothing logged."""
from __future__ import annotations

import numpy as np

from lossexp.balancing.equal import Equal
from weighting_helpers import attached, direction

J = np.array([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.5], [0.0, -3.0, 1.0]])


def test_the_direction_is_the_sum_of_the_gradients():
    method = attached(Equal(), 3)
    np.testing.assert_allclose(direction(method, J), J.sum(axis=0), rtol=1e-6)
    assert method.tracked() == {}
