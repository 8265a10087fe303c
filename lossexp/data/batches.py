"""A Keras ``PyDataset`` (a user's own loader of batches) as the unbatched stream lossexp trains on.

Keras 3's way to write a data loader is a ``keras.utils.PyDataset``: ``batches[i]`` is the i-th
batch ``(x, y)`` or ``(x, y, sample_weight)``. lossexp batches by ``trainer.batch_size`` and splits
off the last examples to validate, so the loader's batches are read in index order and unbatched
(``tf.data``); its ``on_epoch_end`` is not called, so that its order, and with it the split, stays
the same every epoch (lossexp's stream shuffle mixes the training examples instead). The loader's
``__getitem__`` runs in this process, one batch at a time (its ``workers`` are not used).

The size is counted from the first and last batches, assuming every batch but the last is as
long as the first (a ``PyDataset`` over ``n`` examples in batches of ``b``); a stream of another
size stops at the first pass with TensorFlow's cardinality error.
"""
from __future__ import annotations

from typing import Any, Tuple

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


def stream_of_batches(name: str, batches: Any) -> Tuple[Any, int, int]:
    """(an unbatched ``tf.data.Dataset`` of the loader's examples, their number, its batch size)."""
    import tensorflow as tf

    count = len(batches)
    if count < 1:
        raise invalid_value(f"data ({name})", "a PyDataset of at least one batch", f"{type(batches).__name__} of 0")
    first = _batch(name, batches, 0)
    size = (count - 1) * count_rows(first[0]) + count_rows(_batch(name, batches, count - 1)[0])
    signature = tf.nest.map_structure(
        lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype if a.dtype.kind not in "USO" else "string")),
        first)

    def elements() -> Any:
        for index in range(len(batches)):
            yield _batch(name, batches, index)

    stream = tf.data.Dataset.from_generator(elements, output_signature=signature).unbatch()
    return stream.apply(tf.data.experimental.assert_cardinality(size)), size, count_rows(first[0])
