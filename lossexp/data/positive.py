"""R4's positive regression: log y = x0 − x1 + 0.5·x2·x3 + noise·ε, x ~ U(0,1)⁴, ε ~ N(0,1) (seeded).

Every target is positive (y ∈ (e^(−1−4·noise), e^(1.5+4·noise)) in practice), so the seed's
``(log y − log ŷ)²`` is defined; the model must keep ŷ > 0 too (``model.output_activation``).
"""
from __future__ import annotations

from typing import Annotated, Tuple

import math

import numpy as np

from lossexp.data.digits import NSamples
from lossexp.options import Check
from lossexp.registry import register_data


def log_target(x: np.ndarray) -> np.ndarray:
    return x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]


@register_data("positive", task="regression")
def positive(seed: int = 0, n_samples: NSamples = 1000,
             noise: Annotated[float, Check("a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)] = 0.1,
             ) -> Tuple[np.ndarray, np.ndarray]:
    """R4's positive targets: ``log y = x0 - x1 + 0.5*x2*x3 + noise*N(0,1)``, ``x ~ U(0,1)^4``.

    Options: ``seed``; ``n_samples``; ``noise``.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((n_samples, 4))
    y = np.exp(log_target(x) + noise * rng.standard_normal(n_samples))[:, None]
    return x.astype("float32"), y.astype("float32")
