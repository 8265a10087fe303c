"""The regime protocol's checks of what a regime of the user's builds."""
from __future__ import annotations

from lossexp.training.trainer import Trainer, ignored_components


class Mine(Trainer):
    """A regime whose model trains no loss components."""


def test_a_regime_whose_model_lists_no_components_is_warned_of_the_loss_it_ignores():
    import keras

    inputs = keras.Input((2,))
    plain = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    regime = Mine(config=None, meta={})
    assert ignored_components(regime, plain, ["hist_avg", "activity"]) == (
        "lossexp: warning: the training regime Mine built no loss components: loss=hist_avg+activity is not "
        "trained (loss=none says so)")
    assert ignored_components(regime, plain, []) is None
    plain.components = ["a component"]
    assert ignored_components(regime, plain, ["hist_avg"]) is None
