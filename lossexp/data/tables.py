"""Tables (CSV, Parquet) as arrays or streams: the feature and target columns the user names.

In memory (default), the table is read whole and its rows shuffled once from ``seed`` before the
split. With ``stream: true`` it is read in chunks through ``tf.data`` (for tables larger than
memory): rows keep the file's order, its last rows validate, and training shuffles within a
buffer; the last rows are read from their own row (a CSV's lines before it skipped unparsed, a
Parquet file's row groups before it unread), not past every training row. Feature columns are numeric,
arrays of one length (an embedding per row) or categories taken one-hot (``one_hot``: one 0/1 column per
category, sorted over every row); a target
column of strings becomes class indices (its labels sorted, over every row); a weight column weighs its
row. An empty or infinite cell of a column used is one line naming its row in the file, before any shuffle. Streamed, the table's size and a single integer or text target's
classes (and their counts, for class weights) come from one pass over the target column alone,
not from reading the stream through, every column parsed. A second file (``validation_path``) of the same columns validates
in place of the table's last rows. Each format is a :class:`TableReader` (``csv.py``, ``parquet.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from lossexp.data.dataset import Dataset
from lossexp.data.file_rows import FileRows, shuffled
from lossexp.errors import ConfigError

Columns = Union[str, List[str]]


def columns_of(target: Columns) -> List[str]:
    return [target] if isinstance(target, str) else list(target)


@dataclass
class TableColumns:
    """The columns a run reads of a table, by what they are to it."""

    features: List[str]
    targets: List[str]
    #: a column of one weight per row (``data.sample_weight``)
    weight: Optional[str] = None
    #: each feature column taken one-hot (``data.one_hot``): its categories, sorted, over every row of every file
    categories: Dict[str, List[str]] = field(default_factory=dict)

    @property
    def read(self) -> List[str]:
        """Every column read, features first."""
        return self.features + self.targets + ([self.weight] if self.weight else [])


def choose(path: str, available: Sequence[str], target: Columns, features: Optional[List[str]],
           weight: Optional[str] = None, one_hot: Sequence[str] = ()) -> TableColumns:
    """The feature and target columns, each checked to exist in the table, as the sample weights' column
    ``weight`` (a feature or target of none; left out of the default features) and the ``one_hot`` ones
    (features)."""
    targets = columns_of(target)
    if weight is not None and weight in targets + list(features or []):
        raise ConfigError(f"Invalid value for data.sample_weight: expected a column of its own, got {weight!r}, "
                          f"which is a {'target' if weight in targets else 'feature'} column too")
    for option, names in (("data.target", targets), ("data.features", features or []),
                          ("data.sample_weight", [weight] if weight else [])):
        for name in names:
            if name not in available:
                separators = [mark for mark in (";", "\t", "|", ",") if len(available) == 1 and mark in available[0]]
                hint = (f" (its header reads as one column: fields separated by {separators[0]!r} need "
                        f"data.sep={separators[0]!r})" if separators else "")
                raise ConfigError(f"Invalid value for {option}: {path} has no column {name!r}; its columns are "
                                  f"{', '.join(available)}{hint}")
    chosen = list(features) if features is not None else [c for c in available if c not in targets and c != weight]
    if not chosen:
        raise ConfigError(f"Invalid value for data.features: {path} has no columns left besides the target")
    for name in one_hot:
        if name not in chosen:
            raise ConfigError(f"Invalid value for data.one_hot: expected feature columns of {path} "
                              f"({', '.join(chosen)}), got {name!r}")
    return TableColumns(chosen, targets, weight)


def to_arrays(frame: Any, path: str, columns: TableColumns, labels: Optional[List[str]] = None,
              before: int = 0) -> Tuple[np.ndarray, ...]:
    """A pandas frame as (x float32, y) arrays — (x, y, sample_weight) with a weight column —; string
    targets become class indices: their places in ``labels`` (every label of the table, sorted), or in this
    frame's own sorted labels; a one-hot feature column, one 0/1 column per category in its place."""
    from pandas.api.types import is_numeric_dtype

    features, targets, weight = columns.features, columns.targets, columns.weight
    if weight is not None and not is_numeric_dtype(frame[weight]):
        raise ConfigError(f"Invalid value for data.sample_weight: expected a numeric column, got {weight!r} "
                          f"({frame[weight].dtype}) in {path}")
    if columns.categories or not all(is_numeric_dtype(frame[c]) for c in features):
        x = np.column_stack([feature_block(frame, c, path, columns.categories, before)
                             for c in features]).astype("float32")
    else:
        x = frame[features].to_numpy(dtype="float32")
    if len(targets) == 1 and not is_numeric_dtype(frame[targets[0]]):
        labels = labels or text_labels(frame, targets)
        y = frame[targets[0]].astype(str).map({label: i for i, label in enumerate(labels)}).to_numpy("int32")
    else:
        y = frame[targets].to_numpy()
        y = y[:, 0] if len(targets) == 1 and np.issubdtype(y.dtype, np.integer) else y.astype("float32")
    return (x, y) if weight is None else (x, y, frame[weight].to_numpy(dtype="float32"))


