"""What a model trains on: in-memory arrays, or a ``tf.data`` stream for data that does not fit.

A data source (a registered function, see :mod:`lossexp.data`) returns ``(x, y)`` arrays, a
``tf.data.Dataset`` of unbatched ``(x, y)`` elements, or a :class:`Dataset`; :func:`as_dataset`
turns the first two into the third, inferring the task from the targets when the source does
not declare it. The inputs ``x`` are one array, or — for a network of several inputs — a dict
of named arrays (matched to the network's ``keras.Input`` names) or a list of arrays (in the
order of its inputs). A third array, ``(x, y, sample_weight)`` (a stream of such triples), weighs
each example in the task loss and its metrics, training and validation, as Keras'
``fit(sample_weight=…)`` does; the loss components are terms of the whole batch and are not
weighted by example.

* integer targets (one per example) → ``classification`` with ``max(y) + 1`` classes;
* floating-point targets → ``regression`` with ``y.shape[-1]`` outputs (1-D targets become a column);
* a mapping of targets (one per named model output) → ``multi_output``.

Splitting keeps one rule for both forms: the validation set is the *last* ``fraction`` of the
examples in the source's order (sources shuffle once, from their seed, before that). A stream is
split with ``take``/``skip`` on its known size, so its order must not change between passes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from lossexp.errors import ConfigError, invalid_value

TASKS = ("classification", "regression", "reconstruction", "multi_output", "generation", "objective")
#: elements of a stream checked for NaN/inf before training (the guard watches the loss after)
CHECKED_ELEMENTS = 256


@dataclass
class Part:
    """One side of a split: arrays ``(x, y)`` or ``(x, y, sample_weight)`` in memory (``x`` one
    array, a dict or a list of arrays), or an unbatched stream of such elements."""

    arrays: Optional[Tuple[Any, ...]] = None
    stream: Any = None
    size: Optional[int] = None


@dataclass
class Dataset:
    """Examples plus what the model, the task loss and the trainer need to know about them."""

    name: str
    task: str
    #: in memory: inputs (a dict or list of arrays for several inputs) and targets (a mapping of
    #: targets for several outputs)
    x: Any = None
    y: Any = None
    #: in memory: one weight per example for the task loss and metrics (None: all 1)
    sample_weight: Any = None
    #: not in memory: an unbatched ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)`` in a
    #: fixed order, and its size
    stream: Any = None
    size: Optional[int] = None
    #: classes (classification), target width (regression), or per output name (multi_output)
    num_outputs: Union[int, Dict[str, int]] = 1
    #: a source's own split (e.g. Keras' directory reader); default: the last ``fraction``
    splitter: Optional[Callable[[float], Tuple[Part, Optional[Part]]]] = None
    #: generation data: scores a generator's samples every epoch (e.g. the ring's modes)
    scorer: Any = None
    extras: Dict[str, Any] = field(default_factory=dict)

    @property
    def in_memory(self) -> bool:
        return self.stream is None

    @property
    def input_shapes(self) -> Any:
        """The shape of one example's inputs: a tuple, or a dict / list of tuples for several inputs."""
        if self.in_memory:
            return shapes(self.x)
        return _map(lambda spec: _dims(spec.shape), self.stream.element_spec[0])  # unbatched: no batch axis

    @property
    def several_inputs(self) -> bool:
        return not isinstance(self.input_shapes, tuple)

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """The shape of one example's input, for a model of one input (the shipped models)."""
        if self.several_inputs:
            raise invalid_value(f"data ({self.name})", "one input array, as the shipped models take (a model of "
                                "your own takes several: it reads data.input_shapes)",
                                f"several inputs ({_input_names(self.input_shapes)})")
        return self.input_shapes

    @property
    def examples(self) -> int:
        if not self.in_memory:
            return int(self.size or 0)
        return count_rows(self.x)

    def autoencoding(self) -> "Dataset":
        """The same examples as a reconstruction task: inputs flattened, targets = inputs."""
        if self.several_inputs:
            raise invalid_value("task.type", "data with one input array to reconstruct",
                                f"reconstruction of data {self.name!r}, which has several inputs "
                                f"({_input_names(self.input_shapes)})")
        if not self.in_memory:
            import tensorflow as tf

            flat = self.stream.map(lambda x, y, *weight: (tf.reshape(x, (-1,)), tf.reshape(x, (-1,)), *weight))
            width = int(np.prod(self.input_shape))
            return replace(self, task="reconstruction", stream=flat, num_outputs=width, splitter=None)
        x = self.x.reshape(len(self.x), -1)
        return replace(self, task="reconstruction", x=x, y=x, num_outputs=x.shape[1], splitter=None)

    def split(self, fraction: float) -> Tuple[Part, Optional[Part]]:
        """(train, validation): the last ``fraction`` of the examples validate (None when 0)."""
        if self.splitter is not None:
            return self.splitter(fraction)
        n_val = int(round(self.examples * fraction))
        n_train = self.examples - n_val
        if self.in_memory:
            columns = (self.x, self.y) + ((self.sample_weight,) if self.sample_weight is not None else ())
            train = Part(arrays=tuple(take_rows(c, slice(0, n_train)) for c in columns), size=n_train)
            if n_val == 0:
                return train, None
            return train, Part(arrays=tuple(take_rows(c, slice(n_train, None)) for c in columns), size=n_val)
        train = Part(stream=self.stream.take(n_train), size=n_train)
        return train, (Part(stream=self.stream.skip(n_train), size=n_val) if n_val else None)

    def sample(self, n: int = 8) -> Tuple[Any, Any]:
        """The first ``n`` examples as arrays (for checks before training)."""
        if self.in_memory:
            return take_rows(self.x, slice(0, n)), take_rows(self.y, slice(0, n))
        batch = next(iter(self.stream.take(n).batch(n)))
        return _to_numpy(batch[0]), _to_numpy(batch[1])


