"""pred_variance against NumPy: its term and its gradient with respect to the predictions."""
import numpy as np
import pytest
import tensorflow as tf

from lossexp import LossContext
from pred_variance import PredictionVariance


def numpy_term(y: np.ndarray, center: bool) -> float:
    """(1/(N·K)) Σ (ŷ − mean_batch ŷ)², or (1/(N·K)) Σ ŷ² without centring."""
    y = np.asarray(y, np.float64)
    deviation = y - y.mean(axis=0, keepdims=True) if center else y
    return float(np.mean(deviation ** 2))


def numpy_gradient(y: np.ndarray, center: bool) -> np.ndarray:
    """∂term/∂ŷ = 2(ŷ − mean)/(N·K): the mean's own dependence on ŷ sums to zero."""
    y = np.asarray(y, np.float64)
    deviation = y - y.mean(axis=0, keepdims=True) if center else y
    return 2.0 * deviation / y.size


@pytest.mark.parametrize("center", [True, False])
def test_term_and_gradient_match_numpy(center):
    y = np.random.default_rng(3).normal(size=(16, 2)).astype("float32")
    component = PredictionVariance(name="pred_variance", center=center)
    prediction = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(prediction)
        term = component.term(LossContext(y_true=None, y_pred=prediction, network=None, training=True))
    np.testing.assert_allclose(float(term), numpy_term(y, center), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(term, prediction).numpy(), numpy_gradient(y, center), rtol=1e-5, atol=1e-8)