def rows_of(path: str, count: int) -> FileRows:
    """The rows of a table's file as messages name them, as :func:`check_cells` does."""
    return FileRows(f"{path} (rows counted from 1 below the header)", count)


def feature_block(frame: Any, column: str, path: str, categories: Dict[str, List[str]], before: int = 0) -> np.ndarray:
    """A feature column as the input columns it makes, (rows, k): a number's one; a one-hot column's, one 0/1
    per category; a column of arrays of one length (a Parquet list column: an embedding per row), one per
    element. ``before``: the file's rows before ``frame`` (a chunk of it), for a message naming a row."""
    from pandas.api.types import is_numeric_dtype

    values = frame[column]
    if column in categories:
        return values.astype(str).to_numpy()[:, None] == np.asarray(categories[column])[None, :]
    if is_numeric_dtype(values):
        return values.to_numpy()[:, None]
    cells = values.to_numpy()
    if len(cells) and isinstance(cells[0], (list, tuple, np.ndarray)):
        lengths = np.array([len(cell) for cell in cells])
        if (lengths != lengths[0]).any():
            row = int(np.argmax(lengths != lengths[0]))
            raise ConfigError(f"Invalid value for data.features: expected arrays of one length in column {column!r} "
                              f"of {path}, got {lengths[0]} values in its first row and {lengths[row]} in row "
                              f"{row + 1}")
        return np.stack(cells)
    import pandas as pd

    text = np.flatnonzero(pd.to_numeric(values, errors="coerce").isna().to_numpy() & values.notna().to_numpy())
    first = f": {cells[text[0]]!r} in row {before + int(text[0]) + 1}" if len(text) else ""  # a stray cell's place
    raise ConfigError(f"Invalid value for data.features: expected numeric columns, got {column!r} ({values.dtype}"
                      f"{first}) in {path}; encode it, leave it out (data.features) or take it one-hot: "
                      f"data.one_hot=[{column}]")


def check_cells(frame: Any, key: str, path: str, features: List[str], targets: List[str],
                before: Optional[int] = None) -> None:
    """One line for the table's first empty (NaN) or infinite cell of a column used, named by its column and
    its row in the file, before the rows are shuffled: the arrays' own check
    (:func:`lossexp.data.checks.check_finite`) would name its place after the shuffle, which no row of the
    file has, and a text target's empty cell would become the class 'nan'. One column at a time, in place.
    ``before``: the rows of the file before ``frame``, one chunk of it (the line then counts no rows)."""
    first: Optional[Tuple[int, str]] = None
    bad_rows = np.zeros(len(frame), bool)
    for column in features + targets:
        values = frame[column]
        bad = values.isna().to_numpy()
        if values.dtype.kind == "f":
            bad = bad | np.isinf(values.to_numpy())
        if bad.any():
            row = int(np.argmax(bad))
            first = (row, column) if first is None or row < first[0] else first
            bad_rows |= bad
    if first is not None:
        row, column = first
        value = frame[column].iloc[row]
        got = "an empty cell" if value is None or value != value else str(value)  # the rest: inf or -inf
        count = f"; {int(bad_rows.sum())} rows have such a cell" if before is None else ""
        raise ConfigError(f"Invalid value for {key}: expected a finite value in every cell of the columns used, "
                          f"got {got} in column {column!r}, row {(before or 0) + row + 1} of {path} (rows counted "
                          f"from 1 below the header{count}: fill or drop them"
                          + (", or leave the column out: data.features)" if column in features else ")"))


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


#: the option naming each part's file
PATH_KEYS = {"train": "data.path", "validation": "data.validation_path"}


