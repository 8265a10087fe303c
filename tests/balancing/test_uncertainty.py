"""``uncertainty`` against Kendall et al.'s objective in lossexp's parametrization: α = exp(−s), the
objective Σ exp(−sᵢ)Lᵢ + sᵢ, whose gradient for sᵢ is 1 − exp(−sᵢ)Lᵢ (so sᵢ settles at log Lᵢ)."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.balancing.uncertainty import UncertaintyWeighting
from lossexp.errors import ConfigError
from weighting_helpers import attached, weights

LOSSES = np.array([2.0, 0.5, 0.1])


def test_weights_objective_and_the_gradient_of_the_log_variances():
    import tensorflow as tf

    from lossexp.balancing.base import Signals

    method = attached(UncertaintyWeighting(log_variance=0.3), 3)
    s = np.array([0.3, -0.2, 1.0])
    method.log_variances.assign(s)
    np.testing.assert_allclose(weights(method, np.eye(3), LOSSES), np.exp(-s), rtol=1e-6)
    losses = tf.constant(LOSSES, tf.float32)
    with tf.GradientTape() as tape:
        alpha = method.weights_for(Signals(losses))
        objective = tf.reduce_sum(alpha * losses) + method.penalty()
    np.testing.assert_allclose(float(objective), np.sum(np.exp(-s) * LOSSES + s), rtol=1e-6)
    [gradient] = tape.gradient(objective, method.trainable_variables)
    np.testing.assert_allclose(gradient.numpy(), 1 - np.exp(-s) * LOSSES, rtol=1e-5)
    assert sorted(method.tracked()) == sorted([f"weight/uncertainty/t{i}" for i in range(3)]
                                              + [f"weight/uncertainty/log_variance/t{i}" for i in range(3)])


def test_the_initial_log_variance_must_be_finite():
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.log_variance: expected a finite number, "
                                          r"got nan$"):
        UncertaintyWeighting(log_variance=float("nan"))
