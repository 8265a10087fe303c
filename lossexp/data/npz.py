"""Arrays from a NumPy ``.npz`` file of the user's: inputs and targets under keys they name."""
from __future__ import annotations

from typing import List, Union

import numpy as np

from lossexp.data import resolve_path
from lossexp.errors import ConfigError
from lossexp.registry import register_data


@register_data("npz")
def npz(path: str, x: str = "x", y: Union[str, List[str]] = "y", shuffle: bool = True, seed: int = 0) -> tuple:
    """A ``.npz`` archive (``np.savez``): inputs under key ``x``, targets under ``y``, read into memory.

    ``y`` may name several arrays (``y: [age, income]``): a model with one output per name (its
    output layers named alike) trains on each. The task follows the targets (integers:
    classification, floats: regression) unless ``task.type`` says otherwise. Rows are shuffled
    once from ``seed`` before the train/validation split (``shuffle: false`` keeps the file's order,
    so its last rows validate). Relative paths are relative to the project directory.

    Options: ``path``; ``x``; ``y``; ``shuffle``; ``seed``.
    """
    file = resolve_path("data.path", path, suffixes=(".npz",))
    try:
        archive = np.load(file, allow_pickle=False)
        keys = list(archive.files)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Invalid value for data.path: expected a readable .npz archive, got {path!r} "
                          f"({type(exc).__name__}: {exc})") from None
    wanted = [x] + ([y] if isinstance(y, str) else list(y))
    for option, key in zip(["data.x"] + ["data.y"] * (len(wanted) - 1), wanted):
        if key not in keys:
            raise ConfigError(f"Invalid value for {option}: {path} has no array {key!r}; its arrays are "
                              f"{', '.join(keys) or '(none)'}")
    inputs = archive[x]
    targets = archive[y] if isinstance(y, str) else {key: archive[key] for key in y}
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(inputs))
        inputs = inputs[order]
        targets = {k: v[order] for k, v in targets.items()} if isinstance(targets, dict) else targets[order]
    return inputs, targets
