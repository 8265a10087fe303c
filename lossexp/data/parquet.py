"""A Parquet table of the user's: feature columns in, target column(s) out (see :mod:`lossexp.data.tables`)."""
from __future__ import annotations

from typing import Any, List, Optional

from lossexp.data import resolve_path
from lossexp.data.tables import Columns, choose, stream_of, to_arrays
from lossexp.errors import ConfigError
from lossexp.options import PositiveInt
from lossexp.registry import register_data


@register_data("parquet")
def parquet(path: str, target: Columns, features: Optional[List[str]] = None, stream: bool = False,
            shuffle: bool = True, seed: int = 0, chunk_rows: PositiveInt = 10000) -> Any:
    """A Parquet file (pyarrow): ``target`` names the target column(s), ``features`` the inputs
    (null: every other column).

    Read into memory and shuffled once from ``seed``, or with ``stream: true`` read ``chunk_rows``
    rows at a time through ``tf.data`` (the file's last rows validate).

    Options: ``path``; ``target``; ``features``; ``stream``; ``shuffle``; ``seed``; ``chunk_rows``.
    """
    import pyarrow.parquet as pq

    file = resolve_path("data.path", path, suffixes=(".parquet", ".pq"))
    try:
        table = pq.ParquetFile(file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Invalid value for data.path: expected a readable Parquet file, got {path!r} "
                          f"({type(exc).__name__}: {exc})") from None
    chosen, targets = choose(path, table.schema_arrow.names, target, features)
    if stream:
        def chunks() -> Any:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=chunk_rows, columns=chosen + targets):
                yield batch.to_pandas()

        return stream_of("parquet", chunks, chosen, targets, table.metadata.num_rows)
    return to_arrays(table.read(columns=chosen + targets).to_pandas(), path, chosen, targets, shuffle, seed)
