"""``gradnorm`` against Chen et al.'s Algorithm 1, step by step in NumPy: the network follows the
current weights; the weights then take one gradient step on L_grad = Σ|Gᵢ − Ḡ·rᵢ^α| (target held
constant) and are renormalised to sum to K. The shared layer W defaults to the last one with weights."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.balancing.gradnorm import FLOOR, GradNorm
from lossexp.errors import ConfigError
from weighting_helpers import attached, weights

#: the tasks' gradients on W: task 0 pulls hard, task 2 not at all (a term on a lower layer)
J = np.array([[3.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])


def reference_step(w, norms, losses, initial, alpha, lr):
    scaled = w * norms
    ratio = np.where(initial > 0, losses / np.where(initial > 0, initial, 1), 1.0)
    target = scaled.mean() * (ratio / ratio.mean()) ** alpha
    stepped = np.maximum(w - lr * np.sign(scaled - target) * norms, FLOOR)
    return len(w) * stepped / stepped.sum()


def test_two_steps_follow_the_algorithm():
    method = attached(GradNorm(alpha=1.5, lr=0.1), 3)
    assert method.gradient_layers() == ["output"]
    norms = np.linalg.norm(J, axis=1)
    first, second = np.array([2.0, 1.0, 0.0]), np.array([1.0, 0.9, 0.5])  # task 2's loss starts at 0
    np.testing.assert_allclose(weights(method, J, first), np.ones(3))  # the network follows w = 1 first
    w1 = reference_step(np.ones(3), norms, first, np.array([2.0, 1.0, 0.0]), 1.5, 0.1)
    np.testing.assert_allclose(method.loss_weights.numpy(), w1, rtol=1e-5)
    # by hand: task 0 is above the mean norm (stepped down by lr·‖g₀‖), task 1 below (up), task 2 has no
    # gradient on W (kept at 1); then renormalised to sum 3
    stepped = np.array([1 - 0.1 * norms[0], 1 + 0.1 * norms[1], 1.0])
    np.testing.assert_allclose(w1, 3 * stepped / stepped.sum(), rtol=1e-6)
    np.testing.assert_allclose(weights(method, J, second), w1, rtol=1e-5)
    initial = np.array([2.0, 1.0, 0.5])  # a task's L(0) is its first positive loss
    np.testing.assert_allclose(method.initial_losses.numpy(), initial)
    w2 = reference_step(w1, norms, second, initial, 1.5, 0.1)
    np.testing.assert_allclose(method.loss_weights.numpy(), w2, rtol=1e-5)
    assert w2.sum() == pytest.approx(3.0) and w2[0] < 1.0  # the task that dominates W is weighted down


def test_the_layer_must_have_trainable_weights():
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: layer 'inputs' is not a layer of the "
                                          r"model with trainable weights; those are hidden_1, hidden_2, output$"):
        attached(GradNorm(layer="inputs"), 2)
    assert attached(GradNorm(layer="hidden_1"), 2).gradient_layers() == ["hidden_1"]
