"""The update a gradient-reading weighting method makes (``lossexp/training/balanced_update.py``) on a
network of its own heads: α from the Gramian of the weights the parts share, the update Σ αᵢgᵢ."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import two_heads as shared_trunk_heads


def two_heads():
    """A trunk of 5 under head ``a`` and head ``b`` (with a hidden layer of 6)."""
    return shared_trunk_heads(trunk_units=5, head_units=6, seed=1)


def test_mgda_on_split_heads_weighs_the_shared_trunk_and_updates_every_weight_by_alpha():
    """One SGD step (lr 1) of MGDA against Sener & Koltun's two-task closed form (Algorithm 1) on the
    heads' gradients of the trunk alone, from TensorFlow's tape on the same weights: a head's own
    weights, which one part reaches, are not in the Gramian (they were: α was the min-norm point of
    the whole gradients, 0.28/0.72 here against the paper's 0.18/0.82) and move by αᵢ·gᵢ."""
    import keras
    import tensorflow as tf

    from lossexp.balancing.mgda import MGDA
    from lossexp.training.supervised import compose

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = {"a": rng.normal(size=(16, 1)).astype("float32"), "b": 0.2 * rng.normal(size=(16, 2)).astype("float32")}
    network = two_heads()
    variables = network.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        predicted = network(x)
        losses = [tf.reduce_mean(tf.square(y[o] - predicted[o])) for o in ("a", "b")]
    rows = [np.concatenate([np.zeros(v.shape).ravel() if g is None else g.numpy().ravel()
                            for g, v in zip(tape.gradient(loss, variables), variables)]) for loss in losses]
    jacobian = np.array(rows)
    trunk = np.concatenate([np.full(int(np.prod(v.shape)), v.path.startswith("trunk/")) for v in variables])
    g1, g2 = jacobian[:, trunk]
    alpha_1 = float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))
    alpha = np.array([alpha_1, 1.0 - alpha_1])
    before = np.concatenate([v.numpy().ravel() for v in variables])
    model = compose(network, [], task_loss="mse", weighting=MGDA(), split_outputs=["a", "b"])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss={"a": "mse", "b": "mse"})
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    moved = before - np.concatenate([v.numpy().ravel() for v in variables])
    logged = {key: float(value) for key, value in model.tracked_weights().items()}
    assert [logged["weight/mgda/task.a"], logged["weight/mgda/task.b"]] == pytest.approx(alpha, abs=1e-5)
    np.testing.assert_allclose(moved, alpha @ jacobian, atol=1e-5 * np.abs(moved).max())
    whole_1 = float(np.clip((jacobian[1] - jacobian[0]) @ jacobian[1] / np.sum((jacobian[0] - jacobian[1]) ** 2), 0, 1))
    assert abs(whole_1 - alpha_1) > 0.1  # a step where the heads' own weights would change α


def branch_heads():
    """Heads ``a`` and ``b`` on a shared tanh ``trunk``; head ``c`` on a ``branch`` of its own from the
    input, which shares no weight with the others."""
    import keras

    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape=(4,), name="inputs")
    trunk = keras.layers.Dense(5, activation="tanh", name="trunk")(inputs)
    branch = keras.layers.Dense(3, activation="tanh", name="branch")(inputs)
    outputs = {"a": keras.layers.Dense(1, name="a")(trunk), "b": keras.layers.Dense(2, name="b")(trunk),
               "c": keras.layers.Dense(1, name="c")(branch)}
    return keras.Model(inputs, outputs, name="branch_heads")


def two_task_alpha(method: str, g1: np.ndarray, g2: np.ndarray, count: int) -> np.ndarray:
    """The papers' α of two tasks from their shared gradients (float64): MGDA's closed form (Algorithm 1),
    IMTL-G's (α₂ = g₁·u / ((g₁ − g₂)·u), u = u₁ − u₂), CAGrad's dual by a fine grid over w (g₀ the average
    of all ``count`` parts, the third's gradient 0 on these weights)."""
    if method == "mgda":
        a1 = float(np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0))
        return np.array([a1, 1.0 - a1])
    if method == "imtl":
        u = g1 / np.linalg.norm(g1) - g2 / np.linalg.norm(g2)
        a2 = (g1 @ u) / ((g1 - g2) @ u)
        return np.array([1.0 - a2, a2])
    g0 = (g1 + g2) / count
    w = np.linspace(0.0, 1.0, 200001)[:, None]
    gw = w * g1 + (1.0 - w) * g2
    c = 0.5 * np.linalg.norm(g0)
    best = float(w[np.argmin(gw @ g0 + c * np.linalg.norm(gw, axis=1)), 0])
    gw = best * g1 + (1.0 - best) * g2
    return 1.0 / count + c * np.array([best, 1.0 - best]) / np.linalg.norm(gw)


