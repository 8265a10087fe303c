"""A CSV table of the user's: feature columns in, target column(s) out (see :mod:`lossexp.data.tables`)."""
from __future__ import annotations

from typing import Any, List, Optional

from lossexp.data import resolve_path
from lossexp.data.tables import Columns, choose, count_csv_rows, stream_of, to_arrays
from lossexp.errors import ConfigError
from lossexp.options import PositiveInt
from lossexp.registry import register_data


@register_data("csv")
def csv(path: str, target: Columns, features: Optional[List[str]] = None, stream: bool = False,
        shuffle: bool = True, seed: int = 0, chunk_rows: PositiveInt = 10000) -> Any:
    """A CSV file with a header row: ``target`` names the target column(s), ``features`` the inputs
    (null: every other column).

    Read into memory and shuffled once from ``seed`` (``shuffle: false`` keeps the file's order),
    or with ``stream: true`` read ``chunk_rows`` rows at a time through ``tf.data`` for files larger
    than memory (the file's last rows validate). Relative paths are relative to the project.

    Options: ``path``; ``target``; ``features``; ``stream``; ``shuffle``; ``seed``; ``chunk_rows``.
    """
    import pandas as pd

    file = resolve_path("data.path", path, suffixes=(".csv", ".txt", ".gz"))
    try:
        header = list(pd.read_csv(file, nrows=0).columns)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ConfigError(f"Invalid value for data.path: expected a readable CSV file, got {path!r} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    chosen, targets = choose(path, header, target, features)
    if stream:
        return stream_of("csv", lambda: iter(pd.read_csv(file, usecols=chosen + targets, chunksize=chunk_rows)),
                         chosen, targets, count_csv_rows(file))
    return to_arrays(pd.read_csv(file, usecols=chosen + targets), path, chosen, targets, shuffle, seed)
