"""A data source's inputs: one array, or several (a dict by input name, a list in input order),
kept in their structure through the checks, the split and the first rows."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.data.dataset import as_dataset, from_stream
from lossexp.errors import ConfigError


def several(n: int = 20):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 2, 3)).astype("float32")
    return a, b, (a[:, 0] > 0).astype("int64")


def one_line_error(call) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("form", ["dict", "list", "tuple"])
def test_several_inputs_keep_their_structure_through_the_split_and_the_first_rows(form):
    a, b, y = several()
    x = {"a": a, "b": b} if form == "dict" else ([a, b] if form == "list" else (a, b))
    data = as_dataset("mine", (x, y))
    expected = {"a": (4,), "b": (2, 3)} if form == "dict" else [(4,), (2, 3)]
    assert data.input_shapes == expected and data.several_inputs and data.examples == 20
    assert data.task == "classification" and data.num_outputs == 2
    train, validation = data.split(0.25)
    pick = (lambda x, key: x[key]) if form == "dict" else (lambda x, key: x[["a", "b"].index(key)])
    for key, array in (("a", a), ("b", b)):
        np.testing.assert_array_equal(pick(train.arrays[0], key), array[:15])
        np.testing.assert_array_equal(pick(validation.arrays[0], key), array[15:])
        np.testing.assert_array_equal(pick(data.sample(3)[0], key), array[:3])
    np.testing.assert_array_equal(validation.arrays[1], y[15:])


def test_one_input_is_unchanged():
    a, _, y = several()
    data = as_dataset("mine", (a, y))
    assert data.input_shapes == data.input_shape == (4,) and not data.several_inputs


def test_a_shipped_model_asking_for_the_one_input_shape_of_several_gets_one_line():
    a, b, y = several()
    message = one_line_error(lambda: as_dataset("mine", ({"a": a, "b": b}, y)).input_shape)
    assert message.startswith("Invalid value for data (mine): expected one input array, as the shipped models take")
    assert "data.input_shapes" in message and "got 'several inputs (a, b)'" in message


def test_reconstructing_several_inputs_is_one_line():
    a, b, y = several()
    message = one_line_error(lambda: as_dataset("mine", ([a, b], y)).autoencoding())
    assert message.startswith("Invalid value for task.type: expected data with one input array to reconstruct")


@pytest.mark.parametrize("x, message", [
    (lambda a, b: {"a": a, "b": list(b)}, "expected inputs x as one array (nested lists of numbers: np.asarray(x)), "
                                          "or a dict (by input name) or list of arrays, got \"a dict of 'a': ndarray, "
                                          "'b': list\""),
    (lambda a, b: a.tolist(), "got 'a list of 20 lists'"),  # rows as Python lists: one phrase, not 20 words
    (lambda a, b: {0: a}, "got 'a dict of 0: ndarray'"),
    (lambda a, b: [], "got 'a list of '"),
    (lambda a, b: {"a": a, "b": b[:5]}, "expected as many targets as inputs, got 'lengths [5, 20]'"),
    (lambda a, b: [np.zeros((3 + i % 4, 2)) for i in range(20)], "expected inputs of one shape per example "
     "(sequences of varying length: padded to one, e.g. keras.utils.pad_sequences, or a tf.data stream, whose batches "
     "lossexp pads), got '20 arrays of lengths 3 to 6'"),
])
def test_malformed_inputs_are_one_line(x, message):
    a, b, y = several()
    assert message in one_line_error(lambda: as_dataset("mine", (x(a, b), y)))


def test_a_non_finite_value_names_the_input_it_is_in():
    a, b, y = several()
    b[7, 1, 2] = np.nan
    message = one_line_error(lambda: as_dataset("mine", ({"a": a, "b": b}, y)))
    assert "NaN/inf in inputs['b'] at example 7" in message


def test_a_stream_of_several_inputs_has_their_shapes_without_a_batch_axis():
    import tensorflow as tf

    a, b, y = several()
    data = from_stream("mine", tf.data.Dataset.from_tensor_slices(({"a": a, "b": b}, y)))
    assert data.input_shapes == {"a": (4,), "b": (2, 3)} and data.examples == 20 and data.num_outputs == 2
    np.testing.assert_array_equal(data.sample(4)[0]["b"], b[:4])


def test_sample_weights_are_split_with_their_examples():
    a, _, y = several()
    weight = np.arange(20, dtype="float64")[:, None]  # a column is one weight per example too
    data = as_dataset("mine", (a, y, weight))
    assert data.sample_weight.dtype == np.float32 and data.sample_weight.shape == (20,)
    train, validation = data.split(0.25)
    np.testing.assert_array_equal(train.arrays[2], np.arange(15))
    np.testing.assert_array_equal(validation.arrays[2], np.arange(15, 20))
    assert len(as_dataset("mine", (a, y)).split(0.25)[0].arrays) == 2


@pytest.mark.parametrize("weight, message", [
    (lambda w: w[:5], "expected one sample weight per example (20), got '5 weights'"),
    (lambda w: np.stack([w, w], axis=1), "sample_weight as one weight per example (shape (n,) or (n, 1)), got "
                                         "'ndarray of shape (20, 2)'"),
    (lambda w: list(w), "got 'a list of"),
    (lambda w: np.where(np.arange(20) == 4, -1.0, w), "expected finite sample weights ≥ 0, got '-1.0 at example 4'"),
    (lambda w: np.where(np.arange(20) == 9, np.nan, w), "got 'nan at example 9'"),
    (lambda w: 0 * w, "expected sample weights not all 0, got 'all 0'"),
])
def test_bad_sample_weights_are_one_line(weight, message):
    a, _, y = several()
    assert message in one_line_error(lambda: as_dataset("mine", (a, y, weight(np.ones(20)))))


def test_a_stream_of_weighted_examples_is_checked_like_arrays():
    import tensorflow as tf

    a, _, y = several()
    weight = np.ones(20, "float32")
    data = as_dataset("mine", tf.data.Dataset.from_tensor_slices((a, y, weight)))
    assert not data.in_memory and data.num_outputs == 2 and data.sample(3)[0].shape == (3, 4)
    weight[6] = -2.0
    message = one_line_error(lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices((a, y, weight))))
    assert "expected finite sample weights ≥ 0, got '-2.0 at example 6'" in message


def test_one_hot_labels_classify_and_other_float_matrices_regress():
    one_hot = np.eye(3, dtype="float32")[[0, 2, 1, 1]]  # keras.utils.to_categorical's floats
    data = as_dataset("labels", (np.zeros((4, 2), "float32"), one_hot))
    assert (data.task, data.num_outputs) == ("classification", 3)
    multi_label = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype="float32")
    assert as_dataset("tags", (np.zeros((4, 2), "float32"), multi_label)).task == "regression"
    assert as_dataset("soft", (np.zeros((4, 2), "float32"), one_hot * 0.9 + 0.05)).task == "regression"
    import tensorflow as tf

    stream = from_stream("stream", tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), one_hot)))
    assert (stream.task, stream.num_outputs) == ("classification", 3)
    regressing = from_stream("tags", tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), multi_label)))
    assert (regressing.task, regressing.num_outputs) == ("regression", 3)


def test_a_stream_batched_by_tf_data_is_unbatched_and_its_batch_size_kept():
    import tensorflow as tf

    x, y = np.arange(82, dtype="float32").reshape(41, 2), np.arange(41) % 2  # 5 batches of 8 and a short last one
    data = as_dataset("mine", tf.data.Dataset.from_tensor_slices((x, y)).batch(8).map(lambda a, b: (a + 1, b)))
    assert (data.task, data.examples, data.batch_size, data.input_shapes) == ("classification", 41, 8, (2,))
    [(x_read, y_read)] = data.stream.batch(41).as_numpy_iterator()
    np.testing.assert_array_equal(x_read, x + 1)
    np.testing.assert_array_equal(y_read, y)
    assert as_dataset("mine", tf.data.Dataset.from_tensor_slices((x, y))).batch_size is None


def test_batches_a_generator_made_are_one_line_saying_how_to_fix_it():
    import tensorflow as tf

    x, y = np.zeros((41, 4), "float32"), np.arange(41) % 2
    stream = tf.data.Dataset.from_generator(lambda: ((x[i:i + 8], y[i:i + 8]) for i in range(0, 41, 8)),
                                            output_signature=(tf.TensorSpec((None, 4)), tf.TensorSpec((None,), tf.int64)))
    message = one_line_error(lambda: as_dataset("mine", stream))
    assert message == ("Invalid value for data (mine): expected a tf.data.Dataset of unbatched elements (lossexp "
                       "batches them by trainer.batch_size, and unbatches a stream that tf.data's .batch() batched, "
                       "but not batches made before it, as a generator's: add .unbatch(); sequences of one length: "
                       "give it in the element_spec), got 'a batched stream, elements of shapes (None, 4), (None,)'")
    unbatched = as_dataset("mine", stream.unbatch())
    assert (unbatched.task, unbatched.examples, unbatched.batch_size) == ("classification", 41, None)


def test_a_stream_that_repeats_forever_is_one_line_not_a_count_without_end():
    import tensorflow as tf

    x, y = np.zeros((10, 4), "float32"), np.arange(10) % 2
    message = one_line_error(lambda: from_stream("mine", tf.data.Dataset.from_tensor_slices((x, y)).repeat()))
    assert message == ("Invalid value for data (mine): expected a finite tf.data.Dataset (an epoch is one pass over "
                       "it, and the last trainer.validation_split of it validates): drop the .repeat(), or .take(n) "
                       "examples of a stream without end, got 'a stream that repeats forever'")
    assert from_stream("mine", tf.data.Dataset.from_tensor_slices((x, y)).repeat().take(25)).examples == 25


def test_a_streams_tuple_of_targets_is_one_line_saying_to_name_them():
    """Keras pairs ``(x, (y1, y2))`` with a list of outputs; a stream lossexp cannot name (a data source's,
    before any network) says how to name them (it was an AttributeError traceback). ``lossexp.fit``
    names them by its network's outputs (tests/test_api.py)."""
    import tensorflow as tf

    x, y = np.zeros((10, 4), "float32"), np.arange(10) % 2
    message = one_line_error(lambda: from_stream("mine", tf.data.Dataset.from_tensor_slices((x, (y, y)))))
    assert message == ("Invalid value for data (mine): expected the targets as one tensor, or for a network of several "
                       "outputs a dict by output name: .map(lambda x, y: (x, {'output_name_0': y[0], "
                       "'output_name_1': y[1], …})), got 'a tuple of 2 targets'")


