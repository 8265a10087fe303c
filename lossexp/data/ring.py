"""VEEGAN's ring: a mixture of 8 equally weighted 2-D Gaussians on a circle (seeded).

Mode k sits at ``radius·(cos a_k, sin a_k)`` with ``a = linspace(0, 2π, 9)[:-1]`` (8 distinct
angles; ``linspace(0, 2π, 8)`` would put two modes on top of each other). Targets are the mode
index of each point; a generative model ignores them. The data set carries its scorer: the
ring metrics of a generator's samples (:class:`lossexp.evaluation.ring.RingScorer`).
"""
from __future__ import annotations

import numpy as np

from lossexp.data.dataset import Dataset
from lossexp.data.digits import NSamples
from lossexp.options import PositiveFloat
from lossexp.registry import register_data

N_MODES = 8


def modes(radius: float) -> np.ndarray:
    """The 8 mode centres, shape (8, 2)."""
    angles = np.linspace(0.0, 2.0 * np.pi, N_MODES + 1)[:-1]
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample(n: int, radius: float, std: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 2), mode index of each point (n,)): a uniform mode, plus isotropic noise."""
    which = rng.integers(0, N_MODES, size=n)
    points = modes(radius)[which] + std * rng.standard_normal((n, 2))
    return points, which


@register_data("ring", task="generation")
def ring(seed: int = 0, n_samples: NSamples = 10000, radius: PositiveFloat = 2.0, std: PositiveFloat = 0.02) -> Dataset:
    """8 Gaussians on a circle (VEEGAN's ring), for generative models such as ``model=gan``.

    Options: ``seed``; ``n_samples``; ``radius``; ``std`` (of each Gaussian; a sample within
    3 std of a mode is high quality).
    """
    from lossexp.evaluation.ring import RingScorer

    points, which = sample(n_samples, radius, std, np.random.default_rng(seed))
    return Dataset("ring", "generation", x=points.astype("float32"), y=which.astype("int32"), num_outputs=2,
                   scorer=RingScorer(modes(radius), std))
