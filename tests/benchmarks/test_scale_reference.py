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