def test_a_repeat_without_end_that_a_filter_follows_is_one_line_not_a_count_without_end():
    """After a .filter() TensorFlow no longer knows that a .repeat() never ends: read from the pipeline."""
    import tensorflow as tf

    x, y = np.zeros((10, 4), "float32"), np.arange(10) % 2
    stream = tf.data.Dataset.from_tensor_slices((x, y))
    keep = lambda a, b: b >= 0  # noqa: E731
    for endless in (stream.repeat().filter(keep), stream.repeat().map(lambda a, b: (a, b)).filter(keep).prefetch(2)):
        assert int(endless.cardinality()) == tf.data.UNKNOWN_CARDINALITY
        assert one_line_error(lambda: from_stream("mine", endless)).endswith("got 'a stream that repeats forever'")
    assert from_stream("mine", stream.repeat().filter(keep).take(25)).examples == 25
    assert from_stream("mine", stream.repeat(3).filter(keep)).examples == 30


def test_integer_labels_per_position_classify_and_float_targets_of_that_shape_regress():
    import tensorflow as tf

    tokens = np.arange(40).reshape(4, 10) % 7  # a sequence's tokens, one class each
    data = as_dataset("tokens", (np.zeros((4, 10)), tokens))
    assert (data.task, data.num_outputs) == ("classification", 7)
    stream = from_stream("tokens", tf.data.Dataset.from_tensor_slices((np.zeros((4, 10)), tokens)))
    assert (stream.task, stream.num_outputs) == ("classification", 7)
    pixels = (np.arange(64).reshape(4, 4, 4) % 3).astype("uint8")  # a segmentation mask
    assert as_dataset("pixels", (np.zeros((4, 4, 4, 1)), pixels)).num_outputs == 3
    assert as_dataset("field", (np.zeros((4, 10)), tokens.astype("float32") / 7)).task == "regression"


