"""CAGrad's toy objectives (mtl_toy_l1, mtl_toy_l2): values and gradients at points of both halves of
the plane against NumPy, written from the released toy.py's formulas as they stand (tanh(−x₂), (−x₁+7)…);
the gradients by hand, cross-checked by central differences in float64."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.mtl_toy_l1 import ToyL1
from lossexp.losses.mtl_toy_l2 import ToyL2

LOWER = 0.000005
#: both halves of the plane (log valleys above, quadratic bowls below), the paper's starting points among them
POINTS = [(-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0), (0.5, 0.3), (3.0, -8.0), (-2.0, 2.0)]


def reference(x1, x2):
    """(f1, f2) exactly as CAGrad's toy.py writes them."""
    f1 = np.log(max(abs(0.5 * (-x1 - 7) - np.tanh(-x2)), LOWER)) + 6
    f2 = np.log(max(abs(0.5 * (-x1 + 3) + np.tanh(-x2) + 2), LOWER)) + 6
    c1 = max(np.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c2 = max(np.tanh(-x2 * 0.5), 0)
    return f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2


def reference_gradients(x1, x2):
    """∂(f1, f2)/∂(x1, x2) by hand from the same formulas (away from the clamps' kinks)."""
    u1 = 0.5 * (-x1 - 7) - np.tanh(-x2)
    u2 = 0.5 * (-x1 + 3) + np.tanh(-x2) + 2
    sech2 = 1 - np.tanh(x2) ** 2  # d tanh(x2)/dx2; d tanh(-x2)/dx2 = -sech2
    du1 = np.array([-0.5, sech2])
    du2 = np.array([-0.5, -sech2])
    f1, f2 = np.log(abs(u1)) + 6, np.log(abs(u2)) + 6
    h = np.tanh(0.5 * x2)
    dh = 0.5 * (1 - h ** 2)
    c1, dc1 = (h, dh) if h > 0 else (0.0, 0.0)
    c2, dc2 = (-h, -dh) if h < 0 else (0.0, 0.0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    df1_sq = np.array([-2 * (-x1 + 7) / 10, -0.2 * (-x2 - 8) / 10])
    df2_sq = np.array([-2 * (-x1 - 7) / 10, -0.2 * (-x2 - 8) / 10])
    e2 = np.array([0.0, 1.0])
    g1 = c1 * du1 / u1 + f1 * dc1 * e2 + c2 * df1_sq + f1_sq * dc2 * e2
    g2 = c1 * du2 / u2 + f2 * dc1 * e2 + c2 * df2_sq + f2_sq * dc2 * e2
    return g1, g2


def terms_and_gradients(point):
    """Each component's term and its gradient with respect to θ, through the point model's output."""
    from lossexp.models.point import point as build_point
    from lossexp.data.dataset import as_dataset

    data = as_dataset("steps", (np.zeros((2, 1), "float32"), np.zeros((2, 1), "float32")), "objective")
    network = build_point(data, init=list(point))
    theta = network.get_layer("theta").theta
    results = []
    for component in (ToyL1(name="mtl_toy_l1"), ToyL2(name="mtl_toy_l2")):
        component.attach(network)
        with tf.GradientTape() as tape:
            y_pred = network(np.zeros((2, 1), "float32"))
            term = component.term(LossContext(y_true=None, y_pred=y_pred, network=network, training=True))
        results.append((float(term), tape.gradient(term, theta).numpy()))
    return results


@pytest.mark.parametrize("point", POINTS, ids=[f"{x},{y}" for x, y in POINTS])
def test_values_and_gradients_match_numpy(point):
    (l1, g1), (l2, g2) = terms_and_gradients(point)
    f1, f2 = reference(*point)
    assert l1 == pytest.approx(f1, rel=1e-5, abs=1e-5) and l2 == pytest.approx(f2, rel=1e-5, abs=1e-5)
    r1, r2 = reference_gradients(*point)
    np.testing.assert_allclose(g1, r1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g2, r2, rtol=1e-4, atol=1e-5)
    step = 1e-6  # the hand-written gradients are those of the formulas
    for i in range(2):
        delta = np.eye(2)[i] * step
        plus, minus = reference(*(np.array(point) + delta)), reference(*(np.array(point) - delta))
        assert r1[i] == pytest.approx((plus[0] - minus[0]) / (2 * step), rel=1e-5, abs=1e-6)
        assert r2[i] == pytest.approx((plus[1] - minus[1]) / (2 * step), rel=1e-5, abs=1e-6)


def test_minima_of_each_objective_are_at_plus_and_minus_seven():
    """Each objective is least at (±7, ≈ −8.4345), where the other is far from least (the conflict)."""
    (l1, g1), (l2, _) = terms_and_gradients((7.0, -8.4345))
    (m1, _), (m2, g2) = terms_and_gradients((-7.0, -8.4345))
    assert np.abs(g1).max() < 1e-4 and np.abs(g2).max() < 1e-4
    assert l1 == pytest.approx(m2) == pytest.approx(-19.9894, abs=1e-3)
    assert l2 > l1 + 19 and m1 > m2 + 19


def test_a_model_that_does_not_output_a_point_in_the_plane_is_refused():
    inputs = keras.Input(shape=(1,))
    network = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="three")
    with pytest.raises(ConfigError, match=r"loss.mtl_toy_l1 .* must output 2 coordinates .* three outputs 3"):
        ToyL1(name="mtl_toy_l1").attach(network)
