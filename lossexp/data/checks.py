"""What a data source returned, checked and read before training: inputs, targets, sample weights.

Each check raises one line naming the data, what was expected and what came (a user's own data
source is the usual origin of the mistake, so no traceback).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from lossexp.data.file_rows import Files, example_name
from lossexp.data.structure import describe, leaves, map_arrays
from lossexp.errors import invalid_value


def infer_task(y: Any) -> Tuple[str, Union[int, Dict[str, int]]]:
    """(task, num_outputs) from targets (arrays, or a mapping of arrays for several outputs): one-hot
    or integer labels classify — integer labels of any shape: one class per example, or one per
    position (a sequence's tokens, an image's pixels) — other numbers regress."""
    if isinstance(y, dict):
        return "multi_output", {key: infer_task(v)[1] for key, v in y.items()}
    y = np.asarray(y)
    if one_hot(y):
        return "classification", int(y.shape[1])
    if np.issubdtype(y.dtype, np.integer):
        return "classification", int(y.max()) + 1 if y.size else 1
    return "regression", int(np.prod(y.shape[1:])) if y.ndim > 1 else 1


def from_pandas(value: Any) -> Any:
    """A pandas DataFrame or Series of numbers — pandas' nullable dtypes included (``Int64``,
    ``Float32``, ``boolean``: what ``convert_dtypes()`` and ``read_csv(dtype_backend=…)`` make, which
    NumPy reads as objects that Keras cannot take) — as an array of their common NumPy dtype, a
    missing value as NaN (which the finite check then names); anything else unchanged."""
    import sys

    pd = sys.modules.get("pandas")  # a DataFrame means pandas is imported: never import it here
    if pd is None or not isinstance(value, (pd.DataFrame, pd.Series)):
        return value
    dtypes = list(value.dtypes) if isinstance(value, pd.DataFrame) else [value.dtype]
    if not dtypes or not all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in dtypes):
        return value
    common = np.result_type(*[getattr(t, "numpy_dtype", t) for t in dtypes])
    if value.isna().to_numpy().any():
        return value.to_numpy(dtype=np.result_type(common, np.float32), na_value=np.nan)
    return value.to_numpy(dtype=common)


def numeric_targets(name: str, y: Any) -> Any:
    """Targets as numbers: booleans become the integer labels 0/1 (a binary or multi-label
    classifier's), text is refused naming a few of its values (Keras' losses take numbers: class
    names are encoded as integers 0…k-1 first)."""
    def numeric(value: Any) -> Any:
        value = from_pandas(value)
        array = np.asarray(value)
        if array.dtype == bool:
            return array.astype("int64")
        if array.dtype.kind == "O" and array.size and not isinstance(array.flat[0], (str, bytes)):
            array = np.asarray(array.tolist())
        if array.dtype.kind in "USO":
            shown = ", ".join(repr(v) for v in list(dict.fromkeys(array.reshape(-1)[:100].tolist()))[:3])
            raise invalid_value(f"data ({name})", "numeric targets (class names as integers 0…k-1, e.g. "
                                "np.unique(y, return_inverse=True)[1])", f"targets of text: {shown}, …")
        return value if array is value else array
    return map_arrays(numeric, y)


def check_labels(name: str, lowest: int, where: str) -> None:
    """Class labels are 0…k-1: a negative one (a padding label of -1 or -100, as other frameworks
    ignore) is refused in one line saying what to do instead."""
    if lowest < 0:
        raise invalid_value(f"data ({name})", "class labels 0…k-1 (padding: a valid label weighted 0 by sample "
                            "weights; numbers: task.type=regression or float targets)", f"{lowest} {where}")


def labels_of(y: Any) -> np.ndarray:
    """Class indices of targets: sparse labels as they are (a trailing axis of 1 dropped), one-hot
    rows by their 1."""
    y = np.asarray(y)
    if one_hot(y):
        return np.argmax(y, axis=-1)
    return y[..., 0] if y.ndim > 1 and y.shape[-1] == 1 else y


#: the share of the examples, at most, that the classes above a class without examples hold for a warning
STRAY_SHARE = 0.01


def stray_classes(labels: Optional[Any]) -> Optional[str]:
    """When some classes below the highest label have no example and the classes above the last of them
    hold under :data:`STRAY_SHARE` of the examples (a corrupt row's label 25 among 0 … 19), what a network
    built with a unit per class then gets; None otherwise (labels 0 … k-1, or a gap below classes of weight)."""
    if labels is None:
        return None
    labels = np.asarray(labels).ravel()
    if not labels.size or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        return None
    counts = np.bincount(labels)
    empty = np.flatnonzero(counts == 0)
    if not len(empty) or counts[empty[-1] + 1:].sum() >= STRAY_SHARE * labels.size:
        return None
    above = np.flatnonzero(counts[empty[-1] + 1:]) + empty[-1] + 1
    gap = f"class {empty[0]}" if len(empty) == 1 else f"class {empty[0]} … {empty[-1]}" \
        if empty[-1] - empty[0] + 1 == len(empty) else f"{len(empty)} classes up to {empty[-1]}"
    return (f"no example of {gap}, and {int(counts[above].sum())} of {labels.size} of class "
            f"{', '.join(map(str, above[:5]))}{'…' if len(above) > 5 else ''} above: its network gets "
            f"{len(counts)} outputs, a unit per class up to the highest label (a stray label?)")


def split_unlike(train: Any, validation: Any) -> Optional[str]:
    """When the validation split's labels are distributed unlike the training split's beyond chance
    (a χ² test of homogeneity, p < 1e-6: examples sorted by class, whose last ones validate), what
    each split holds; None otherwise. One label per example only (a tagger's positions are not
    independent draws)."""
    train, validation = labels_of(train), labels_of(validation)
    if train.ndim != 1 or validation.ndim != 1 or not len(validation):
        return None
    classes = int(max(train.max(), validation.max())) + 1
    table = np.stack([np.bincount(train, minlength=classes), np.bincount(validation, minlength=classes)])
    present = table[:, table.sum(axis=0) > 0].astype("float64")
    if present.shape[1] < 2:
        return None
    expected = present.sum(axis=1, keepdims=True) * present.sum(axis=0, keepdims=True) / present.sum()
    statistic, dof = float(((present - expected) ** 2 / expected).sum()), present.shape[1] - 1
    # the χ² survival function by Wilson and Hilferty's cube-root normal approximation (no SciPy import)
    z = ((statistic / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    if 0.5 * math.erfc(z / math.sqrt(2)) >= 1e-6:
        return None
    shown = lambda counts: ", ".join(f"{c}: {n}" for c, n in enumerate(counts) if n)  # noqa: E731
    return (f"training {{{shown(table[0])}}}, validation {{{shown(table[1])}}}" if classes <= 10
            else f"χ² = {statistic:.0f} on {dof} degrees of freedom")


def label_shape(y: Any) -> Tuple[int, ...]:
    """The shape of one example's class labels: () for one label (sparse, a trailing axis of 1, or a
    one-hot row), else one label per position (``(T,)`` for a sequence's tokens, ``(H, W)`` for a
    segmentation's pixels)."""
    y = np.asarray(y)
    return () if one_hot(y) else without_unit_axis(tuple(y.shape[1:]))


def without_unit_axis(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """A shape without a trailing axis of 1: Keras' losses match targets (T,) to outputs (T, 1)."""
    return shape[:-1] if shape[-1:] == (1,) else shape


def one_hot(y: np.ndarray) -> bool:
    """Whether targets are one-hot labels (``keras.utils.to_categorical``): rows of 0s and one 1."""
    return (y.ndim == 2 and y.shape[1] > 1 and len(y) > 0 and bool(np.isin(y, (0, 1)).all())
            and bool((y.sum(axis=1) == 1).all()))


#: rows of an array checked for NaN/inf at a time are at most this many bytes: ``np.isfinite`` of the whole
#: array makes a boolean copy of a quarter of its float32 size (500 MB for 2 GB of images), Keras none
FINITE_CHUNK_BYTES = 64 << 20


def check_finite(name: str, label: str, value: Any) -> None:
    """Refuses NaN or inf in floating-point ``value`` (one array, a dict or a list), naming the example;
    read in chunks of rows within :data:`FINITE_CHUNK_BYTES`."""
    if isinstance(value, (dict, list)):
        for key, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            check_finite(name, f"{label}[{key!r}]", v)
        return
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating) or not array.size:
        return
    rows = max(1, FINITE_CHUNK_BYTES // max(array[:1].nbytes, 1)) if array.ndim else 1
    for start in range(0, len(array) if array.ndim else 1, rows):
        row = first_not_finite_row(array[start:start + rows] if array.ndim else array)
        if row >= 0:
            raise invalid_value(f"data ({name})", f"finite {label}", f"NaN/inf in {label} at example {start + row}")


def first_not_finite_row(values: np.ndarray) -> int:
    """The first row (example) of floating-point ``values`` holding NaN or inf, 0 for a scalar that is
    not finite; -1 if every value is finite."""
    if not values.size:
        return -1
    if not values.ndim:
        return -1 if np.isfinite(values) else 0
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    return int(bad[0]) if bad.size else -1


def as_column(y: Any) -> Any:
    """1-D floating-point targets as a column, so that they match a one-unit output."""
    if isinstance(y, dict):
        return {key: as_column(v) for key, v in y.items()}
    y = np.asarray(y)
    return y[:, None] if y.ndim == 1 and np.issubdtype(y.dtype, np.floating) else y


def sample_weights(name: str, weight: Any, examples: int, targets: Any = None, stream: bool = False,
                   files: Optional[Files] = None) -> np.ndarray:
    """The sample weights as float32, checked: finite, ≥ 0, not all 0; one per example (a vector), or
    one per target position, shaped like ``targets`` (a tagger's weights that leave its padding out).
    One per example beside integer labels per position (``(n, T)``, ``(n, H, W)``) gets a unit axis per
    position axis, ``(n, 1)``: Keras' losses multiply the weights with their values per position (and a
    mask's), which a vector does not broadcast against. A bad weight is named by its row in ``files``, of
    examples read from files."""
    if isinstance(weight, dict) and isinstance(targets, dict):
        return output_weights(name, weight, examples, targets, stream)
    if isinstance(weight, dict):
        raise invalid_value(f"data ({name})", "sample_weight as one weight per example (weights by output name are "
                            "for targets by output name, a network of several outputs)",
                            f"weights for {', '.join(map(str, weight))} beside one array of targets")
    positions = tuple(np.shape(targets)[1:]) if targets is not None and not isinstance(targets, dict) else ()
    per_position = len(positions) > 0 and tuple(np.shape(weight)[1:]) in (positions, label_shape(targets)) \
        and np.ndim(weight) > 1 and np.shape(weight)[1:] != (1,)
    if not hasattr(weight, "shape") or not (per_position or np.ndim(weight) == 1 or np.shape(weight)[1:] == (1,)):
        shapes = " or (n, " + ", ".join(map(str, positions)) + ") like the targets" if positions else ""
        raise invalid_value(f"data ({name})", f"sample_weight as one weight per example (shape (n,) or (n, 1)"
                            f"{shapes})", f"{describe(weight)} of shape {np.shape(weight)}")
    weight = np.asarray(weight, dtype="float32")
    weight = weight if per_position else weight.reshape(-1)
    if len(weight) != examples:
        raise invalid_value(f"data ({name})", f"one sample weight per example ({examples})", f"{len(weight)} weights")
    bad = np.flatnonzero((~np.isfinite(weight) | (weight < 0)).reshape(len(weight), -1).any(axis=1))
    if len(bad):
        value = weight[bad[0]].reshape(-1)
        raise invalid_value(f"data ({name})", "finite sample weights ≥ 0",
                            f"{value[~np.isfinite(value) | (value < 0)][0]} at {example_name(files, int(bad[0]))}")
    if not weight.any():
        raise invalid_value(f"data ({name})", "sample weights not all 0", "all 0")
    labelled = positions and np.issubdtype(np.asarray(targets).dtype, np.integer) and label_shape(targets)
    return weight.reshape((len(weight),) + (1,) * len(label_shape(targets))) if labelled and not per_position \
        else weight


def output_weights(name: str, weights: dict, examples: int, targets: dict, stream: bool = False) -> dict:
    """Sample weights by output name, for targets by output name (a head whose labels are missing for
    some examples weighs them 0), as Keras' ``fit(sample_weight={output: …})`` takes them: each checked
    as one output's weights; an output not named weighs every example 1 — in arrays, which are filled;
    a ``stream``'s elements must name every output."""
    unknown = sorted(set(weights) - set(targets), key=str)
    missing = [key for key in targets if key not in weights] if stream else []
    if unknown or missing:
        raise invalid_value(f"data ({name})", f"sample weights by output name, of the outputs "
                            f"({', '.join(map(str, targets))}{': a stream names each' if stream else ''})",
                            f"a weight for {unknown[0]!r}" if unknown else f"none for {missing[0]!r}")
    return {key: sample_weights(f"{name}, sample_weight[{key!r}]", weights[key], examples, targets[key])
            if key in weights else np.ones(examples, "float32") for key in targets}


def check_example_shapes(name: str, x: Any, examples: int) -> None:
    """Refuses inputs given as one array per example of varying length (a list of sequences, or an
    object array of them), which Keras cannot stack: pad them, or stream them."""
    per_example = isinstance(x, (list, tuple)) and len(x) == examples > 1 or \
        (isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 1 and x.size and hasattr(x.flat[0], "shape"))
    if not per_example:
        return
    lengths = sorted({len(v) for v in x if hasattr(v, "__len__")})
    if len(lengths) > 1:
        raise invalid_value(f"data ({name})", "inputs of one shape per example (sequences of varying length: padded "
                            "to one, e.g. keras.utils.pad_sequences, or a tf.data stream, whose batches lossexp pads)",
                            f"{len(x)} arrays of lengths {lengths[0]} to {lengths[-1]}")


def input_arrays(name: str, x: Any) -> Any:
    """The inputs as arrays: one array, or a dict (str keys) or list of arrays for several inputs;
    text as object arrays."""
    if isinstance(x, tuple):
        x = list(x)
    arrays = leaves(x)
    named = not isinstance(x, dict) or all(isinstance(key, str) for key in x)
    if not arrays or not named or not all(hasattr(v, "shape") and np.ndim(v) >= 1 for v in arrays):
        raise invalid_value(f"data ({name})", "inputs x as one array (nested lists of numbers: np.asarray(x)), or a dict "
                            "(by input name) or list of arrays",
                            describe(x))
    return map_arrays(lambda value: _keras_array(name, value), x)


def _keras_array(name: str, value: Any) -> np.ndarray:
    """An input as an array Keras takes: text as an object array (Keras refuses NumPy's fixed-width
    ``<U…``/``S…`` dtypes that ``np.array(list_of_str)`` makes; a ``TextVectorization`` layer takes
    the same strings as objects), of one dimension (Keras' fit fails mid-run on one of more,
    ``Invalid dtype: object``); numbers held as objects (Keras converts no object array to a
    tensor) as numbers, a None among them as NaN, which the finite check names."""
    array = np.asarray(from_pandas(value))
    if array.dtype == object and array.size and isinstance(array.flat[0], numbers.Number):
        try:
            inferred = np.array(array.tolist())
            return inferred if inferred.dtype.kind in "biuf" else np.array(array.tolist(), dtype="float64")
        except (TypeError, ValueError):  # not numbers all through: Keras says what it cannot take
            return array
    if array.dtype.kind in "USO" and array.ndim > 1 and array.size and isinstance(array.flat[0], (str, bytes)):
        raise invalid_value(f"data ({name})", "text inputs of one text per example, an array of one dimension (Keras' "
                            "fit takes no array of text of more: for one text per row, x[:, 0] into keras.Input(shape=(), "
                            "dtype='string'); for several, a stream: tf.data.Dataset.from_tensor_slices((x, y)))",
                            f"text of shape {array.shape}")
    return array.astype(object) if array.dtype.kind in "US" else array
