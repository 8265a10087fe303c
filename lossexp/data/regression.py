"""R0's synthetic regression: y = x0·x1 + 2·x1² + x2/x3 + 3·x3 with x ~ U(0, 1)⁴ (seeded).

As in the seed, x2/x3 has a heavy tail (x3 near 0), which makes the MSE noisy: kept on purpose.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from lossexp.data.digits import NSamples
from lossexp.registry import register_data


def target(x: np.ndarray) -> np.ndarray:
    return x[:, 0] * x[:, 1] + 2.0 * x[:, 1] ** 2 + x[:, 2] / x[:, 3] + 3.0 * x[:, 3]


@register_data("regression", task="regression")
def regression(seed: int = 0, n_samples: NSamples = 1000) -> Tuple[np.ndarray, np.ndarray]:
    """R0's function ``x0*x1 + 2*x1^2 + x2/x3 + 3*x3`` of ``x ~ U(0,1)^4``, generated from ``seed``.

    Options: ``seed``; ``n_samples``.
    """
    x = np.random.default_rng(seed).random((n_samples, 4))
    return x.astype("float32"), target(x)[:, None].astype("float32")
