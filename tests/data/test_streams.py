"""Reading a stream: one pass to count it, batches padded to their longest, buffers bounded by bytes."""
from __future__ import annotations

import numpy as np

from lossexp.data.dataset import from_stream


def test_a_long_count_of_a_stream_of_unknown_length_says_what_runs(monkeypatch, capsys):
    """An endless generator would count forever: after COUNT_NOTICE_SECONDS one line says so."""
    import time

    import tensorflow as tf

    from lossexp.data import streams as module

    def slow():
        for i in range(5):
            time.sleep(0.05)
            yield np.float32(i), np.float32(i)

    monkeypatch.setattr(module, "COUNT_NOTICE_SECONDS", 0.02)
    stream = tf.data.Dataset.from_generator(slow, output_signature=(tf.TensorSpec((), tf.float32),) * 2)
    assert module.read_through("slow", stream, count=True, labels=False)[0] == 5
    assert capsys.readouterr().err == (
        "lossexp: counting the examples of data 'slow' (TensorFlow does not know its length): an endless stream "
        "never finishes — .take(n) it, or give its length with .apply(tf.data.experimental.assert_cardinality(n))\n")


def test_elements_of_varying_length_are_padded_to_the_longest_of_their_batch():
    import tensorflow as tf

    from lossexp.data.streams import batches

    lengths = [3, 5, 2, 4]
    stream = tf.data.Dataset.from_generator(
        lambda: ((np.ones((n, 2), "float32"), np.ones(n, "int64"), np.ones(n, "float32")) for n in lengths),
        output_signature=(tf.TensorSpec((None, 2), tf.float32), tf.TensorSpec((None,), tf.int64),
                          tf.TensorSpec((None,), tf.float32)))
    first, second = [tuple(t.numpy() for t in batch) for batch in batches(stream, 2)]
    assert first[0].shape == (2, 5, 2) and second[0].shape == (2, 4, 2)
    np.testing.assert_array_equal(first[2], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])  # padding weighs 0
    fixed = tf.data.Dataset.from_tensor_slices((np.zeros((5, 2), "float32"), np.arange(5)))
    assert [b[0].shape[0] for b in batches(fixed, 2, drop_remainder=True)] == [2, 2]
    data = from_stream("tokens", stream)  # labels per position, of varying length: read and checked
    assert (data.task, data.num_outputs, data.sample(3)[1].shape) == ("classification", 2, (3, 5))