def test_boolean_targets_are_labels_0_and_1_and_text_targets_are_one_line():
    import tensorflow as tf

    x, flags = np.zeros((6, 2), "float32"), np.array([True, False, True, True, False, False])
    for data in (as_dataset("flags", (x, flags)), from_stream("flags", tf.data.Dataset.from_tensor_slices((x, flags)))):
        assert (data.task, data.num_outputs) == ("classification", 2)
    np.testing.assert_array_equal(as_dataset("flags", (x, flags)).y, [1, 0, 1, 1, 0, 0])
    tags = as_dataset("tags", (x, np.stack([flags, ~flags], axis=1)[:, [0, 0]]))  # multi-label flags
    assert tags.task == "classification" and tags.y.dtype == np.int64
    as_objects = as_dataset("objects", (x, np.array([1, 0, 2, 1, 0, 2], dtype=object)))  # pandas' object column
    assert (as_objects.task, as_objects.num_outputs) == ("classification", 3)
    expected = ("Invalid value for data (pets): expected numeric targets (class names as integers 0…k-1, e.g. "
                "np.unique(y, return_inverse=True)[1]), got \"targets of text: 'cat', 'dog', 'emu', …\"")
    pets = np.array(["cat", "dog", "cat", "emu", "dog", "cat"])
    assert one_line_error(lambda: as_dataset("pets", (x, pets))) == expected
    streamed = one_line_error(lambda: from_stream("pets", tf.data.Dataset.from_tensor_slices((x, pets))))
    assert streamed.startswith(expected.split(" got ")[0]) and "b'cat'" in streamed


def test_a_negative_label_in_a_stream_is_one_line():
    import tensorflow as tf

    labels = np.array([0, 2, 1, -100, 1, 0])  # another framework's "ignore" label
    message = one_line_error(lambda: from_stream("tokens", tf.data.Dataset.from_tensor_slices(
        (np.zeros((6, 2), "float32"), labels))))
    assert message.startswith("Invalid value for data (tokens): expected class labels 0…k-1 (padding: a valid label "
                              "weighted 0 by sample weights") and message.endswith("got \"-100 in the stream's labels\"")


def test_a_list_of_targets_without_a_network_to_name_them_is_one_line():
    message = one_line_error(lambda: as_dataset("mine", (np.zeros((4, 2)), [np.zeros(4), np.zeros((4, 2))])))
    assert message == ("Invalid value for data (mine): expected the targets as one array (a list of numbers: "
                       "np.asarray(y)), or for a network of several outputs a dict by output name ({'output_name': "
                       "array, …}), got 'a list of ndarray, ndarray'")
    message = one_line_error(lambda: as_dataset("mine", (np.zeros((40, 2)), list(range(40)))))
    assert message.endswith("got 'a list of 40 ints'")
    message = one_line_error(lambda: as_dataset("mine", (np.zeros((40, 2)), None)))
    assert message == "Invalid value for data (mine): expected targets y in (x, y) (to reconstruct the inputs: (x, x)), got None"


