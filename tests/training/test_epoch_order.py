"""In-memory examples are trained in a new order every epoch, drawn from the seed and the epoch:
every example once per epoch, the same order for an epoch whatever came before it (a resumed run),
and Keras' own array shuffle shown to repeat one order under a fixed seed (why this exists)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lossexp.training.epoch_order import EpochOrder


def orders(stream, order, epochs):
    """The first column of ``x`` in each epoch's batches, epoch by epoch."""
    drawn = []
    for epoch in epochs:
        order.on_epoch_begin(epoch)
        drawn.append([batch[0]["a"][:, 0].numpy().astype(int).tolist() for batch in stream])
    return drawn


def examples(n=10):
    x = {"a": np.arange(n, dtype="float32").reshape(n, 1), "b": np.zeros((n, 3), "float32")}
    return x, np.arange(n) % 2, np.linspace(0.5, 1.0, n).astype("float32")


def test_each_epoch_trains_every_example_once_in_a_new_order():
    x, y, weight = examples()
    order = EpochOrder(seed=0)
    stream = order.batches((x, y, weight), 4)
    drawn = orders(stream, order, range(4))
    assert [len(b) for b in drawn[0]] == [4, 4, 2]  # the last batch partial, as Keras' fit batches arrays
    assert all(sorted(sum(epoch, [])) == list(range(10)) for epoch in drawn)
    assert len({str(epoch) for epoch in drawn}) == 4
    assert int(stream.cardinality()) == 3  # Keras knows each epoch's steps
    order.on_epoch_begin(0)
    batch = next(iter(stream))  # targets and weights follow their examples
    rows = batch[0]["a"][:, 0].numpy().astype(int)
    np.testing.assert_array_equal(batch[1].numpy(), y[rows])
    np.testing.assert_array_equal(batch[2].numpy(), weight[rows])


def test_an_epochs_order_does_not_depend_on_the_epochs_before_it():
    """A run resumed at epoch 2 draws the orders of epochs 2 and 3 the uninterrupted run drew."""
    x, y, _ = examples()
    first = EpochOrder(seed=3)
    uninterrupted = orders(first.batches((x, y), 4), first, range(4))
    resumed = EpochOrder(seed=3)
    assert orders(resumed.batches((x, y), 4), resumed, [2, 3]) == uninterrupted[2:]
    other = EpochOrder(seed=4)
    assert orders(other.batches((x, y), 4), other, range(4)) != uninterrupted


def test_fit_sets_the_epoch_before_each_epoch_reads_its_batches():
    keras.utils.set_random_seed(0)
    x, y, _ = examples(12)
    seen = []

    class Record(keras.layers.Layer):
        def call(self, inputs):
            tf.py_function(lambda rows: seen.append(rows.numpy()[:, 0].astype(int).tolist()) or 0, [inputs], tf.int32)
            return inputs

    a, b = keras.Input((1,), name="a"), keras.Input((3,), name="b")
    network = keras.Model({"a": a, "b": b}, keras.layers.Dense(1)(keras.layers.Concatenate()([Record()(a), b])))
    network.compile("sgd", "mse", run_eagerly=True)
    order = EpochOrder(seed=0)
    network.fit(order.batches((x, y), 12), epochs=3, callbacks=[order], shuffle=False, verbose=0)
    assert len(seen) == 3 and len({str(rows) for rows in seen}) == 3
    assert all(sorted(rows) == list(range(12)) for rows in seen)
    assert int(order.epoch.numpy()) == 2


def test_keras_fit_on_arrays_repeats_one_order_under_a_fixed_seed():
    """Why lossexp orders arrays itself: Keras 3's array pipeline redraws the same permutation at
    every epoch once ``set_random_seed`` is called (its shuffle op's seed is fixed when it is built)."""
    keras.utils.set_random_seed(0)
    seen = []

    class Record(keras.layers.Layer):
        def call(self, inputs):
            tf.py_function(lambda rows: seen.append(rows.numpy()[:, 0].astype(int).tolist()) or 0, [inputs], tf.int32)
            return inputs

    network = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(1)])
    network.compile("sgd", "mse", run_eagerly=True)
    x = np.arange(8, dtype="float32").reshape(8, 1)
    network.fit(x, x, batch_size=8, epochs=3, shuffle=True, verbose=0)
    assert len(seen) == 3 and seen[0] != list(range(8)) and seen[0] == seen[1] == seen[2]
