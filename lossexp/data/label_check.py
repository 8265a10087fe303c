"""A classification stream's labels checked as it trains, in place of a pass that reads them all first.

A stream of known length (``image_dataset_from_directory``'s, a ``PyDataset``'s) starts training at
once, as Keras' ``fit`` does, its classes and task told by its first labels: a pass over a million
images before the first step decodes each once (minutes on two cores). Its every batch is then
checked in the input pipeline (a minimum and a maximum per batch, in the graph), and the first
label out of range ends the run with the one line the pass gave: a negative label, or one the
network has no output for, naming the example found by reading the stream up to it. Targets by
output name (a network of several outputs) are checked so, output by output.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from lossexp.errors import ConfigError, invalid_value

#: what the assertion of a batch's labels says, found again in TensorFlow's error
MARKER = "lossexp: labels out of range"
#: what the assertion of an element's float labels says (:func:`lossexp.data.labels.float_label_stream`)
NOT_WHOLE = "lossexp: float labels not whole"


def label_bound(y_true: Any, y_pred: Any) -> int:
    """The labels a network's outputs ``y_pred`` score: 0 … width-1 for a unit per class, 0 and 1 for
    one unit (binary) or one score per label (multi-label 0/1 targets shaped like the outputs)."""
    labels = np.shape(y_true)[1:]
    got = np.shape(y_pred)[1:]
    labels = labels[:-1] if labels[-1:] == (1,) else labels
    return 2 if got[-1:] == (1,) or tuple(got) == tuple(labels) else int(got[-1])


#: a label bound, or one per output name (targets by output name)
Bound = Union[int, Dict[str, int]]


def checking(bound: Bound, then: Optional[Callable[..., Any]] = None) -> Callable[..., Any]:
    """A function of a batch ``(x, y[, sample_weight])`` that asserts its labels lie in 0 … bound-1
    — each named output's below its own, of a ``bound`` by output name — (else tf.data's
    InvalidArgumentError, carrying :data:`MARKER`, the output's name, and the batch's lowest and highest
    label), followed by ``then`` (a part's own batch function, class weights)."""
    import tensorflow as tf

    def asserted(y: Any, most: int, key: str = "") -> Any:
        labels = tf.reshape(y, [-1])
        lowest, highest = tf.reduce_min(labels), tf.reduce_max(labels)
        inside = tf.logical_and(lowest >= 0, highest < most)
        with tf.control_dependencies([tf.debugging.Assert(inside, [MARKER, f"output:{key}", lowest, highest])]):
            return tf.identity(y)

    def check(x: Any, y: Any, *weight: Any) -> Any:
        if isinstance(bound, dict):
            y = {**y, **{key: asserted(y[key], most, key) for key, most in bound.items()}}
        else:
            y = asserted(y, bound)
        return then(x, y, *weight) if then else (x, y, *weight)

    return check


def first_outside(stream: Any, bound: int, key: str = "", most: Optional[int] = None) -> Tuple[int, int]:
    """(index, label) of the first example of ``stream`` with a label outside 0 … bound-1 (of its
    output ``key``, of targets by output name), read in batches up to it (only once training met one, or
    the run is refused: the run ends) — among its first ``most`` examples, when given; (-1, -1) if none."""
    from lossexp.data.streams import READ_BATCH, READ_BYTES, batches, elements_within

    size = elements_within(stream, READ_BATCH, READ_BYTES)
    stream = stream.take(most) if most is not None else stream
    start = 0
    for y in batches(stream.map(lambda x, y, *weight: y[key] if key else y), size).as_numpy_iterator():
        flat = y.reshape(len(y), -1)
        outside = np.flatnonzero(((flat < 0) | (flat >= bound)).any(axis=1))
        if len(outside):
            row = flat[outside[0]]
            return start + int(outside[0]), int(row[(row < 0) | (row >= bound)][0])
        start += len(y)
    return -1, -1


def first_not_whole(stream: Any) -> int:
    """The index of the first example of a stream of float labels cast as it is read whose labels are not
    whole numbers: where its check (:data:`NOT_WHOLE`) fails, read one by one up to it (once training met it)."""
    import tensorflow as tf

    index = 0
    try:
        for _ in stream.as_numpy_iterator():
            index += 1
    except tf.errors.InvalidArgumentError:
        return index
    return -1


@contextlib.contextmanager
def labels_in_range(data: Any, bound: Optional[Bound], refusal: Callable[[int, str], None]) -> Iterator[None]:
    """Training on ``data`` whose labels :func:`checking` asserts below ``bound``: the assertion is one
    line, a negative label's as the pass before training gave it (``-1 in the stream's labels``), a
    label ≥ ``bound`` as ``refusal(label, output)`` raises it (the network's outputs against that many
    classes; ``output`` "" for one target), each naming the example (and the output)."""
    import tensorflow as tf

    from lossexp.data.checks import check_labels

    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        if bound is not None and NOT_WHOLE in str(exc):
            raise invalid_value("task.type", "classification needs class labels (integers, or floats of whole values); "
                                f"data {data.name!r} has other numbers (at example {first_not_whole(data.stream)})",
                                "classification") from None
        found = re.search(re.escape(MARKER) + r"\]\s*\[output:(.*?)\]\s*\[\[?(-?\d+)\]?\]\s*\[\[?(-?\d+)", str(exc))
        if bound is None or found is None:
            raise
        key = found.group(1)
        index, label = first_outside(data.stream, bound[key] if key else bound, key)
        if index < 0:  # not found again (a stream that differs between passes): the batch's
            lowest, highest = int(found.group(2)), int(found.group(3))
            label, where = (lowest if lowest < 0 else highest), "in a training batch"
        else:
            where = f"at {data.example_name(index)}"
        where = f"of output {key!r} {where}" if key else where
        if label < 0:
            check_labels(data.name, label, f"in the stream's labels {where}")
        try:
            refusal(label, key)
        except ConfigError as refused:  # the outputs' check names the example itself when it finds it again
            named = f" has label {label} (" in str(refused)
            raise ConfigError(str(refused) if named else f"{refused} (label {label} in the stream's labels {where})") \
                from None
        if key:  # an output whose task the outputs' check was not told (a stream's, unread): its labels
            raise invalid_value(f"data ({data.name})", f"labels 0…{bound[key] - 1} of output {key!r} (one per unit "
                                "of its network output)", f"{label} in the stream's labels {where}") from None
        raise
