"""``mgda`` against Sener & Koltun: the min-norm point of the convex hull of the (normalised) task
gradients — by hand for two 2-D gradients (the paper's Algorithm 1 closed form), and for three by
solving the quadratic programme exactly (every face of the simplex, KKT on each) — not by the
Frank–Wolfe iteration the method runs. A zero gradient is left out; the weights apply to the raw
gradients, as in the authors' code."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lossexp.balancing.mgda import MGDA
from weighting_helpers import attached, weights


def min_norm_weights(jacobian: np.ndarray) -> np.ndarray:
    """argmin over the simplex of ‖Jᵀw‖²: the best feasible KKT point over every face."""
    gramian = jacobian @ jacobian.T
    k = len(gramian)
    best, best_value = None, np.inf
    for size in range(1, k + 1):
        for face in itertools.combinations(range(k), size):
            sub = gramian[np.ix_(face, face)]
            system = np.block([[2 * sub, np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
            try:  # exactly where it can be (lstsq's cut-off drops a task of norm 10⁻⁵ beside one of 10⁵)
                solution = np.linalg.solve(system, np.r_[np.zeros(size), 1.0])[:size]
            except np.linalg.LinAlgError:  # dependent gradients
                solution = np.linalg.lstsq(system, np.r_[np.zeros(size), 1.0], rcond=None)[0][:size]
            if (solution >= -1e-12).all():
                w = np.zeros(k)
                w[list(face)] = solution
                value = w @ gramian @ w
                if value < best_value * (1 - 1e-12) - 1e-300:
                    best, best_value = w, value
    return best


def test_two_gradients_closed_form():
    # g₁ = (1, 0), g₂ = (−1, 1): α₁ = (g₂ − g₁)·g₂ / ‖g₁ − g₂‖² = 3/5, the min-norm point (0.2, 0.4)
    jacobian = np.array([[1.0, 0.0], [-1.0, 1.0]])
    method = attached(MGDA(), 2)
    alpha = weights(method, jacobian)
    np.testing.assert_allclose(alpha, [0.6, 0.4], rtol=1e-6)
    np.testing.assert_allclose(jacobian.T @ alpha, [0.2, 0.4], atol=1e-6)
    assert ((jacobian @ (jacobian.T @ alpha)) >= -1e-7).all()  # no task gets worse


def test_one_gradient_inside_the_others_hull_is_the_answer():
    # g₂ = (1, 1) is shorter than any other point of the segment to g₁ = (3, 3)…: α = (0, 1)
    np.testing.assert_allclose(weights(attached(MGDA(), 2), np.array([[3.0, 3.0], [1.0, 1.0]])), [0.0, 1.0],
                               atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_three_gradients_match_the_exact_quadratic_programme(seed):
    rng = np.random.default_rng(seed)
    jacobian = rng.normal(size=(3, 6)) * np.array([[1.0], [3.0], [0.3]])
    alpha = weights(attached(MGDA(), 3), jacobian)
    expected = min_norm_weights(jacobian)
    assert alpha.sum() == pytest.approx(1.0, abs=1e-6) and (alpha >= 0).all()
    assert np.linalg.norm(jacobian.T @ alpha) == pytest.approx(np.linalg.norm(jacobian.T @ expected), rel=1e-4,
                                                               abs=1e-6)
    np.testing.assert_allclose(alpha, expected, atol=2e-4)


def test_l2_normalisation_weighs_unit_gradients():
    jacobian = np.array([[10.0, 0.0], [0.0, 0.1]])
    alpha = weights(attached(MGDA(normalization="l2"), 2), jacobian)
    np.testing.assert_allclose(alpha, [0.5, 0.5], rtol=1e-5)  # the min-norm point of the unit vectors
    alpha_raw = weights(attached(MGDA(), 2), jacobian)
    assert alpha_raw[1] > 0.99  # without it, the small gradient takes (nearly) all the weight


@pytest.mark.parametrize("normalization, scale", [("loss", lambda g, L: L), ("loss+", lambda g, L: L * g)])
def test_loss_normalisations(normalization, scale):
    rng = np.random.default_rng(5)
    jacobian, losses = rng.normal(size=(3, 4)), np.array([2.0, 0.5, 1.5])
    norms = np.linalg.norm(jacobian, axis=1)
    expected = min_norm_weights(jacobian / scale(norms, losses)[:, None])
    np.testing.assert_allclose(weights(attached(MGDA(normalization=normalization), 3), jacobian, losses), expected,
                               atol=2e-4)


def test_a_zero_gradient_is_left_out():
    jacobian = np.array([[1.0, 0.0], [-1.0, 1.0], [0.0, 0.0]])  # historical averaging at its first step
    np.testing.assert_allclose(weights(attached(MGDA(), 3), jacobian), [0.6, 0.4, 0.0], atol=1e-5)
    np.testing.assert_allclose(weights(attached(MGDA(), 2), jacobian[1:]), [1.0, 0.0], atol=1e-6)


def test_a_small_gradient_is_not_absent():
    # ‖g₁‖ = 1.4·10⁻³ beside ‖g₂‖ = 2.2·10³ is small, not zero: the min-norm point is (nearly) g₁ itself
    # (it was left out as if zero: α = (0, 1), an update of norm 2236 where the min-norm point's is 1.3·10⁻³)
    jacobian = np.array([[1e-3, 0.0, 1e-3], [-1e3, 2e3, 0.0]])
    g1, g2 = jacobian
    first = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)  # Algorithm 1's closed form
    alpha = weights(attached(MGDA(), 2), jacobian)
    np.testing.assert_allclose(alpha, [first, 1 - first], atol=1e-6)
    assert np.linalg.norm(jacobian.T @ alpha) == pytest.approx(np.linalg.norm(jacobian.T @ [first, 1 - first]),
                                                               rel=1e-3)


def test_the_weights_do_not_depend_on_the_gradients_scale():
    # the same two gradients times 10¹³ (a diverging run's): the solver's constant c = 1 shrinks with
    # the Gramian's scale to 10⁻¹³, which it took for c = 0, so α was a vertex, (1, 0)
    jacobian = np.array([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0]])
    expected = weights(attached(MGDA(), 2), jacobian)
    np.testing.assert_allclose(weights(attached(MGDA(), 2), 1e13 * jacobian), expected, rtol=1e-5)
    np.testing.assert_allclose(expected, [4 / 7, 3 / 7], rtol=1e-5)


def test_five_gradients_of_very_different_norms():
    # one gradient of norm ~10⁻³ among four of ~10³: the min-norm point puts 10⁻⁶ on two of the large ones,
    # which Frank–Wolfe's stop at a move of 10⁻⁶ in the weights cut short (an update 38 % longer than it)
    rng = np.random.default_rng(1)
    jacobian = rng.normal(size=(5, 8))
    jacobian[0] *= 1e-3
    jacobian[1:] *= 1e3
    alpha = weights(attached(MGDA(), 5), jacobian)
    expected = min_norm_weights(jacobian / 1e3)  # the same minimiser, in better-conditioned units
    assert np.linalg.norm(jacobian.T @ alpha) == pytest.approx(np.linalg.norm(jacobian.T @ expected), rel=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_nearly_opposite_gradients_reach_the_min_norm_point(seed):
    # g₂ ≈ −g₁ and g₃ ≈ ½g₁, 1 % apart: the min-norm point is short beside the gradients and Frank–Wolfe
    # crawled along the face: after its 250 iterations the update was 19 % and 29 % longer than the min-norm
    # point's, the weights 0.37 and 0.38 off (now 10⁻⁵)
    rng = np.random.default_rng(seed)
    base = rng.normal(size=50)
    jacobian = np.stack([base, -base, 0.5 * base]) + 0.01 * rng.normal(size=(3, 50))
    alpha = weights(attached(MGDA(), 3), jacobian)
    expected = min_norm_weights(jacobian)
    assert np.linalg.norm(jacobian.T @ alpha) == pytest.approx(np.linalg.norm(jacobian.T @ expected), rel=1e-5)
    np.testing.assert_allclose(alpha, expected, atol=1e-4)


def test_gradients_of_norms_1e5_apart():
    # four tasks of norms ~10⁵, 1, 1 and 10⁻⁵: the update was 0.57 % longer than the min-norm point's
    jacobian = np.random.default_rng(7).normal(size=(4, 50))
    jacobian[0] *= 1e5
    jacobian[1] /= 1e5
    alpha = weights(attached(MGDA(), 4), jacobian)
    expected = min_norm_weights(jacobian)
    assert np.linalg.norm(jacobian.T @ alpha) == pytest.approx(np.linalg.norm(jacobian.T @ expected), rel=1e-5)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)


def test_a_task_weighed_to_nothing_is_told_naming_the_part_mgda_follows_and_ordinary_runs_are_not():
    """Weights as measured on the digits' CNN: the task at 5.6·10⁻⁶ beside hist_avg and activity (a run
    that stays at chance); at 0.5 (normalization l2) and 0.998 (loss+) in runs that learn."""
    method = MGDA()
    method.tasks = ["task", "hist_avg", "activity"]
    line = method.warning([5.6e-6, 0.88, 0.12])
    assert line.startswith("weighting=mgda weighs the task loss 5.6e-06: the min-norm point of the parts' "
                           "gradients is hist_avg's, the smallest"), line
    assert "weighting.normalization=l2" in line
    assert method.warning([0.5, 0.5, 0.0]) is None and method.warning([0.998, 0.002, 0.0]) is None
    method.tasks = ["mtl_toy_l1", "mtl_toy_l2"]  # no task loss: a part at 0 is MGDA's Pareto answer
    assert method.warning([0.0, 1.0]) is None
    method.tasks = ["task.cls", "task.box", "hist_avg"]  # task.split_outputs: the outputs' losses together
    line = method.warning([2e-4, 3e-4, 0.9995])
    assert line.startswith("weighting=mgda weighs the task losses (task.cls, task.box) together 0.0005: the min-norm "
                           "point of the parts' gradients is hist_avg's"), line
    assert method.warning([0.0, 0.4, 0.6]) is None  # one output at 0, the other learning: not the network ignored
    method.tasks = ["task.cls", "task.box"]  # only task losses: an output at 0 is MGDA's Pareto answer
    assert method.warning([0.0, 1.0]) is None
