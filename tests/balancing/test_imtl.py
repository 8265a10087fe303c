"""``imtl`` against IMTL-G's closed form (Liu et al. 2021, §3.2) on the gradient vectors:
α₂…K = g₁Uᵀ(DUᵀ)⁻¹ with Dᵢ = g₁ − gᵢ, Uᵢ = u₁ − uᵢ, α₁ = 1 − Σ α₂…K; the update then has the same
projection on every task's unit gradient. A zero gradient gets α = 0."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.balancing.imtl import IMTLG
from weighting_helpers import attached, weights


def reference(jacobian: np.ndarray) -> np.ndarray:
    units = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)
    d = jacobian[0] - jacobian[1:]
    u = units[0] - units[1:]
    rest = jacobian[0] @ u.T @ np.linalg.inv(d @ u.T)
    return np.r_[1 - rest.sum(), rest]


@pytest.mark.parametrize("seed, count", [(0, 2), (1, 3), (2, 4)])
def test_closed_form_and_equal_projections(seed, count):
    rng = np.random.default_rng(seed)
    jacobian = rng.normal(size=(count, 6)) * rng.uniform(0.1, 5.0, size=(count, 1))
    alpha = weights(attached(IMTLG(), count), jacobian)
    np.testing.assert_allclose(alpha, reference(jacobian), rtol=1e-4, atol=1e-5)
    d = jacobian.T @ alpha
    projections = jacobian @ d / np.linalg.norm(jacobian, axis=1)
    np.testing.assert_allclose(projections, projections[0], rtol=1e-4)
    assert alpha.sum() == pytest.approx(1.0, abs=1e-5)


def test_two_gradients_by_hand():
    # g₁ = (2, 0), g₂ = (0, 1): d = α(2, 0) + (1 − α)(0, 1) with 2α = 1 − α: α = 1/3, d = (2/3, 2/3)
    np.testing.assert_allclose(weights(attached(IMTLG(), 2), np.array([[2.0, 0.0], [0.0, 1.0]])), [1 / 3, 2 / 3],
                               rtol=1e-5)


def test_a_zero_gradient_gets_no_weight():
    jacobian = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(weights(attached(IMTLG(), 3), jacobian), [0.0, 1 / 3, 2 / 3], atol=1e-5)


@pytest.mark.parametrize("scales", [(1e-6, 1e-6), (1e-9, 1.0), (1.0, 1e13), (1e-3, 1e3, 1.0)])
def test_equal_projections_at_any_scale(scales):
    # the equations were solved in units of the gradients: a pseudo-inverse truncates singular values
    # below 10⁻⁶ of the largest, so gradients of norm 10⁻⁶ gave α = (½, ½) (projections 68 % apart),
    # and at 1 beside 10¹³ α = (0, 0)
    rng = np.random.default_rng(4)
    jacobian = rng.normal(size=(len(scales), 5)) * np.array(scales)[:, None]
    alpha = weights(attached(IMTLG(), len(scales)), jacobian)
    assert alpha.sum() == pytest.approx(1.0, abs=1e-5)
    projections = jacobian @ (jacobian.T @ alpha) / np.linalg.norm(jacobian, axis=1)
    np.testing.assert_allclose(projections, projections[0], rtol=1e-4)
    np.testing.assert_allclose(alpha, reference(jacobian), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("jacobian, expected", [
    ([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [1 / 3, 1 / 3, 1 / 3]),  # two identical gradients
    ([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [3 / 7, 1 / 7, 3 / 7]),  # one a multiple of another
])
def test_dependent_gradients_share_their_direction_equally(jacobian, expected):
    # the closed form's (DUᵀ) is singular: its equations fix only the sum βᵢ = αᵢ‖gᵢ‖ over the tasks of one
    # direction. The pseudo-inverse takes the least-norm β, an equal share of the direction (by hand:
    # β₁ = β₂ = b, β₃ = 2b); the paper's formula with a pseudo-inverse of (DUᵀ) gives (2/3, 0, 1/3) and
    # (12/13, −2/13, 3/13), which depend on which task comes first
    jacobian = np.array(jacobian)
    alpha = weights(attached(IMTLG(), 3), jacobian)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)
    projections = jacobian @ (jacobian.T @ alpha) / np.linalg.norm(jacobian, axis=1)
    np.testing.assert_allclose(projections, projections[0], rtol=1e-6)


@pytest.mark.parametrize("apart", [1e-3, 1e-4])
def test_nearly_dependent_gradients(apart):
    # g, −g and ½g, each ``apart`` (relative) off: the cosines of the last two with the first are 1 − O(apart²),
    # which float32 rounds to ±1; solved in float32 the weights were 0.39 off the closed form's, solved in
    # float64 from the float64 Gramian they are the closed form's (the projections, 10⁻⁷ of ‖g‖ at 10⁻⁴
    # apart, are then as equal as α's float32 rounding lets them be: not checked here)
    rng = np.random.default_rng(3)
    g = rng.normal(size=200)
    noise = rng.normal(size=(2, 200))
    noise *= apart * np.linalg.norm(g) / np.linalg.norm(noise, axis=1, keepdims=True)
    jacobian = np.stack([g, -g + noise[0], 0.5 * g + noise[1]])
    alpha = weights(attached(IMTLG(), 3), jacobian)
    np.testing.assert_allclose(alpha, reference(jacobian), atol=1e-5)


def test_a_task_weighed_to_nothing_beside_a_component_is_told_as_under_mgda():
    """IMTL weighed the task about 10⁻⁴ beside hist_avg and activity (probe, 7 December) without a word,
    where MGDA's same collapse is said."""
    from lossexp.balancing.imtl import IMTLG

    method = IMTLG()
    method.tasks = ["task", "hist_avg", "activity"]
    line = method.warning([1e-4, 0.9, 0.0999])
    assert line.startswith("weighting=imtl weighs the task loss 0.0001: for equal projections on every part's unit "
                           "gradient the update leans on hist_avg's"), line
    assert method.warning([0.4, 0.3, 0.3]) is None
    method.tasks = ["task.a", "task.b"]  # only task losses: an output at 0 is the method's answer, not a neglect
    assert method.warning([0.0, 1.0]) is None
