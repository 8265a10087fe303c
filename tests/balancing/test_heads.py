"""The layers a network's heads share, read from its functional graph (``lossexp/balancing/heads.py``)."""
from __future__ import annotations

from lossexp.balancing.heads import shared_by, split_outputs


def test_the_layers_under_every_head_of_a_list_or_dict_of_outputs():
    import keras

    inputs = keras.Input((4,), name="x")
    trunk = keras.layers.Dense(6, name="trunk")(inputs)
    side = keras.layers.Dense(3, name="side")(trunk)
    heads = [keras.layers.Dense(1, name="a")(trunk), keras.layers.Dense(2, name="b")(side),
             keras.layers.Dense(2, name="c")(keras.layers.Dense(2, name="c_hidden")(side))]
    listed = keras.Model(inputs, heads)
    named = keras.Model(inputs, dict(zip(["a", "b", "c"], heads)))
    for network in (listed, named):
        assert shared_by(network, ["a", "b", "c"]) == {"x", "trunk"}
        assert shared_by(network, ["b", "c"]) == {"x", "trunk", "side"}


def test_a_subclassed_network_has_no_graph_to_read():
    import keras

    class TwoHeads(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = keras.layers.Dense(1), keras.layers.Dense(1)

        def call(self, x):
            return {"a": self.a(x), "b": self.b(x)}

    network = TwoHeads()
    network(keras.ops.ones((1, 2)))
    assert shared_by(network, ["a", "b"]) is None
    assert split_outputs(["task.a", "task.b", "hist_avg", "other"]) == ["a", "b"]
