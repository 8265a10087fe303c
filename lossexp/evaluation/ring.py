"""Mode coverage and sample quality on the ring, as VEEGAN defines them (Srivastava et al. 2017).

For generated points and the ring's mode centres with per-mode standard deviation ``std``:

* a point is *high quality* if its distance to its nearest mode is at most ``3·std``;
* a mode is *covered* if at least one high-quality point has it as its nearest mode.

VEEGAN and PacGAN report both on 2,500 generator samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: How many generator samples the papers evaluate.
N_EVAL_SAMPLES = 2500
#: "High quality": within this many standard deviations of the nearest mode.
QUALITY_STDS = 3.0


@dataclass(frozen=True)
class RingScore:
    modes_covered: int
    #: percentage of the points that are high quality, 0–100
    high_quality: float


def score(points: np.ndarray, modes: np.ndarray, std: float) -> RingScore:
    """VEEGAN's two numbers for ``points`` (n, 2) against ``modes`` (k, 2)."""
    points = np.asarray(points, dtype=np.float64)
    distances = np.linalg.norm(points[:, None, :] - np.asarray(modes, np.float64)[None, :, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    good = distances[np.arange(len(points)), nearest] <= QUALITY_STDS * std
    covered = len(np.unique(nearest[good]))
    percent = 100.0 * float(np.mean(good)) if len(points) else 0.0
    return RingScore(modes_covered=int(covered), high_quality=percent)
