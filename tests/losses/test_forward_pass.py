"""A forward pass's record (``lossexp.losses.forward_pass``): per thread, started afresh at each
outermost call of the network, kept while a batch's terms run."""
from __future__ import annotations

import threading

import keras
import numpy as np

from lossexp.losses.forward_pass import ForwardPassRecord, forward_pass_kept


class Recorder(ForwardPassRecord):
    def call(self, inputs):
        self.record(inputs)
        return inputs


def network_with_recorder():
    inputs = keras.Input((2,))
    recorder = Recorder(name="recorder")
    return keras.Model(inputs, keras.layers.Dense(1)(recorder(inputs))), recorder


def test_each_outermost_call_starts_the_record_afresh_unless_it_is_kept():
    network, recorder = network_with_recorder()
    network(np.ones((1, 2), "float32"))
    network(np.full((1, 2), 2.0, "float32"))
    [seen] = recorder.recorded()
    np.testing.assert_array_equal(seen, [[2.0, 2.0]])
    with forward_pass_kept(network):  # a term calling the network again on other inputs
        network(np.full((1, 2), 3.0, "float32"))
        [kept] = recorder.recorded()
    np.testing.assert_array_equal(kept, [[2.0, 2.0]])
    network(np.full((1, 2), 4.0, "float32"))
    np.testing.assert_array_equal(recorder.recorded()[0], [[4.0, 4.0]])


def test_a_thread_sees_its_own_forward_pass_only():
    """As each replica of a distribution strategy traces its step in a thread of its own."""
    network, recorder = network_with_recorder()
    seen = {}

    def forward(value: float) -> None:
        network(np.full((1, 2), value, "float32"))
        seen[value] = [np.asarray(v) for v in recorder.recorded()]

    threads = [threading.Thread(target=forward, args=(value,)) for value in (5.0, 6.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for value, values in seen.items():
        assert len(values) == 1 and np.all(values[0] == value)
    assert recorder.recorded() == []  # this thread called nothing
