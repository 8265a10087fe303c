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


def test_after_a_step_the_logged_weight_is_of_the_log_variance_before_it(tiny_network, regression_data):
    """One plain-SGD step of the tiny network on MSE + activity: ``weight/uncertainty/<t>`` is the α the
    step used, exp(−s₀), and ``…/log_variance/<t>`` is s₁ = s₀ − lr·(1 − exp(−s₀)·Lₜ), as the docstring says."""
    import keras

    from lossexp.losses.activity import ActivityPenalty
    from lossexp.training.supervised import compose

    x, y = regression_data
    lr, s0 = 0.1, 0.3
    network = tiny_network()
    hidden = keras.Model(network.input, network.get_layer("hidden_1").output)
    task = float(np.mean((network.predict(x, verbose=0) - y) ** 2))
    activity = 0.01 * float(np.sum(hidden.predict(x, verbose=0) ** 2)) / len(x)
    model = compose(network, [ActivityPenalty(name="activity", weight=0.01)],
                    weighting=UncertaintyWeighting(log_variance=s0))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr))
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    tracked = {key: float(value) for key, value in model.tracked_weights().items()}
    s1 = s0 - lr * (1 - np.exp(-s0) * np.array([task, activity]))
    for i, part in enumerate(["task", "activity"]):
        assert tracked[f"weight/uncertainty/{part}"] == pytest.approx(np.exp(-s0), rel=1e-6)
        assert tracked[f"weight/uncertainty/log_variance/{part}"] == pytest.approx(s1[i], rel=1e-5)
