"""The ring metrics of a GAN run, each epoch, and a picture of its last samples.

:class:`RingMetrics` scores ``N_EVAL_SAMPLES`` generated points at every epoch end (VEEGAN's
definitions, :mod:`lossexp.evaluation.ring`) and writes ``ring/modes_covered`` and
``ring/high_quality`` into the epoch's logs, so that a :class:`~lossexp.tracking.callback.RunRecorder`
placed after it in the callback list records them at the epoch's last step (and Keras' history
keeps them). It always scores the same noise, so the curve follows the generator, not the draw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import keras
import matplotlib
import numpy as np

from lossexp.evaluation.ring import N_EVAL_SAMPLES, QUALITY_STDS, score

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class RingMetrics(keras.callbacks.Callback):
    """Adds ``ring/modes_covered`` and ``ring/high_quality`` (percent) to each epoch's logs."""

    def __init__(self, modes: np.ndarray, std: float, latent_dim: int, seed: int = 0,
                 n_samples: int = N_EVAL_SAMPLES) -> None:
        super().__init__()
        self.modes = np.asarray(modes)
        self.std = std
        self.noise = np.random.default_rng(seed).standard_normal((n_samples, latent_dim)).astype("float32")
        self.samples: Optional[np.ndarray] = None

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.samples = keras.ops.convert_to_numpy(self.model(self.noise, training=False))
        result = score(self.samples, self.modes, self.std)
        if logs is not None:
            logs.update({"ring/modes_covered": float(result.modes_covered), "ring/high_quality": result.high_quality})


def plot_ring(samples: np.ndarray, modes: np.ndarray, std: float, path: Path, title: str) -> Path:
    """Generated points over the modes, each mode with its 3-std "high quality" circle; return ``path``."""
    result = score(samples, modes, std)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.4, color="tab:blue", label=f"{len(samples)} samples")
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", color="tab:red", s=40, label="modes")
    for centre in modes:
        ax.add_patch(plt.Circle(centre, QUALITY_STDS * std, fill=False, color="tab:red", linewidth=0.8))
    reach = 1.5 * float(np.max(np.linalg.norm(modes, axis=1)))
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{title}\n{result.modes_covered}/{len(modes)} modes covered, "
                 f"{result.high_quality:.1f}% high quality", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