def test_sample_weights_may_be_one_per_target_position_and_other_shapes_are_one_line():
    tokens = np.arange(40).reshape(4, 10) % 7
    per_token = np.ones((4, 10), "float32")
    assert as_dataset("tokens", (np.zeros((4, 10)), tokens, per_token)).sample_weight.shape == (4, 10)
    # one per example, beside labels per position: a unit axis per position axis, which Keras broadcasts
    assert as_dataset("tokens", (np.zeros((4, 10)), tokens, np.ones((4, 1)))).sample_weight.shape == (4, 1)
    assert as_dataset("tokens", (np.zeros((4, 10)), tokens, np.ones(4))).sample_weight.shape == (4, 1)
    assert as_dataset("values", (np.zeros((4, 10)), tokens + 0.5, np.ones(4))).sample_weight.shape == (4,)
    message = one_line_error(lambda: as_dataset("tokens", (np.zeros((4, 10)), tokens, np.ones((4, 3)))))
    assert message == ("Invalid value for data (tokens): expected sample_weight as one weight per example (shape "
                       "(n,) or (n, 1) or (n, 10) like the targets), got 'ndarray of shape (4, 3)'")
    per_token[2, 5] = -1.0
    message = one_line_error(lambda: as_dataset("tokens", (np.zeros((4, 10)), tokens, per_token)))
    assert message == "Invalid value for data (tokens): expected finite sample weights ≥ 0, got '-1.0 at example 2'"


def test_split_unlike_flags_sorted_labels_and_not_chance():
    from lossexp.data.checks import split_unlike

    labels = np.repeat([0, 1], [500, 500])
    assert split_unlike(labels[:800], labels[800:]) == "training {0: 500, 1: 300}, validation {1: 200}"
    assert split_unlike(np.eye(2)[labels[:800]], np.eye(2)[labels[800:]]) is not None  # one-hot rows alike
    rng = np.random.default_rng(0)
    flagged = sum(split_unlike(*np.split(rng.permutation(labels), [800])) is not None for _ in range(200))
    assert flagged == 0  # p < 1e-6 by chance: about once in a million random orders
    rare = rng.permutation(np.repeat([0, 1], [990, 10]))  # a rare class missing from validation by chance
    assert split_unlike(rare[:800], rare[800:]) is None
    assert split_unlike(np.zeros((8, 5), "int64"), np.ones((2, 5), "int64")) is None  # labels per position: no test


def test_a_validation_set_of_the_sources_own_validates_whatever_the_fraction():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 2)).astype("float32"), np.arange(10) % 3
    xv, yv = rng.normal(size=(4, 2)).astype("float32"), np.array([3, 0, 1, 2])  # a class training lacks
    data = as_dataset("mine", {"train": (x, y), "validation": (xv, yv)})
    assert (data.task, data.num_outputs, data.examples, data.held_out) == ("classification", 4, 14, 4)
    train, validation = data.split(0.5)
    np.testing.assert_array_equal(train.arrays[0], x)
    np.testing.assert_array_equal(validation.arrays[1], yv)
    assert data.split(0.0)[1] is None and data.split(0.0)[0].size == 10  # no validation: its examples unused
    weighted = as_dataset("mine", {"train": (x, y, np.full(10, 2.0)), "validation": (xv, yv)})
    np.testing.assert_array_equal(weighted.split(0.2)[1].arrays[2], np.ones(4))
    streams = as_dataset("mine", {"train": tf.data.Dataset.from_tensor_slices((x, y)),
                                  "validation": tf.data.Dataset.from_tensor_slices((xv, yv))})
    _, held_out = streams.split(0.2)
    assert streams.num_outputs == 4 and held_out.size == 4
    np.testing.assert_array_equal(np.concatenate([b[1] for b in held_out.stream.batch(4)]), yv)
    for train, held in [((x, y.astype("int32")), tf.data.Dataset.from_tensor_slices((xv, yv))),  # as Keras' fit takes
                        (tf.data.Dataset.from_tensor_slices((x, y)).batch(3), (xv.astype("float64"), yv))]:
        mixed = as_dataset("mine", {"train": train, "validation": held})
        _, held_out = mixed.split(0.2)
        assert (mixed.examples, held_out.size, mixed.num_outputs) == (14, 4, 4)
        [(x_read, y_read)] = mixed.stream.batch(14).as_numpy_iterator()
        np.testing.assert_array_equal(y_read, np.concatenate([y, yv]))
        np.testing.assert_allclose(x_read, np.concatenate([x, xv]), rtol=1e-6)
    narrow = one_line_error(lambda: as_dataset("mine", {"train": (x, y), "validation": (xv[:, :1], yv)}))
    assert "expected a validation set shaped like the training set" in narrow


