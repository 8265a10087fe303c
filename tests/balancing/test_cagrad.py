"""``cagrad`` against Liu et al.'s Algorithm 1: the dual min over the simplex of g_wᵀg₀ + c‖g₀‖‖g_w‖
solved by SciPy on the gradient vectors (as the authors' code does), d = g₀ + c‖g₀‖·g_w/‖g_w‖; and the
primal meaning of d: within the ball ‖d − g₀‖ ≤ c‖g₀‖, no direction improves the worst task more."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from lossexp.balancing.cagrad import CAGrad
from weighting_helpers import attached, direction


def reference(jacobian: np.ndarray, c: float) -> np.ndarray:
    g0 = jacobian.mean(axis=0)
    radius = c * np.linalg.norm(g0)
    k = len(jacobian)

    def dual(w: np.ndarray) -> float:
        gw = jacobian.T @ w
        return gw @ g0 + radius * np.linalg.norm(gw)

    if k == 2:
        x = minimize_scalar(lambda x: dual(np.array([x, 1 - x])), bounds=(0, 1), method="bounded",
                            options={"xatol": 1e-10}).x
        w = np.array([x, 1 - x])
    else:
        w = minimize(dual, np.ones(k) / k, bounds=[(0, 1)] * k, method="SLSQP", options={"ftol": 1e-14},
                     constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}]).x
    gw = jacobian.T @ w
    return g0 + radius * gw / np.linalg.norm(gw)


@pytest.mark.parametrize("c", [0.2, 0.5, 2.0])
def test_two_conflicting_gradients(c):
    jacobian = np.array([[1.0, 0.0], [-1.0, 1.0]])
    np.testing.assert_allclose(direction(attached(CAGrad(c=c), 2), jacobian), reference(jacobian, c), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_gradients_and_the_primal_problem(seed):
    rng = np.random.default_rng(seed)
    jacobian = rng.normal(size=(3, 5)) * np.array([[1.0], [2.0], [0.5]])
    c = 0.5
    d = direction(attached(CAGrad(c=c), 3), jacobian)
    np.testing.assert_allclose(d, reference(jacobian, c), rtol=2e-3, atol=1e-4)
    g0 = jacobian.mean(axis=0)
    radius = c * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) == pytest.approx(radius, rel=1e-4)
    around = rng.normal(size=(20000, 5))
    candidates = g0 + radius * around / np.linalg.norm(around, axis=1, keepdims=True)
    assert (jacobian @ candidates.T).min(axis=0).max() <= (jacobian @ d).min() + 1e-4


def test_c_zero_is_the_average_gradient():
    jacobian = np.array([[1.0, 0.0], [-1.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(direction(attached(CAGrad(c=0.0), 3), jacobian), jacobian.mean(axis=0), atol=1e-6)


def test_a_small_gradient_is_not_absent():
    # a gradient of norm 1.4·10⁻³ beside one of 2.2·10³ was taken for zero and left out of the dual:
    # the update made the small task worse at rate 0.75 where CAGrad's makes it worse at 0.105
    jacobian = np.array([[1e-3, 0.0, 1e-3], [-1e3, 2e3, 0.0]])
    d = direction(attached(CAGrad(c=0.5), 2), jacobian)
    expected = reference(jacobian, 0.5)
    assert (jacobian @ d).min() == pytest.approx((jacobian @ expected).min(), rel=1e-2)


@pytest.mark.parametrize("seed", [0, 1])
def test_nearly_opposite_gradients_improve_the_worst_task_as_the_dual_does(seed):
    # g₂ ≈ −g₁ and g₃ ≈ ½g₁, 1 % apart, c = 2: Frank–Wolfe stopped far from the dual's minimum and the
    # update made the worst task worse (rate −0.020, −0.040 of ‖g₀‖²) where CAGrad's improves every task
    # (0.076, 0.066)
    rng = np.random.default_rng(seed)
    base = rng.normal(size=50)
    jacobian = np.stack([base, -base, 0.5 * base]) + 0.01 * rng.normal(size=(3, 50))
    d = direction(attached(CAGrad(c=2.0), 3), jacobian)
    expected = reference(jacobian, 2.0)
    g0 = jacobian.mean(axis=0)
    assert np.linalg.norm(d - g0) == pytest.approx(2.0 * np.linalg.norm(g0), rel=1e-4)
    assert (jacobian @ d).min() == pytest.approx((jacobian @ expected).min(), rel=2e-3)
