"""A stream's values checked for NaN and inf as it trains, batch by batch, in the input pipeline.

Arrays are checked whole before training (:func:`lossexp.data.checks.check_finite`), a stream's first
:data:`~lossexp.data.dataset.CHECKED_ELEMENTS` elements too; the rest of a stream is read only as it
trains. A NaN there (an empty cell of a streamed CSV) did not always reach the loss: a ReLU turns a
NaN input into 0 on the forward pass, while its gradient wrote NaN into the first layer's kernel, and
the run ended FINISHED with a broken model. Every floating-point tensor of every batch is asserted
finite (one reduction per tensor, in tf.data's threads), and the first non-finite one ends the run
with one line naming the example, found by reading the stream up to it.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional, Tuple

import numpy as np

from lossexp.data.checks import first_not_finite_row
from lossexp.errors import invalid_value

#: what the assertion of a batch's values says, found again in TensorFlow's error
MARKER = "lossexp: values not finite"
#: the parts of a stream's element, as a message names them
PARTS = ("inputs", "targets", "sample weights")


def finite_checking(then: Optional[Callable[..., Any]] = None) -> Callable[..., Any]:
    """A function of a batch ``(x, y[, sample_weight])`` that asserts every floating-point tensor in it
    finite (else tf.data's InvalidArgumentError, carrying :data:`MARKER`), followed by ``then`` (a part's
    own batch function: the labels' check, class weights)."""
    import tensorflow as tf

    def check(*element: Any) -> Any:
        floats = [t for t in tf.nest.flatten(element) if t.dtype.is_floating]
        if floats:
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in floats])
            with tf.control_dependencies([tf.debugging.Assert(finite, [MARKER])]):
                element = tf.nest.map_structure(tf.identity, element)
        return then(*element) if then else element

    return check


def first_not_finite(stream: Any, batch: int = 1024) -> Tuple[int, str]:
    """(index, part) of the first element of an unbatched ``stream`` holding NaN or inf — ``part``
    ``inputs``, ``inputs['f3']`` (of inputs by name), ``targets`` … —, read in batches up to it (only
    once training met one: the run ends); (-1, "") if none."""
    from lossexp.data.streams import batches

    start = 0
    for element in batches(stream, batch).as_numpy_iterator():
        rows = [(first_not_finite_row(np.asarray(v)), name) for name, v in _named(element)
                if np.issubdtype(np.asarray(v).dtype, np.floating)]
        bad = [(row, name) for row, name in rows if row >= 0]
        if bad:
            index, name = min(bad)
            return start + index, name
        start += len(np.asarray(_first_leaf(element)))
    return -1, ""


def _named(element: Any) -> Iterator[Tuple[str, Any]]:
    """Each array of a batch ``(x, y[, w])`` with its name in a message: ``inputs``, ``inputs['f3']``."""
    for part, value in zip(PARTS, element):
        if isinstance(value, dict):
            yield from ((f"{part}[{key!r}]", v) for key, v in value.items())
        elif isinstance(value, (list, tuple)):
            yield from ((f"{part}[{i}]", v) for i, v in enumerate(value))
        else:
            yield part, value


def _first_leaf(element: Any) -> Any:
    while isinstance(element, (dict, list, tuple)):
        element = next(iter(element.values())) if isinstance(element, dict) else element[0]
    return element


@contextlib.contextmanager
def values_finite(data: Any) -> Iterator[None]:
    """Training on a stream whose batches :func:`finite_checking` asserts: the assertion is one line naming
    the example and the part (``row 100001 of data.csv …``, ``inputs['f3']``) where the array check names
    them before training."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.InvalidArgumentError as exc:
        if MARKER not in str(exc) or data.stream is None:
            raise
        index, part = first_not_finite(data.stream)
        where = f"at {data.example_name(index)}" if index >= 0 else "in a training batch"
        part = part or "the values"
        raise invalid_value(f"data ({data.name})", f"finite {part}", f"NaN/inf in {part} {where}") from None