def test_a_validation_set_of_the_sources_own_is_not_joined_to_the_training_inputs():
    """Arrays of a validation set of one's own were concatenated after the training inputs, a copy of
    both sets' (2 GB of float32 images: a peak 2 GB above Keras' fit with validation_data); the splits
    are the arrays given, read in place, and the inputs whole only where asked for (a reconstruction)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4000, 256)).astype("float32"), np.arange(4000) % 3
    xv, yv = rng.normal(size=(1000, 256)).astype("float32"), np.arange(1000) % 3
    tracemalloc.start()
    try:
        data = as_dataset("mine", {"train": (x, y), "validation": (xv, yv)})
        train, validation = data.split(0.2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 2  # the joined inputs were 5 MB (the finite check holds a quarter of x)
    assert np.shares_memory(train.arrays[0], x) and np.shares_memory(validation.arrays[0], xv)
    assert (data.examples, data.held_out, validation.size) == (5000, 1000, 1000)
    np.testing.assert_array_equal(np.concatenate([train.arrays[1], validation.arrays[1]]), np.r_[y, yv])
    np.testing.assert_array_equal(data.sample(3)[0], x[:3])
    np.testing.assert_array_equal(data.autoencoding().x, np.concatenate([x, xv]))


def counted_generator(n: int, read: list, start: int = 0):
    """A tf.data stream of ``n`` (x, integer label) elements from a Python generator that appends
    the index of each element it yields to ``read``."""
    import tensorflow as tf

    def rows():
        for i in range(start, start + n):
            read.append(i)
            yield np.float32(i), np.int64(i % 3)

    return tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((), tf.float32),
                                                                  tf.TensorSpec((), tf.int64)))


def test_a_stream_of_unknown_length_is_counted_and_its_labels_read_in_one_pass():
    """Not counted when read (its first labels tell its classes), as Keras' fit does not count it; counted
    where a split needs its length, in one pass that reads its labels too (counting and labels apart: 2000+)."""
    read: list = []
    data = from_stream("mine", counted_generator(1000, read))
    assert (data.size, data.num_outputs, data.unread_labels) == (None, 3, True) and len(read) < 300
    read.clear()
    counted = data.with_labels_read(count=True)
    assert (counted.examples, counted.num_outputs, counted.unread_labels) == (1000, 3, False) and len(read) == 1000
    read.clear()
    train, validation = data.split(0.2)  # counted first, in that one pass
    assert (train.size, validation.size, len(read)) == (800, 200, 1000)
    assert data.split(0)[0].size is None and len(read) == 1000  # nothing to cut: not counted


def test_a_validation_stream_of_the_sources_own_is_read_without_passing_the_training_stream():
    train_read, validation_read = [], []
    data = as_dataset("mine", {"train": counted_generator(500, train_read),
                               "validation": counted_generator(40, validation_read, start=500)})
    train_read.clear()
    _, validation = data.split(0.2)
    assert [int(x) for x, _ in validation.stream.as_numpy_iterator()] == list(range(500, 540))
    assert train_read == [] and validation.origin is None
    reconstructed = data.autoencoding().split(0.2)[1]  # a reconstruction keeps it: inputs flattened as targets
    assert reconstructed.size == 40 and train_read == []
    assert [int(y[0]) for _, y in reconstructed.stream.as_numpy_iterator()] == list(range(500, 540))


def test_a_training_stream_shuffled_within_fewer_than_its_examples_says_so(capsys):
    import tensorflow as tf

    from lossexp.data.dataset import Part
    from lossexp.training.epoch_order import EpochOrder
    from lossexp.training.supervised import batched

    small = tf.data.Dataset.from_tensor_slices((np.zeros((64, 16), "float32"), np.arange(64) % 2))
    first = [b[1].numpy().tolist() for b in batched(Part(stream=small, size=64), 64, order=EpochOrder(0))][0]
    assert sorted(first) == sorted(np.arange(64) % 2) and capsys.readouterr().err == ""
    large = tf.data.Dataset.range(300).map(lambda i: (tf.zeros([2 ** 20]), i % 2))  # 4 MiB an element
    batched(Part(stream=large, size=300), 32, order=EpochOrder(0))
    assert capsys.readouterr().err == (
        "lossexp: the training stream shuffles within 255 of its 300 examples at a time (1 GiB of them): if it is "
        "stored in an order (sorted by class), shuffle it at its source\n")


def test_a_validation_split_cut_from_a_stream_is_read_past_the_training_examples_once_when_it_fits():
    from lossexp.data.dataset import Dataset
    from lossexp.training.supervised import batched

    read: list = []
    _, validation = Dataset("mine", "classification", stream=counted_generator(100, read), size=100,
                            num_outputs=3).split(0.2)
    feed = batched(validation, 8, cache=True)
    passes = [[int(x) for batch in feed for x in batch[0]] for _ in range(3)]
    assert passes == [list(range(80, 100))] * 3 and len(read) == 100  # every pass after the first from memory
    read.clear()
    uncached = batched(validation, 8)
    assert [[int(x) for batch in uncached for x in batch[0]] for _ in range(2)] == [list(range(80, 100))] * 2
    assert len(read) == 200


def test_a_stream_of_sequences_of_varying_length_is_counted_and_its_labels_read_in_padded_batches():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 9, 5000)
    labels = [rng.integers(1, 5, n) for n in lengths]
    stream = tf.data.Dataset.from_generator(
        lambda: ((np.ones((len(y), 3), "float32"), y) for y in labels),
        output_signature=(tf.TensorSpec((None, 3), tf.float32), tf.TensorSpec((None,), tf.int64)))
    data = from_stream("tagged", stream).with_labels_read(count=True)
    assert (data.examples, data.num_outputs, data.task) == (5000, 5, "classification")


def test_a_stream_that_reshuffles_at_every_pass_cannot_be_split_by_position_and_says_so():
    import tensorflow as tf

    from lossexp.data.streams import reshuffles

    base = tf.data.Dataset.from_tensor_slices((np.zeros((20, 2), "float32"), np.arange(20) % 2))
    assert not reshuffles(base) and not reshuffles(base.shuffle(8, reshuffle_each_iteration=False))
    assert reshuffles(base.shuffle(8)) and reshuffles(base.shuffle(8, seed=1))  # a seed fixes only the first pass
    assert reshuffles(tf.data.Dataset.range(2).interleave(lambda _: base.shuffle(4)))  # inside an interleave too
    message = one_line_error(lambda: from_stream("mine", base.shuffle(8)).split(0.2))
    assert message == ("Invalid value for data (mine): expected a stream in the same order at every pass (its last "
                       "examples validate: reordered, each epoch would validate on others, trained on before) — "
                       ".shuffle(n, reshuffle_each_iteration=False), or no shuffle (lossexp shuffles the training "
                       "examples; Keras' image_dataset_from_directory: shuffle=False), or a validation set of your "
                       "own, got 'a stream with a .shuffle() that reshuffles "
                       "at every pass'")
    assert from_stream("mine", base.shuffle(8)).split(0.0)[1] is None  # nothing validates: nothing to leak
    own = as_dataset("mine", {"train": base.shuffle(8), "validation": base.take(4)})
    assert own.split(0.2)[1].size == 4  # its own validation set: the training stream's order does not matter


def test_a_stream_that_repeats_its_examples_cannot_be_split_by_position_and_says_so():
    """``.repeat(2)`` before a validation split by position validated on examples the first copy trained on,
    silently: the validation metrics of trained examples."""
    import tensorflow as tf

    from lossexp.data.streams import repeated

    base = tf.data.Dataset.from_tensor_slices((np.zeros((20, 2), "float32"), np.arange(20) % 2))
    assert repeated(base) == 1 and repeated(base.repeat(1)) == 1
    assert repeated(base.repeat(2).map(lambda x, y: (x, y)).batch(4).unbatch()) == 2
    assert repeated(tf.data.Dataset.zip(base.repeat(3), base.repeat(2))) == 6
    message = one_line_error(lambda: as_dataset("mine", base.repeat(2).batch(4)).split(0.2))
    assert message == ("Invalid value for data (mine): expected a stream of each example once (its last examples "
                       "validate: repeated, they are trained on too, as an earlier copy) — leave out the .repeat() "
                       "(trainer.epochs repeats the examples), or give a validation set of your own, got 'a stream "
                       "with a .repeat(2)'")
    assert as_dataset("mine", base.repeat(2)).split(0.0)[1] is None  # nothing validates: nothing to leak
    own = as_dataset("mine", {"train": base.repeat(2), "validation": base.take(4)})
    assert own.split(0.2)[1].size == 4


def test_a_stream_of_targets_by_output_name_infers_each_outputs_task_in_one_pass():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2)).astype("float32")
    targets = {"cls": np.arange(30) % 3, "flag": x[:, 0] > 0, "reg": x * 2.0,
               "onehot": np.eye(4, dtype="float32")[np.arange(30) % 4]}
    stream = tf.data.Dataset.from_tensor_slices((x, targets)).filter(lambda *_: True)  # of unknown length: counted
    data = as_dataset("heads", stream)
    assert (data.task, data.examples) == ("multi_output", 30)
    assert data.num_outputs == {"cls": 3, "flag": 2, "reg": 2, "onehot": 4}
    assert data.extras["output_tasks"] == {"cls": "classification", "flag": "classification", "reg": "regression",
                                           "onehot": "classification"}
    assert data.extras["output_tasks"] == as_dataset("heads", (x, targets)).extras["output_tasks"]  # as arrays
    padded = tf.data.Dataset.from_tensor_slices((x, {"cls": np.arange(30) % 3 - 1, "reg": x}))
    assert one_line_error(lambda: as_dataset("heads", padded)).endswith(
        "got \"-1 in the stream's labels of output 'cls'\"")


def test_inputs_without_targets_are_one_line_that_says_how_to_reconstruct_them():
    """An autoencoder's source may return its inputs alone: the line says to give them as their targets."""
    import tensorflow as tf

    x = np.zeros((10, 4), "float32")
    for alone in (x, (x,)):
        assert one_line_error(lambda: as_dataset("mine", alone)).endswith(
            "— inputs alone: to reconstruct them (an autoencoder), give them as their targets, (x, x), got "
            + ("'ndarray'" if alone is x else "'a tuple of ndarray'"))
    assert "give them as their targets, .map(lambda x: (x, x)), got TensorSpec(shape=(4,)" in one_line_error(
        lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices(x)))
    assert "elements, e.g. .map(lambda e: (e['x'], e['y'])), got {'x': TensorSpec" in one_line_error(
        lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices({"x": x, "y": x[:, 0]})))
    # TFDS' elements (as_supervised=False) by their own keys: the line showed e['x'], e['y'], keys they lack
    assert "e.g. .map(lambda e: (e['image'], e['label'])), got {'image'" in one_line_error(
        lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices({"image": x, "label": x[:, 0]})))
    assert "e.g. .map(lambda e: (e['features'], e['price']))" in one_line_error(
        lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices({"features": x, "price": x[:, 0]})))
    assert as_dataset("mine", (x + 1, x + 1)).task == "regression"


