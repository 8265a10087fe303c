"""Class labels in memory before a classifier trains (lossexp/data/labels.py): float labels taken as
integers, and a validation split of other classes than training said in a warning."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.data.dataset import as_dataset
from lossexp.data.labels import class_labels, probability_targets
from lossexp.errors import ConfigError


def test_a_validation_split_of_other_classes_than_training_is_a_warning(capsys):
    """Examples sorted by class: Keras' validation_split (the last examples) would validate on the
    last class alone. A random order is not warned about."""
    labels = np.repeat([0, 1, 2], [400, 300, 300])
    x = np.zeros((1000, 2), "float32")
    class_labels(as_dataset("mine", (x, labels)), 0.2)
    assert capsys.readouterr().err.strip() == (
        "lossexp: warning: the validation split (the last 20% of data 'mine', as Keras' validation_split takes "
        "them) holds classes unlike the training split's (training {0: 400, 1: 300, 2: 100}, validation {2: 200}; "
        "χ² test p < 1e-6): are the examples sorted by class? Shuffle them first")
    shuffled = np.random.default_rng(0).permutation(labels)
    class_labels(as_dataset("mine", (x, shuffled)), 0.2)
    assert capsys.readouterr().err == ""


def test_labels_all_of_one_class_are_a_warning(capsys):
    """A data source whose targets are all 0 (a bug upstream of lossexp) would train a classifier of one
    output to a loss of 0 and say nothing; two classes are not warned about."""
    x = np.zeros((50, 2), "float32")
    class_labels(as_dataset("constant", (x, np.zeros(50, "int64"))), 0.2)
    assert capsys.readouterr().err.strip() == (
        "lossexp: warning: every label of data 'constant' is 0: a classifier of one class learns nothing (its loss "
        "is 0 or falls to 0 at once); check the data source's targets")
    class_labels(as_dataset("two", (x, np.arange(50) % 2)), 0.2)
    assert capsys.readouterr().err == ""


def test_task_type_classification_takes_class_labels_stored_as_floats_and_refuses_other_numbers():
    x = np.zeros((6, 2), "float32")
    data = class_labels(as_dataset("grades", (x, np.array([0., 2., 1., 2., 0., 1.]))), 0.0)
    assert (data.task, data.num_outputs, data.y.dtype) == ("classification", 3, np.int64)
    np.testing.assert_array_equal(data.y, [0, 2, 1, 2, 0, 1])
    with pytest.raises(ConfigError, match=r"task.type: expected classification needs class labels \(integers, or "
                                          r"floats of whole values\); data 'levels' has other numbers"):
        class_labels(as_dataset("levels", (x, np.linspace(0, 1, 6))), 0.0)


def test_float_targets_are_class_labels_only_against_probability_outputs_that_fit_them():
    multi_hot, binary = np.array([[1., 0., 1.], [0., 0., 1.]]), np.array([0., 1., 1.])
    assert probability_targets(multi_hot, "sigmoid") and probability_targets(binary, "sigmoid")
    assert probability_targets(np.array([0., 2., 1.]), "softmax")
    assert probability_targets(np.array([[0.], [2.]]), "softmax")
    assert not probability_targets(binary, None) and not probability_targets(binary, "linear")  # a regression's
    assert not probability_targets(np.array([0.2, 1.]), "sigmoid")  # soft targets
    assert not probability_targets(np.array([0., 2.]), "sigmoid")
    assert not probability_targets(multi_hot, "softmax")  # several labels against one distribution
    assert not probability_targets(np.array([0, 1]), "sigmoid")  # integers: classification already


def test_a_streams_float_labels_are_read_in_the_pass_that_counts_it():
    """A stream of unknown length with float 0./1. labels (``image_dataset_from_directory(label_mode=
    "binary")`` unbatched), counted in one pass (for a validation split); taking its labels as classes read
    it all a second time (every image decoded once more before the first step). One full pass now; a
    non-whole label is still one line, with the number of such targets."""
    import tensorflow as tf

    from lossexp.data.labels import float_label_stream

    passes = []

    def source(labels):
        def elements():
            passes.append(0)
            for i, label in enumerate(labels):
                passes[-1] += 1
                yield np.full(3, i, "float32"), np.array([label], "float32")
        return tf.data.Dataset.from_generator(elements, output_signature=(
            tf.TensorSpec((3,), tf.float32), tf.TensorSpec((1,), tf.float32)))

    labels = np.arange(600) % 2
    data = float_label_stream(as_dataset("binary", source(labels)).with_labels_read(count=True))
    assert (data.task, data.num_outputs, data.size) == ("classification", 2, 600)
    assert passes.count(600) == 1
    np.testing.assert_array_equal(np.concatenate([y for _, y in data.stream.batch(600).as_numpy_iterator()])[:, 0],
                                  labels)
    with pytest.raises(ConfigError, match=r"has other numbers \(3 of its targets\), got 'classification'$"):
        float_label_stream(as_dataset("soft", source(np.r_[labels, 0.5, 0.25, 1.5])).with_labels_read(count=True))


def test_a_streams_first_float_targets_are_read_once_to_tell_and_check_its_class_labels():
    """A stream of float 0./1. labels against a sigmoid network: the source's reading read its first 256
    elements, telling the labels classes (``SupervisedTrainer._classifies``) read them again, and checking them
    (``float_label_stream``) a third time — every image decoded thrice. Now the first reading's targets serve both
    (only the 8 examples of a forward pass are read again)."""
    import keras
    import tensorflow as tf

    from lossexp.data.labels import float_label_stream
    from lossexp.training.supervised import SupervisedTrainer

    read = []

    def elements():
        for i in range(600):
            read.append(i)
            yield np.full(3, i, "float32"), np.array([i % 2], "float32")

    stream = tf.data.Dataset.from_generator(elements, output_signature=(
        tf.TensorSpec((3,), tf.float32), tf.TensorSpec((1,), tf.float32))).apply(tf.data.experimental.assert_cardinality(600))
    data = as_dataset("binary", stream)
    assert len(read) == 256
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    assert SupervisedTrainer._classifies(data, network) == "classification"
    labels = float_label_stream(data)
    assert (labels.task, labels.num_outputs) == ("classification", 2)
    assert len(read) == 256 + 8  # was 256 + 8 + 256 + 256
