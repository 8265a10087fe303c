"""The digest of a data set's first rows, as its MLflow dataset input records it (:mod:`lossexp.tracking.datasets`).

Rows are hashed as they lie in memory — each array's dtype, the shape of one row, and its first rows
within :data:`DIGEST_BYTES` —, a chunk of at most :data:`DIGEST_CHUNK_BYTES` copied at a time (a
strided view's). A stream's first rows are the elements its checks read before training anyway
(:func:`lossexp.data.dataset.checked`), so that its digest reads nothing more of it.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

#: at most this many bytes of a data set's first rows are hashed (of each array, for arrays in memory)
DIGEST_BYTES = 32 << 20
#: an array's rows are copied (a strided view's) and hashed this many bytes at a time at most
DIGEST_CHUNK_BYTES = 4 << 20


def update_rows(digest: Any, array: Any, most: int) -> None:
    """Add an array's first ``most`` rows within :data:`DIGEST_BYTES` to the hash ``digest`` (texts by
    their characters, not the objects' addresses)."""
    array = np.asarray(array)  # a view of an array; a pandas frame's values
    row_bytes = max(1, array[:1].nbytes)
    rows = array[:max(1, min(most, DIGEST_BYTES // row_bytes))]
    step = max(1, DIGEST_CHUNK_BYTES // row_bytes)
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        if chunk.dtype == object:
            digest.update("\0".join(map(str, chunk.ravel())).encode())
        else:
            digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))


def rows_digest(rows: Any, most: int) -> str:
    """The MD5 (hex) of the first ``most`` rows of a structure of arrays — a stream's first elements
    as :func:`lossexp.data.dataset.first_elements` batches them: ``(x, y[, sample_weight])``, each an
    array, a dict (by its sorted keys) or a list of arrays —, as many as fit in :data:`DIGEST_BYTES`
    (the bytes of a row of every array)."""
    digest = hashlib.md5()
    arrays = [np.asarray(array) for array in _arrays(rows)]
    most = max(1, min(most, DIGEST_BYTES // max(1, sum(array[:1].nbytes for array in arrays if array.ndim))))
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape[1:]}|".encode())  # not its length: the rows hashed tell
        update_rows(digest, array, most)
    return digest.hexdigest()


def _arrays(value: Any) -> list:
    if isinstance(value, dict):
        return [array for _, item in sorted(value.items()) for array in _arrays(item)]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    return [value]
