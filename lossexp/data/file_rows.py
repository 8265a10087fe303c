"""Where each example is in the user's file, so that a message about one names its row there.

A source that reads a file (a table, an ``.npz`` archive) shuffles its rows once before lossexp sees
them (Keras' ``validation_split`` takes the last rows), so "a label of -1 at example 37" names a place
no row of the file has. Such a source returns its arrays as :class:`FromFile` (a tuple, so that
everything else takes them as it takes ``(x, y)``), carrying a :class:`FileRows` per file; the
:class:`~lossexp.data.dataset.Dataset` keeps them and :func:`example_name` turns an example's index
into ``row 6 of data.csv`` for every message about one example.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True, eq=False)
class FileRows:
    """The examples of one file, in the order lossexp holds them, named ``{unit} {number} of {of}``:
    ``row 6 of data.csv (rows counted from 1 below the header)``, ``index 5 of the arrays of data.npz``.

    ``first``: the number of the file's first row in that wording (1 for a table's row, 0 for an array's
    index); ``order``: the file's row (from 0) of each example (a shuffle's permutation; None: the file's
    own order)."""

    of: str
    count: int
    unit: str = "row"
    first: int = 1
    order: Optional[np.ndarray] = None

    def name(self, index: int) -> str:
        """The row of the file that example ``index`` (of this file's examples) is."""
        row = int(self.order[index]) if self.order is not None else index
        return f"{self.unit} {row + self.first} of {self.of}"


#: the files of a dataset's examples, in order: its training file's, then its validation file's
Files = Tuple[FileRows, ...]


def example_name(files: Optional[Files], index: int) -> str:
    """``row 6 of data.csv …`` for example ``index`` of examples read from ``files``; ``example 37``
    for others (a source's own arrays or stream: its examples' places are its own)."""
    within = index
    for rows in files or ():
        if within < rows.count:
            return rows.name(within)
        within -= rows.count
    return f"example {index}"


class FromFile(tuple):
    """A file source's ``(x, y)`` or ``(x, y, sample_weight)``, taken as that tuple, and where its rows are
    in the file (:attr:`rows`)."""

    rows: FileRows

    def __new__(cls, arrays: Sequence[Any], rows: FileRows) -> "FromFile":
        made = super().__new__(cls, arrays)
        made.rows = rows
        return made

    def __getnewargs__(self) -> Tuple[Tuple[Any, ...], FileRows]:  # a copy or a pickle keeps its rows
        return tuple(self), self.rows


def shuffled(arrays: Sequence[Any], rows: FileRows, seed: Optional[int]) -> FromFile:
    """``arrays`` (each a NumPy array, or a dict of them, of one row per example) read from the file of
    ``rows``, their rows in an order drawn from ``seed`` (None: the file's), as :class:`FromFile` naming
    each example's row in the file."""
    if seed is None:
        return FromFile(arrays, rows)
    order = np.random.default_rng(seed).permutation(rows.count)
    arrays = [{k: v[order] for k, v in part.items()} if isinstance(part, dict) else part[order] for part in arrays]
    return FromFile(arrays, replace(rows, order=order))
