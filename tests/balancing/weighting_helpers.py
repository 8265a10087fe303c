"""What the weighting methods' tests share: a method bound to K tasks, one step of it on fixed
gradients (NumPy J, one row per task) and the direction d = Jᵀα it gives."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def attached(method: Any, count: int, network: Any = None) -> Any:
    """``method`` bound to ``count`` tasks (t0, t1, …) of ``network`` (default: the tiny tanh network)."""
    if network is None:
        from conftest import make_tiny_network

        network = make_tiny_network()
    method.attach([f"t{i}" for i in range(count)], network)
    return method


def weights(method: Any, jacobian: np.ndarray, losses: Sequence[float] | None = None, step: float = 1.0) -> np.ndarray:
    """α for one step whose task gradients are the rows of ``jacobian`` (its float64 Gramian is what the method sees)."""
    import tensorflow as tf

    from lossexp.balancing.base import Signals

    jacobian = np.asarray(jacobian, np.float64)
    losses = np.ones(len(jacobian)) if losses is None else np.asarray(losses, np.float64)
    signals = Signals(tf.constant(losses, tf.float32), tf.constant(jacobian @ jacobian.T, tf.float64),
                      tf.constant(step, tf.float32))
    return np.asarray(method.weights_for(signals), np.float64)


def direction(method: Any, jacobian: np.ndarray, losses: Sequence[float] | None = None, step: float = 1.0) -> np.ndarray:
    """d = Jᵀα: the update the method makes from these gradients."""
    return np.asarray(jacobian, np.float64).T @ weights(method, jacobian, losses, step)
