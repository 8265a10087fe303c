"""Inputs and targets as one array, or a dict or list of arrays (a network of several inputs).

Every helper here takes either form and does the same to each array, so that the rest of the
package treats "one array" and "several named arrays" alike.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np


def map_arrays(function: Callable[[Any], Any], value: Any) -> Any:
    """``function`` applied to one array, or to each array of a dict or list of them."""
    if isinstance(value, dict):
        return {key: function(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [function(v) for v in value]
    return function(value)


def leaves(value: Any) -> list:
    """The arrays of one array, or of a dict or list of them, as a list."""
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]


def shapes(value: Any) -> Any:
    """The shape of one example of an array (or tensor, or spec): a tuple; a dict or list of tuples
    for a dict or list of them."""
    return map_arrays(lambda v: dims(v.shape[1:]), value)


def dims(shape: Any) -> Tuple[Optional[int], ...]:
    """A shape as a tuple of ints (None where unknown)."""
    return tuple(int(d) if d is not None else None for d in shape)


def take_rows(value: Any, rows: Any) -> Any:
    """The ``rows`` (a slice or indices) of one array, or of each array of a dict or list of them."""
    return map_arrays(lambda v: v[rows], value)


def concat_rows(first: Any, second: Any) -> Any:
    """The rows of ``second`` after those of ``first``: one array each, or dicts or lists of them of
    the same structure."""
    if isinstance(first, dict):
        return {key: np.concatenate([first[key], second[key]]) for key in first}
    if isinstance(first, (list, tuple)):
        return [np.concatenate([a, b]) for a, b in zip(first, second)]
    return np.concatenate([first, second])


def count_rows(value: Any) -> int:
    """The number of examples in one array, or in a dict or list of them."""
    return len(leaves(value)[0])


def to_numpy(value: Any) -> Any:
    """Tensors as NumPy arrays, keeping the dict or list around them."""
    return map_arrays(np.asarray, value)


def input_names(input_shapes: Any) -> str:
    """Several inputs named for a message: their names, or how many arrays a list holds."""
    return ", ".join(input_shapes) if isinstance(input_shapes, dict) else f"{len(input_shapes)} arrays"


#: the items of a dict, list or tuple that :func:`describe` names one by one
DESCRIBED = 5


def describe(value: Any) -> str:
    """What a value is, for a message: its type, or the types inside a dict, list or tuple (a long
    one by its length and the types it holds: a list of 800 rows is one phrase, not 800 words)."""
    if isinstance(value, dict):
        shown = ", ".join(f"{key!r}: {type(v).__name__}" for key, v in list(value.items())[:DESCRIBED])
        return f"a dict of {shown}" + (f", … ({len(value)} keys)" if len(value) > DESCRIBED else "")
    if isinstance(value, (list, tuple)):
        kinds = list(dict.fromkeys(type(v).__name__ for v in value))
        if len(value) <= DESCRIBED:
            return f"a {type(value).__name__} of " + ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of {len(value)} " + (f"{kinds[0]}s" if len(kinds) == 1 else
                                                                f"values ({', '.join(kinds[:DESCRIBED])})")
    return type(value).__name__
