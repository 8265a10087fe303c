"""A network's outputs are named as Keras pairs them with targets: a dict output's keys."""
from __future__ import annotations

import keras
import numpy as np

from lossexp.models.outputs import output_names


def test_a_dict_outputs_keys_in_keras_order_else_the_output_layers_names() -> None:
    inputs = keras.Input((3,))
    heads = {"cls": keras.layers.Dense(2, name="cls_head"), "box": keras.layers.Dense(4, name="box_head")}
    keyed = keras.Model(inputs, {key: head(inputs) for key, head in heads.items()})
    assert output_names(keyed) == ["box", "cls"]  # network.outputs' order: the keys sorted
    assert [t.shape[-1] for t in keyed.outputs] == [4, 2]
    listed = keras.Model(inputs, [keras.layers.Dense(2, name="a")(inputs), keras.layers.Dense(1, name="b")(inputs)])
    assert output_names(listed) == ["a", "b"]
    assert output_names(object()) == []


def test_a_subclassed_networks_list_of_outputs_is_named_by_position_once_built() -> None:
    class Pair(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = keras.layers.Dense(1), keras.layers.Dense(2)

        def call(self, x):
            return self.first(x), self.second(x)

    network = Pair()
    assert output_names(network) == []  # not built: nothing to trace yet, and nothing kept
    network(np.zeros((2, 3), "float32"))
    assert output_names(network) == ["output_0", "output_1"]
