"""What a model trains on: in-memory arrays, or a ``tf.data`` stream for data that does not fit.

A data source (a registered function, see :mod:`lossexp.data`) returns ``(x, y)`` arrays, a
``tf.data.Dataset`` of ``(x, y)`` elements (a batched one is unbatched: lossexp batches by
``trainer.batch_size``), a ``keras.utils.PyDataset`` of ``(x, y)`` batches
(:mod:`lossexp.data.batches`), or a :class:`Dataset`; :func:`as_dataset` turns the others
into the last, inferring the task from the targets when the source does
not declare it. The inputs ``x`` are one array, or — for a network of several inputs — a dict
of named arrays (matched to the network's ``keras.Input`` names) or a list of arrays (in the
order of its inputs). A third array, ``(x, y, sample_weight)`` (a stream of such triples), weighs
each example (or each target position, shaped like the targets) in the task loss and its metrics,
training and validation, as Keras'
``fit(sample_weight=…)`` does; the loss components are terms of the whole batch and are not
weighted by example.

* integer targets (one per example, or one per position: a tagger's tokens, a segmentation's
  pixels) or one-hot rows → ``classification`` with ``max(y) + 1`` (the rows' width) classes;
* floating-point targets → ``regression`` with ``y.shape[-1]`` outputs (1-D targets become a column);
* a mapping of targets (one per named model output) → ``multi_output``.

Splitting keeps one rule for both forms: the validation set is the *last* ``fraction`` of the
examples in the source's order (sources shuffle once, from their seed, before that). A stream is
split with ``take``/``skip`` on its known size, so its order must not change between passes.
A source with a validation set of its own returns ``{"train": …, "validation": …}`` (two of the
forms above; arrays beside a stream are streamed): they are checked and read as one set whose last
examples, the validation set's, always validate (``trainer.validation_split`` 0: none validate).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from lossexp.data.batches import counted_batches, is_py_dataset, stream_of_batches
from lossexp.data.checks import (as_column, check_example_shapes, check_finite, check_labels, infer_task,
                                 input_arrays, labels_of, numeric_targets, one_hot, sample_weights)
from lossexp.data.digest import rows_digest
from lossexp.data.file_rows import Files, FromFile, example_name
from lossexp.data.structure import (concat_rows, count_rows, describe, dims, input_names, leaves, map_arrays, shapes,
                                    take_rows, to_numpy)
from lossexp.data.streams import (READ_BATCH, READ_BYTES, FloatTargets, batch_size_of, batches, dense_elements,
                                  elements_within, padded_when_batched, read_pass, read_through, repeated, repeats_forever,
                                  reshuffles, unbatched, varying_length)
from lossexp.errors import ConfigError, invalid_value

TASKS = ("classification", "regression", "reconstruction", "multi_output", "generation", "objective")
#: what a message adds for inputs given without targets
RECONSTRUCT = " — inputs alone: to reconstruct them (an autoencoder), give them as their targets, (x, x)"
#: elements of a stream checked for NaN/inf before training (the guard watches the loss after)
CHECKED_ELEMENTS = 256
#: a stream's first examples kept once read by :meth:`Dataset.sample` (the checks' forward passes take 8)
SAMPLE_KEPT = 8
#: a stream → (how many of its first examples are kept, their inputs, their targets)
_samples: "weakref.WeakKeyDictionary[Any, Tuple[int, Any, Any]]" = weakref.WeakKeyDictionary()
#: a stream's first :data:`CHECKED_ELEMENTS` targets, kept by :func:`checked` from the elements it read when they are
#: floats of at most :data:`FIRST_TARGETS_BYTES` (what tells float class labels, and a target sorted: read once)
_first_targets: "weakref.WeakKeyDictionary[Any, np.ndarray]" = weakref.WeakKeyDictionary()
FIRST_TARGETS_BYTES = 1 << 18


@dataclass
class Part:
    """One side of a split: arrays ``(x, y)`` or ``(x, y, sample_weight)`` in memory (``x`` one
    array, a dict or a list of arrays), or an unbatched stream of such elements."""

    arrays: Optional[Tuple[Any, ...]] = None
    stream: Any = None
    size: Optional[int] = None
    #: a stream part cut from another: (that stream, the index of this part's first element) — a
    #: part cut from its middle reaches its own first element only by reading every one before it
    origin: Optional[Tuple[Any, int]] = None
    #: a stream part's function of each batch ``(x, y[, sample_weight])``, applied once it is batched:
    #: tf.data spends about 24 µs calling a function per element, on any element
    batch_map: Optional[Callable[..., Any]] = None
    #: a stream part's class per example, as its source read them (see :attr:`Dataset.classes`)
    classes: Optional[np.ndarray] = None
    #: the digest of the first elements of the stream it was cut from (its ``origin``'s, else its own), as
    #: the checks read them (see :attr:`Dataset.first_rows`); None: not read
    first_rows: Optional[str] = None


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
    #: a source's own validation set: the last this many examples (None: the last ``fraction``)
    held_out: Optional[int] = None
    #: in memory, a source's own validation set's inputs, kept apart from ``x`` (the training inputs;
    #: ``y`` and ``sample_weight`` hold both sets' rows): joined, both sets' inputs were copied before the
    #: first step — 2 GB more at the peak than Keras' ``fit(validation_data=…)`` beside 2 GB of images
    held_out_x: Any = None
    #: a stream's examples from index k on, reached without reading the k before it (a table read from
    #: its row k, a ``PyDataset`` from its batch): what validates, where ``stream.skip(k)`` would read —
    #: decode, parse — every training example first. Its elements are the stream's, in the same order
    seek: Optional[Callable[[int], Any]] = None
    #: the size of the batches the source gave (a batched ``tf.data`` stream, a ``PyDataset``), whose
    #: examples lossexp batches again: ``lossexp.fit`` trains by it unless ``trainer.batch_size`` is given
    batch_size: Optional[int] = None
    #: a classification stream's class per example, in its order, when its source read them without
    #: reading the stream (a table's target column, read alone) or :meth:`with_labels_read` read them for
    #: class weights: these count them, where counting the stream's would parse and convert (decode) every
    #: training example once more before training
    classes: Optional[np.ndarray] = None
    #: a stream's float targets as the pass that counted it read them (see :class:`FloatTargets`): taken as
    #: class labels (Keras' ``label_mode="binary"``), they are checked without reading the stream again
    float_targets: Optional[FloatTargets] = None
    #: a classification stream of known length whose integer labels were not all read: its classes are its
    #: first :data:`CHECKED_ELEMENTS` labels' highest + 1, the rest checked as it trains
    #: (:mod:`lossexp.data.label_check`), or read by :meth:`with_labels_read` where all are needed; of
    #: targets by output name, the outputs ``extras["unread_keys"]`` names
    unread_labels: bool = False
    #: a stream's first :data:`CHECKED_ELEMENTS` elements as arrays, read once by the source's reading
    #: (:func:`from_stream`) for both its first labels and :func:`checked`'s checks, which drops them
    head: Optional[Tuple[Any, ...]] = None
    #: the digest of a stream's first :data:`CHECKED_ELEMENTS` elements (:func:`lossexp.data.digest.rows_digest`),
    #: taken by :func:`checked` as it reads them: the run's dataset digest, which reads the stream no further
    first_rows: Optional[str] = None
    #: a classification stream's first class labels (one per example), as :func:`checked` read them: what
    #: tells a stream that shuffles itself in runs of a class (:func:`lossexp.training.epoch_order.in_runs`)
    first_labels: Optional[np.ndarray] = None
    #: the run's ``trainer.validation_split``, set for the model builder (None: not a run's; read as 0), so
    #: that it reaches the examples that train (:meth:`training`) without knowing the run's config
    validation_split: Optional[float] = None
    #: where each example is in the user's file(s) (:mod:`lossexp.data.file_rows`), its training file's and then
    #: its validation file's: a message about an example names its row there (None: ``example 37``)
    files: Optional[Files] = None
    #: generation data: scores a generator's samples every epoch (e.g. the ring's modes)
    scorer: Any = None
    extras: Dict[str, Any] = field(default_factory=dict)

    def example_name(self, index: int) -> str:
        """``row 6 of data.csv (…)`` for an example read from a file, else ``example 37``, or ``example 3 of
        the validation set`` of a source's own (``validation_data``): how a message names the example
        ``index`` (of the training examples, then the held-out ones)."""
        trained = self.examples - self.held_out if self.held_out and (self.in_memory or self.size) else None
        if self.files or trained is None or index < trained:
            return example_name(self.files, index)
        return f"example {index - trained} of the validation set"

    @property
    def in_memory(self) -> bool:
        return self.stream is None

    @property
    def input_shapes(self) -> Any:
        """The shape of one example's inputs: a tuple, or a dict / list of tuples for several inputs."""
        if self.in_memory:
            return shapes(self.x)
        return map_arrays(lambda spec: dims(spec.shape), self.stream.element_spec[0])  # unbatched: no batch axis

    @property
    def several_inputs(self) -> bool:
        return not isinstance(self.input_shapes, tuple)

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """The shape of one example's input, for a model of one input (the shipped models)."""
        if self.several_inputs:
            raise invalid_value(f"data ({self.name})", "one input array, as the shipped models take (a model of "
                                "your own takes several: it reads data.input_shapes)",
                                f"several inputs ({input_names(self.input_shapes)})")
        return self.input_shapes

    @property
    def weighs_examples(self) -> bool:
        """Whether the data weighs its own examples: ``(x, y, sample_weight)`` arrays or stream elements."""
        return self.sample_weight is not None or (self.stream is not None and len(self.stream.element_spec) == 3)

    @property
    def examples(self) -> int:
        if not self.in_memory:
            return int(self.size or 0)
        return count_rows(self.x) + (count_rows(self.held_out_x) if self.held_out_x is not None else 0)

    @property
    def joined_x(self) -> Any:
        """In memory, every example's inputs, the validation set's of the source's own after ``x`` (a
        copy, when they are kept apart: for what needs them as one array)."""
        return self.x if self.held_out_x is None else concat_rows(self.x, self.held_out_x)

    def _input_rows(self, start: int, stop: Optional[int] = None) -> Any:
        """In memory, the inputs of examples ``start`` to ``stop``, read in place where they lie in
        ``x`` or in ``held_out_x`` alone."""
        if self.held_out_x is None:
            return take_rows(self.x, slice(start, stop))
        n = count_rows(self.x)
        if stop is not None and stop <= n:
            return take_rows(self.x, slice(start, stop))
        if start >= n:
            return take_rows(self.held_out_x, slice(start - n, None if stop is None else stop - n))
        return take_rows(self.joined_x, slice(start, stop))

    def mapped(self, function: Callable[..., Any], **changes: Any) -> "Dataset":
        """A stream's Dataset with ``function`` (of an element's ``x, y[, sample_weight]``) applied to
        its every element — in its stream, its own split's parts and its seek alike, so that what
        trains and what validates stay the same examples — and ``changes`` made to its fields."""
        def over(stream: Any) -> Any:
            return stream.map(function)

        own_split, own_seek = self.splitter, self.seek

        def split_mapped(fraction: float) -> Tuple[Part, Optional[Part]]:
            return tuple(part and replace(part, stream=over(part.stream)) for part in own_split(fraction))

        return replace(self, stream=over(self.stream), splitter=split_mapped if own_split else None,
                       seek=(lambda start: over(own_seek(start))) if own_seek else None, head=None, **changes)

    def autoencoding(self) -> "Dataset":
        """The same examples as a reconstruction task: inputs flattened, targets = inputs."""
        if self.several_inputs:
            raise invalid_value("task.type", "data with one input array to reconstruct",
                                f"reconstruction of data {self.name!r}, which has several inputs "
                                f"({input_names(self.input_shapes)})")
        if not self.in_memory:
            import tensorflow as tf

            def flat(stream: Any) -> Any:
                return stream.map(lambda x, y, *weight: (tf.reshape(x, (-1,)), tf.reshape(x, (-1,)), *weight))

            own_split = self.splitter

            def split_flat(fraction: float) -> Tuple[Part, Optional[Part]]:
                return tuple(part and replace(part, stream=flat(part.stream)) for part in own_split(fraction))

            width = int(np.prod(self.input_shape))
            own_seek = self.seek
            return replace(self, task="reconstruction", stream=flat(self.stream), num_outputs=width,
                           splitter=split_flat if own_split else None,
                           seek=(lambda start: flat(own_seek(start))) if own_seek else None)
        x = self.joined_x.reshape(self.examples, -1)
        return replace(self, task="reconstruction", x=x, y=x, held_out_x=None, num_outputs=x.shape[1], splitter=None)

    def split(self, fraction: float) -> Tuple[Part, Optional[Part]]:
        """(train, validation): the last ``fraction`` of the examples validate (None when 0) — or the
        source's own validation set, whatever the fraction above 0. A stream not counted yet (its length
        unknown: :meth:`with_labels_read`) trains whole at 0, and is counted first to cut a split."""
        if self.splitter is not None:
            return self.splitter(fraction)
        if self.held_out is not None:
            train, validation = self._split_at(self.examples - self.held_out)
            return train, (validation if fraction > 0 else None)
        if not self.in_memory and self.size is None:
            if fraction <= 0:
                return Part(stream=self.stream, origin=(self.stream, 0), first_rows=self.first_rows), None
            self.in_fixed_order()  # before the pass that counts it
            return self.with_labels_read(count=True).split(fraction)
        return self._split_at(self.examples - int(round(self.examples * fraction)))

    def training(self) -> Part:
        """The examples this run trains on: all but the last :attr:`validation_split` of them, or but a
        source's own validation set — what a model builder adapts a ``Normalization`` on
        (``data.training().arrays[0]``; a stream's: ``.stream``), the validation examples left out."""
        return self.split(self.validation_split or 0.0)[0]

    def in_fixed_order(self) -> None:
        """Nothing for a stream in the same order at every pass, each example once; one line for one that
        reorders itself at every pass, which cannot be split by position, or that repeats its examples
        (``.repeat(2)``): its last ones, which validate, would be trained on as an earlier copy."""
        times = 1 if self.in_memory else repeated(self.stream)
        if times > 1:
            raise invalid_value(f"data ({self.name})", "a stream of each example once (its last examples validate: "
                                "repeated, they are trained on too, as an earlier copy) — leave out the .repeat() "
                                "(trainer.epochs repeats the examples), or give a validation set of your own",
                                f"a stream with a .repeat({times})")
        if not self.in_memory and reshuffles(self.stream):
            raise invalid_value(f"data ({self.name})", "a stream in the same order at every pass (its last "
                                "examples validate: reordered, each epoch would validate on others, trained on "
                                "before) — .shuffle(n, reshuffle_each_iteration=False), or no shuffle (lossexp "
                                "shuffles the training examples; Keras' image_dataset_from_directory: shuffle=False), "
                                "or a validation set of your own",
                                "a stream with a .shuffle() that reshuffles at every pass")

    def _split_at(self, n_train: int) -> Tuple[Part, Optional[Part]]:
        """(the first ``n_train`` examples, the rest — None when there are none). A stream that
        reorders itself at every pass cannot be split by position: one line."""
        n_val = self.examples - n_train
        if n_val:
            self.in_fixed_order()
        if self.in_memory:
            columns = (self.y,) + ((self.sample_weight,) if self.sample_weight is not None else ())
            train = Part(arrays=(self._input_rows(0, n_train), *(take_rows(c, slice(0, n_train)) for c in columns)),
                         size=n_train)
            if n_val == 0:
                return train, None
            return train, Part(arrays=(self._input_rows(n_train), *(take_rows(c, slice(n_train, None)) for c in columns)),
                               size=n_val)
        classes = (None, None) if self.classes is None else (self.classes[:n_train], self.classes[n_train:])
        train = Part(stream=self.stream.take(n_train), size=n_train, origin=(self.stream, 0), classes=classes[0],
                     first_rows=self.first_rows)
        if not n_val:
            return train, None
        rest = self.seek(n_train) if self.seek is not None else self.stream.skip(n_train)
        return train, Part(stream=rest, size=n_val, origin=(self.stream, n_train), classes=classes[1],
                           first_rows=self.first_rows)

    def with_labels_read(self, per_example: bool = False, count: bool = False) -> "Dataset":
        """A stream whose labels were not all read (:attr:`unread_labels`) with its classes the highest
        label's + 1 and a negative label refused — and with ``count``, a stream of unknown length counted
        (its float targets' range read, :attr:`float_targets`) — in one pass over it: for what needs every
        label before training (a network lossexp builds with a unit per class, class weights) or its length
        (a validation split cut from its end). A stream is not counted otherwise: it trains as Keras' ``fit``
        trains it, learning an epoch's length at the first epoch's end. With ``per_example`` (class weights),
        the training examples' labels of one label per example are kept (:attr:`classes`, on the training
        part of a source's own split): its weights count them, where a pass of their own read every
        training example again (decoding, a generator's Python)."""
        count = count and not self.in_memory and self.size is None
        if not self.unread_labels and not count:
            return self
        target = self.stream.element_spec[1]
        if isinstance(target, dict):  # targets by output name: each output's labels read in the one pass
            keys = self.extras.get("unread_keys", []) if self.unread_labels else []
            elements, ranges, _ = read_pass(self.name, self.stream, count, keys)
            for key, (lowest, _) in ranges.items():
                check_labels(self.name, lowest, f"in the stream's labels of output {key!r}")
            return replace(self, num_outputs={**self.num_outputs, **{key: high + 1 for key, (_, high) in ranges.items()}},
                           unread_labels=False, size=enough_examples(self.name, elements) if count else self.size)
        one_per_example = target.shape.rank is not None and target.shape.as_list() in ([], [1])
        if self.unread_labels and per_example and one_per_example:
            return self._classes_read()
        floats = count and target.dtype.is_floating
        elements, ranges, found = read_pass(self.name, self.stream, count, [None] if self.unread_labels else [],
                                            floats=floats)
        changes: Dict[str, Any] = {"size": enough_examples(self.name, elements)} if count else {}
        if self.unread_labels:
            lowest, highest = ranges[None]
            check_labels(self.name, lowest, "in the stream's labels")
            changes.update(num_outputs=highest + 1, unread_labels=False)
        return replace(self, **changes, **({"float_targets": found} if floats else {}))

    def _classes_read(self) -> "Dataset":
        """:meth:`with_labels_read` keeping the training examples' classes: a stream split by position keeps
        all (:attr:`classes`), a source's own split its training part's (read alone, each part once)."""
        if self.splitter is None:
            classes = stream_classes(self.stream)
            check_labels(self.name, int(classes.min()), "in the stream's labels")
            return replace(self, num_outputs=int(classes.max()) + 1, unread_labels=False, classes=classes,
                           size=self.size if self.size is not None else enough_examples(self.name, len(classes)))
        own_split = self.splitter
        train, validation = own_split(1.0)
        classes = train.classes if train.classes is not None else stream_classes(train.stream)
        lowest, highest = int(classes.min()), int(classes.max())
        if validation is not None:
            if validation.classes is not None:
                lowest, highest = min(lowest, int(validation.classes.min())), max(highest, int(validation.classes.max()))
            else:
                _, low, high = read_through(self.name, validation.stream, count=False, labels=True)
                lowest, highest = min(lowest, low), max(highest, high)
        check_labels(self.name, lowest, "in the stream's labels")

        def split_with_classes(fraction: float) -> Tuple[Part, Optional[Part]]:
            part, rest = own_split(fraction)
            return replace(part, classes=classes, size=part.size if part.size is not None else len(classes)), rest

        return replace(self, num_outputs=highest + 1, unread_labels=False, splitter=split_with_classes)

    def first_targets(self, read: bool = True) -> Optional[np.ndarray]:
        """A stream's first :data:`CHECKED_ELEMENTS` targets (one target array; a copy): as :func:`checked` kept
        them from the first elements it read — the float targets that tell class labels (0./1. against
        sigmoids) and a target sorted were read twice more before, 256 elements each — else read now (None
        without ``read``)."""
        kept = None if self.in_memory else _first_targets.get(self.stream)
        if kept is not None:
            return np.array(kept)
        return self.sample(CHECKED_ELEMENTS)[1] if read else None

    def known_labels(self) -> Optional[np.ndarray]:
        """Every example's class label when all are here — arrays of one target, a stream whose classes were read
        (:attr:`classes`) —, one-hot rows as their classes; None otherwise (targets by output name, a stream's
        labels not read)."""
        if self.in_memory and not isinstance(self.y, (dict, list, tuple)):
            return labels_of(self.y)
        return self.classes

    def first_weights(self, n: int = 8) -> Any:
        """The sample weights of :meth:`sample`'s examples, as the data gives them; None when it gives none, and
        for a stream (whose checks before training read its inputs and targets only)."""
        return take_rows(self.sample_weight, slice(0, n)) if self.in_memory and self.sample_weight is not None else None

    def sample(self, n: int = 8) -> Tuple[Any, Any]:
        """The first ``n`` examples as arrays (for checks before training). A stream's first
        :data:`SAMPLE_KEPT` are read once and kept while the stream lives, whichever copy of the Dataset
        asks: the checks before training asked 4 times, each a generator's Python or an image's decoding."""
        if self.in_memory:
            return self._input_rows(0, n), take_rows(self.y, slice(0, n))
        kept = _samples.get(self.stream)  # sequences of varying length are padded to the longest of the n
        if kept is not None and (n == kept[0] or n < kept[0] and not padded_when_batched(self.stream)):
            return tuple(map_arrays(np.array, take_rows(kept[i], slice(0, n))) for i in (1, 2))  # copies: kept as read
        batch = next(iter(batches(self.stream.take(n), n)))
        x, y = to_numpy(batch[0]), to_numpy(batch[1])
        if n <= SAMPLE_KEPT and (kept is None or n > kept[0]):
            _samples[self.stream] = (n, x, y)
        return x, y


