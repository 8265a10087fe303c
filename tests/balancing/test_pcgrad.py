"""``pcgrad`` against Yu et al.'s Algorithm 1 run on the gradient vectors themselves: two conflicting
2-D gradients whose projections are known by hand, three gradients in the orders the method drew
(seeded: the same seed and step give the same orders), and no conflict (the plain sum)."""
from __future__ import annotations

import numpy as np

from lossexp.balancing.pcgrad import PCGrad
from weighting_helpers import attached, direction


def reference(jacobian: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Σᵢ gᵢ^PC, each gᵢ projected off every gⱼ (j ≠ i, in row i's order) it conflicts with."""
    total = np.zeros(jacobian.shape[1])
    for i, order in enumerate(orders):
        g = jacobian[i].copy()
        for j in order:
            if j != i and g @ jacobian[j] < 0:
                g -= (g @ jacobian[j]) / (jacobian[j] @ jacobian[j]) * jacobian[j]
        total += g
    return total


def test_two_conflicting_gradients_by_hand():
    # g₁ = (1, 0), g₂ = (−1, 1): g₁·g₂ = −1. g₁^PC = g₁ + ½g₂ = (½, ½); g₂^PC = g₂ + g₁ = (0, 1)
    method = attached(PCGrad(), 2)
    np.testing.assert_allclose(direction(method, np.array([[1.0, 0.0], [-1.0, 1.0]])), [0.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(method.last_weights.numpy(), [2.0, 1.5], rtol=1e-6)  # d = (1 + 1)·g₁ + (½ + 1)·g₂


def test_three_gradients_in_the_drawn_orders():
    rng = np.random.default_rng(3)
    jacobian = rng.normal(size=(3, 5))
    jacobian[1] = -0.8 * jacobian[0] + 0.3 * rng.normal(size=5)  # make sure some pairs conflict
    method = attached(PCGrad(seed=7), 3)
    for step in (1.0, 2.0, 9.0):
        orders = method.orders(step).numpy()
        assert sorted(map(sorted, orders.tolist())) == [[0, 1, 2]] * 3  # every row a permutation
        np.testing.assert_allclose(direction(method, jacobian, step=step), reference(jacobian, orders), rtol=1e-5,
                                   atol=1e-6)
    same_seed, other_seed = attached(PCGrad(seed=7), 3), attached(PCGrad(seed=8), 3)
    draws = [method.orders(float(step)).numpy() for step in range(1, 21)]
    assert all((same_seed.orders(float(step)).numpy() == draw).all() for step, draw in enumerate(draws, 1))
    assert any((other_seed.orders(float(step)).numpy() != draw).any() for step, draw in enumerate(draws, 1))
    assert len({draw.tobytes() for draw in draws}) > 1  # drawn anew at each step


def test_without_conflicts_the_sum():
    jacobian = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.0, 0.3, 1.0]])
    method = attached(PCGrad(), 3)
    np.testing.assert_allclose(direction(method, jacobian), jacobian.sum(axis=0), rtol=1e-6)
