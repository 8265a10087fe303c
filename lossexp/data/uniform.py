"""R1's fake data: x ~ U(0,1)^n_features and y ~ U(0,1)^n_targets, drawn independently (seeded).

The seed trains on ``np.random.rand(1000, 32)`` → ``np.random.rand(1000, 2)``: there is nothing
to learn, which is the point of R1 — the interesting dynamics are those of the penalty and its
trainable coefficient.
"""
from __future__ import annotations

import numpy as np

from lossexp.config import UniformConfig
from lossexp.data import Dataset


def load(cfg: UniformConfig) -> Dataset:
    rng = np.random.default_rng(cfg.seed)
    x = rng.random((cfg.n_samples, cfg.n_features)).astype("float32")
    y = rng.random((cfg.n_samples, cfg.n_targets)).astype("float32")
    return Dataset("uniform", x, y, task="regression", num_outputs=cfg.n_targets, regression_loss=cfg.task_loss)
