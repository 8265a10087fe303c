"""A classification stream of known length trains without a pass over its labels first: its first
labels tell its classes, the others are checked batch by batch as it trains, and a label out of range
is the one line the pass gave, naming its example, the run FAILED."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.errors import ConfigError

EXAMPLES = 1000


def counted_stream(y):
    """A generator's stream of ``(x, y)`` of known length, and the list its Python appends each example to."""
    import tensorflow as tf

    read = []

    def examples():
        for i, label in enumerate(y):
            read.append(i)
            yield np.full(4, i % 7, "float32"), label

    signature = (tf.TensorSpec((4,), tf.float32), tf.TensorSpec((), tf.int64))
    stream = tf.data.Dataset.from_generator(examples, output_signature=signature)
    return stream.apply(tf.data.experimental.assert_cardinality(len(y))), read


def network(classes: int):
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(inputs), name="net")


def test_a_stream_of_known_length_is_not_read_in_full_before_training():
    """Before: all 1,000 examples were read (the labels' pass) before the Dataset existed."""
    from lossexp.data.dataset import as_dataset

    stream, read = counted_stream(np.arange(EXAMPLES) % 3)
    data = as_dataset("gen", stream)
    assert len(read) < 3 * 256, len(read)
    assert (data.task, data.num_outputs, data.size, data.unread_labels) == ("classification", 3, EXAMPLES, True)
    assert data.with_labels_read().num_outputs == 3 and len(read) >= EXAMPLES  # read where all are needed


@pytest.mark.parametrize("label, message", [
    (-1, "Invalid value for data (python): expected class labels 0…k-1 (padding: a valid label weighted 0 by sample "
         "weights; numbers: task.type=regression or float targets), got \"-1 in the stream's labels at example 700\""),
    (7, "Invalid value for model: expected one output per class: outputs of shape (8,) (sparse labels, or more "
        "classes) — or task.type=regression if the integer targets are numbers; example 700 has label 7 (outputs 0 … "
        "4) for data 'python' (classification), got 'model=net with outputs of shape (5,)'"),
])
def test_a_label_out_of_range_past_the_first_is_one_line_as_it_trains_and_the_run_failed(tmp_path, monkeypatch,
                                                                                         label, message):
    """Before: both were refused by the pass that read all 1,000 examples before training, without the example."""
    import lossexp
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    y = np.arange(EXAMPLES) % 5
    y[700] = label
    stream, read = counted_stream(y)
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network(5), stream, trainer={"epochs": 1, "verbose": 0, "batch_size": 100},
                    tracking={"plots": False, "log_model": False})
    assert str(info.value) == message
    [run] = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["1"])
    assert run.info.status == "FAILED"


def test_a_float_label_not_whole_past_the_first_is_one_line_naming_its_example_as_it_trains(tmp_path, monkeypatch):
    """``label_mode="binary"``'s 0./1. against a sigmoid: before, a pass read every target before training
    to count the numbers not whole ("1 of its targets"); now the first targets tell and each is checked
    as it is cast, the run FAILED."""
    import keras
    import tensorflow as tf

    import lossexp
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    y = (np.arange(EXAMPLES) % 2).astype("float32")
    y[700] = 0.5
    stream = tf.data.Dataset.from_tensor_slices((np.ones((EXAMPLES, 4), "float32"), y[:, None]))
    inputs = keras.Input((4,))
    sigmoid = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs), name="net")
    with pytest.raises(ConfigError) as info:
        lossexp.fit(sigmoid, stream, trainer={"epochs": 1, "verbose": 0, "batch_size": 100},
                    tracking={"plots": False, "log_model": False})
    assert str(info.value) == ("Invalid value for task.type: expected classification needs class labels (integers, "
                               "or floats of whole values); data 'python' has other numbers (at example 700), got "
                               "'classification'")
    [run] = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["1"])
    assert run.info.status == "FAILED"


def by_output(y):
    """:func:`counted_stream` with targets by output name: the labels ``y`` of output "kind", a number of "size"."""
    import tensorflow as tf

    stream, read = counted_stream(y)
    return stream.map(lambda x, label: (x, {"kind": label, "size": tf.cast(label, tf.float32)[None]})), read


def two_heads(classes: int):
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, {"kind": keras.layers.Dense(classes, activation="softmax", name="kind")(inputs),
                                "size": keras.layers.Dense(1, name="size")(inputs)}, name="net")


def test_targets_by_output_name_of_known_length_are_not_read_in_full_before_training():
    """Before: every output's labels were read in a pass over all 1,000 examples, as for a stream of unknown length."""
    from lossexp.data.dataset import as_dataset

    stream, read = by_output(np.arange(EXAMPLES) % 3)
    data = as_dataset("gen", stream)
    assert len(read) < 3 * 256, len(read)
    assert (data.num_outputs, data.size, data.unread_labels) == ({"kind": 3, "size": 1}, EXAMPLES, True)
    assert data.with_labels_read().num_outputs == {"kind": 3, "size": 1} and len(read) >= EXAMPLES


def test_a_label_of_an_output_out_of_range_past_the_first_is_one_line_naming_the_output(tmp_path, monkeypatch):
    import lossexp

    monkeypatch.chdir(tmp_path)
    y = np.arange(EXAMPLES) % 5
    y[700] = 7
    stream, _ = by_output(y)
    with pytest.raises(ConfigError) as info:
        lossexp.fit(two_heads(5), stream, trainer={"epochs": 1, "verbose": 0, "batch_size": 100},
                    tracking={"enabled": False})
    assert str(info.value) == (
        "Invalid value for model: expected one output per class: outputs of shape (8,) (sparse labels, or more "
        "classes) — or float targets if the integer targets are numbers; example 700 has label 7 (outputs 0 … 4) "
        "for output 'kind' of data 'python' (classification), got \"model=net with output 'kind' of shape (5,)\"")


def test_a_validation_stream_of_its_own_by_output_name_keeps_which_labels_train_unread():
    """A training stream of unknown length (read in its pass) beside a validation stream of known
    length (read as it trains): which outputs' labels were unread was the training stream's, none."""
    from lossexp.data.dataset import as_dataset

    known, _ = by_output(np.arange(EXAMPLES) % 3)
    data = as_dataset("gen", {"train": known.take(800).filter(lambda x, y: True), "validation": known.skip(800)})
    assert (data.unread_labels, data.extras["unread_keys"]) == (True, ["kind"])
    assert data.with_labels_read().num_outputs == {"kind": 3, "size": 1}