def test_pandas_nullable_dtypes_are_numbers_and_their_missing_values_are_named():
    """df.convert_dtypes() (Int64, Float64, boolean) was an object array Keras cannot take (a traceback
    in training); now the columns' NumPy dtype, a missing value a NaN named as any other."""
    import keras
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=20), "b": rng.integers(0, 5, 20)}).convert_dtypes()
    assert [str(t) for t in frame.dtypes] == ["Float64", "Int64"]
    data = as_dataset("mine", (frame, pd.Series(rng.integers(0, 2, 20)).convert_dtypes()))
    assert (data.x.dtype, data.y.dtype, data.task) == (np.float64, np.int64, "classification")
    np.testing.assert_array_equal(data.x, frame.to_numpy("float64"))
    assert keras.ops.convert_to_tensor(data.x).shape == (20, 2)
    assert as_dataset("mine", (frame[["b"]], pd.Series(rng.normal(size=20)))).x.dtype == np.int64
    frame.loc[3, "b"] = pd.NA
    assert one_line_error(lambda: as_dataset("mine", (frame, np.zeros(20, "float32")))) == (
        "Invalid value for data (mine): expected finite inputs, got 'NaN/inf in inputs at example 3'")


def test_numbers_held_as_objects_are_numbers():
    """An object array of floats (x.astype(object), a column of Decimals' floats) failed in training with
    a traceback (Failed to convert a NumPy array to a Tensor); None among them is a NaN, named."""
    x = np.arange(12, dtype="float32").reshape(6, 2)
    data = as_dataset("mine", (x.astype(object), np.arange(6) % 2))
    assert data.x.dtype == np.float64
    np.testing.assert_array_equal(data.x, x)
    assert as_dataset("mine", (np.arange(6).astype(object)[:, None], np.arange(6) % 2)).x.dtype == np.int64
    holes = x.astype(object)
    holes[4, 1] = None
    assert one_line_error(lambda: as_dataset("mine", (holes, np.arange(6) % 2))) == (
        "Invalid value for data (mine): expected finite inputs, got 'NaN/inf in inputs at example 4'")


