"""A training set's inputs and its own validation set's, read as one array without copying them.

A source (or ``lossexp.fit(…, validation_data=…)``) that gives a validation set of its own is read as
one :class:`~lossexp.data.Dataset` whose last examples validate. ``np.concatenate`` of the inputs made
a copy of every example that lived as long as the run: 50,000 64×64×3 uint8 images given as 40,000
and 10,000 peaked at 2,910 MB of RSS where Keras' ``fit(…, validation_data=…)`` peaks at 2,215 MB.
:class:`JoinedRows` is what a Dataset does with its inputs — their length, shape and dtype, a slice of
rows (the split: a view of one array), a reshape of each row — over the two arrays as they are.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np


class JoinedRows:
    """The rows of ``first`` then those of ``second`` (arrays of one dtype and row shape) as one
    array's: ``len``, ``shape``, ``dtype``, ``ndim``, ``nbytes``, rows by a slice or by indices, and
    ``reshape`` keeping the rows. Anything else reads it as their concatenation (``np.asarray``)."""

    def __init__(self, first: np.ndarray, second: np.ndarray) -> None:
        self.parts = (first, second)

    @property
    def shape(self) -> Tuple[int, ...]:
        return (len(self),) + tuple(self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype

    @property
    def ndim(self) -> int:
        return self.parts[0].ndim

    @property
    def nbytes(self) -> int:
        return sum(part.nbytes for part in self.parts)

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __getitem__(self, rows: Any) -> np.ndarray:
        """Rows by a slice (a view when they lie in one of the arrays) or by indices (copied)."""
        first, second = self.parts
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(self))
            stop = max(start, stop)
            if stop <= len(first):
                return first[start:stop]
            if start >= len(first):
                return second[start - len(first):stop - len(first)]
            return np.concatenate([first[start:], second[:stop - len(first)]])
        if isinstance(rows, tuple):  # rows and more axes: the rows, then the rest
            return self[rows[0]][(slice(None),) + rows[1:]]
        indices = np.arange(len(self))[rows]
        if indices.ndim != 1:
            return np.asarray(self)[rows]
        taken = np.empty((len(indices),) + self.shape[1:], self.dtype)
        early = indices < len(first)
        taken[early] = first[indices[early]]
        taken[~early] = second[indices[~early] - len(first)]
        return taken

    def reshape(self, *shape: Any) -> Any:
        """Each row reshaped (``x.reshape(len(x), -1)``, an autoencoder's flat inputs), else the
        concatenation's reshape."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        if shape and shape[0] == len(self):
            return JoinedRows(*(part.reshape((len(part),) + shape[1:]) for part in self.parts))
        return np.asarray(self).reshape(shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        joined = np.concatenate(self.parts)
        return joined if dtype is None else joined.astype(dtype)


def joined_rows(first: Any, second: Any) -> Any:
    """The rows of ``second`` after those of ``first`` — one array each, or a dict or list of them —
    each pair as :class:`JoinedRows` when they share a dtype and a row shape, else concatenated
    (``np.concatenate``: arrays of different dtypes take their common one; its ``ValueError`` for
    rows of different shapes, or ``KeyError`` for dicts of other keys, is the caller's to report)."""
    def pair(a: Any, b: Any) -> Any:
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype == b.dtype and a.shape[1:] == b.shape[1:] and a.ndim >= 1:
            return JoinedRows(a, b)
        return np.concatenate([a, b])

    if isinstance(first, dict):
        return {key: pair(first[key], second[key]) for key in first}
    if isinstance(first, (list, tuple)):
        return [pair(a, b) for a, b in zip(first, second)]
    return pair(first, second)
