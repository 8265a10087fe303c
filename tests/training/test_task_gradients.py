"""``lossexp/training/task_gradients.py``: the Gramian a weighting method reads against NumPy's float64
products of the same float32 gradients, on a million weights (a 6→700→700→700 trunk's variables),
where the differences that MGDA, CAGrad and IMTL-G turn on — ‖g₁ − g₂‖² of nearly parallel gradients,
‖g₁ + g₂‖² of nearly opposite ones — are 10⁻⁸ of ‖g‖²; and the float32 sums where they are not."""
from __future__ import annotations

import numpy as np
import pytest

SHAPES = [(6, 700), (700,), (700, 700), (700,), (700, 700), (700,)]


def split(row: np.ndarray) -> list:
    """One float32 gradient vector as the per-variable tensors the tape gives."""
    import tensorflow as tf

    found, start = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        found.append(tf.constant(row[start:start + size].reshape(shape)))
        start += size
    return found


def near_pair(sign: float, apart: float) -> np.ndarray:
    """g and sign·g + e with ‖e‖ = ``apart``·‖g‖, float32 (the rows of J)."""
    rng = np.random.default_rng(0)
    size = sum(int(np.prod(s)) for s in SHAPES)
    g, e = rng.standard_normal(size) * 1e-3, rng.standard_normal(size)
    return np.stack([g, sign * g + apart * np.linalg.norm(g) * e / np.linalg.norm(e)]).astype(np.float32)


def gramian(jacobian: np.ndarray, unscale: float = 1.0) -> np.ndarray:
    from lossexp.training import task_gradients

    return task_gradients.method_gramian([split(row) for row in jacobian], range(len(SHAPES)), unscale).numpy()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_nearly_dependent_gradients_1e_4_apart_are_told_apart(sign):
    # float32 sums were 2.5·10⁻⁶ of ‖g‖² off: ‖g₁ ∓ g₂‖², 10⁻⁸ of it, came out as noise (and negative)
    jacobian = near_pair(sign, 1e-4)
    gram = gramian(jacobian)
    exact = jacobian.astype(np.float64) @ jacobian.astype(np.float64).T
    np.testing.assert_allclose(gram, exact, rtol=1e-12)
    difference = jacobian[0].astype(np.float64) - sign * jacobian[1].astype(np.float64)
    assert gram[0, 0] + gram[1, 1] - 2 * sign * gram[0, 1] == pytest.approx(difference @ difference, rel=1e-6)


def test_independent_gradients_keep_the_float32_sums():
    # cos 0.98 (the cosine matrix's eigenvalues 1 ± 0.98 ≥ 10⁻²): the float32 Gramian, within its 10⁻⁵
    import tensorflow as tf

    from lossexp.training import task_gradients

    jacobian = near_pair(1.0, 0.2)
    gradients = [split(row) for row in jacobian]
    single = tf.add_n(task_gradients.variable_gramians(gradients)).numpy().astype(np.float64)
    assert gramian(jacobian, 0.25).tolist() == (0.25 * single).tolist()
    exact = jacobian.astype(np.float64) @ jacobian.astype(np.float64).T
    np.testing.assert_allclose(single, exact, rtol=1e-5)


@pytest.mark.parametrize("rows, expected", [
    ([[1.0, 0.0], [0.0, 1.0]], True),
    ([[1.0, 0.0], [-0.995, 0.0999]], False),   # |cos| 0.995
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.7, 0.7, 0.14]], False),  # the third nearly in the others' plane
    ([[0.0, 0.0], [1.0, 0.0]], True),           # a zero gradient is left out
    ([[np.inf, 0.0], [1.0, 0.0]], False),
])
def test_well_conditioned(rows, expected):
    from lossexp.training import task_gradients

    jacobian = np.array(rows)
    with np.errstate(invalid="ignore"):
        gram = jacobian @ jacobian.T
    assert bool(task_gradients.well_conditioned(gram)) is expected


def test_mgda_on_nearly_parallel_gradients_of_a_million_weights():
    # Sener & Koltun's Algorithm 1 on the vectors (float64): α₁ = (g₂ − g₁)·g₂/‖g₁ − g₂‖². From the float32
    # Gramian MGDA's weights were 0.057 off at 10⁻³ apart (1.0 at 10⁻⁵), though its update was 6·10⁻⁵ off
    import tensorflow as tf

    from lossexp.balancing.base import Signals
    from lossexp.balancing.mgda import MGDA
    from lossexp.training import task_gradients

    jacobian = near_pair(1.0, 1e-3)
    g1, g2 = jacobian.astype(np.float64)
    expected = float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))
    method = MGDA()
    method.tasks = ["a", "b"]
    gram = task_gradients.method_gramian([split(row) for row in jacobian], range(len(SHAPES)))
    alpha = method.weigh(Signals(tf.ones((2,)), gram, tf.constant(1, tf.int64))).numpy()
    np.testing.assert_allclose(alpha, [expected, 1.0 - expected], atol=1e-6)
