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