def test_a_buffer_holds_the_elements_that_fit_its_bytes_by_their_shapes():
    import tensorflow as tf

    from lossexp.data.streams import SHUFFLE_BYTES, elements_within

    def elements(*shape, dtype=tf.float32):
        return tf.data.Dataset.from_tensors((tf.zeros(shape, dtype), tf.constant(0, tf.int64)))

    assert elements_within(elements(8), 500, SHUFFLE_BYTES) == 500
    image_bytes = 224 * 224 * 3 * 4 + 8  # a decoded float image and its label: 10,000 would be 6 GB
    assert elements_within(elements(224, 224, 3), 10_000, SHUFFLE_BYTES) == SHUFFLE_BYTES // image_bytes == 1783
    assert elements_within(elements(224, 224, 3, dtype=tf.uint8), 10_000, SHUFFLE_BYTES) == \
        SHUFFLE_BYTES // (224 * 224 * 3 + 8)
    assert elements_within(elements(224, 224, 3), 10_000, 1) == 1
    assert elements_within(tf.data.Dataset.from_tensors((tf.zeros([5, 3]), "text"))
                           .map(lambda x, t: (x[: tf.shape(x)[0] // 2], t)), 100, 16) == 1  # unknown length counted once


def test_a_streams_batch_size_is_read_from_its_pipeline_through_operations_that_keep_its_batches():
    import tensorflow as tf

    from lossexp.data.streams import batch_size_of

    x = np.zeros((20, 3), "float32")
    stream = tf.data.Dataset.from_tensor_slices((x, np.arange(20)))
    generated = tf.data.Dataset.from_generator(lambda: iter(x), output_signature=tf.TensorSpec((3,)))
    assert batch_size_of(stream.batch(8)) == 8
    assert batch_size_of(stream.batch(6, num_parallel_calls=2, drop_remainder=True)) == 6
    assert batch_size_of(stream.padded_batch(5)) == 5
    assert batch_size_of(stream.batch(4).map(lambda a, b: (a * 2, b)).shuffle(3).cache().prefetch(2)) == 4
    assert batch_size_of(generated.batch(7)) == 7
    assert batch_size_of(stream) is None
    assert batch_size_of(stream.batch(8).unbatch()) is None
    assert batch_size_of(stream.batch(8).flat_map(lambda a, b: tf.data.Dataset.from_tensors((a, b)))) is None


def test_ragged_and_sparse_elements_are_read_as_dense_tensors_padded_by_batch():
    """``from_tensor_slices`` of a ragged tensor of token ids, batched as Keras' fit takes it, and a sparse
    bag of features: lossexp's ``padded_batch`` raised TypeError ("only supported for datasets that produce
    tensor elements") in a traceback, and a sparse input was refused as one the network "cannot take"."""
    import tensorflow as tf

    from lossexp.data.dataset import as_dataset
    from lossexp.data.streams import batches

    ragged = tf.ragged.constant([[1, 2, 3], [4, 5], [6]] * 4)
    data = as_dataset("tokens", tf.data.Dataset.from_tensor_slices((ragged, np.arange(12) % 2)).batch(4))
    assert (data.examples, data.task, data.num_outputs, data.batch_size) == (12, "classification", 2, 4)
    train, _ = data.split(0.25)
    [first, *_] = batches(train.stream, 2).as_numpy_iterator()
    np.testing.assert_array_equal(first[0], [[1, 2, 3], [4, 5, 0]])
    dense = (np.arange(24).reshape(6, 4) % 5 == 0).astype("float32")
    sparse = tf.data.Dataset.from_tensor_slices((tf.sparse.from_dense(dense), np.arange(6) % 3))
    data = as_dataset("bag", sparse)
    [(x, y)] = batches(data.stream, 6).as_numpy_iterator()
    np.testing.assert_array_equal(x, dense)
    assert (data.input_shapes, data.task, data.num_outputs) == ((4,), "classification", 3)


def test_a_batched_stream_keeps_the_length_of_what_it_batched_without_a_pass():
    """``unbatch()`` forgot it: an ``image_dataset_from_directory``-like stream (files mapped to images,
    then batched) was counted in a pass that decoded every image once before training."""
    import tensorflow as tf

    from lossexp.data.dataset import as_dataset
    from lossexp.data.streams import unbatched

    decoded = tf.Variable(0, dtype=tf.int64)

    def decode(i):
        decoded.assign_add(1)
        return tf.fill([3], tf.cast(i, tf.float32)), i % 4

    files = tf.data.Dataset.range(1003).map(decode)
    for batch, drop, examples in ((10, False, 1003), (10, True, 1000)):
        assert int(unbatched(files.batch(batch, drop_remainder=drop).prefetch(2)).cardinality()) == examples
    assert int(unbatched(files.batch(10).take(50)).cardinality()) == tf.data.UNKNOWN_CARDINALITY  # counted then
    data = as_dataset("files", files.batch(32).map(lambda x, y: (x * 2, y)))
    assert (data.size, data.batch_size, data.num_outputs) == (1003, 32, 4)
    assert int(decoded.numpy()) < 3 * 256


def test_whether_a_stream_reshuffles_augments_or_is_batched_is_read_without_serialising_its_arrays():
    """Its serialised graph held every constant: 614 MB of arrays in a ``from_tensor_slices`` took 4.6 s
    and 1.8 GB more to tell, at every stream's training (``trainer.shuffle=each_epoch`` asks), again for
    its random ops (a validation split cut from it) and its batch size (``.batch(32)``)."""
    import time

    import tensorflow as tf

    from lossexp.data.streams import batch_size_of, random_ops, reshuffles

    arrays = tf.data.Dataset.from_tensor_slices((np.ones((25_000, 1024), "float32"), np.arange(25_000)))  # 100 MB
    started = time.thread_time()  # this thread's: the process's counts other tests' tf.data threads under xdist
    assert not reshuffles(arrays.take(20_000)) and reshuffles(arrays.shuffle(64).map(lambda x, y: (x * 2, y)))
    augmented = arrays.map(lambda x, y: (x + tf.random.normal(tf.shape(x)), y))
    assert random_ops(arrays) == [] and random_ops(augmented) == ["RandomStandardNormal"]
    assert batch_size_of(arrays.batch(32).prefetch(2)) == 32 and batch_size_of(arrays) is None
    # serialising the 100 MB once costs ~0.75 s of CPU and the old code did it three times (~2.2 s); the checks
    # themselves take ~0.2 s idle and 0.6 s under a load of 12 on 2 cores (hyperthreads slow a thread's own time too)
    assert time.thread_time() - started < 1.0