def as_dataset(name: str, loaded: Any, task: Optional[str] = None) -> Dataset:
    """The :class:`Dataset` a data source returned (arrays, a stream or a Dataset), checked:
    inputs and targets agree in length and hold no NaN/inf."""
    if isinstance(loaded, Dataset):
        dataset = loaded
    elif isinstance(loaded, dict) and set(loaded) == {"train", "validation"}:
        return with_validation(name, loaded["train"], loaded["validation"], task)
    elif isinstance(loaded, (list, tuple)) and len(loaded) == 2 and all(is_stream(part) for part in loaded):
        raise invalid_value(f"data ({name})", "a training and a validation stream as {'train': train, 'validation': "
                            "validation} (or validation_data=…; Keras' image_dataset_from_directory(subset='both') "
                            "gives them as a list)", describe(loaded))
    elif isinstance(loaded, tuple) and len(loaded) in (2, 3):
        if loaded[1] is None:
            raise invalid_value(f"data ({name})", "targets y in (x, y) (to reconstruct the inputs: (x, x))", None)
        if isinstance(loaded[1], (list, tuple)):
            raise invalid_value(f"data ({name})", "the targets as one array (a list of numbers: np.asarray(y)), or "
                                "for a network of several outputs a dict by output name ({'output_name': array, …})",
                                describe(loaded[1]))
        check_example_shapes(name, loaded[0], len(loaded[1]) if hasattr(loaded[1], "__len__") else -1)
        x, y = input_arrays(name, loaded[0]), as_column(numeric_targets(name, loaded[1]))
        lengths = {len(v) for v in leaves(x)} | {len(v) for v in leaves(y)}
        if len(lengths) > 1:
            raise invalid_value(f"data ({name})", "as many targets as inputs", f"lengths {sorted(lengths)}")
        files = (loaded.rows,) if isinstance(loaded, FromFile) else None
        weight = sample_weights(name, loaded[2], lengths.pop(), y, files=files) if len(loaded) == 3 else None
        inferred, outputs = infer_task(y)
        extras = {"output_tasks": {key: infer_task(v)[0] for key, v in y.items()}} if isinstance(y, dict) else {}
        dataset = Dataset(name, task or inferred, x=x, y=y, sample_weight=weight, num_outputs=outputs, extras=extras,
                          files=files)
    elif is_stream(loaded) and not is_py_dataset(loaded):
        batch_size = batch_size_of(loaded)
        dataset = replace(from_stream(name, unbatched(loaded) if batch_size else loaded, task), batch_size=batch_size)
    elif is_py_dataset(loaded):  # its size counted from its first and last batches: checked by the first pass
        with counted_batches(name, loaded):
            return checked(name, py_dataset(name, loaded, task))
    else:
        inputs_alone = hasattr(loaded, "shape") or isinstance(loaded, tuple) and len(loaded) == 1
        raise invalid_value(f"data ({name})", "(x, y) or (x, y, sample_weight) arrays, a tf.data.Dataset of "
                            "such elements, a keras.utils.PyDataset of such batches or a lossexp Dataset (or "
                            "{'train': …, 'validation': …} of two of them)"
                            + (RECONSTRUCT if inputs_alone else "") + (READ_ONCE if _generator(loaded) else ""),
                            describe(loaded))
    return checked(name, dataset)


