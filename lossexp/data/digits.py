"""scikit-learn's bundled 8×8 digits: 1,797 grey images in [0, 1], shape (8, 8, 1), 10 classes."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from lossexp.config import DigitsConfig
from lossexp.data import Dataset


def load(cfg: DigitsConfig) -> Dataset:
    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    y = bunch.target.astype("int32")
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    if cfg.n_samples is not None:
        order = order[: cfg.n_samples]
    return Dataset("digits", x[order], y[order], task="classification", num_outputs=10)
