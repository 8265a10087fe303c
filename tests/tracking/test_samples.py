"""SampleScores with the ring's scorer, the numbers of benchmarks/RING.md: fed a generator whose outputs
are known, it scores 2,500 samples of one fixed draw of noise at every epoch end and writes VEEGAN's
counts into the epoch's logs."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from lossexp.data.ring import modes
from lossexp.evaluation.ring import RingScorer
from lossexp.tracking.samples import SampleScores

MODES = modes(2.0)
STD = 0.02  # high quality: within 0.06 of the nearest mode
LATENT_DIM = 3


class KnownGenerator(keras.Model):
    """Sample i of a call: on mode ``i % covering`` for the first ``good`` samples (0.5 std off it), else
    1.5× as far out as mode ``5 + i % 3`` (1.0 from it: nearest to it but far from every mode).
    Records the noise of every call."""

    def __init__(self, good: int, covering: int) -> None:
        super().__init__()
        self.good, self.covering = good, covering
        self.noise_seen: list = []

    def call(self, noise, training=False):
        noise = np.array(keras.ops.convert_to_numpy(noise))
        self.noise_seen.append(noise)
        i = np.arange(len(noise))
        points = np.where((i < self.good)[:, None], MODES[i % self.covering] + 0.5 * STD,
                          1.5 * MODES[5 + i % 3])
        return keras.ops.convert_to_tensor(points.astype("float32"))


def RingMetrics(modes_: np.ndarray, std: float, latent_dim: int, seed: int) -> SampleScores:
    """The ring's scores as a GAN run computes them: its data set's scorer, every epoch."""
    return SampleScores(RingScorer(modes_, std), latent_dim, seed)


def epoch_end(ring: SampleScores, epoch: int) -> dict:
    logs = {"loss": 1.0}
    ring.on_epoch_end(epoch, logs)
    return logs


def test_counts_of_a_known_generator_on_2500_samples():
    generator = KnownGenerator(good=1000, covering=5)
    ring = RingMetrics(MODES, STD, LATENT_DIM, seed=3)
    ring.set_model(generator)
    logs = epoch_end(ring, 0)
    # 1,000 of 2,500 samples on modes 0–4; the other 1,500 are nearest to modes 5–7 but not close
    assert logs == {"loss": 1.0, "ring/modes_covered": 5.0, "ring/high_quality": pytest.approx(40.0)}
    [noise] = generator.noise_seen
    assert noise.shape == (2500, LATENT_DIM) and noise.dtype == np.float32
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1.0) < 0.05  # standard normal
    assert ring.samples.shape == (2500, 2)  # what plot_ring draws: the last epoch's samples


def test_the_same_noise_every_epoch_and_the_scores_follow_the_generator():
    generator = KnownGenerator(good=1000, covering=5)
    ring = RingMetrics(MODES, STD, LATENT_DIM, seed=3)
    ring.set_model(generator)
    first = epoch_end(ring, 0)
    generator.good, generator.covering = 2500, 8  # "training" moved the generator onto every mode
    second = epoch_end(ring, 1)
    assert (first["ring/modes_covered"], second["ring/modes_covered"]) == (5.0, 8.0)
    assert second["ring/high_quality"] == pytest.approx(100.0)
    assert np.array_equal(generator.noise_seen[0], generator.noise_seen[1])
    # seeded: the same seed draws the same noise in another run, another seed other noise
    for seed, same in ((3, True), (4, False)):
        other = KnownGenerator(good=0, covering=1)
        again = RingMetrics(MODES, STD, LATENT_DIM, seed=seed)
        again.set_model(other)
        epoch_end(again, 0)
        assert np.array_equal(other.noise_seen[0], generator.noise_seen[0]) == same