@pytest.mark.parametrize("method", ["mgda", "imtl", "cagrad"])
def test_a_head_that_shares_no_weight_follows_its_own_gradient(method):
    """Head ``c`` reaches none of the weights ``a`` and ``b`` share: nothing to balance it against, so
    its weights move by its own gradient (α = 1) and ``a`` and ``b`` are balanced as the method
    balances two tasks. Its zero row in the Gramian had MGDA and IMTL-G give it α = 0 — ``branch`` and
    ``c`` never trained — and CAGrad's dual put all its weight there, so the update was the plain
    average, α = 1/3 for every part."""
    import keras
    import tensorflow as tf

    from lossexp import registry
    from lossexp.training.supervised import compose

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = {"a": rng.normal(size=(16, 1)).astype("float32"), "b": 3.0 * rng.normal(size=(16, 2)).astype("float32"),
         "c": rng.normal(size=(16, 1)).astype("float32")}
    network = branch_heads()
    variables = network.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        predicted = network(x)
        losses = [tf.reduce_mean(tf.square(y[o] - predicted[o])) for o in "abc"]
    jacobian = np.array([np.concatenate([np.zeros(v.shape).ravel() if g is None else g.numpy().ravel()
                                         for g, v in zip(tape.gradient(loss, variables), variables)])
                         for loss in losses], np.float64)
    trunk = np.concatenate([np.full(int(np.prod(v.shape)), v.path.startswith("trunk/")) for v in variables])
    alpha = np.append(two_task_alpha(method, *jacobian[:2, trunk], count=3), 1.0)
    before = np.concatenate([v.numpy().ravel() for v in variables])
    model = compose(network, [], task_loss="mse", weighting=registry.get("weighting", method).resolve()(),
                    split_outputs=["a", "b", "c"])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse", jit_compile=False)
    model.train_on_batch(x, y)
    moved = before - np.concatenate([v.numpy().ravel() for v in variables])
    logged = np.array([float(model.tracked_weights()[f"weight/{method}/task.{o}"]) for o in "abc"])
    np.testing.assert_allclose(logged, alpha, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(moved, alpha @ jacobian, atol=1e-4 * np.abs(moved).max())


def three_heads(policy: str):
    """Heads ``a``, ``b``, ``c`` on a shared tanh ``trunk`` of 5, built under the dtype ``policy``."""
    import keras

    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(4)
        inputs = keras.Input(shape=(4,), name="inputs")
        trunk = keras.layers.Dense(5, activation="tanh", name="trunk")(inputs)
        outputs = {o: keras.layers.Dense(units, name=o)(trunk) for o, units in (("a", 1), ("b", 2), ("c", 1))}
        return keras.Model(inputs, outputs, name="three_heads")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def reference_alpha(method: str, jacobian: np.ndarray, method_object) -> np.ndarray:
    """α of the papers' formulas on the shared weights' gradients (rows of ``jacobian``, float64)."""
    import itertools

    from scipy.optimize import minimize

    k = len(jacobian)
    gramian = jacobian @ jacobian.T
    if method == "mgda":  # the min-norm point: the best KKT point over every face of the simplex
        best, value = None, np.inf
        for size in range(1, k + 1):
            for face in itertools.combinations(range(k), size):
                system = np.block([[2 * gramian[np.ix_(face, face)], np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
                solution = np.linalg.lstsq(system, np.r_[np.zeros(size), 1.0], rcond=None)[0][:size]
                w = np.zeros(k)
                w[list(face)] = solution
                if (solution >= -1e-12).all() and w @ gramian @ w < value:
                    best, value = w, w @ gramian @ w
        return best
    if method == "cagrad":  # Liu et al.'s dual by SciPy, c = 0.5
        g0 = jacobian.mean(axis=0)
        radius = 0.5 * np.linalg.norm(g0)
        w = minimize(lambda w: (jacobian.T @ w) @ g0 + radius * np.linalg.norm(jacobian.T @ w), np.ones(k) / k,
                     bounds=[(0, 1)] * k, method="SLSQP", options={"ftol": 1e-15},
                     constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}]).x
        return np.full(k, 1.0 / k) + radius * w / np.linalg.norm(jacobian.T @ w)
    if method == "imtl":  # IMTL-G's closed form
        units = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)
        rest = jacobian[0] @ (units[0] - units[1:]).T @ np.linalg.inv((jacobian[0] - jacobian[1:]) @ (units[0] - units[1:]).T)
        return np.r_[1 - rest.sum(), rest]
    orders = method_object.orders(1).numpy()  # pcgrad: Yu et al.'s projections in the orders the method drew at step 1
    alpha = np.zeros(k)
    for i, order in enumerate(orders):
        coefficients = np.eye(k)[i]
        for j in order:
            dot = (jacobian.T @ coefficients) @ jacobian[j]
            if j != i and dot < 0:
                coefficients = coefficients - dot / gramian[j, j] * np.eye(k)[j]
        alpha += coefficients
    return alpha


# every method passed under XLA too (6 December: 7–13 s of compiling each); the suite keeps MGDA's, whose step
# holds the most (the solver's while_loop, its Newton step's pseudo-inverse, the Gramian's float64 cond)
@pytest.mark.parametrize("method, mode", [("mgda", "mixed_float16"), ("cagrad", "mixed_float16"),
                                          ("imtl", "mixed_float16"), ("pcgrad", "mixed_float16"), ("mgda", "xla")])
def test_one_step_under_mixed_precision_and_xla_is_the_papers(method, mode):
    """One SGD step (lr 1) of the compiled step under ``mixed_float16`` (a loss scale, float16 layers) and under
    XLA: the logged α are the papers' formulas in float64 NumPy on the trunk's gradients of the same network (a
    tape of the network as the step computes it: float16 layers under mixed precision), and the weights move by
    Σ αᵢgᵢ — to float16's precision under mixed precision (10⁻² relative), float32's under XLA (10⁻⁴)."""
    import keras
    import tensorflow as tf

    from lossexp import registry
    from lossexp.training.supervised import compose

    policy = "mixed_float16" if mode == "mixed_float16" else "float32"
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = {"a": rng.normal(size=(16, 1)).astype("float32"), "b": 2.0 * rng.normal(size=(16, 2)).astype("float32"),
         "c": 0.5 * rng.normal(size=(16, 1)).astype("float32")}
    network = three_heads(policy)
    variables = network.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        predicted = network(x)
        losses = [tf.reduce_mean(tf.square(y[o] - tf.cast(predicted[o], tf.float32))) for o in "abc"]
    jacobian = np.array([np.concatenate([np.zeros(v.shape).ravel() if g is None else np.asarray(g, np.float64).ravel()
                                         for g, v in zip(tape.gradient(loss, variables), variables)]) for loss in losses])
    trunk = np.concatenate([np.full(int(np.prod(v.shape)), v.path.startswith("trunk/")) for v in variables])
    weighting = registry.get("weighting", method).resolve()()
    model = compose(network, [], task_loss="mse", weighting=weighting, split_outputs=["a", "b", "c"])
    optimizer = keras.optimizers.SGD(1.0)
    if mode == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0 ** 8)
    model.compile(optimizer=optimizer, loss="mse", jit_compile=mode == "xla")
    before = np.concatenate([v.numpy().ravel() for v in variables])
    model.train_on_batch(x, y)
    moved = before - np.concatenate([v.numpy().ravel() for v in variables])
    alpha = reference_alpha(method, jacobian[:, trunk], weighting)
    logged = np.array([float(model.tracked_weights()[f"weight/{method}/task.{o}"]) for o in "abc"])
    tolerance = 1e-2 if mode == "mixed_float16" else 1e-4
    np.testing.assert_allclose(logged, alpha, rtol=tolerance, atol=tolerance / 10)
    np.testing.assert_allclose(moved, alpha @ jacobian, atol=tolerance * np.abs(moved).max())
