"""A layer name the network has not: the line offers the close name and lists the layers where the path went
wrong — inside the nested layer its beginning reached — at most :data:`LISTED` of them. It listed the network's
own layers only (never the answer for a path into a block), all of them (8,839 characters for DenseNet121's)."""
from __future__ import annotations

import keras
import pytest

from lossexp.errors import ConfigError
from lossexp.losses.activity import ActivityPenalty
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.losses.layer_paths import LISTED, closest
from lossexp.training.supervised import compose


class Block(keras.layers.Layer):
    """A user's block holding three layers of its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Dense(4, name="conv")
        self.bn = keras.layers.BatchNormalization(name="bn")
        self.drop = keras.layers.Dropout(0.1, name="drop")

    def call(self, x):
        return self.drop(self.bn(self.conv(x)))


def network(widths=0):
    inputs = keras.Input((4,), name="inputs")
    x = Block(name="block")(keras.layers.Dense(4, name="hidden_1")(inputs))
    for i in range(widths):  # a long network: conv_0 … conv_{widths-1}
        x = keras.layers.Dense(4, name=f"conv_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="output")(x))


def refused(net, component):
    with pytest.raises(ConfigError) as info:
        compose(net, [component])
    return str(info.value)


@pytest.mark.parametrize("layers,said", [
    ("block/cnv", "layer 'block/cnv' is not in the model (did you mean 'block/conv'?); the layers of 'block' are "
                  "block/conv, block/bn, block/drop"),
    ("block/nope", "layer 'block/nope' is not in the model; the layers of 'block' are block/conv, block/bn, block/drop"),
    ("blok/cnv", "layer 'blok/cnv' is not in the model (did you mean 'block/conv'?); its layers are inputs, hidden_1, "
                 "block, output"),
    ("hiden_1", "layer 'hiden_1' is not in the model (did you mean 'hidden_1'?); its layers are inputs, hidden_1, "
                "block, output"),
    ("hidden_2", "layer 'hidden_2' is not in the model; its layers are inputs, hidden_1, block, output"),
])
def test_a_name_not_in_the_network_is_offered_the_close_one_and_the_layers_where_it_went_wrong(layers, said):
    message = refused(network(), ActivityPenalty(name="activity", layers=[layers]))
    assert message == f"Invalid value for loss.activity.layers: {said}"


def test_a_component_of_the_networks_own_layers_is_offered_those_alone():
    """hist_avg reaches nested layers by path; a component that does not is offered the network's own layers."""
    assert refused(network(), HistoricalAverage(name="hist_avg", layers=["block/cnv"])).endswith(
        "(did you mean 'block/conv'?); the layers of 'block' are block/conv, block/bn, block/drop")


def test_a_long_network_lists_its_first_layers_and_how_many_more():
    message = refused(network(widths=40), ActivityPenalty(name="activity", layers=["zzz"]))
    listed = message.partition("its layers are ")[2].split(", ")
    assert len(listed) == LISTED + 1 and listed[-1] == f"… ({44 - LISTED} more)", message
    assert listed[:4] == ["inputs", "hidden_1", "block", "conv_0"] and "did you mean" not in message


def test_the_closest_names_are_the_best_ones_and_not_other_numbers():
    paths = ["conv5_block16_concat", "conv5_block6_concat", "conv5_block1_concat", "a/conv5_block16_concatt"]
    assert closest("conv5_block16_concatt", paths[:3]) == ["conv5_block16_concat"]
    assert closest("conv5_block16_concatt", paths) == ["a/conv5_block16_concatt"]
    assert closest("hidden_2", ["hidden_1", "hidden_3"]) == [] and closest("bogus_layer", ["input_layer"]) == []