def read_table(name: str, reader: TableReader, *, path: str, target: Columns, features: Optional[List[str]],
               stream: bool, shuffle: bool, seed: int, chunk_rows: int, validation_path: Optional[str],
               sample_weight: Optional[str] = None, one_hot: Optional[Sequence[str]] = None) -> Any:
    """A table's ``(x, y)`` arrays (``(x, y, sample_weight)`` with a ``sample_weight`` column) or
    :class:`Dataset` stream — ``{"train": …, "validation": …}`` with a second file that validates — read by
    ``reader``, its options the table sources' own (keywords: each source passes them by name). A text target
    is encoded over every row of both files (a class missing from one file, or from one chunk, keeps its
    index), and so is each ``one_hot`` feature column."""
    weight, one_hot = sample_weight, list(one_hot or ())
    files = {"train": reader.open(PATH_KEYS["train"], path)}
    columns = choose(path, reader.columns(files["train"]), target, features, weight, one_hot)
    if validation_path is not None:
        files["validation"] = reader.open(PATH_KEYS["validation"], validation_path)
        choose(validation_path, reader.columns(files["validation"]), columns.targets, columns.features, weight)
    labels, scans, paths = None, {}, {"train": path, "validation": validation_path}
    if stream or validation_path is not None:  # every chunk and file encodes text alike: every row's, first
        scans, labels, columns.categories = scan_targets(reader, files, columns.targets, chunk_rows, paths, one_hot)
    if stream:
        return _parts({part: stream_of(name, paths[part], lambda start=0, file=file: reader.chunks(
            file, columns.read, chunk_rows, start), columns, scans[part], labels) for part, file in files.items()})
    # with one-hot columns, every file's frame first (their categories); else one at a time, each let go once converted
    frames = {part: reader.whole(file, columns.read) for part, file in files.items()} if one_hot and not scans else {}
    if frames:
        found = Categories(one_hot, paths)
        for part, frame in frames.items():
            found.add(frame, part)
        columns.categories = found.sorted()
    parts = {}
    for part, file in files.items():
        frame = frames.pop(part) if part in frames else reader.whole(file, columns.read)
        check_cells(frame, PATH_KEYS[part], paths[part], columns.features, columns.read[len(columns.features):])
        parts[part] = shuffled(to_arrays(frame, paths[part], columns, labels), rows_of(paths[part], len(frame)),
                               seed if shuffle and part == "train" else None)
    return _parts(parts)


def _parts(parts: Dict[str, Any]) -> Any:
    """What a table source returns: the training part alone, or both parts of a table and its validation file."""
    return parts if "validation" in parts else parts["train"]


class Categories:
    """Each ``one_hot`` column's categories as text over every row of every part read into it, so that
    every file and chunk encodes them alike (``paths``: each part's file as the config gives it); an
    empty cell is one line naming its row."""

    def __init__(self, one_hot: Sequence[str], paths: Dict[str, str]) -> None:
        self.found: Dict[str, set] = {column: set() for column in one_hot}
        self.paths = paths

    def add(self, frame: Any, part: str, before: Optional[int] = None) -> None:
        """The categories of ``frame``, rows of ``part``'s file (``before``: the rows before it, of a chunk)."""
        if not self.found:
            return
        check_cells(frame, PATH_KEYS[part], self.paths[part], list(self.found), [], before=before)
        for column, values in self.found.items():
            values.update(frame[column].astype(str).unique())

    def sorted(self) -> Dict[str, List[str]]:
        return {column: sorted(values) for column, values in self.found.items()}


@dataclass
class TargetScan:
    """What one pass over a file's target column(s) alone finds, the feature columns unparsed: its
    rows and, for a single integer or text target, each row's class — what a stream would otherwise
    be read through for, every column parsed and converted (2M rows of 50 columns), before training."""

    rows: int
    #: each row's class in the file's order, in the smallest integer type that holds them (a text
    #: label's place among the sorted labels of both files); None for other targets (floats, booleans,
    #: several columns), whose streams are not read through either
    classes: Optional[np.ndarray]
    text: bool = False


