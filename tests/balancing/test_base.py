"""The weighting-method contract (``lossexp/balancing/base.py``) as a method of the user's own meets it:
weights that are not one per part are one line naming the method and its ``weigh``, not Keras'
traceback from assigning them."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import lossexp
from lossexp.balancing.base import WeightingMethod
from lossexp.errors import ConfigError


class OneTooMany(WeightingMethod):
    """A method of a user's own with an off-by-one: K + 1 weights."""

    def weigh(self, signals):
        import tensorflow as tf

        return tf.ones((self.count + 1,))


@lossexp.register_weighting("one_weight_for_all")
class OneWeightForAll(WeightingMethod):
    """A method of a user's own that returns one scalar for every part."""

    def weigh(self, signals):
        import tensorflow as tf

        return tf.constant(2.0)


WHERE = f"{inspect.getsourcefile(OneTooMany)}:{inspect.getsourcelines(OneTooMany.weigh)[1]}"


def two_heads_and_data():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    trunk = keras.layers.Dense(5, activation="tanh", name="trunk")(inputs)
    network = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(trunk),
                                   "b": keras.layers.Dense(2, name="b")(trunk)}, name="two_heads")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    return network, (x, {"a": rng.normal(size=(16, 1)).astype("float32"), "b": rng.normal(size=(16, 2)).astype("float32")})


def test_weights_of_the_wrong_shape_are_one_line_naming_the_method_and_its_weigh():
    import keras

    from lossexp.training.supervised import compose

    network, (x, y) = two_heads_and_data()
    model = compose(network, [], task_loss="mse", weighting=OneTooMany(), split_outputs=["a", "b"])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss={"a": "mse", "b": "mse"})
    expected = (f"Invalid value for weighting: expected onetoomany's weigh() at {WHERE} to return one weight per part "
                "of the loss, shape (2,) for task.a, task.b, got shape (3,)")
    with pytest.raises(ConfigError) as raised:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert str(raised.value) == expected


def test_a_run_whose_method_returns_a_scalar_ends_failed_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    network, data = two_heads_and_data()
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting: expected one_weight_for_all's weigh\(\) at "
                                          r".*test_base.py:\d+ to return one weight per part of the loss, shape \(2,\) "
                                          r"for task.a, task.b, got shape \(\)$"):
        lossexp.fit(network, data, overrides=["weighting=one_weight_for_all"], task={"split_outputs": True},
                    trainer={"epochs": 1, "verbose": 0},
                    tracking={"plots": False, "gradients": False, "drift": False, "log_model": False})
    runs = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["0", "1"])
    assert [run.info.status for run in runs] == ["FAILED"]


class OnOneLayer(WeightingMethod):
    """A gradient method of a user's own that reads the Gramian of one named layer."""

    reads = "gradients"

    def __init__(self, layer: str = "trunk") -> None:
        super().__init__()
        self.layer = layer

    def gradient_layers(self):
        return [self.layer]

    def weigh(self, signals):
        import tensorflow as tf

        return tf.ones((self.count,))


def test_gradient_layers_that_the_network_lacks_are_one_line_before_training():
    from lossexp.training.supervised import compose

    network, _ = two_heads_and_data()
    with pytest.raises(ConfigError) as raised:
        compose(network, [], task_loss="mse", weighting=OnOneLayer(layer="trnk"), split_outputs=["a", "b"])
    assert str(raised.value) == ("Invalid value for weighting: expected ononelayer's gradient_layers() to name layers "
                                 "of the model with trainable weights (trunk, a, b), got 'trnk'")
    assert compose(network, [], task_loss="mse", weighting=OnOneLayer(), split_outputs=["a", "b"]) is not None
