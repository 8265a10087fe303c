"""Tables (CSV, Parquet) as arrays or streams: the feature and target columns the user names.

In memory (default), the table is read whole and its rows shuffled once from ``seed`` before the
split. With ``stream: true`` it is read in chunks through ``tf.data`` (for tables larger than
memory): rows keep the file's order, its last rows validate, and training shuffles within a
buffer; the last rows are read from their own row (a CSV's lines before it skipped unparsed, a
Parquet file's row groups before it unread), not past every training row. Feature columns must be numeric; a target column of strings becomes class indices (its
labels sorted, over every row). A second file (``validation_path``) of the same columns validates
in place of the table's last rows. Each format is a :class:`TableReader` (``csv.py``, ``parquet.py``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from lossexp.data.dataset import Dataset
from lossexp.errors import ConfigError

Columns = Union[str, List[str]]


def columns_of(target: Columns) -> List[str]:
    return [target] if isinstance(target, str) else list(target)


def choose(path: str, available: Sequence[str], target: Columns, features: Optional[List[str]]) -> Tuple[List[str], List[str]]:
    """(feature columns, target columns), each checked to exist in the table."""
    targets = columns_of(target)
    for option, names in (("data.target", targets), ("data.features", features or [])):
        for name in names:
            if name not in available:
                raise ConfigError(f"Invalid value for {option}: {path} has no column {name!r}; its columns are "
                                  f"{', '.join(available)}")
    chosen = list(features) if features is not None else [c for c in available if c not in targets]
    if not chosen:
        raise ConfigError(f"Invalid value for data.features: {path} has no columns left besides the target")
    return chosen, targets


def to_arrays(frame: Any, path: str, features: List[str], targets: List[str], shuffle: bool,
              seed: int, labels: Optional[List[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """A pandas frame as (x float32, y) arrays; string targets become class indices: their places in
    ``labels`` (every label of the table, sorted), or in this frame's own sorted labels."""
    from pandas.api.types import is_numeric_dtype

    non_numeric = [c for c in features if not is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ConfigError(f"Invalid value for data.features: expected numeric columns, got {non_numeric[0]!r} "
                          f"({frame[non_numeric[0]].dtype}) in {path}; encode it or leave it out (data.features)")
    x = frame[features].to_numpy(dtype="float32")
    if len(targets) == 1 and not is_numeric_dtype(frame[targets[0]]):
        labels = labels or text_labels(frame, targets)
        y = frame[targets[0]].astype(str).map({label: i for i, label in enumerate(labels)}).to_numpy("int32")
    else:
        y = frame[targets].to_numpy()
        y = y[:, 0] if len(targets) == 1 and np.issubdtype(y.dtype, np.integer) else y.astype("float32")
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(x))
        x, y = x[order], y[order]
    return x, y


def text_labels(frame: Any, targets: List[str]) -> List[str]:
    """The sorted labels of a single text target column (empty for numeric targets)."""
    from pandas.api.types import is_numeric_dtype

    if len(targets) != 1 or is_numeric_dtype(frame[targets[0]]):
        return []
    return sorted(frame[targets[0]].astype(str).unique())


class TableReader(Protocol):
    """What :func:`read_table` needs of a file format."""

    def open(self, key: str, path: str) -> Path:
        """The file at ``path`` (the option ``key``), checked to exist and to be readable."""

    def columns(self, file: Path) -> List[str]:
        """The file's column names."""

    def whole(self, file: Path, columns: List[str]) -> Any:
        """The ``columns`` of every row, as a pandas frame."""

    def chunks(self, file: Path, columns: List[str], chunk_rows: int, start: int = 0) -> Iterator[Any]:
        """The ``columns`` as pandas frames of ``chunk_rows`` rows, in the file's order, from row
        ``start`` on (the rows before it not parsed or decoded where the format allows)."""

    def rows(self, file: Path) -> int:
        """The number of rows."""


def read_table(name: str, reader: TableReader, path: str, target: Columns, features: Optional[List[str]],
               stream: bool, shuffle: bool, seed: int, chunk_rows: int, validation_path: Optional[str]) -> Any:
    """A table's ``(x, y)`` arrays or :class:`Dataset` stream — ``{"train": …, "validation": …}`` with
    a second file that validates. A text target is encoded over every row of both files (a class
    missing from one file, or from one chunk, keeps its index)."""
    files = {"train": reader.open("data.path", path)}
    chosen, targets = choose(path, reader.columns(files["train"]), target, features)
    if validation_path is not None:
        files["validation"] = reader.open("data.validation_path", validation_path)
        choose(validation_path, reader.columns(files["validation"]), targets, chosen)
    labels = None
    if stream or validation_path is not None:
        found = [text_labels(chunk, targets) for file in files.values() for chunk in reader.chunks(file, targets,
                                                                                                    chunk_rows)]
        labels = sorted(set().union(*found)) if any(found) else None
    parts = {}
    for part, file in files.items():
        if stream:
            parts[part] = stream_of(name, lambda start=0, file=file: reader.chunks(file, chosen + targets, chunk_rows,
                                                                                   start),
                                    chosen, targets, reader.rows(file), labels)
        else:
            parts[part] = to_arrays(reader.whole(file, chosen + targets), path if part == "train" else validation_path,
                                    chosen, targets, shuffle and part == "train", seed, labels)
    return parts if validation_path is not None else parts["train"]


def stream_of(name: str, chunks: Callable[[int], Iterator[Any]], features: List[str], targets: List[str],
              size: int, labels: Optional[List[str]]) -> Dataset:
    """A stream of (x, y) rows from a generator of pandas chunks from a row on (re-entrant: one pass
    per epoch; the validation split's from its first row); a text target's ``labels`` (the whole
    table's, so that every chunk encodes them alike)."""
    import tensorflow as tf

    from lossexp.data.dataset import from_stream

    first = next(chunks(0))
    sample_x, sample_y = to_arrays(first, name, features, targets, shuffle=False, seed=0, labels=labels)
    signature = (tf.TensorSpec((None, sample_x.shape[1]), tf.float32),
                 tf.TensorSpec((None, *sample_y.shape[1:]), tf.as_dtype(sample_y.dtype)))

    def rows_from(start: int) -> Any:
        def rows() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
            for chunk in chunks(start):
                yield to_arrays(chunk, name, features, targets, shuffle=False, seed=0, labels=labels)

        return tf.data.Dataset.from_generator(rows, output_signature=signature).unbatch()

    return from_stream(name, rows_from(0), size=size, seek=rows_from)


def count_csv_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell():
            handle.seek(-1, 2)
            lines += handle.read(1) != b"\n"
    return max(lines - 1, 0)  # less the header
