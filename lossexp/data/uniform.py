"""R1's fake data: x ~ U(0,1)^n_features and y ~ U(0,1)^n_targets, drawn independently (seeded).

The seed trains on ``np.random.rand(1000, 32)`` → ``np.random.rand(1000, 2)``: there is nothing
to learn, which is the point of R1 — the interesting dynamics are those of the penalty and its
trainable coefficient.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from lossexp.data.digits import NSamples
from lossexp.options import PositiveInt
from lossexp.registry import register_data


@register_data("uniform", task="regression")
def uniform(seed: int = 0, n_samples: NSamples = 1000, n_features: PositiveInt = 32,
            n_targets: PositiveInt = 2) -> Tuple[np.ndarray, np.ndarray]:
    """R1's fake data: ``U(0,1)^n_features`` inputs and independent ``U(0,1)^n_targets`` targets.

    Options: ``seed``; ``n_samples``; ``n_features``; ``n_targets``.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((n_samples, n_features)).astype("float32")
    y = rng.random((n_samples, n_targets)).astype("float32")
    return x, y
