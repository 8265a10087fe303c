"""``dwa`` against the paper's formula (Liu, Johns & Davison 2019, eq. 7) on fixed per-step losses:
α = 1 in the first two epochs, then K·softmax(r/T) with r the ratio of the last two epoch averages."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.balancing.dwa import DynamicWeightAverage
from weighting_helpers import attached, weights

J = np.eye(3)
EPOCHS = [  # per epoch, the losses of each step (3 tasks)
    [[3.0, 1.0, 0.5], [2.0, 1.0, 0.7]],
    [[2.0, 0.9, 0.6], [1.0, 0.9, 0.8], [1.5, 0.6, 0.7]],
    [[1.0, 0.8, 0.9]],
]


def reference(previous: np.ndarray, before: np.ndarray, temperature: float) -> np.ndarray:
    ratio = previous / before
    return len(ratio) * np.exp(ratio / temperature) / np.exp(ratio / temperature).sum()


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_weights_follow_the_ratio_of_the_last_two_epoch_averages(temperature):
    method = attached(DynamicWeightAverage(temperature=temperature), 3)
    averages, seen = [], []
    for epoch in EPOCHS:
        for losses in epoch:
            seen.append(weights(method, J, losses))
        averages.append(np.mean(epoch, axis=0))
        method.end_epoch()
    first_two = sum(len(epoch) for epoch in EPOCHS[:2])
    np.testing.assert_allclose(seen[:first_two], np.ones((first_two, 3)))
    expected = reference(averages[1], averages[0], temperature)
    np.testing.assert_allclose(seen[-1], expected, rtol=1e-5)
    assert seen[-1].sum() == pytest.approx(3.0)
    assert np.argmax(seen[-1]) == 2  # the task whose loss rose gets the most weight
    assert {k: float(v) for k, v in method.tracked().items()} == pytest.approx(
        {"weight/dwa/t0": expected[0], "weight/dwa/t1": expected[1], "weight/dwa/t2": expected[2]}, rel=1e-5)


def test_an_epoch_without_steps_changes_nothing():
    method = attached(DynamicWeightAverage(), 2)
    method.end_epoch()
    assert float(method.epochs_done.numpy()) == 0.0