def _map(function: Callable[[Any], Any], value: Any) -> Any:
    """``function`` applied to one array, or to each array of a dict or list of them."""
    if isinstance(value, dict):
        return {key: function(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [function(v) for v in value]
    return function(value)


def _leaves(value: Any) -> list:
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]


def shapes(value: Any) -> Any:
    """The shape of one example of an array (or tensor, or spec): a tuple; a dict or list of tuples
    for a dict or list of them."""
    return _map(lambda v: _dims(v.shape[1:]), value)


def _dims(shape: Any) -> Tuple[Optional[int], ...]:
    return tuple(int(d) if d is not None else None for d in shape)


def _input_names(input_shapes: Any) -> str:
    return ", ".join(input_shapes) if isinstance(input_shapes, dict) else f"{len(input_shapes)} arrays"


def take_rows(value: Any, rows: Any) -> Any:
    """The ``rows`` (a slice or indices) of one array, or of each array of a dict or list of them."""
    return _map(lambda v: v[rows], value)


def count_rows(value: Any) -> int:
    """The number of examples in one array, or in a dict or list of them."""
    return len(_leaves(value)[0])


def _to_numpy(value: Any) -> Any:
    return _map(np.asarray, value)


def _infer(y: Any) -> Tuple[str, Union[int, Dict[str, int]]]:
    """(task, num_outputs) from targets (arrays, or a mapping of arrays for several outputs)."""
    if isinstance(y, dict):
        return "multi_output", {key: _infer(v)[1] for key, v in y.items()}
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        return "classification", int(y.max()) + 1 if y.size else 1
    return "regression", int(np.prod(y.shape[1:])) if y.ndim > 1 else 1


def _check_finite(name: str, label: str, value: Any) -> None:
    if isinstance(value, (dict, list)):
        for key, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            _check_finite(name, f"{label}[{key!r}]", v)
        return
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        index = int(np.argwhere(~np.isfinite(array.reshape(len(array), -1)))[0][0])
        raise invalid_value(f"data ({name})", f"finite {label}", f"NaN/inf in {label} at example {index}")


def _column(y: Any) -> Any:
    """1-D floating-point targets as a column, so that they match a one-unit output."""
    if isinstance(y, dict):
        return {key: _column(v) for key, v in y.items()}
    y = np.asarray(y)
    return y[:, None] if y.ndim == 1 and np.issubdtype(y.dtype, np.floating) else y


def as_dataset(name: str, loaded: Any, task: Optional[str] = None) -> Dataset:
    """The :class:`Dataset` a data source returned (arrays, a stream or a Dataset), checked:
    inputs and targets agree in length and hold no NaN/inf."""
    if isinstance(loaded, Dataset):
        dataset = loaded
    elif isinstance(loaded, tuple) and len(loaded) in (2, 3):
        x, y = _inputs(name, loaded[0]), _column(loaded[1])
        lengths = {len(v) for v in _leaves(x)} | {len(v) for v in _leaves(y)}
        if len(lengths) > 1:
            raise invalid_value(f"data ({name})", "as many targets as inputs", f"lengths {sorted(lengths)}")
        weight = _sample_weight(name, loaded[2], lengths.pop()) if len(loaded) == 3 else None
        inferred, outputs = _infer(y)
        extras = {"output_tasks": {key: _infer(v)[0] for key, v in y.items()}} if isinstance(y, dict) else {}
        dataset = Dataset(name, task or inferred, x=x, y=y, sample_weight=weight, num_outputs=outputs, extras=extras)
    elif type(loaded).__module__.startswith("tensorflow") and hasattr(loaded, "element_spec"):
        dataset = from_stream(name, loaded, task)
    else:
        raise invalid_value(f"data ({name})", "(x, y) or (x, y, sample_weight) arrays, a tf.data.Dataset of "
                            "such elements or a lossexp Dataset", _describe(loaded))
    if dataset.task not in TASKS:
        raise invalid_value(f"data ({name}).task", "one of " + ", ".join(TASKS), dataset.task)
    if dataset.in_memory:
        _check_finite(name, "inputs", dataset.x)
        _check_finite(name, "targets", dataset.y)
        if dataset.examples < 2:
            raise invalid_value(f"data ({name})", "at least 2 examples", dataset.examples)
    else:
        x, y = dataset.sample(CHECKED_ELEMENTS)
        _check_finite(name, "inputs", x)
        _check_finite(name, "targets", y)
        if len(dataset.stream.element_spec) == 3:
            [first] = dataset.stream.take(CHECKED_ELEMENTS).map(lambda x, y, weight: weight).batch(CHECKED_ELEMENTS)
            _sample_weight(name, np.asarray(first), len(first))
    return dataset


def _sample_weight(name: str, weight: Any, examples: int) -> np.ndarray:
    """The sample weights as a float32 vector, checked: one per example, finite, ≥ 0, not all 0."""
    if not hasattr(weight, "shape") or np.ndim(weight) not in (1, 2) or (np.ndim(weight) == 2 and weight.shape[1] != 1):
        raise invalid_value(f"data ({name})", "sample_weight as one weight per example (shape (n,) or (n, 1))",
                            f"{_describe(weight)} of shape {np.shape(weight)}")
    weight = np.asarray(weight, dtype="float32").reshape(-1)
    if len(weight) != examples:
        raise invalid_value(f"data ({name})", f"one sample weight per example ({examples})", f"{len(weight)} weights")
    bad = np.flatnonzero(~np.isfinite(weight) | (weight < 0))
    if len(bad):
        raise invalid_value(f"data ({name})", "finite sample weights ≥ 0",
                            f"{weight[bad[0]]} at example {bad[0]}")
    if not weight.any():
        raise invalid_value(f"data ({name})", "sample weights not all 0", "all 0")
    return weight


def _inputs(name: str, x: Any) -> Any:
    """The inputs as arrays: one array, or a dict (str keys) or list of arrays for several inputs."""
    if isinstance(x, tuple):
        x = list(x)
    leaves = _leaves(x)
    named = not isinstance(x, dict) or all(isinstance(key, str) for key in x)
    if not leaves or not named or not all(hasattr(v, "shape") and np.ndim(v) >= 1 for v in leaves):
        raise invalid_value(f"data ({name})", "inputs x as one array, or a dict (by input name) or list of arrays",
                            _describe(x))
    return _map(np.asarray, x)


def _describe(x: Any) -> str:
    if isinstance(x, dict):
        return "a dict of " + ", ".join(f"{key!r}: {type(v).__name__}" for key, v in x.items())
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of " + ", ".join(type(v).__name__ for v in x)
    return type(x).__name__


def from_stream(name: str, stream: Any, task: Optional[str] = None, size: Optional[int] = None) -> Dataset:
    """A :class:`Dataset` of an unbatched ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
    elements.

    Its size is the stream's cardinality when known, else counted in one pass; a classification
    stream's classes are counted in one pass over its labels.
    """
    import tensorflow as tf

    spec = stream.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        raise invalid_value(f"data ({name})", "a tf.data.Dataset of unbatched (x, y) or (x, y, sample_weight) "
                            "elements", spec)
    if size is None:
        cardinality = int(stream.cardinality())
        size = cardinality if cardinality >= 0 else int(stream.reduce(0, lambda n, _: n + 1))
    y_spec = spec[1]
    if isinstance(y_spec, dict):
        raise invalid_value(f"data ({name})", "one target per element in a stream (several outputs: arrays)", y_spec)
    integer = y_spec.dtype.is_integer and y_spec.shape.rank in (0, 1) and (y_spec.shape.rank == 0 or y_spec.shape[0] == 1)
    task = task or ("classification" if integer else "regression")
    if task == "classification":
        outputs = int(stream.map(lambda x, y, *weight: tf.reduce_max(tf.cast(y, tf.int64))).reduce(
            tf.constant(0, tf.int64), tf.maximum)) + 1
    else:
        outputs = int(np.prod([d for d in y_spec.shape])) if y_spec.shape.rank else 1
    if size < 2:
        raise ConfigError(f"Invalid value for data ({name}): expected at least 2 examples, got {size}")
    return Dataset(name, task, stream=stream, size=size, num_outputs=outputs)
