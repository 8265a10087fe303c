"""Per-layer weight-drift statistics, measured every few steps outside the train step.

For a layer with weights θ (all its trainable tensors, flattened and concatenated), at a
logging step t that follows the previous one by k steps:

* ``from_init`` = ||θ_t − θ_0|| / ||θ_0||            how far the layer has moved since training began;
* ``per_step``  = ||θ_t − θ_{t−k}|| / (k·||θ_{t−k}||)  mean relative movement per step lately;
* ``from_avg``  = ||θ_t − θ̄_t|| / ||θ̄_t||            distance from the mean of the snapshots taken
  so far (θ_0 and every logging step), i.e. the historical average sampled every k steps.

Norms are L2; a zero denominator is replaced by 1 (absolute distance). Logged as
``weight_drift/<stat>/<layer>`` (:func:`lossexp.metric_names.drift`).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from lossexp import metric_names


def _flat(weights: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def _relative(diff: np.ndarray, ref: np.ndarray) -> float:
    scale = float(np.linalg.norm(ref))
    return float(np.linalg.norm(diff)) / (scale if scale > 0 else 1.0)


class WeightDrift:
    """Keeps θ_0, the previous snapshot and the running snapshot mean for each layer."""

    def __init__(self, layers: Dict[str, List]) -> None:
        self.layers = layers  # name -> list of variables
        self._init: Dict[str, np.ndarray] = {}
        self._previous: Dict[str, np.ndarray] = {}
        self._sum: Dict[str, np.ndarray] = {}
        self._count = 0
        self._previous_step = 0

    def _read(self, name: str) -> np.ndarray:
        return _flat([np.asarray(v) for v in self.layers[name]])

    def start(self) -> None:
        for name in self.layers:
            theta = self._read(name)
            self._init[name] = theta
            self._previous[name] = theta
            self._sum[name] = theta.copy()
        self._count = 1
        self._previous_step = 0

    def measure(self, step: int) -> Dict[str, float]:
        """Statistics at global step ``step`` (> the previous measurement's step)."""
        k = max(step - self._previous_step, 1)
        self._count += 1
        stats = {}
        for name in self.layers:
            theta = self._read(name)
            self._sum[name] += theta
            mean = self._sum[name] / self._count
            stats[metric_names.drift("from_init", name)] = _relative(theta - self._init[name], self._init[name])
            moved = _relative(theta - self._previous[name], self._previous[name])
            stats[metric_names.drift("per_step", name)] = moved / k
            stats[metric_names.drift("from_avg", name)] = _relative(theta - mean, mean)
            self._previous[name] = theta
        self._previous_step = step
        return stats
