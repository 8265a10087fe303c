"""The regime protocol's checks of what a regime of the user's builds."""
from __future__ import annotations

import numpy as np

from conftest import composed_config
from lossexp.training.trainer import Trainer, ignored_components, regime_callbacks


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


def test_a_regime_feeding_arrays_without_the_ordering_callback_still_reshuffles_each_epoch():
    """A regime that returns ``array_fit_arguments`` but not ``ordering_callbacks`` (its callbacks are
    its own) trained every epoch in the first epoch's order: shuffle each_epoch was shuffle once."""
    import keras

    config = composed_config("model=mlp", "data=regression", "trainer.batch_size=4", "trainer.shuffle=each_epoch")
    regime = Mine(config=config, meta={})
    seen = []

    class Recorder(keras.Model):
        def train_step(self, data):
            x, _ = data
            seen.append(x[:, 0])
            return {"rows": keras.ops.shape(x)[0]}

    model = Recorder()
    model.compile(run_eagerly=True)
    arguments = regime.array_fit_arguments((np.arange(8, dtype="float32")[:, None], np.zeros(8, "float32")))
    model.fit(**arguments, epochs=2, verbose=0, callbacks=regime_callbacks(regime, model, data=None))
    first, second = (np.concatenate([np.asarray(x) for x in seen[i:i + 2]]) for i in (0, 2))
    assert sorted(first) == sorted(second) == list(range(8)) and list(first) != list(second)


def listy():
    """A regime's model whose train_step returns its metrics as a list, not a dict."""
    import keras

    class Listy(keras.Model):
        def train_step(self, data):
            return [keras.ops.sum(data[0])]

    return Listy()


def test_a_regime_step_returning_no_dict_is_one_line_naming_its_file():
    """It ended in Keras' traceback, ``The truth value of an array … is ambiguous``."""
    import pytest

    from lossexp.errors import ConfigError
    from lossexp.training.trainer import built_model

    model = built_model(Mine(config=None, meta={}), listy())
    model.compile()
    with pytest.raises(ConfigError, match=r"test_trainer\.py:\d+ \(in Listy\.train_step\): it returned a list, not a "
                                          "dict of metric values by name"):
        model.fit(np.zeros((4, 2), "float32"), np.zeros(4, "float32"), epochs=1, verbose=0)
