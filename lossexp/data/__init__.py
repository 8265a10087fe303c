"""Data sources, one module per source; each is a function registered with
:func:`lossexp.register_data` whose keyword parameters are its options (``conf/data/<name>.yaml``).

Shipped: scikit-learn's digits and the recipes' synthetic sets (generated from a seed), and
generic readers for the user's own files — ``npz``, ``csv``, ``parquet``, ``images`` (a directory
of class folders). Nothing is downloaded. A source returns arrays, a ``tf.data`` stream, a Keras
``PyDataset`` of batches or a :class:`Dataset`; :func:`load` makes it a checked :class:`Dataset`
(see :mod:`lossexp.data.dataset`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lossexp.data.dataset import Dataset, Part, as_dataset
from lossexp.errors import ConfigError

__all__ = ["Dataset", "Part", "load", "resolve_path"]


def load(selection: Any) -> Dataset:
    """The checked :class:`Dataset` of a validated ``data:`` selection (name + options).

    A source that raises is one line naming it (the user's own code included), also when its
    stream fails as it is first read (a ``tf.data`` generator or ``py_function`` of the project's).
    """
    from lossexp import registry
    from lossexp.project import user_code_errors

    entry = registry.get("data", selection.name)
    loaded = registry.build("data", selection)
    try:
        with user_code_errors(f"reading data {selection.name!r}"):
            return as_dataset(selection.name, loaded, entry.meta.get("task"))
    except ConfigError as error:
        where = defined_at(entry.target) if entry.origin != "lossexp" else None
        if where is None or not str(error).startswith(f"Invalid value for data ({selection.name})"):
            raise
        raise ConfigError(f"{error} (returned by {selection.name}() of {where})") from None


def defined_at(source: Any) -> Any:
    """``file.py:12``, where a data source of the user's is defined (None when it has no Python code:
    a message about what it returned then names only the source)."""
    import linecache

    code = getattr(source, "__code__", None)
    if code is None:
        return None
    line = code.co_firstlineno  # its first decorator's line: the def's is after them
    while linecache.getline(code.co_filename, line).lstrip().startswith("@"):
        line += 1
    return f"{code.co_filename}:{line}"


def resolve_path(key: str, path: str, suffixes: tuple = (), directory: bool = False) -> Path:
    """``path`` relative to the user's project (else the working directory), which must exist."""
    from lossexp import project

    found = project.current()
    base = found.root if found is not None else Path.cwd()
    resolved = (base / path).expanduser() if not Path(path).is_absolute() else Path(path)
    kind = "directory" if directory else "file"
    if not (resolved.is_dir() if directory else resolved.is_file()):
        raise ConfigError(f"Invalid value for {key}: expected an existing {kind}"
                          f"{' (' + ', '.join(suffixes) + ')' if suffixes else ''}, got {path!r} "
                          f"(looked for {resolved})")
    if suffixes and resolved.suffix.lower() not in suffixes:
        raise ConfigError(f"Invalid value for {key}: expected a {'/'.join(suffixes)} file, got {path!r}")
    return resolved
