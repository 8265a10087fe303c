"""What a model trains on: in-memory arrays, or a ``tf.data`` stream for data that does not fit.

A data source (a registered function, see :mod:`lossexp.data`) returns ``(x, y)`` arrays, a
``tf.data.Dataset`` of unbatched ``(x, y)`` elements, or a :class:`Dataset`; :func:`as_dataset`
turns the first two into the third, inferring the task from the targets when the source does
not declare it:

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
    """One side of a split: arrays ``(x, y)`` in memory, or an unbatched stream of ``(x, y)``."""

    arrays: Optional[Tuple[Any, Any]] = None
    stream: Any = None
    size: Optional[int] = None


@dataclass
class Dataset:
    """Examples plus what the model, the task loss and the trainer need to know about them."""

    name: str
    task: str
    #: in memory: inputs and targets (a mapping of targets for several outputs)
    x: Any = None
    y: Any = None
    #: not in memory: an unbatched ``tf.data.Dataset`` of ``(x, y)`` in a fixed order, and its size
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
    def input_shape(self) -> Tuple[int, ...]:
        if self.in_memory:
            return tuple(self.x.shape[1:])
        spec = self.stream.element_spec[0]
        return tuple(int(d) if d is not None else None for d in spec.shape)

    @property
    def examples(self) -> int:
        return len(self.x) if self.in_memory else int(self.size or 0)

    def autoencoding(self) -> "Dataset":
        """The same examples as a reconstruction task: inputs flattened, targets = inputs."""
        if not self.in_memory:
            import tensorflow as tf

            flat = self.stream.map(lambda x, y: (tf.reshape(x, (-1,)), tf.reshape(x, (-1,))))
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
            train = Part(arrays=(_rows(self.x, slice(0, n_train)), _rows(self.y, slice(0, n_train))), size=n_train)
            if n_val == 0:
                return train, None
            return train, Part(arrays=(_rows(self.x, slice(n_train, None)), _rows(self.y, slice(n_train, None))),
                               size=n_val)
        train = Part(stream=self.stream.take(n_train), size=n_train)
        return train, (Part(stream=self.stream.skip(n_train), size=n_val) if n_val else None)

    def sample(self, n: int = 8) -> Tuple[Any, Any]:
        """The first ``n`` examples as arrays (for checks before training)."""
        if self.in_memory:
            return _rows(self.x, slice(0, n)), _rows(self.y, slice(0, n))
        batch = next(iter(self.stream.take(n).batch(n)))
        return _to_numpy(batch[0]), _to_numpy(batch[1])


def _rows(value: Any, rows: slice) -> Any:
    if isinstance(value, dict):
        return {key: v[rows] for key, v in value.items()}
    return value[rows]


def _to_numpy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: np.asarray(v) for key, v in value.items()}
    return np.asarray(value)


def _infer(y: Any) -> Tuple[str, Union[int, Dict[str, int]]]:
    """(task, num_outputs) from targets (arrays, or a mapping of arrays for several outputs)."""
    if isinstance(y, dict):
        return "multi_output", {key: _infer(v)[1] for key, v in y.items()}
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        return "classification", int(y.max()) + 1 if y.size else 1
    return "regression", int(np.prod(y.shape[1:])) if y.ndim > 1 else 1


def _check_finite(name: str, label: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
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
    elif isinstance(loaded, tuple) and len(loaded) == 2:
        x, y = loaded
        if isinstance(x, dict) or not hasattr(x, "shape"):
            raise invalid_value(f"data ({name})", "inputs x as one array", type(x).__name__)
        y = _column(y)
        lengths = {len(x)} | ({len(v) for v in y.values()} if isinstance(y, dict) else {len(y)})
        if len(lengths) > 1:
            raise invalid_value(f"data ({name})", "as many targets as inputs", f"lengths {sorted(lengths)}")
        inferred, outputs = _infer(y)
        extras = {"output_tasks": {key: _infer(v)[0] for key, v in y.items()}} if isinstance(y, dict) else {}
        dataset = Dataset(name, task or inferred, x=np.asarray(x), y=y, num_outputs=outputs, extras=extras)
    elif type(loaded).__module__.startswith("tensorflow") and hasattr(loaded, "element_spec"):
        dataset = from_stream(name, loaded, task)
    else:
        raise invalid_value(f"data ({name})", "(x, y) arrays, a tf.data.Dataset of (x, y) or a lossexp Dataset",
                            type(loaded).__name__)
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
    return dataset


def from_stream(name: str, stream: Any, task: Optional[str] = None, size: Optional[int] = None) -> Dataset:
    """A :class:`Dataset` of an unbatched ``tf.data.Dataset`` of ``(x, y)`` elements.

    Its size is the stream's cardinality when known, else counted in one pass; a classification
    stream's classes are counted in one pass over its labels.
    """
    import tensorflow as tf

    spec = stream.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise invalid_value(f"data ({name})", "a tf.data.Dataset of unbatched (x, y) elements", spec)
    if size is None:
        cardinality = int(stream.cardinality())
        size = cardinality if cardinality >= 0 else int(stream.reduce(0, lambda n, _: n + 1))
    y_spec = spec[1]
    if isinstance(y_spec, dict):
        raise invalid_value(f"data ({name})", "one target per element in a stream (several outputs: arrays)", y_spec)
    integer = y_spec.dtype.is_integer and y_spec.shape.rank in (0, 1) and (y_spec.shape.rank == 0 or y_spec.shape[0] == 1)
    task = task or ("classification" if integer else "regression")
    if task == "classification":
        outputs = int(stream.map(lambda x, y: tf.reduce_max(tf.cast(y, tf.int64))).reduce(
            tf.constant(0, tf.int64), tf.maximum)) + 1
    else:
        outputs = int(np.prod([d for d in y_spec.shape])) if y_spec.shape.rank else 1
    if size < 2:
        raise ConfigError(f"Invalid value for data ({name}): expected at least 2 examples, got {size}")
    return Dataset(name, task, stream=stream, size=size, num_outputs=outputs)
