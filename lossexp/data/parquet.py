"""A Parquet table of the user's: feature columns in, target column(s) out (see :mod:`lossexp.data.tables`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, List, Optional

from lossexp.data import resolve_path
from lossexp.data.tables import Columns, read_table
from lossexp.errors import ConfigError
from lossexp.options import PositiveInt
from lossexp.registry import register_data


#: the columns pyarrow writes for the unnamed index of a pandas frame (a filtered, sampled or shuffled frame's row
#: labels, ``df.to_parquet``): the rows' old places, not data
PANDAS_ROW_LABELS = re.compile(r"^__index_level_\d+__$")


class ParquetReader:
    """How :func:`lossexp.data.tables.read_table` reads a Parquet file (pyarrow). A pandas frame's row labels
    are no column of it; a named index (``set_index("id")``) is an ordinary column. Read without pandas'
    metadata, so that a column read is a column of the frame, never its index: a file written from a shuffled
    frame failed, ``KeyError: '__index_level_0__'``, and one with a named index took the name for a column that
    the frame read did not have."""

    def open(self, key: str, path: str) -> Path:
        import pyarrow.parquet as pq

        file = resolve_path(key, path, suffixes=(".parquet", ".pq"))
        try:
            pq.ParquetFile(file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Invalid value for {key}: expected a readable Parquet file, got {path!r} "
                              f"({type(exc).__name__}: {exc})") from None
        return file

    def columns(self, file: Path) -> List[str]:
        import pyarrow.parquet as pq

        return [name for name in pq.ParquetFile(file).schema_arrow.names if not PANDAS_ROW_LABELS.match(name)]

    def whole(self, file: Path, columns: List[str]) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(file).read(columns=columns).to_pandas(ignore_metadata=True)

    def chunks(self, file: Path, columns: List[str], chunk_rows: int, start: int = 0) -> Iterator[Any]:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(file)
        groups, before = [], 0  # the row groups from the one that holds row ``start``; the rows before them
        for group in range(table.num_row_groups):
            rows = table.metadata.row_group(group).num_rows
            if groups or before + rows > start:
                groups.append(group)
            else:
                before += rows
        skip = start - before
        for batch in table.iter_batches(batch_size=chunk_rows, columns=columns, row_groups=groups):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            yield batch.slice(skip).to_pandas(ignore_metadata=True)
            skip = 0


@register_data("parquet")
def parquet(path: str, target: Columns, features: Optional[List[str]] = None, stream: bool = False,
            shuffle: bool = True, seed: int = 0, chunk_rows: PositiveInt = 10000,
            validation_path: Optional[str] = None, sample_weight: Optional[str] = None,
            one_hot: Optional[List[str]] = None) -> Any:
    """A Parquet file (pyarrow): ``target`` names the target column(s), ``features`` the inputs
    (null: every other column).

    Read into memory and shuffled once from ``seed``, or with ``stream: true`` read ``chunk_rows``
    rows at a time through ``tf.data`` (the file's last rows validate). ``validation_path``: a second
    file of the same columns that validates instead. ``sample_weight`` names a column of one weight per row
    (no feature): it weighs the rows in the task loss and the metrics, as Keras' ``fit(sample_weight=…)``.
    ``one_hot`` names feature columns of categories (text, or numbers that are codes) taken as one 0/1 column
    per category, the categories sorted over every row.

    Options: ``path``; ``target``; ``features``; ``stream``; ``shuffle``; ``seed``; ``chunk_rows``;
    ``validation_path``; ``sample_weight``; ``one_hot``.
    """
    return read_table("parquet", ParquetReader(), path=path, target=target, features=features, stream=stream,
                      shuffle=shuffle, seed=seed, chunk_rows=chunk_rows, validation_path=validation_path,
                      sample_weight=sample_weight, one_hot=one_hot)
