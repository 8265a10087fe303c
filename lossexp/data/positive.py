"""R4's positive regression: log y = x0 − x1 + 0.5·x2·x3 + noise·ε, x ~ U(0,1)⁴, ε ~ N(0,1) (seeded).

Every target is positive (y ∈ (e^(−1−4·noise), e^(1.5+4·noise)) in practice), so the seed's
``(log y − log ŷ)²`` is defined; the model must keep ŷ > 0 too (``model.output_activation``).
"""
from __future__ import annotations

import numpy as np

from lossexp.config import PositiveConfig
from lossexp.data import Dataset


def log_target(x: np.ndarray) -> np.ndarray:
    return x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]


def load(cfg: PositiveConfig) -> Dataset:
    rng = np.random.default_rng(cfg.seed)
    x = rng.random((cfg.n_samples, 4))
    y = np.exp(log_target(x) + cfg.noise * rng.standard_normal(cfg.n_samples))[:, None]
    return Dataset("positive", x.astype("float32"), y.astype("float32"), task="regression", num_outputs=1,
                   regression_loss=cfg.task_loss)
