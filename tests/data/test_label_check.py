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
        "classes) — or task.type=regression if the integer targets are numbers for data 'python' (classification), "
        "got 'model=net with outputs of shape (5,)' (label 7 in the stream's labels at example 700)"),
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
