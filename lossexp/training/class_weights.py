"""Class weights (``task.class_weight``): each training example weighted by its class, as Keras'
``fit(class_weight=…)`` weighs it.

``balanced`` gives class c the weight n / (k · n_c) over the training split's n examples (or label
positions) of the k classes present in it (scikit-learn's formula: every class then carries the
same total weight, n / k, and the weights average 1 over the examples; a class absent from the
split gets 0); a mapping ``{class: weight}`` gives its classes theirs
and the others 1. The weights multiply the data's own sample weights, one per example — or one
per position for labels per position (a tagger's tokens). Validation stays unweighted by class, as
in Keras, so that its loss and metrics are those of the data as it comes.

Only the positions the loss takes are counted: a padded sequence's padding (a label 0 masked by the
network, ``Embedding(mask_zero=True)`` or ``Masking``, or weighted 0 by the data's own sample weights)
is no example of class 0 — counted, it made class 0 look several times as frequent as it is and
weighed its real examples down (0.39 instead of 1.04 on a tagger whose sequences are half padding).
Keras' ``fit(class_weight=…)`` does not help there: it weighs a whole sequence by the argmax of its
labels (Keras 3.15).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from lossexp.data.checks import labels_of
from lossexp.errors import invalid_value

BALANCED = "balanced"


def per_class(spec: Union[str, Mapping[Any, float]], counts: np.ndarray) -> np.ndarray:
    """The weight of each class (a vector as long as ``counts``, the examples of each class)."""
    classes = len(counts)
    if spec == BALANCED:
        present = counts > 0
        weights = np.zeros(classes)
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights.astype("float32")
    weights = np.ones(classes, dtype="float32")
    for label, weight in spec.items():
        if int(label) >= classes:
            raise invalid_value("task.class_weight", f"classes 0 … {classes - 1}", int(label))
        weights[int(label)] = weight
    return weights


def output_mask(network: Any) -> Optional[Callable[[Any], np.ndarray]]:
    """For a functional network whose output carries a Keras mask (``Embedding(mask_zero=True)``,
    ``Masking`` upstream), a function of its inputs giving that mask (only the mask's own operations
    run: a comparison of the token ids, not the network); else None."""
    import keras

    outputs = getattr(network, "outputs", None) or []
    mask = getattr(outputs[0], "_keras_mask", None) if len(outputs) == 1 else None
    if mask is None:
        return None
    from lossexp.training.rewire import told_once

    with told_once():
        masking = keras.Model(network.input, mask)
    return lambda x: np.asarray(masking.predict(x, batch_size=8192, verbose=0)).astype(bool)


def weighted(part: Any, spec: Union[str, Mapping[Any, float]], classes: int,
             mask: Optional[Callable[[Any], np.ndarray]] = None) -> Any:
    """The training :class:`~lossexp.data.Part` with every example (or position) weighted by its class;
    ``mask`` (:func:`output_mask`) leaves the positions the network masks out of the count."""
    if part.arrays is not None:
        x, y, *own = part.arrays
        labels = labels_of(y)
        own_weight = np.asarray(own[0], "float32").reshape(own[0].shape + (1,) * (labels.ndim - own[0].ndim)) \
            if own else None
        counted = np.ones(labels.shape, bool) if own_weight is None else np.broadcast_to(own_weight > 0, labels.shape)
        real = mask(x) if spec == BALANCED and mask is not None else None
        if real is not None and real.shape == labels.shape:
            counted = counted & real
        weight = per_class(spec, np.bincount(labels[counted], minlength=classes))[labels]
        if own_weight is not None:
            weight = weight * own_weight
        return replace(part, arrays=(x, y, weight))
    import tensorflow as tf

    from lossexp.data.streams import padded_when_batched

    target = part.stream.element_spec[1]
    column = target.shape.rank == 1 and target.shape[0] == 1  # one label per element, as a column

    def labels(y: Any) -> Any:
        """The class indices of an element or of a batch, as :func:`labels_of` reads arrays (int64)."""
        label = tf.argmax(y, axis=-1) if y.dtype.is_floating else (y[..., 0] if column else y)
        return tf.cast(label, tf.int64)

    # elements of one shape are read and weighted in batches (tf.data calls a function per element
    # in about 24 µs: 10 s an epoch at 400,000 examples); sequences of varying length one by one, each
    # label position once and the padding, which batching adds later, weighted 0 as it comes
    varying = padded_when_batched(part.stream)
    if spec != BALANCED:  # a mapping's weights need no count: the stream is not read
        counts = np.zeros(classes, dtype="int64")
    elif part.classes is not None:  # read by its source (a table's target column, alone): the stream is not read
        counts = np.bincount(part.classes, minlength=classes)
    else:
        counts = stream_counts(part.stream, labels, classes, mask)
    vector = tf.constant(per_class(spec, counts))

    def one(x: Any, y: Any, *own: Any) -> Any:  # an element, or a batch of elements of one shape
        # within the vector: a label outside the classes is one line from the check of each batch
        # (:mod:`lossexp.data.label_check`), where the gather would fail first, in a traceback
        weight = tf.gather(vector, tf.clip_by_value(labels(y), 0, len(counts) - 1))
        return x, y, weight * tf.cast(own[0], tf.float32) if own else weight

    if varying:
        return replace(part, stream=part.stream.map(one))
    return replace(part, batch_map=one)


def stream_counts(stream: Any, labels: Callable[[Any], Any], classes: int,
                  mask: Optional[Callable[[Any], np.ndarray]]) -> np.ndarray:
    """The examples (or label positions) of each class in ``stream`` that the loss takes: not those its own
    sample weights weigh 0, nor, with ``mask`` (:func:`output_mask`), the padding of sequences the data pads
    itself to one length (the padding of sequences of varying length, which batching adds, is never read)."""
    from lossexp.data.streams import READ_BATCH, READ_BYTES, batches, elements_within, padded_when_batched

    if padded_when_batched(stream):  # each element as it comes
        read = stream.map(lambda x, y, *own: counted(labels(y), own)).unbatch().batch(65536)
    elif mask is None:
        read = batches(stream, elements_within(stream, READ_BATCH, READ_BYTES)).map(
            lambda x, y, *own: counted(labels(y), own))
    else:
        read = batches(stream, elements_within(stream, READ_BATCH, READ_BYTES)).map(
            lambda x, y, *own: (x, labels(y), taken(labels(y), own)))
    counts = np.zeros(classes, dtype="int64")
    for found in read.as_numpy_iterator():
        if isinstance(found, tuple):  # a batch's inputs, labels and where the loss takes them, to mask
            x, label, keep = found
            real = mask(x)
            found = label[keep & real if real.shape == label.shape else keep]
        counts += np.bincount(found, minlength=classes)
    return counts


def taken(label: Any, own: Any) -> Any:
    """Where the loss takes ``label`` (a tensor of class indices): every position but those the data's own
    sample weight (``own``: none, or one tensor per example or per position) weighs 0."""
    import tensorflow as tf

    if not own:
        return tf.ones_like(label, dtype=tf.bool)
    weight = own[0]
    units = tf.ones([tf.rank(label) - tf.rank(weight)], dtype=tf.int32)  # one per position axis it lacks
    return tf.broadcast_to(tf.reshape(weight, tf.concat([tf.shape(weight), units], 0)) > 0, tf.shape(label))


def counted(label: Any, own: Any) -> Any:
    """The class indices of ``label`` the loss takes (:func:`taken`), as one vector."""
    import tensorflow as tf

    return tf.boolean_mask(label, taken(label, own))
