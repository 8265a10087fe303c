"""R0's synthetic regression: y = x0·x1 + 2·x1² + x2/x3 + 3·x3 with x ~ U(0, 1)⁴ (seeded).

As in the seed, x2/x3 has a heavy tail (x3 near 0), which makes the MSE noisy: kept on purpose.
"""
from __future__ import annotations

import numpy as np

from lossexp.config import RegressionConfig
from lossexp.data import Dataset


def target(x: np.ndarray) -> np.ndarray:
    return x[:, 0] * x[:, 1] + 2.0 * x[:, 1] ** 2 + x[:, 2] / x[:, 3] + 3.0 * x[:, 3]


def load(cfg: RegressionConfig) -> Dataset:
    x = np.random.default_rng(cfg.seed).random((cfg.n_samples, 4))
    y = target(x)[:, None]
    return Dataset("regression", x.astype("float32"), y.astype("float32"), task="regression", num_outputs=1,
                   regression_loss=cfg.task_loss)
