"""Scores of a generative model's samples, each epoch, from its data set's scorer.

Generation data carries a scorer (the ring's: :class:`lossexp.evaluation.ring.RingScorer`).
:class:`SampleScores` draws ``scorer.n_samples`` points from the model at every epoch end, always
from the same noise (so the curve follows the generator, not the draw), and writes the scorer's
metrics into the epoch's logs: a :class:`~lossexp.tracking.callback.RunRecorder` placed after it
records them at the epoch's last step, and Keras' history keeps them.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras
import numpy as np


class SampleScores(keras.callbacks.Callback):
    """Adds the scorer's metrics of fresh samples to each epoch's logs; keeps the last samples."""

    def __init__(self, scorer: Any, latent_dim: int, seed: int = 0) -> None:
        super().__init__()
        self.scorer = scorer
        self.noise = np.random.default_rng(seed).standard_normal((scorer.n_samples, latent_dim)).astype("float32")
        self.samples: Optional[np.ndarray] = None

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.samples = keras.ops.convert_to_numpy(self.model(self.noise, training=False))
        if logs is not None:
            logs.update(self.scorer.metrics(self.samples))