def scan_targets(reader: TableReader, files: Dict[str, Path], targets: List[str], chunk_rows: int,
                 paths: Dict[str, str], one_hot: Sequence[str] = ()
                 ) -> Tuple[Dict[str, TargetScan], Optional[List[str]], Dict[str, List[str]]]:
    """Each file's :class:`TargetScan`, in one pass over its target column(s) and its ``one_hot`` columns,
    a text target's labels, sorted, over every row of every file (None for a numeric target), and each
    ``one_hot`` column's categories (:class:`Categories`); an empty cell is one line naming its row in the
    file (``paths``: each part's file as the config gives it)."""
    from pandas.api.types import is_numeric_dtype

    seen: Dict[str, int] = {}  # a text label → its place in the order first seen, across files
    scans, categories = {}, Categories(one_hot, paths)
    read = targets + [column for column in one_hot if column not in targets]
    for part, file in files.items():
        rows, found, kinds = 0, [], set()
        for chunk in reader.chunks(file, read, chunk_rows):
            check_cells(chunk, PATH_KEYS[part], paths[part], [], targets, before=rows)
            categories.add(chunk, part, before=rows)
            rows += len(chunk)
            if len(targets) != 1:  # several columns: a regression's or one-hot rows, no classes read
                continue
            column = chunk[targets[0]]
            if not is_numeric_dtype(column):
                uniques, codes = np.unique(column.astype(str).to_numpy(), return_inverse=True)
                found.append(np.array([seen.setdefault(u, len(seen)) for u in uniques], "int64")[codes])
                kinds.add("text")
            elif isinstance(column.dtype, np.dtype) and np.issubdtype(column.dtype, np.integer):
                found.append(column.to_numpy("int64"))
                kinds.add("integer")
            else:
                kinds.add("other")
        classified = rows > 0 and len(kinds) == 1 and kinds != {"other"}
        scans[part] = TargetScan(rows, np.concatenate(found) if classified and found else None, kinds == {"text"})
    labels = sorted(seen) or None
    if labels:
        place = np.empty(len(seen), "int64")  # first-seen place → place among the sorted labels
        place[[seen[label] for label in labels]] = np.arange(len(labels))
    for scan in scans.values():
        if scan.classes is not None:
            scan.classes = compact(place[scan.classes] if scan.text else scan.classes)
    return scans, labels, categories.sorted()


def compact(classes: np.ndarray) -> np.ndarray:
    """Class indices in the smallest integer type that holds them (one is kept per row); negative
    ones (refused as labels) as they are."""
    if not len(classes) or classes.min() < 0:
        return classes
    return classes.astype(np.min_scalar_type(int(classes.max())))


def stream_of(name: str, path: str, chunks: Callable[[int], Iterator[Any]], columns: TableColumns, scan: TargetScan,
              labels: Optional[List[str]]) -> Dataset:
    """A stream of (x, y) rows — (x, y, sample_weight) with a weight column — of the table at ``path``, from
    a generator of pandas chunks from a row on (re-entrant: one pass per epoch; the validation split's from its first row); a text
    target's ``labels`` (the whole table's, so that every chunk encodes them alike). Its size, and a single
    integer or text target's classes, are the ``scan``'s of the target column: the stream is not read through
    before training."""
    import tensorflow as tf

    from lossexp.data.checks import check_labels
    from lossexp.data.dataset import enough_examples, from_stream

    first = next(chunks(0))
    first_arrays = to_arrays(first, path, columns, labels)
    sample_x, sample_y = first_arrays[:2]
    signature = (tf.TensorSpec((None, sample_x.shape[1]), tf.float32),
                 tf.TensorSpec((None, *sample_y.shape[1:]), tf.as_dtype(sample_y.dtype)),
                 *([tf.TensorSpec((None,), tf.float32)] if columns.weight else []))

    def rows_from(start: int) -> Any:
        def rows() -> Iterator[Tuple[np.ndarray, ...]]:
            # the first chunk as converted once: a pass from row 0 — the checks', the digest's, the sample's
            # first rows before training, each a new pass — parsed and converted it again (7 passes, 70,000 rows of
            # a 1M-row CSV read before the first step); the file is read from after it
            if start < len(first):
                yield first_arrays if start == 0 else tuple(array[start:] for array in first_arrays)
            rest = max(start, len(first))
            for chunk in chunks(rest) if rest < scan.rows else ():  # a table of one chunk: no more rows
                yield to_arrays(chunk, path, columns, labels, before=rest)
                rest += len(chunk)

        return tf.data.Dataset.from_generator(rows, output_signature=signature).unbatch()

    files = (rows_of(path, scan.rows),)
    if scan.classes is None:  # floats regress, one-hot rows classify: from_stream needs no pass for either
        return replace(from_stream(name, rows_from(0), size=scan.rows, seek=rows_from), files=files)
    size = enough_examples(name, scan.rows)
    lowest = int(np.argmin(scan.classes))
    check_labels(name, int(scan.classes[lowest]), f"at {files[0].name(lowest)}")
    classes = len(labels) if scan.text else int(scan.classes.max()) + 1
    return Dataset(name, "classification", stream=rows_from(0), size=size, num_outputs=classes, seek=rows_from,
                   classes=scan.classes, files=files)
