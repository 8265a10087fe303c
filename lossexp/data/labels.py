"""Class labels held in memory, read before a classifier trains: labels stored as floats taken as
integers (also told apart from regression targets by a network's probability outputs), a negative
label refused, and a validation split holding other classes than training (examples sorted by
class) or labels all of one class said in one warning line."""
from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Optional

import numpy as np

from lossexp.data import checks
from lossexp.errors import invalid_value


def class_labels(data: Any, validation_split: float) -> Any:
    """``data`` (in memory, one target array) as a classifier trains on it: float labels of whole
    values as integers (``task.type=classification`` on such targets), checked and warned about."""
    if data.task == "regression":
        data = float_labels(data)
    labels = np.asarray(data.y)
    if np.issubdtype(labels.dtype, np.integer):
        flat = labels.reshape(len(labels), -1)
        lowest = int(flat.min())
        checks.check_labels(data.name, lowest, f"at {data.example_name(int(np.argwhere(flat == lowest)[0][0]))}")
        if flat.size and lowest == int(flat.max()):
            print(f"lossexp: warning: every label of data {data.name!r} is {lowest}: a classifier of one class learns "
                  "nothing (its loss is 0 or falls to 0 at once); check the data source's targets", file=sys.stderr)
    if data.held_out is None and validation_split:
        train, validation = data.split(validation_split)
        unlike = validation and checks.split_unlike(train.arrays[1], validation.arrays[1])
        if unlike:
            print(f"lossexp: warning: the validation split (the last {validation_split:.0%} of data {data.name!r}, as "
                  f"Keras' validation_split takes them) holds classes unlike the training split's ({unlike}; χ² test "
                  "p < 1e-6): are the examples sorted by class? Shuffle them first", file=sys.stderr)
    return data


def probability_targets(y: Any, activation: Optional[str]) -> bool:
    """Whether float targets are class labels, told by the output activation of the network they
    train: whole values 0…k-1 (one per example) against softmax outputs, 0/1 (a binary or multi-label
    classifier's, as pandas or ``MultiLabelBinarizer(...).astype(float)`` store them) against
    sigmoid outputs. Regressing them with mean squared error is the silent alternative."""
    y = np.asarray(y)
    if activation not in ("sigmoid", "softmax") or not np.issubdtype(y.dtype, np.floating) or not y.size:
        return False
    if activation == "softmax":
        one_per_example = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
        return one_per_example and bool(np.all(y >= 0) and np.all(y == np.round(y)))
    return bool(np.all((y == 0) | (y == 1)))


def float_labels(data: Any) -> Any:
    """Class labels stored as floats (a pandas column of 0.0, 1.0, 2.0) as integer labels; other
    numbers are one line."""
    y = np.asarray(data.y)
    if not (np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise invalid_value("task.type", f"classification needs class labels (integers, or floats of whole values); "
                            f"data {data.name!r} has other numbers", "classification")
    labels = y.astype("int64")
    labels = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
    return replace(data, task="classification", y=labels, num_outputs=int(labels.max()) + 1)


def float_label_stream(data: Any) -> Any:
    """A stream's class labels stored as floats (``image_dataset_from_directory(label_mode="binary")``'s
    0./1., a multi-hot row of floats) as the integer labels a classifier trains on: every target a whole
    number ≥ 0 (else one line), the classes the highest + 1 — as the pass that counted the stream read
    them (:attr:`Dataset.float_targets`); a stream of known length, not read before training, by its
    first targets, the others checked as they are cast (a number not whole: one line naming its example,
    :mod:`lossexp.data.label_check`). The stream, its split and its seek are cast alike; a stream's
    ``float_labels``, as arrays have theirs."""
    import tensorflow as tf

    from lossexp.data.label_check import NOT_WHOLE
    from lossexp.data.streams import FloatTargets

    read = data.float_targets
    unread = read is None or read.stream is not data.stream  # a stream of known length: not read before
    if unread:
        first = np.asarray(data.first_targets(), "float64").reshape(-1)  # as the source's reading read them
        other = ~np.isfinite(first) | (first != np.round(first))
        whole = first[~other] if (~other).any() else np.zeros(1)
        read = FloatTargets(data.stream, float(whole.min()), float(whole.max()), int(other.sum()))
    if read.other:
        raise invalid_value("task.type", f"classification needs class labels (integers, or floats of whole values); "
                            f"data {data.name!r} has other numbers ({read.other} of its targets)", "classification")
    checks.check_labels(data.name, int(read.lowest), "in the stream's labels")

    def as_labels(x: Any, y: Any, *weight: Any) -> Any:
        if unread:  # each element's targets whole numbers, checked as they are cast
            whole = tf.reduce_all(tf.logical_and(tf.math.is_finite(y), tf.equal(y, tf.round(y))))
            with tf.control_dependencies([tf.debugging.Assert(whole, [NOT_WHOLE])]):
                y = tf.identity(y)
        return (x, tf.cast(y, tf.int64), *weight)

    return data.mapped(as_labels, task="classification", num_outputs=int(read.highest) + 1, float_targets=None,
                       unread_labels=unread)
