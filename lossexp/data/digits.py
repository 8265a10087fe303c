"""scikit-learn's bundled 8×8 digits: 1,797 grey images in [0, 1], shape (8, 8, 1), 10 classes."""
from __future__ import annotations

from typing import Annotated, Optional

import numpy as np

from lossexp.data.dataset import Dataset
from lossexp.options import Check
from lossexp.registry import register_data

#: at least 10 examples, so that a validation split keeps some of them
NSamples = Annotated[int, Check("an integer >= 10", lambda n: n >= 10)]


@register_data("digits", task="classification")
def digits(seed: int = 0, n_samples: Optional[NSamples] = None) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits, shuffled from ``seed``; no download.

    Options: ``seed`` (the shuffle before the train/validation split); ``n_samples`` (null: all 1,797).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    y = bunch.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    if n_samples is not None:
        order = order[:n_samples]
    return Dataset("digits", "classification", x=x[order], y=y[order], num_outputs=10)
