"""VEEGAN's ring: a mixture of 8 equally weighted 2-D Gaussians on a circle (seeded).

Mode k sits at ``radius·(cos a_k, sin a_k)`` with ``a = linspace(0, 2π, 9)[:-1]`` (8 distinct
angles; ``linspace(0, 2π, 8)`` would put two modes on top of each other). Targets are the mode
index of each point; the GAN ignores them, the ring metrics use the modes and the std.
"""
from __future__ import annotations

import numpy as np

from lossexp.config import RingConfig
from lossexp.data import Dataset

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


def load(cfg: RingConfig) -> Dataset:
    points, which = sample(cfg.n_samples, cfg.radius, cfg.std, np.random.default_rng(cfg.seed))
    return Dataset("ring", points.astype("float32"), which.astype("int32"), task="generation", num_outputs=2)