#: a Python generator, as Keras' fit takes one: it is spent after one epoch
READ_ONCE = (" — a Python generator is read once: tf.data.Dataset.from_generator(the function that makes it, "
             "output_signature=…) reads it again at every epoch")


def _generator(value: Any) -> bool:
    """Whether ``value`` is a Python generator or other one-pass iterator (not a tuple, array or stream)."""
    import inspect

    return inspect.isgenerator(value) or hasattr(value, "__next__") and hasattr(value, "__iter__")


def is_stream(value: Any) -> bool:
    """Whether ``value`` is a ``tf.data.Dataset`` or a Keras ``PyDataset`` (told without importing TensorFlow)."""
    return type(value).__module__.startswith("tensorflow") and hasattr(value, "element_spec") or is_py_dataset(value)


def py_dataset(name: str, loaded: Any, task: Optional[str]) -> Dataset:
    """The :class:`Dataset` of a ``keras.utils.PyDataset`` of batches (:mod:`lossexp.data.batches`)."""
    stream, size, batch_size, seek = stream_of_batches(name, loaded)
    data = from_stream(name, stream, task, size=size, seek=seek)  # the loader: its batches' sizes met as it trains
    return replace(data, batch_size=batch_size, extras={**data.extras, "loader": loaded})


def checked(name: str, dataset: Dataset) -> Dataset:
    """``dataset``, its task known and its inputs and targets (its first elements, for a stream)
    finite, with at least 2 examples; else one line."""
    if dataset.task not in TASKS:
        raise invalid_value(f"data ({name}).task", "one of " + ", ".join(TASKS), dataset.task)
    if dataset.in_memory:
        check_finite(name, "inputs", dataset.x)
        check_finite(name, "targets", dataset.y)
        if dataset.examples < 2:
            raise invalid_value(f"data ({name})", "at least 2 examples", dataset.examples)
    else:  # the first elements, read once (by the source's reading when it read them)
        head = dataset.head if dataset.head is not None else first_elements(dataset.stream)
        x, y, *weight = head
        if not isinstance(y, dict) and np.issubdtype(np.asarray(y).dtype, np.floating) \
                and np.asarray(y).nbytes <= FIRST_TARGETS_BYTES:
            _first_targets[dataset.stream] = np.asarray(y)
        check_finite(name, "inputs", x)
        check_finite(name, "targets", y)
        if weight:
            sample_weights(name, weight[0], count_rows(weight[0]), y, stream=True)
        labels = None if isinstance(y, dict) else labels_of(y)
        whole = labels is not None and labels.ndim == 1 and (np.issubdtype(labels.dtype, np.integer) or
                                                             bool(np.all(np.isfinite(labels) & (labels == np.round(labels)))))
        dataset = replace(dataset, head=None, first_labels=labels if whole else None,
                          first_rows=rows_digest(head, CHECKED_ELEMENTS))
    return dataset


