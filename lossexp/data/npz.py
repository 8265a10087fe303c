"""Arrays from a NumPy ``.npz`` file of the user's: inputs and targets under keys they name."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import numpy as np

from lossexp.data import resolve_path
from lossexp.data.checks import check_finite
from lossexp.data.file_rows import FileRows, FromFile, shuffled
from lossexp.errors import ConfigError
from lossexp.registry import register_data


@register_data("npz")
def npz(path: str, x: str = "x", y: Union[str, List[str]] = "y", shuffle: bool = True, seed: int = 0,
        validation_x: Optional[str] = None, validation_y: Optional[Union[str, List[str]]] = None,
        sample_weight: Optional[str] = None, validation_sample_weight: Optional[str] = None) -> Any:
    """A ``.npz`` archive (``np.savez``): inputs under key ``x``, targets under ``y``, read into memory.

    ``y`` may name several arrays (``y: [age, income]``): a model with one output per name (its
    output layers named alike) trains on each. The task follows the targets (integers:
    classification, floats: regression) unless ``task.type`` says otherwise. Rows are shuffled
    once from ``seed`` before the train/validation split (``shuffle: false`` keeps the file's order,
    so its last rows validate). ``validation_x`` and ``validation_y`` name a validation set of the
    archive's own (Keras' ``mnist.npz``: ``x_test``, ``y_test``), which then validates in place of
    the last rows. ``sample_weight`` names an array of one weight per row (``validation_sample_weight``: the
    validation set's), which weighs them in the task loss and the metrics as Keras'
    ``fit(sample_weight=…)``. Relative paths are relative to the project directory.

    Options: ``path``; ``x``; ``y``; ``shuffle``; ``seed``; ``validation_x``; ``validation_y``;
    ``sample_weight``; ``validation_sample_weight``.
    """
    file = resolve_path("data.path", path, suffixes=(".npz",))
    try:
        archive = np.load(file, allow_pickle=False)
        keys = list(archive.files)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Invalid value for data.path: expected a readable .npz archive, got {path!r} "
                          f"({type(exc).__name__}: {exc})") from None
    if (validation_x is None) != (validation_y is None):
        given, missing = ("validation_x", "validation_y") if validation_y is None else ("validation_y", "validation_x")
        raise ConfigError(f"Invalid value for data.{missing}: expected the key of the validation "
                          f"{'targets' if missing.endswith('y') else 'inputs'} beside data.{given}, got null")
    if validation_sample_weight is not None and validation_x is None:
        raise ConfigError("Invalid value for data.validation_sample_weight: expected it beside data.validation_x "
                          f"and data.validation_y (the validation set it weighs), got {validation_sample_weight!r}")
    rows = arrays(archive, path, keys, x, y, "data.x", "data.y", sample_weight, "data.sample_weight")
    # NaN/inf named by its row in the file, before the shuffle (after it, the data's own check would name a
    # place no row of the file has)
    check_finite("npz", f"array {x!r} of {path}", rows[0])
    check_finite("npz", f"array {y!r} of {path}" if isinstance(y, str) else f"targets of {path}", rows[1])
    rows = shuffled(rows, FileRows(f"{path}'s arrays", len(rows[0]), unit="index", first=0),
                    seed if shuffle else None)
    if validation_x is None:
        return rows
    held_out = arrays(archive, path, keys, validation_x, validation_y, "data.validation_x", "data.validation_y",
                      validation_sample_weight, "data.validation_sample_weight")
    return {"train": rows, "validation": FromFile(held_out, FileRows(f"{path}'s validation arrays", len(held_out[0]),
                                                                     unit="index", first=0))}


def arrays(archive: Any, path: str, keys: List[str], x: str, y: Union[str, List[str]], x_option: str,
           y_option: str, weight: Optional[str] = None, weight_option: str = "") -> Tuple[Any, ...]:
    """(inputs, targets) under the keys named (a dict of targets for several), each checked to exist; (inputs,
    targets, sample weights) with ``weight``, the key of one weight per row."""
    wanted = [x] + ([y] if isinstance(y, str) else list(y))
    options = [x_option] + [y_option] * (len(wanted) - 1)
    if weight is not None:
        wanted, options = wanted + [weight], options + [weight_option]
    for option, key in zip(options, wanted):
        if key not in keys:
            raise ConfigError(f"Invalid value for {option}: {path} has no array {key!r}; its arrays are "
                              f"{', '.join(keys) or '(none)'}")
    loaded = {}
    for option, key in zip(options, wanted):
        try:
            loaded[key] = archive[key]
        except ValueError as exc:  # an array of Python objects: rows of different lengths, mixed types
            if "allow_pickle" not in str(exc):
                raise
            raise ConfigError(f"Invalid value for {option}: expected an array of numbers or of text, got {key!r} of "
                              f"{path}, an array of Python objects (rows of different lengths?), which lossexp "
                              "does not unpickle; pad its rows to one length") from None
    for option, key in zip(options[1:], wanted[1:]):  # before the shuffle, whose order would index past the shorter
        if np.ndim(loaded[x]) and (np.ndim(loaded[key]) == 0 or len(loaded[key]) != len(loaded[x])):
            rows = f"{len(loaded[key])} rows" if np.ndim(loaded[key]) else "a scalar"
            raise ConfigError(f"Invalid value for {option}: expected as many rows as array {x!r} ({len(loaded[x])}), "
                              f"got {rows} in array {key!r} of {path}")
    targets = loaded[y] if isinstance(y, str) else {key: loaded[key] for key in y}
    return (loaded[x], targets) if weight is None else (loaded[x], targets, loaded[weight])
