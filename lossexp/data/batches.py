"""A Keras ``PyDataset`` (a user's own loader of batches) as the unbatched stream lossexp trains on.

Keras 3's way to write a data loader is a ``keras.utils.PyDataset``: ``batches[i]`` is the i-th
batch ``(x, y)`` or ``(x, y, sample_weight)``. lossexp batches by ``trainer.batch_size`` and splits
off the last examples to validate, so the loader's batches are read in index order and unbatched
(``tf.data``); its ``on_epoch_end`` is not called, so that its order, and with it the split, stays
the same every epoch (lossexp's stream shuffle mixes the training examples instead). The loader's
``__getitem__`` runs in this process, one batch at a time (its ``workers`` are not used).

The size is counted from the first and last batches, assuming every batch but the last is as
long as the first (a ``PyDataset`` over ``n`` examples in batches of ``b``); a stream of another
size stops at the first pass with TensorFlow's cardinality error. The validation split, its last
examples, is read from the batch it begins in (:attr:`lossexp.data.Dataset.seek`), not by loading
every training batch before it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Tuple

import numpy as np

from lossexp.data.structure import count_rows, describe, map_arrays
from lossexp.errors import invalid_value


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


def stream_of_batches(name: str, batches: Any) -> Tuple[Any, int, int, Callable[[int], Any]]:
    """(an unbatched ``tf.data.Dataset`` of the loader's examples, their number, its batch size, the
    stream of its examples from one on — from the batch that holds it, the batches before it unread)."""
    import tensorflow as tf

    count = len(batches)
    if count < 1:
        raise invalid_value(f"data ({name})", "a PyDataset of at least one batch", f"{type(batches).__name__} of 0")
    first = _batch(name, batches, 0)
    size = (count - 1) * count_rows(first[0]) + count_rows(_batch(name, batches, count - 1)[0])
    signature = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype if a.dtype.kind not in "USO" else "string")),
        first)

    per_batch = count_rows(first[0])

    def examples(start: int) -> Any:
        def elements() -> Iterator[Tuple[Any, ...]]:
            for index in range(start // per_batch, len(batches)):
                batch = _batch(name, batches, index)
                skipped = start - index * per_batch  # the first batch's examples before ``start``
                yield tuple(tuple(a[skipped:] for a in part) if isinstance(part, tuple) else  # several inputs
                            map_arrays(lambda a: a[skipped:], part) for part in batch) if skipped > 0 else batch

        stream = tf.data.Dataset.from_generator(elements, output_signature=signature).unbatch()
        return stream.apply(tf.data.experimental.assert_cardinality(size - start))

    return examples(0), size, per_batch, examples
