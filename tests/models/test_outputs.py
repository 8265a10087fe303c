"""A network's outputs are named as Keras pairs them with targets: a dict output's keys."""
from __future__ import annotations

import keras

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
