"""Mode coverage and sample quality on the ring, as VEEGAN defines them (Srivastava et al. 2017).

For generated points and the ring's mode centres with per-mode standard deviation ``std``:

* a point is *high quality* if its distance to its nearest mode is at most ``3·std``;
* a mode is *covered* if at least one high-quality point has it as its nearest mode;
* the *per-mode counts* are the high-quality points nearest each mode (PacGAN's
  ``detail of coverage``): how evenly the covered modes are filled.

VEEGAN and PacGAN report both on 2,500 generator samples.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    #: high-quality points nearest each mode, in the order of ``modes``
    per_mode: tuple = ()


def score(points: np.ndarray, modes: np.ndarray, std: float) -> RingScore:
    """VEEGAN's two numbers for ``points`` (n, 2) against ``modes`` (k, 2)."""
    points = np.asarray(points, dtype=np.float64)
    distances = np.linalg.norm(points[:, None, :] - np.asarray(modes, np.float64)[None, :, :], axis=-1)
    nearest = np.argmin(distances, axis=1)
    good = distances[np.arange(len(points)), nearest] <= QUALITY_STDS * std
    per_mode = np.bincount(nearest[good], minlength=len(modes))
    percent = 100.0 * float(np.mean(good)) if len(points) else 0.0
    return RingScore(modes_covered=int(np.count_nonzero(per_mode)), high_quality=percent,
                     per_mode=tuple(int(n) for n in per_mode))


class RingScorer:
    """The ring data set's scorer of generated samples: VEEGAN's two numbers and a picture.

    A generative trainer asks each epoch for :meth:`metrics` of ``N_EVAL_SAMPLES`` samples
    (``ring/modes_covered``, ``ring/high_quality`` in percent) and at the end for :meth:`plot`;
    a sweep that has no validation loss to minimise takes :meth:`objective`, the modes missed.
    """

    name = "ring"
    n_samples = N_EVAL_SAMPLES

    def __init__(self, modes: np.ndarray, std: float) -> None:
        self.modes = np.asarray(modes)
        self.std = std

    def metrics(self, samples: np.ndarray) -> dict:
        result = score(samples, self.modes, self.std)
        return {"ring/modes_covered": float(result.modes_covered), "ring/high_quality": result.high_quality}

    def objective(self, history: dict) -> float:
        """Modes missed after the last epoch (lower is better)."""
        return float(len(self.modes) - history["ring/modes_covered"][-1])

    def plot(self, samples: np.ndarray, path: Path, title: str) -> Path:
        """Generated points over the modes, each with its 3-std "high quality" circle; returns ``path``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        result = score(samples, self.modes, self.std)
        fig, ax = plt.subplots(figsize=(5.5, 5.5))
        ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.4, color="tab:blue", label=f"{len(samples)} samples")
        ax.scatter(self.modes[:, 0], self.modes[:, 1], marker="x", color="tab:red", s=40, label="modes")
        for centre in self.modes:
            ax.add_patch(plt.Circle(centre, QUALITY_STDS * self.std, fill=False, color="tab:red", linewidth=0.8))
        reach = 1.5 * float(np.max(np.linalg.norm(self.modes, axis=1)))
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(f"{title}\n{result.modes_covered}/{len(self.modes)} modes covered, "
                     f"{result.high_quality:.1f}% high quality", fontsize=9)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
