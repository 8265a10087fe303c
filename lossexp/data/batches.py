"""A Keras ``PyDataset`` (a user's own loader of batches) as the unbatched stream lossexp trains on.

Keras 3's way to write a data loader is a ``keras.utils.PyDataset``: ``batches[i]`` is the i-th
batch ``(x, y)`` or ``(x, y, sample_weight)``. lossexp batches by ``trainer.batch_size`` and splits
off the last examples to validate, so the loader's batches are read in index order and unbatched
(``tf.data``); its ``on_epoch_end`` is not called, so that its order, and with it the split, stays
the same every epoch (lossexp's stream shuffle mixes the training examples instead). The loader's
``__getitem__`` runs in this process, one batch at a time (its ``workers`` are not used).

The size is counted from the first and last batches, assuming every batch but the last is as
long as the first (a ``PyDataset`` over ``n`` examples in batches of ``b``); a ``__len__`` that counts
more batches than there are (its last item empty, or an IndexError) is one line, and so is a batch
but the last of another size than the first, as it is read (:func:`counted_batches`). The validation split, its last
examples, is read from the batch it begins in (:attr:`lossexp.data.Dataset.seek`), not by loading
every training batch before it.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Iterator, Tuple

import numpy as np

from lossexp.data.structure import count_rows, describe, map_arrays
from lossexp.errors import invalid_value


#: marks the error of a batch other than the last holding another number of examples than the first: each
#: is checked as it is read (a pass that stops short of the last batch, as training's split does, would not
#: meet tf.data's check of the size counted)
UNEVEN = "lossexp-uneven-batch"


def is_py_dataset(value: Any) -> bool:
    """Whether ``value`` is a Keras ``PyDataset`` (told without importing Keras)."""
    return any(cls.__name__ == "PyDataset" and cls.__module__.startswith("keras") for cls in type(value).__mro__)


def _batch(name: str, batches: Any, index: int) -> Tuple[Any, ...]:
    """Batch ``index`` as a tuple of arrays (x a dict or tuple of arrays for several inputs), checked."""
    batch = batches[index]
    if not (isinstance(batch, tuple) and len(batch) in (2, 3)):
        raise invalid_value(f"data ({name})", "a PyDataset whose items are (x, y) or (x, y, sample_weight) batches",
                            f"item {index}: {describe(batch)}"
                            + (f" of shape {batch.shape}" if hasattr(batch, "shape") else ""))
    return tuple(map_arrays(np.asarray, part) if isinstance(part, dict) else
                 tuple(map_arrays(np.asarray, part)) if isinstance(part, (list, tuple)) else np.asarray(part)
                 for part in batch)


def _last_batch(name: str, batches: Any, count: int) -> Tuple[Any, ...]:
    """The last batch, ``len()`` - 1, which must hold an example: a ``__len__`` that counts more batches
    than the loader has (rounded up twice, or counted from another array) gives an empty batch there, or
    an IndexError — tf.data's cardinality error in a traceback as the stream was first read before."""
    wrong = "a PyDataset whose len() is its number of batches, each holding an example"
    try:
        last = _batch(name, batches, count - 1)
    except IndexError as exc:
        raise invalid_value(f"data ({name})", wrong, f"len() {count}, item {count - 1} raising IndexError: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")) from None
    if count_rows(last[0]) == 0:
        raise invalid_value(f"data ({name})", wrong, f"len() {count}, item {count - 1} of no examples")
    return last


def stream_of_batches(name: str, batches: Any) -> Tuple[Any, int, int, Callable[[int], Any]]:
    """(an unbatched ``tf.data.Dataset`` of the loader's examples, their number, its batch size, the
    stream of its examples from one on — from the batch that holds it, the batches before it unread)."""
    import tensorflow as tf

    count = len(batches)
    if count < 1:
        raise invalid_value(f"data ({name})", "a PyDataset of at least one batch", f"{type(batches).__name__} of 0")
    first = _batch(name, batches, 0)
    size = (count - 1) * count_rows(first[0]) + count_rows(_last_batch(name, batches, count)[0])
    signature = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype if a.dtype.kind not in "USO" else "string")),
        first)

    per_batch = count_rows(first[0])

    def examples(start: int) -> Any:
        def elements() -> Iterator[Tuple[Any, ...]]:
            for index in range(start // per_batch, len(batches)):
                batch = _batch(name, batches, index)
                rows = count_rows(batch[0])
                if index < len(batches) - 1 and rows != per_batch:  # a pass may stop short of the last
                    raise ValueError(f"{UNEVEN} {index} holds {rows} examples")
                skipped = start - index * per_batch  # the first batch's examples before ``start``
                yield tuple(tuple(a[skipped:] for a in part) if isinstance(part, tuple) else  # several inputs
                            map_arrays(lambda a: a[skipped:], part) for part in batch) if skipped > 0 else batch

        stream = tf.data.Dataset.from_generator(elements, output_signature=signature).unbatch()
        return stream.apply(tf.data.experimental.assert_cardinality(size - start))

    return examples(0), size, per_batch, examples


@contextlib.contextmanager
def counted_batches(name: str, batches: Any) -> Iterator[None]:
    """A pass over a loader whose batches hold other numbers of examples than its first and last say
    (batches of varying size) meets tf.data's check of the size counted from them: one line, not
    TensorFlow's ``FailedPreconditionError`` in a traceback."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as exc:
        uneven = re.search(UNEVEN + r" \d+ holds \d+ examples", str(exc))  # a batch met, the generator's error
        if uneven is None and not (isinstance(exc, tf.errors.FailedPreconditionError) and "expected to contain" in str(exc)):
            raise
        found = uneven.group(0).replace(UNEVEN, "batch") if uneven else str(exc).split('}} ')[-1].split(' [Op')[0]
        raise invalid_value(f"data ({name})", "a PyDataset whose batches but the last hold as many examples as its "
                            f"first ({count_rows(_batch(name, batches, 0)[0])}), as lossexp counts its size from them",
                            f"{type(batches).__name__} of {len(batches)} batches: {found}") from None