def first_elements(stream: Any, most: int = CHECKED_ELEMENTS) -> Tuple[Any, ...]:
    """The first ``most`` elements of an unbatched stream ``(x, y[, sample_weight])`` as arrays, batched
    as :func:`batches` pads them (a sample weight as the element gives it)."""
    weighted = len(stream.element_spec) == 3
    nested = stream.map(lambda x, y, *weight: ((x, y), *weight)) if weighted else stream  # weights left as given
    [batch] = nested.take(most).padded_batch(most) if padded_when_batched(stream) else nested.take(most).batch(most)
    return tuple(to_numpy(part) for part in ((*batch[0], batch[1]) if weighted else batch))


def with_validation(name: str, train: Any, validation: Any, task: Optional[str] = None) -> Dataset:
    """One :class:`Dataset` of a training set and the source's own validation set (each checked as
    :func:`as_dataset` checks a source's data): the validation examples last, held out."""
    held_out = as_dataset(f"{name}, validation", validation, task)
    train_set = as_dataset(name, train, task)
    if train_set.splitter or held_out.splitter:
        raise invalid_value(f"data ({name})", "a train and a validation set of arrays or tf.data streams",
                            f"{describe(train)} and {describe(validation)}")
    if train_set.in_memory != held_out.in_memory:  # arrays beside a stream (Keras' fit takes them): streamed
        like = (held_out if train_set.in_memory else train_set).stream.element_spec
        train_set, held_out = (streamed(part, like) if part.in_memory else part for part in (train_set, held_out))
    if train_set.in_memory:
        weights = [part.sample_weight for part in (train_set, held_out)]
        given = next((w for w in weights if w is not None), None)
        if given is not None:  # the set without weights weighs each example (or position) 1, of every head
            weights = [map_arrays(lambda w: np.ones((part.examples, *w.shape[1:]), "float32"), given) if w is None
                       else w for w, part in zip(weights, (train_set, held_out))]
        held_out_x = held_out.x
        try:  # the inputs kept apart (each checked above), their shapes compared on a row of each
            if isinstance(train_set.x, dict):  # the training inputs' names, as joining them took
                held_out_x = {key: held_out_x[key] for key in train_set.x}
            elif isinstance(train_set.x, list) and len(held_out_x) != len(train_set.x):
                raise ValueError(f"{len(held_out_x)} input arrays, the training set {len(train_set.x)}")
            concat_rows(take_rows(train_set.x, slice(0, 1)), take_rows(held_out_x, slice(0, 1)))
            y = concat_rows(train_set.y, held_out.y)
            weight = concat_rows(*weights) if weights[0] is not None else None
        except (ValueError, KeyError) as exc:
            raise invalid_value(f"data ({name})", "a validation set shaped like the training set",
                                f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        inferred, outputs = infer_task(y)
        extras = {"output_tasks": {key: infer_task(v)[0] for key, v in y.items()}} if isinstance(y, dict) else {}
        whole = Dataset(name, task or inferred, x=train_set.x, y=y, sample_weight=weight, num_outputs=outputs,
                        held_out_x=held_out_x, extras=extras, files=joined_files(train_set, held_out))
    else:  # each stream read no more than its first elements above: joined without a pass
        if train_set.task != held_out.task:
            raise invalid_value(f"data ({name})", "a validation stream of the training stream's task",
                                f"{held_out.task} targets against {train_set.task} ones")
        try:
            joined = train_set.stream.concatenate(held_out.stream)
        except (TypeError, ValueError) as exc:
            raise invalid_value(f"data ({name})", "a validation stream of the training stream's elements",
                                f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        classes = max(train_set.num_outputs, held_out.num_outputs) if train_set.task == "classification" \
            else train_set.num_outputs

        def own_split(fraction: float) -> Tuple[Part, Optional[Part]]:
            # each stream read by itself: the joined stream's skip past the training examples would
            # read them all again (decoding, a generator's Python) before every validation pass
            validation = Part(stream=held_out.stream, size=held_out.size, classes=held_out.classes,
                              first_rows=held_out.first_rows) if fraction > 0 else None
            return Part(stream=train_set.stream, size=train_set.size, classes=train_set.classes,
                        first_rows=train_set.first_rows), validation

        known = train_set.classes is not None and held_out.classes is not None
        floats = [part.float_targets for part in (train_set, held_out)]
        unread_keys = sorted({*train_set.extras.get("unread_keys", []), *held_out.extras.get("unread_keys", [])})
        counted = train_set.size is not None and held_out.size is not None  # neither counted where not needed
        whole = replace(train_set, stream=joined, size=train_set.size + held_out.size if counted else None,
                        num_outputs=classes,
                        extras={**train_set.extras, **({"unread_keys": unread_keys} if unread_keys else {})},
                        splitter=own_split, unread_labels=train_set.unread_labels or held_out.unread_labels,
                        classes=np.concatenate([train_set.classes, held_out.classes]) if known else None,
                        files=joined_files(train_set, held_out),
                        float_targets=floats[0].joined(joined, floats[1]) if all(floats) else None)
    return replace(whole, held_out=held_out.examples)


def joined_files(train: Dataset, validation: Dataset) -> Optional[Files]:
    """The files of a training set and a validation set read from files, in that order (None unless both were)."""
    return train.files + validation.files if train.files and validation.files else None


def streamed(data: Dataset, like: Any) -> Dataset:
    """In-memory ``data`` as a stream of elements of the spec ``like`` (another stream's: its dtypes,
    so that the two concatenate), its task and outputs kept."""
    import tensorflow as tf

    x = tuple(data.x) if isinstance(data.x, list) else data.x  # several inputs in order: a tuple, as tf.data's
    columns = (x, data.y) + ((data.sample_weight,) if data.sample_weight is not None else ())
    if len(columns) != len(like):
        raise invalid_value(f"data ({data.name})", f"{'(x, y, sample_weight)' if len(like) == 3 else '(x, y)'} "
                            "as the other set", describe(columns))
    stream = tf.data.Dataset.from_tensor_slices(columns)
    try:
        cast = tf.nest.map_structure(lambda spec, target: target.dtype, stream.element_spec, tuple(like))
    except (ValueError, TypeError) as exc:
        raise invalid_value(f"data ({data.name})", "examples shaped like the other set's",
                            f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if cast != tf.nest.map_structure(lambda spec: spec.dtype, stream.element_spec):
        stream = tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(
            lambda column, dtype: np.asarray(column).astype(dtype.as_numpy_dtype), columns, cast))
    return replace(data, x=None, y=None, sample_weight=None, stream=stream, size=data.examples)


def stream_of_outputs(name: str, stream: Any, size: Optional[int]) -> Dataset:
    """A :class:`Dataset` of a stream whose targets are a mapping by output name (a network of several
    outputs), each output's task inferred as one target's is: integer labels classify (their classes
    read in one pass with the count, for every such output at once), one-hot rows classify, other
    numbers regress."""
    import tensorflow as tf

    y_spec = stream.element_spec[1]
    text = next((key for key, spec in y_spec.items() if spec.dtype == tf.string), None)
    if text is not None:
        raise invalid_value(f"data ({name})", "numeric targets for every output (class names as integers 0…k-1)",
                            f"text targets for output {text!r}")
    if any(spec.dtype.is_bool for spec in y_spec.values()):  # integer labels 0/1, as for arrays
        stream = stream.map(lambda x, y, *weight: (x, {key: tf.cast(t, tf.int64) if t.dtype.is_bool else t
                                                       for key, t in y.items()}, *weight))
        y_spec = stream.element_spec[1]
    rows = [key for key, spec in y_spec.items() if spec.shape.rank == 1 and spec.shape[0] not in (None, 1)]
    integer = [key for key, spec in y_spec.items() if spec.dtype.is_integer]
    # the first elements, read once for the one-hot rows, the first labels, the checks and a short stream's length
    head = first_elements(stream) if rows or integer or size is None else None
    size = size if size is not None else length_of_head(head)
    one_hot_keys = {key for key in rows if one_hot(np.asarray(head[1][key]))}  # read on the first elements
    label_keys = sorted(key for key in integer if key not in one_hot_keys)
    unread = bool(label_keys)  # their first labels tell; the rest are checked as they train, or read where needed
    ranges = {key: (int(np.min(head[1][key])), int(np.max(head[1][key]))) for key in label_keys}
    outputs: Dict[str, int] = {}
    for key, spec in y_spec.items():
        if key in ranges:
            check_labels(name, ranges[key][0], f"in the stream's labels of output {key!r}")
            outputs[key] = ranges[key][1] + 1
        else:
            outputs[key] = regression_outputs(stream.map(lambda x, y, *w, key=key: y[key]), spec)
    size = enough_examples(name, size) if size is not None else None
    tasks = {key: "classification" if key in ranges or key in one_hot_keys else "regression" for key in y_spec}
    extras = {"output_tasks": tasks, **({"unread_keys": label_keys} if unread else {})}
    return Dataset(name, "multi_output", stream=stream, size=size, num_outputs=outputs, extras=extras, head=head,
                   unread_labels=unread)


def from_stream(name: str, stream: Any, task: Optional[str] = None, size: Optional[int] = None,
                seek: Optional[Callable[[int], Any]] = None) -> Dataset:
    """A :class:`Dataset` of an unbatched ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
    elements (``seek``: the source's own way to its examples from one on, see :attr:`Dataset.seek`).

    Its size is the stream's cardinality when known, or its first elements' number when they are all of it,
    else not counted here (None: :meth:`Dataset.with_labels_read` counts it where its length is needed, in
    the pass that reads its labels); a classification stream's classes are told by its first integer labels
    (the rest checked as it trains, or read where every one is needed), or are the width of its one-hot
    labels (a stream whose first elements' float targets are one-hot classifies).
    """
    import tensorflow as tf

    spec = stream.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        by_name = f", e.g. .map(lambda e: ({by_keys(spec)}))" if isinstance(spec, dict) else ""
        alone = RECONSTRUCT.replace("(x, x)", ".map(lambda x: (x, x))") if not isinstance(spec, (tuple, dict)) else ""
        raise invalid_value(f"data ({name})", "a tf.data.Dataset of unbatched (x, y) or (x, y, sample_weight) "
                            f"elements{by_name}{alone}", spec)
    stream = dense_elements(stream)  # a ragged or sparse tensor of an element as a dense one
    seek = (lambda start, own=seek: dense_elements(own(start))) if seek else None
    spec = stream.element_spec
    specs = leaves(spec[0]) + leaves(spec[1])
    unknown = [part for part, specs_of in (("inputs", spec[0]), ("targets", spec[1]))
               if any(s.shape.rank is None for s in leaves(specs_of))]
    if unknown:  # a builder cannot read data.input_shape, nor Keras' loss the targets' rank
        raise invalid_value(f"data ({name})", "a tf.data.Dataset whose elements' shapes tf.data knows (a "
                            "tf.py_function's output has none: give it, e.g. tf.ensure_shape(x, (24, 1)) in the "
                            "map)", f"{' and '.join(unknown)} of unknown rank")
    if all(s.shape.rank and s.shape[0] is None for s in specs) and not varying_length(stream):
        raise invalid_value(f"data ({name})", "a tf.data.Dataset of unbatched elements (lossexp batches them by "
                            "trainer.batch_size, and unbatches a stream that tf.data's .batch() batched, but not "
                            "batches made before it, as a generator's: add .unbatch(); sequences of one length: "
                            "give it in the element_spec)",
                            "a batched stream, elements of shapes " + ", ".join(str(tuple(s.shape)) for s in specs))
    if size is None:
        cardinality = int(stream.cardinality())
        if cardinality == tf.data.INFINITE_CARDINALITY or (cardinality == tf.data.UNKNOWN_CARDINALITY
                                                           and repeats_forever(stream)):  # its count never ends
            raise invalid_value(f"data ({name})", "a finite tf.data.Dataset (an epoch is one pass over it, and the "
                                "last trainer.validation_split of it validates): drop the .repeat(), or .take(n) "
                                "examples of a stream without end", "a stream that repeats forever")
        size = cardinality if cardinality >= 0 else None  # not counted: see Dataset.with_labels_read
    y_spec = spec[1]
    if isinstance(y_spec, (tuple, list)):  # Keras pairs them with a list of outputs; lossexp names outputs
        named = ", ".join(f"'output_name_{i}': y[{i}]" for i in range(min(len(y_spec), 2)))
        raise invalid_value(f"data ({name})", "the targets as one tensor, or for a network of several outputs a dict "
                            f"by output name: .map(lambda x, y: (x, {{{named}, …}}))",
                            f"a tuple of {len(y_spec)} targets")
    if isinstance(y_spec, dict):
        outputs = stream_of_outputs(name, stream, size)  # its stream recast (boolean labels): not the seek's
        return replace(outputs, seek=seek if outputs.stream is stream else None)
    if y_spec.dtype == tf.string:
        numeric_targets(name, next(iter(batches(stream.map(lambda x, y, *w: y), CHECKED_ELEMENTS))).numpy())
    if y_spec.dtype.is_bool:  # integer labels 0/1, as for arrays
        def as_labels(elements: Any) -> Any:
            return elements.map(lambda x, y, *weight: (x, tf.cast(y, tf.int64), *weight))

        stream, seek = as_labels(stream), (lambda start, own=seek: as_labels(own(start))) if seek else None
        y_spec = stream.element_spec[1]
    head = None  # the first elements, read once for the first labels, the checks (:func:`checked`) and a short length
    if y_spec.shape.rank == 1 and y_spec.shape[0] not in (None, 1) or task in (None, "classification") \
            and y_spec.dtype.is_integer or size is None:
        head = first_elements(stream)
        size = size if size is not None else length_of_head(head)
    one_hot_rows = y_spec.shape.rank == 1 and y_spec.shape[0] not in (None, 1) and one_hot(np.asarray(head[1]))
    integer = y_spec.dtype.is_integer and not one_hot_rows  # class labels: one per element, or one per position
    labels = integer or one_hot_rows
    task = task or ("classification" if labels else "regression")
    unread = False
    if task == "classification" and not integer:  # one-hot labels (checked on the first elements)
        outputs = int(y_spec.shape[0])
    elif task == "classification":  # its first labels tell; the rest are checked as they train, or read where needed
        first = np.asarray(head[1])
        check_labels(name, int(first.min()), "in the stream's labels")
        outputs, unread = int(first.max()) + 1, True
    else:
        outputs = regression_outputs(stream.map(lambda x, y, *w: y), y_spec)
    return Dataset(name, task, stream=stream, size=enough_examples(name, size) if size is not None else None,
                   num_outputs=outputs, seek=seek, unread_labels=unread, head=head)


def stream_classes(stream: Any) -> np.ndarray:
    """The class label of each element of a stream of one label per element, in order, read in batches."""
    size = elements_within(stream, READ_BATCH, READ_BYTES)
    found = [y.reshape(-1) for y in batches(stream.map(lambda x, y, *weight: y), size).as_numpy_iterator()]
    return np.concatenate(found).astype("int64")


def length_of_head(head: Tuple[Any, ...]) -> Optional[int]:
    """A stream's length when its first elements (:func:`first_elements`) are all of it — fewer than
    :data:`CHECKED_ELEMENTS` —, else None (not known before a pass counts it)."""
    rows = count_rows(head[1])
    return rows if rows < CHECKED_ELEMENTS else None


def regression_outputs(targets: Any, spec: Any) -> int:
    """The values a regression target holds per example: from its ``spec``, else (a dimension tf.data
    does not know, as a window's ``.batch()`` inside a ``flat_map`` leaves it) from the first of
    ``targets``, the stream of that target alone."""
    if spec.shape.is_fully_defined():
        return int(np.prod(spec.shape.as_list()))
    first = next(iter(targets.take(1)), None)
    return int(np.prod(first.shape)) if first is not None else 1


#: keys under which a stream of dict elements (a TFDS data set's, ``as_supervised=False``) holds its targets
TARGET_KEYS = ("label", "labels", "target", "targets", "y")


def by_keys(spec: Dict[str, Any]) -> str:
    """``e['image'], e['label']``: a dict element's inputs and targets by its own keys, for a message —
    the targets under a key named as targets are (:data:`TARGET_KEYS`), else its second key's."""
    keys = list(spec)
    target = next((key for key in keys if key.lower() in TARGET_KEYS), keys[1] if len(keys) > 1 else "y")
    inputs = next((key for key in keys if key != target), "x")
    return f"e[{inputs!r}], e[{target!r}]"


def enough_examples(name: str, size: int) -> int:
    """``size``, the examples a stream was counted at, if it can be split (at least 2), else one line."""
    if size < 2:
        raise ConfigError(f"Invalid value for data ({name}): expected at least 2 examples, got {size}")
    return size
