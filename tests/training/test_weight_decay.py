"""The optimizer's weight decay spares the loss's own trained weights (``lossexp.training.weight_decay``)."""
from __future__ import annotations

import keras
import numpy as np

from conftest import make_tiny_network
from lossexp.losses.coef import TrainableCoefficient
from lossexp.training.supervised import compose


def one_step(optimizer):
    """A composed tiny network with a trained ``coef`` weight, after one step of ``optimizer``."""
    network = make_tiny_network(seed=3)
    model = compose(network, [TrainableCoefficient(name="coef", weight={"value": 0.5, "trainable": True,
                                                                        "parametrization": "softplus"})])
    model.compile(optimizer=optimizer, loss="mean_squared_error", run_eagerly=True)  # one step: no tracing
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.random((8, 4)).astype("float32"), rng.random((8, 1)).astype("float32"))
    return {v.path: v.numpy() for v in model.trainable_variables}


def test_weight_decay_spares_a_trained_loss_weight_and_keeps_the_users_own_exclusions():
    """AdamW decayed the coefficient's raw weight with the network's (lr 0.01, decay 0.1: a softplus weight
    0.027 where Adam left 0.019 after 130 steps); decay is the network's prior, not the loss's. One step from
    the same weights: AdamW moves the coefficient as Adam does, decays the kernels, and spares the biases the
    user excluded by name (Keras' own exclude call would have dropped that list)."""
    adamw = keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    adamw.exclude_from_weight_decay(var_names=["bias"])
    decayed, plain = one_step(adamw), one_step(keras.optimizers.Adam(learning_rate=0.1))
    coefficient = next(path for path in plain if "raw_weight" in path)
    np.testing.assert_array_equal(decayed[coefficient], plain[coefficient])
    for path in plain:
        if path.endswith("bias"):
            np.testing.assert_array_equal(decayed[path], plain[path])
        elif path.endswith("kernel"):
            assert not np.allclose(decayed[path], plain[path])