def test_sample_weights_by_output_name_weigh_each_head_and_are_split_with_their_examples():
    """A head whose labels are missing for some examples weighs them 0 (Keras' fit(sample_weight={output: …})):
    refused before as "one weight per example"; an output not named weighs 1; a name that is not an
    output, or a head's weights of the wrong length, are one line; a stream names every output."""
    import tensorflow as tf

    a, _, labels = several()
    y = {"cls": labels, "reg": a[:, :1]}
    known = (np.arange(20) % 2).astype("float64")
    data = as_dataset("mine", (a, y, {"cls": known}))
    train, validation = data.split(0.25)
    np.testing.assert_array_equal(train.arrays[2]["cls"], known[:15])
    np.testing.assert_array_equal(validation.arrays[2]["reg"], np.ones(5))
    assert data.sample_weight["cls"].dtype == np.float32
    assert "expected sample weights by output name, of the outputs (cls, reg), got \"a weight for 'clss'\"" in \
        one_line_error(lambda: as_dataset("mine", (a, y, {"clss": known})))
    assert "Invalid value for data (mine, sample_weight['cls']): expected one sample weight per example (20), " \
           "got '5 weights'" in one_line_error(lambda: as_dataset("mine", (a, y, {"cls": known[:5]})))
    assert "expected sample_weight as one weight per example (weights by output name are for targets by output " \
           "name, a network of several outputs), got 'weights for cls beside one array of targets'" in \
        one_line_error(lambda: as_dataset("mine", (a, labels, {"cls": known})))
    stream = tf.data.Dataset.from_tensor_slices((a, y, {"cls": known, "reg": np.ones(20)}))
    assert not as_dataset("mine", stream).in_memory
    assert "(cls, reg: a stream names each), got \"none for 'reg'\"" in \
        one_line_error(lambda: as_dataset("mine", tf.data.Dataset.from_tensor_slices((a, y, {"cls": known}))))


