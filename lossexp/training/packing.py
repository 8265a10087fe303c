"""PacGAN's packed real data (Lin et al. 2018): rows of m real points side by side.

The discriminator of a PacGAN with packing degree m judges m samples at once. Its real rows are
drawn as in the authors' released code (``GaussianPackingMixture``): for each of the m slots, an
independent draw with replacement of N indices into the N training points, the m draws placed
side by side. A data set of N points becomes N packed rows, so an epoch is N/batch steps whatever
m is, and a batch of B rows holds B·m real points. With m = 1 the data are used as they are.
"""
from __future__ import annotations

import numpy as np


def packed_rows(points: np.ndarray, pack: int, rng: np.random.Generator) -> np.ndarray:
    """``points`` (N, d) as N rows of ``pack`` points drawn with replacement, shape (N, pack·d)."""
    if pack == 1:
        return points
    n = len(points)
    return np.concatenate([points[rng.integers(0, n, size=n)] for _ in range(pack)], axis=1)
