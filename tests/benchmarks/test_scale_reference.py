"""The scale benchmark's hand-written steps compute lossexp's maths: the same network trained for a
few batches by ``lossexp.compose`` and by ``benchmarks.scale.reference_model`` ends with the same
weights, so a ratio of their times compares like with like."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import scale

STEPS, BATCH = 4, 32


def trained_weights(model, x, y):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return [np.asarray(w) for w in model.network.trainable_weights]


@pytest.mark.parametrize("term, loss", [
    (scale.DEFAULT_REFERENCE, scale.DEFAULT_LOSS),
    ("hist_avg_ema", [scale.TERMS["hist_avg_ema"]]),
    ("coef", [scale.TERMS["coef"]]),
])
def test_a_hand_written_step_trains_as_lossexp_does(term, loss):
    import lossexp

    x, y = scale.synthetic("mlp_10k", STEPS * BATCH)
    by_lossexp = trained_weights(lossexp.compose(scale.build_network("mlp_10k"), loss,
                                                 task_loss="sparse_categorical_crossentropy"), x, y)
    by_hand = trained_weights(scale.reference_model(scale.build_network("mlp_10k"), term), x, y)
    initial = [np.asarray(w) for w in scale.build_network("mlp_10k").trainable_weights]
    assert len(by_hand) == len(by_lossexp) == len(initial)
    for lossexp_weight, hand_weight, start in zip(by_lossexp, by_hand, initial):
        np.testing.assert_allclose(hand_weight, lossexp_weight, rtol=1e-4, atol=1e-6)
        assert not np.allclose(hand_weight, start)  # trained, not compared at the start


def test_the_default_reference_reads_the_layer_it_is_given():
    """``benchmarks.large_networks`` penalises a layer of ResNet50 / EfficientNet's own naming: the
    hand-written step reads the layer named, not ``hidden_1``, and still trains as lossexp does."""
    import keras

    import lossexp

    def network():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,))
        features = keras.layers.Dense(16, activation="relu", name="features")(inputs)
        return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="output")(features))

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((STEPS * BATCH, 8)).astype("float32"), rng.integers(0, 4, STEPS * BATCH)
    loss = ["hist_avg", ("activity", {"layers": ["features"]})]
    by_lossexp = trained_weights(lossexp.compose(network(), loss, task_loss="sparse_categorical_crossentropy"), x, y)
    by_hand = trained_weights(scale.reference_model(network(), scale.DEFAULT_REFERENCE, hidden="features"), x, y)
    for lossexp_weight, hand_weight in zip(by_lossexp, by_hand):
        np.testing.assert_allclose(hand_weight, lossexp_weight, rtol=1e-4, atol=1e-6)
