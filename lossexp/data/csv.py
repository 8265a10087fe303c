"""A CSV table of the user's: feature columns in, target column(s) out (see :mod:`lossexp.data.tables`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List, Optional

from lossexp.data import resolve_path
from lossexp.data.tables import Columns, read_table
from lossexp.errors import ConfigError
from lossexp.options import PositiveInt
from lossexp.registry import register_data


class CsvReader:
    """How :func:`lossexp.data.tables.read_table` reads a CSV file with a header row (pandas), its fields
    separated by ``sep`` and its numbers' decimal mark ``decimal`` (``;`` and ``,`` in many locales)."""

    def __init__(self, sep: str = ",", decimal: str = ".") -> None:
        # a command line's data.sep='\t' arrives as a backslash and a t, which pandas would take for a
        # regular expression (its slow Python parser, a warning per read)
        self.format = {"sep": "\t" if sep == "\\t" else sep, "decimal": decimal}

    def open(self, key: str, path: str) -> Path:
        import pandas as pd

        file = resolve_path(key, path, suffixes=(".csv", ".tsv", ".txt", ".gz"))
        try:
            pd.read_csv(file, nrows=0, **self.format)
        except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ConfigError(f"Invalid value for {key}: expected a readable CSV file, got {path!r} "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        return file

    def columns(self, file: Path) -> List[str]:
        import pandas as pd

        return list(pd.read_csv(file, nrows=0, **self.format).columns)

    def whole(self, file: Path, columns: List[str]) -> Any:
        import warnings

        import pandas as pd

        with warnings.catch_warnings():  # a column of numbers and text: lossexp's line names it, and its first text
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(file, usecols=columns, **self.format)

    def chunks(self, file: Path, columns: List[str], chunk_rows: int, start: int = 0) -> Iterator[Any]:
        import pandas as pd

        skipped = (lambda line: 0 < line <= start) if start else None  # lines found, not parsed into numbers
        return iter(pd.read_csv(file, usecols=columns, chunksize=chunk_rows, skiprows=skipped, **self.format))


@register_data("csv")
def csv(path: str, target: Columns, features: Optional[List[str]] = None, stream: bool = False,
        shuffle: bool = True, seed: int = 0, chunk_rows: PositiveInt = 10000,
        validation_path: Optional[str] = None, sep: str = ",", decimal: str = ".",
        sample_weight: Optional[str] = None,
        one_hot: Optional[List[str]] = None) -> Any:
    """A CSV file with a header row: ``target`` names the target column(s), ``features`` the inputs
    (null: every other column); ``sep`` separates its fields and ``decimal`` marks its numbers' decimals
    (``sep: ";"``, ``decimal: ","`` for many European locales' files; ``sep: "\\t"`` for tabs).

    Read into memory and shuffled once from ``seed`` (``shuffle: false`` keeps the file's order),
    or with ``stream: true`` read ``chunk_rows`` rows at a time through ``tf.data`` for files larger
    than memory (the file's last rows validate). ``validation_path``: a second file of the same
    columns that validates instead. ``sample_weight`` names a column of one weight per row (no feature):
    it weighs the rows in the task loss and the metrics, as Keras' ``fit(sample_weight=…)``. ``one_hot`` names
    feature columns of categories (text, or numbers that are codes) taken as one 0/1 column per category, the
    categories sorted over every row. Relative paths are relative to the project.

    Options: ``path``; ``target``; ``features``; ``stream``; ``shuffle``; ``seed``; ``chunk_rows``;
    ``validation_path``; ``sep``; ``decimal``; ``sample_weight``; ``one_hot``.
    """
    return read_table("csv", CsvReader(sep, decimal), path=path, target=target, features=features, stream=stream,
                      shuffle=shuffle, seed=seed, chunk_rows=chunk_rows, validation_path=validation_path,
                      sample_weight=sample_weight, one_hot=one_hot)
