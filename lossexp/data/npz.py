"""Arrays from a NumPy ``.npz`` file of the user's: inputs and targets under keys they name."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple, Union

import numpy as np

from lossexp.data import resolve_path
from lossexp.data.checks import check_finite
from lossexp.errors import ConfigError
from lossexp.registry import register_data


@register_data("npz")
def npz(path: str, x: str = "x", y: Union[str, List[str]] = "y", shuffle: bool = True, seed: int = 0,
        validation_x: Optional[str] = None, validation_y: Optional[Union[str, List[str]]] = None) -> Any:
    """A ``.npz`` archive (``np.savez``): inputs under key ``x``, targets under ``y``, read into memory.

    ``y`` may name several arrays (``y: [age, income]``): a model with one output per name (its
    output layers named alike) trains on each. The task follows the targets (integers:
    classification, floats: regression) unless ``task.type`` says otherwise. Rows are shuffled
    once from ``seed`` before the train/validation split (``shuffle: false`` keeps the file's order,
    so its last rows validate). ``validation_x`` and ``validation_y`` name a validation set of the
    archive's own (Keras' ``mnist.npz``: ``x_test``, ``y_test``), which then validates in place of
    the last rows. Relative paths are relative to the project directory.

    Options: ``path``; ``x``; ``y``; ``shuffle``; ``seed``; ``validation_x``; ``validation_y``.
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
    inputs, targets = arrays(archive, path, keys, x, y, "data.x", "data.y")
    # NaN/inf named by its row in the file, before the shuffle (after it, the data's own check would name a
    # place no row of the file has)
    check_finite("npz", f"array {x!r} of {path}", inputs)
    check_finite("npz", f"array {y!r} of {path}" if isinstance(y, str) else f"targets of {path}", targets)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(inputs))
        inputs = inputs[order]
        targets = {k: v[order] for k, v in targets.items()} if isinstance(targets, dict) else targets[order]
    if validation_x is None:
        return inputs, targets
    held_out = arrays(archive, path, keys, validation_x, validation_y, "data.validation_x", "data.validation_y")
    return {"train": (inputs, targets), "validation": held_out}


def arrays(archive: Any, path: str, keys: List[str], x: str, y: Union[str, List[str]], x_option: str,
           y_option: str) -> Tuple[Any, Any]:
    """(inputs, targets) under the keys named (a dict of targets for several), each checked to exist."""
    wanted = [x] + ([y] if isinstance(y, str) else list(y))
    for option, key in zip([x_option] + [y_option] * (len(wanted) - 1), wanted):
        if key not in keys:
            raise ConfigError(f"Invalid value for {option}: {path} has no array {key!r}; its arrays are "
                              f"{', '.join(keys) or '(none)'}")
    loaded = {}
    for option, key in zip([x_option] + [y_option] * (len(wanted) - 1), wanted):
        try:
            loaded[key] = archive[key]
        except ValueError as exc:  # an array of Python objects: rows of different lengths, mixed types
            if "allow_pickle" not in str(exc):
                raise
            raise ConfigError(f"Invalid value for {option}: expected an array of numbers or of text, got {key!r} of "
                              f"{path}, an array of Python objects (rows of different lengths?), which lossexp "
                              "does not unpickle; pad its rows to one length") from None
    return loaded[x], (loaded[y] if isinstance(y, str) else {key: loaded[key] for key in y})