def test_weights_by_output_name_on_the_training_set_only_weigh_its_own_validation_set_1():
    """(An AttributeError: the validation set's weights of 1 were shaped after one array of weights.)"""
    a, _, labels = several()
    y = {"cls": labels, "reg": a[:, :1]}
    known = (np.arange(20) % 2).astype("float32")
    data = as_dataset("mine", {"train": (a, y, {"cls": known}), "validation": (a[:6], {k: v[:6] for k, v in y.items()})})
    _, validation = data.split(0.25)
    np.testing.assert_array_equal(data.sample_weight["cls"], np.concatenate([known, np.ones(6)]))
    np.testing.assert_array_equal(validation.arrays[2]["cls"], np.ones(6))
    np.testing.assert_array_equal(validation.arrays[2]["reg"], np.ones(6))


def test_a_list_of_a_training_and_a_validation_stream_is_one_line_naming_the_dict():
    """``image_dataset_from_directory(subset="both")`` returns [train, validation]: refused as the wrong
    form without saying which ("expected inputs x as one array …, got '_PrefetchDataset'" for a tuple)."""
    import tensorflow as tf

    stream = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), np.arange(4) % 2)).batch(2)
    for both in ([stream, stream], (stream, stream)):
        with pytest.raises(ConfigError) as info:
            as_dataset("mine", both)
        assert str(info.value).startswith("Invalid value for data (mine): expected a training and a validation "
                                          "stream as {'train': train, 'validation': validation}")


def test_a_stream_whose_target_shape_tf_data_does_not_know_regresses_on_its_first_elements_width():
    """Windows cut by ``.window(…).flat_map(lambda w: w.batch(k))`` have shape (None,): the builder
    needs the target's width all the same (a forecaster's windows raised a TypeError traceback)."""
    import tensorflow as tf

    values = tf.data.Dataset.range(12).map(lambda v: tf.cast(v, tf.float32))
    windows = values.window(5, shift=1, drop_remainder=True).flat_map(lambda w: w.batch(5))
    stream = windows.map(lambda w: (tf.expand_dims(w[:-1], -1), w[-2:]))
    data = from_stream("windows", stream, "regression")
    assert (data.task, data.num_outputs, data.size) == ("regression", 2, 8)


@pytest.mark.parametrize("unknown", ["inputs", "targets"])
def test_a_stream_of_elements_of_unknown_rank_is_one_line_saying_to_give_their_shape(unknown):
    """A ``tf.py_function`` in the pipeline leaves its output's rank unknown: the builder's
    ``keras.Input(data.input_shape)`` raised "Cannot iterate over a shape with unknown rank", naming
    the user's line as the fault, and targets of unknown rank a traceback from Keras' loss mid-trace."""
    import tensorflow as tf

    x, y = np.ones((6, 3), "float32"), np.ones((6, 1), "float32")

    def opaque(t):
        return tf.py_function(lambda v: v, [t], tf.float32)

    stream = tf.data.Dataset.from_tensor_slices((x, y)).map(
        lambda a, b: (opaque(a), b) if unknown == "inputs" else (a, opaque(b)))
    message = one_line_error(lambda: from_stream("windows", stream, "regression"))
    assert message.endswith(f"tf.ensure_shape(x, (24, 1)) in the map), got '{unknown} of unknown rank'")


def test_a_stream_of_named_targets_of_a_width_tf_data_does_not_know_reads_it_from_the_first_element():
    import tensorflow as tf

    values = tf.data.Dataset.range(12).map(lambda v: tf.cast(v, tf.float32))
    windows = values.window(5, shift=1, drop_remainder=True).flat_map(lambda w: w.batch(5))
    stream = windows.map(lambda w: (w[:3], {"next": w[-2:], "level": w[:1]}))
    data = from_stream("windows", stream)
    assert data.num_outputs == {"next": 2, "level": 1}


def test_a_streams_first_elements_are_read_once_for_its_first_labels_and_its_checks():
    """They were read up to three times — the first labels, the finite check's sample, the sample
    weights' —, each decoding its 256 examples."""
    import tensorflow as tf

    decoded = tf.Variable(0, dtype=tf.int64)

    def decode(i):
        decoded.assign_add(1)
        return tf.fill([3], tf.cast(i, tf.float32)), i % 4, tf.constant(1.0)

    data = as_dataset("files", tf.data.Dataset.range(1000).map(decode))
    assert int(decoded.numpy()) == 256
    assert (data.size, data.num_outputs, data.head) == (1000, 4, None)
    np.testing.assert_array_equal(data.first_labels, np.arange(256) % 4)


def test_a_python_generator_is_one_line_naming_from_generator():
    """Keras' fit takes a generator; lossexp reads its data at every epoch, so it names the stream to make."""
    with pytest.raises(ConfigError) as error:
        as_dataset("mine", ((np.zeros(2), 0) for _ in range(3)))
    assert str(error.value).endswith("— a Python generator is read once: tf.data.Dataset.from_generator(the function "
                                     "that makes it, output_signature=…) reads it again at every epoch, got 'generator'")
