"""The batches the gradient diagnostics are measured on (lossexp/training/gradient_probe.py)."""
from __future__ import annotations

import numpy as np


def counted_stream(n: int, read: list):
    """A generator's stream of ``n`` elements (2 features, labels 0/1) appending each index it yields to ``read``."""
    import tensorflow as tf

    def elements():
        for i in range(n):
            read.append(i)
            yield np.full(2, i, "float32"), i % 2

    return tf.data.Dataset.from_generator(elements, output_signature=(tf.TensorSpec((2,), tf.float32),
                                                                      tf.TensorSpec((), tf.int64)))


def test_a_streams_probe_reads_a_bounded_buffer_beside_training():
    """A stream's probe batches come from a shuffle buffer of their own, read beside training's: it
    held 10,000 elements (128 MiB), so the first probe read a 5,000-row stream through — 10,000 of a
    generator's 100,000 rows, 2,730 of 20,000 PNGs decoded an extra time; at most 1,024 now. Its
    batches still differ from one probe to the next."""

    from lossexp.data.dataset import Part
    from lossexp.training.gradient_probe import training_batches

    read = []
    stream = counted_stream(5000, read)
    batches = training_batches(Part(stream=stream, size=5000), 8, seed=0)
    first, second = batches(1)[0], batches(2)[0]
    assert first.shape == (8, 2) and not np.array_equal(first, second)
    assert len(read) < 1200


def test_the_probe_of_a_stream_that_shuffles_itself_reads_no_buffer_of_its_own():
    """Its buffer was filled before the first probe whatever the stream (1,055 elements decoded here, about 340
    of 20,000 PNGs decoded once more before training's first step)."""
    import tensorflow as tf

    from lossexp.data.dataset import Part
    from lossexp.training.gradient_probe import training_batches

    decoded = tf.Variable(0, dtype=tf.int64)

    def decode(i):
        decoded.assign_add(1)
        return tf.fill([2], tf.cast(i, tf.float32)), i % 2

    stream = tf.data.Dataset.range(5000).shuffle(5000, seed=0).map(decode)
    batches = training_batches(Part(stream=stream, size=5000), 8, seed=0)
    first, second = batches(1)[0], batches(2)[0]
    assert first.shape == (8, 2) and not np.array_equal(first, second)
    assert int(decoded.numpy()) < 200


def test_a_small_streams_probe_reads_each_element_once():
    """A stream within the probe's buffer filled it whole at the first probe, and again at each of its
    passes (300 elements, 80 probes of 8: 941 read, 315 by the first probe); it is kept in
    memory now: each element read once, the probes' batches still differing."""

    from lossexp.data.dataset import Part
    from lossexp.training.gradient_probe import training_batches

    read = []
    stream = counted_stream(300, read)
    batches = training_batches(Part(stream=stream, size=300), 8, seed=0)
    drawn = [batches(step)[0] for step in range(1, 81)]
    assert not np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[40], drawn[41])
    assert sorted(read) == list(range(300)), f"{len(read)} elements read"
