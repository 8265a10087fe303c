"""How lossexp reads a ``tf.data`` stream: in batches (padded when its elements differ in length),
in as few passes as it can (a pass may be an epoch's decoding or a generator's Python, and tf.data
calls a function per element in about 24 µs), in buffers bounded by bytes, and in the same order at
every pass (a stream is split by position)."""
from __future__ import annotations

import contextlib
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from lossexp.errors import invalid_value

#: a stream of unknown length is said to be counted once its count has run this many seconds
COUNT_NOTICE_SECONDS = 10.0
#: a pass that counts a stream or reads its labels reads batches of at most this many elements …
READ_BATCH = 4096
#: … and this many bytes (padded to their longest, the labels' lowest may read as a padding 0)
READ_BYTES = 64 << 20
#: a stream shuffles within at most this many elements …
SHUFFLE_ELEMENTS = 10_000
#: … and at most this many bytes of them
SHUFFLE_BYTES = 1 << 30


#: tf.data's operations that shuffle, whose ``reshuffle_each_iteration`` says whether every pass differs
SHUFFLES = ("ShuffleDataset", "ShuffleDatasetV2", "ShuffleDatasetV3", "ShuffleAndRepeatDataset",
            "ShuffleAndRepeatDatasetV2")


#: tf.data's operations whose elements are batches of their first input's, batch size their second input
BATCHES = ("BatchDataset", "BatchDatasetV2", "PaddedBatchDataset", "PaddedBatchDatasetV2", "ParallelBatchDataset")
#: operations whose elements are their first input's (a batch stays a batch): a batched stream is told
#: through these only, so that one whose elements another operation reshapes is never unbatched
KEEPS_ELEMENTS = ("MapDataset", "ParallelMapDataset", "ParallelMapDatasetV2", "PrefetchDataset", "CacheDataset",
                  "CacheDatasetV2", "OptionsDataset", "TakeDataset", "SkipDataset", "FilterDataset",
                  "AssertCardinalityDataset", "MaxIntraOpParallelismDataset", "PrivateThreadPoolDataset",
                  "ModelDataset", "IgnoreErrorsDataset", "RepeatDataset", "ConcatenateDataset", *SHUFFLES)


def pipeline(stream: Any) -> Any:
    """A stream's pipeline as a ``GraphDef`` (its operations and the functions they call), or None for
    a stream TensorFlow cannot serialise."""
    import tensorflow as tf

    graph = tf.compat.v1.GraphDef()
    try:
        graph.ParseFromString(stream._as_serialized_graph().numpy())
    except Exception:  # noqa: BLE001 — a stream TensorFlow cannot serialise: nothing read from its graph
        return None
    return graph


def reshuffles(stream: Any) -> bool:
    """Whether a stream's pipeline holds a shuffle that reorders it at every pass — tf.data's
    default, ``.shuffle(n)`` — read from its datasets and their functions' graphs (an ``interleave``'s
    datasets included: :func:`function_graphs`)."""
    return any(graph is None or shuffles_in(graph) for graph in function_graphs(stream, shuffled=True))


def shuffles_in(graph: Any) -> bool:
    """Whether a ``GraphDef`` (a stream's pipeline, a dataset function's graph) holds a shuffle that
    reorders at every pass, the functions of its library included."""
    nodes = list(graph.node) + [node for function in graph.library.function for node in function.node_def]
    return any(node.op in SHUFFLES and node.attr["reshuffle_each_iteration"].b for node in nodes)


def function_graphs(stream: Any, shuffled: bool = False) -> Iterator[Any]:
    """The ``GraphDef`` of each function of a stream's datasets (a map's, an interleave's …), read from
    the datasets and each one's inputs — with ``shuffled``, a None first for a dataset that shuffles at
    every pass —, or the stream's whole serialised graph for one lossexp cannot walk: that graph holds its
    every constant (a ``from_tensor_slices`` of 614 MB of arrays: 4.6 s and 1.8 GB more to read)."""
    seen, pending = set(), [stream]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if shuffled and "Shuffle" in type(node).__name__ and getattr(node, "_reshuffle_each_iteration", True) is not False:
            yield None
        try:
            inputs, functions = list(node._inputs()), list(node._functions())
        except (AttributeError, NotImplementedError):  # not a dataset lossexp can walk: its serialised graph
            whole = pipeline(stream)
            yield from ([whole] if whole is not None else [])
            return
        for function in functions:
            yield function.function.graph.as_graph_def()
        pending.extend(inputs)


def random_ops(stream: Any) -> List[str]:
    """The random ops of the functions in a stream's pipeline (a ``.map(augment)``: ``tf.random.normal``'s
    RandomStandardNormal, a Keras ``RandomFlip``'s StatelessRandomUniformV2), read from its functions'
    graphs (:func:`function_graphs`): what makes its examples differ from the source's, the validation
    split's among them when cut from it."""
    return sorted({node.op for graph in function_graphs(stream)
                   for node in [*graph.node, *(n for function in graph.library.function for n in function.node_def)]
                   if "Random" in node.op and node.op != "StatelessRandomGetKeyCounter"})


def batch_size_of(stream: Any) -> Optional[int]:
    """The batch size of a stream whose elements are batches (``.batch(n)``, ``.padded_batch(n)``, then
    maps, prefetching, caching …), read from its datasets (each one's first input), that unbatch into
    examples (every tensor's first axis that size or unknown); None for a stream of examples, and for one
    whose last batching is followed by an operation that may reshape its elements (an ``unbatch``, a
    ``flat_map``): such a stream is not known to be batched. Its serialised graph, read before, holds its
    every constant (a ``from_tensor_slices`` of 614 MB of arrays, batched: 4.6 s and 1.8 GB more)."""
    import tensorflow as tf

    specs = tf.nest.flatten(stream.element_spec)
    if not specs or not all(spec.shape.rank for spec in specs):
        return None
    node = stream
    while node is not None and type(node).__name__.lstrip("_") in KEEPS_ELEMENTS:
        inputs = list(node._inputs())
        node = inputs[0] if inputs else None
    if node is None or type(node).__name__.lstrip("_") not in BATCHES:
        return None
    try:
        size = int(node._batch_size)
    except (AttributeError, TypeError, ValueError):  # a batch size computed in a graph: not known here
        return None
    return size if all(spec.shape[0] in (None, size) for spec in specs) else None


def unbatched(stream: Any) -> Any:
    """A batched stream (:func:`batch_size_of`) as its examples, of the length tf.data knows when it
    knows its batching's input's (``image_dataset_from_directory``'s files, a ``from_tensor_slices``)
    and its batches agree with it: ``unbatch()`` alone forgets it, and a stream of unknown length is
    counted in a pass before training (every image decoded once more)."""
    import tensorflow as tf

    node = stream
    while node is not None and not hasattr(node, "_batch_size"):  # through its maps, prefetching …
        node = getattr(node, "_input_dataset", None)
    examples = stream.unbatch()
    source = getattr(node, "_input_dataset", None)
    if source is None or int(stream.cardinality()) < 0 or int(source.cardinality()) < 0:
        return examples
    size, count, drop = int(node._batch_size), int(source.cardinality()), bool(node._drop_remainder)
    if int(stream.cardinality()) != (count // size if drop else -(-count // size)):  # a take or skip of batches
        return examples
    return examples.apply(tf.data.experimental.assert_cardinality(count // size * size if drop else count))


#: operations whose input without end leaves them without end: they pass on, drop or regroup its elements
#: but never stop early (a ``.filter()`` after a ``.repeat()``: TensorFlow no longer knows the length)
ENDLESS_THROUGH = tuple(op for op in (*KEEPS_ELEMENTS, *BATCHES, "UnbatchDataset", "ShardDataset", "WindowDataset",
                                      "ScanDataset", "RebatchDatasetV2", "ParallelFilterDataset") if op != "TakeDataset")


def repeats_forever(stream: Any) -> bool:
    """Whether a stream of unknown length is a ``.repeat()`` without end followed only by operations
    that cannot end it (:data:`ENDLESS_THROUGH`: a filter, a map, a batch …), read from its
    pipeline's graph: counting it would never finish. A ``.take(n)`` on the way ends it."""
    import tensorflow as tf

    graph = pipeline(stream)
    if graph is None:
        return False
    nodes = {node.name: node for node in graph.node}
    output = next((node for node in graph.node if node.op == "_Retval"), None)
    node = nodes.get(output.input[0].split(":")[0]) if output is not None and output.input else None
    while node is not None and node.op != "RepeatDataset" and node.op in ENDLESS_THROUGH:
        node = nodes.get(node.input[0].split(":")[0]) if node.input else None
    if node is None or node.op != "RepeatDataset" or len(node.input) < 2:
        return False
    count = nodes.get(node.input[1].split(":")[0])
    return count is not None and count.op == "Const" and int(tf.make_ndarray(count.attr["value"].tensor)) < 0


def repeated(stream: Any) -> int:
    """How many times a stream's pipeline repeats its examples: the product of its finite ``.repeat(n)``
    counts (1 for none), read from its datasets (a pipeline lossexp cannot walk: 1)."""
    times, seen, pending = 1, set(), [stream]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        count = getattr(node, "_count", None) if "Repeat" in type(node).__name__ else None
        if count is not None and int(count) > 1:
            times *= int(count)
        try:
            pending.extend(node._inputs())
        except (AttributeError, NotImplementedError):
            continue
    return times


def dense_elements(stream: Any) -> Any:
    """A stream whose elements hold a ``tf.RaggedTensor`` or a ``tf.SparseTensor`` (``from_tensor_slices``
    of a ragged tensor of token ids, a sparse bag of words) with each as a dense tensor — a ragged one
    padded with zeros to its longest row, as batching then pads a batch's to its longest (as Keras pads a
    ragged batch; a masking layer or ``mask_zero`` leaves the padding out), a sparse one with its zeros —
    and the stream itself when it holds neither. Keras' ``fit`` takes both; lossexp's batching
    (``padded_batch``) and its checks, which read the first elements as arrays, take dense tensors."""
    import tensorflow as tf

    composite = (tf.RaggedTensorSpec, tf.SparseTensorSpec)
    if not any(isinstance(spec, composite) for spec in tf.nest.flatten(stream.element_spec)):
        return stream

    def dense(value: Any) -> Any:
        if isinstance(value, tf.RaggedTensor):
            return value.to_tensor()
        return tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value

    return stream.map(lambda *element: tf.nest.map_structure(dense, element))


def varying_length(stream: Any) -> bool:
    """Whether the first elements of a stream whose every tensor has an unknown first axis differ in
    its size: sequences of varying length (a tagger's tokens and labels), not batches, which share it."""
    import tensorflow as tf

    first = list(stream.take(9))
    considered = first[:8] if len(first) == 9 else first[:-1]  # a batched stream's last batch may be short
    return len({int(tf.shape(t)[0]) for element in considered for t in tf.nest.flatten(element)}) > 1


@dataclass(frozen=True)
class FloatTargets:
    """What a pass read of a stream's float targets — their lowest and highest value, and how many are not
    whole numbers or not finite —, so that they can be taken as class labels (Keras'
    ``image_dataset_from_directory(label_mode="binary")`` gives 0./1.) without a pass of their own:
    ``stream`` is the stream they were read of."""

    stream: Any
    lowest: float
    highest: float
    other: int

    def joined(self, stream: Any, more: "FloatTargets") -> "FloatTargets":
        """Those of ``stream``, this one's elements followed by ``more``'s."""
        return FloatTargets(stream, min(self.lowest, more.lowest), max(self.highest, more.highest),
                            self.other + more.other)


def read_through(name: str, stream: Any, count: bool, labels: bool) -> Tuple[int, int, int]:
    """:func:`read_pass` of a stream of one target: ``(elements, lowest label, highest label)``, the
    labels' range 0, 0 where not read."""
    elements, ranges, _ = read_pass(name, stream, count, [None] if labels else [])
    return (elements, *ranges.get(None, (0, 0)))


def read_pass(name: str, stream: Any, count: bool, label_keys: Sequence[Optional[str]],
              floats: bool = False) -> Tuple[int, Dict[Optional[str], Tuple[int, int]], Optional[FloatTargets]]:
    """One pass over a stream for what TensorFlow cannot tell without one: ``(elements, {key: (lowest
    label, highest label)}, float targets)`` — the elements counted when ``count`` (else 0), the integer class labels'
    range of each key of ``label_keys`` (``None``: the one target; a name: that output's of targets by
    output name), with ``floats`` the one target's :class:`FloatTargets` (else None). A stream is read once however much is asked of it: its pass may be an epoch's
    decoding or a generator's Python. While counting, after :data:`COUNT_NOTICE_SECONDS` one line says
    what runs, since a stream without end (an endless generator) would count forever."""
    import tensorflow as tf

    def add(seen: Any, batch: Any) -> Any:  # in batches: tf.data's reduce and map cost per element they call
        targets = [tf.cast(tf.reshape(t, [tf.shape(t)[0], -1]), tf.int64)
                   for t in ([batch[1]] if not isinstance(batch[1], dict) else [batch[1][k] for k in label_keys])]
        count = seen[0] + tf.cast(tf.shape(tf.nest.flatten(batch[1])[0])[0], tf.int64)
        ranges = seen[1]
        if label_keys:
            batch_ranges = tf.stack([tf.stack([tf.reduce_min(y), tf.reduce_max(y)]) for y in targets])
            ranges = tf.stack([tf.minimum(ranges[:, 0], batch_ranges[:, 0]), tf.maximum(ranges[:, 1], batch_ranges[:, 1])], 1)
        if not floats:
            return count, ranges, seen[2]
        y = tf.cast(tf.reshape(batch[1], [-1]), tf.float64)
        other = tf.logical_or(tf.not_equal(y, tf.round(y)), tf.logical_not(tf.math.is_finite(y)))
        return count, ranges, (tf.reduce_min(tf.concat([y, seen[2][0][None]], 0)),
                               tf.reduce_max(tf.concat([y, seen[2][1][None]], 0)),
                               seen[2][2] + tf.reduce_sum(tf.cast(other, tf.int64)))

    timer = threading.Timer(COUNT_NOTICE_SECONDS, print, args=(
        f"lossexp: counting the examples of data {name!r} (TensorFlow does not know its length): an endless "
        "stream never finishes — .take(n) it, or give its length with "
        ".apply(tf.data.experimental.assert_cardinality(n))",), kwargs={"file": sys.stderr, "flush": True})
    timer.daemon = True
    if count:
        timer.start()
    try:
        initial = (tf.constant(0, tf.int64), tf.constant([[2 ** 62, -1]] * max(len(label_keys), 1), tf.int64),
                   (tf.constant(np.inf, tf.float64), tf.constant(-np.inf, tf.float64), tf.constant(0, tf.int64)))
        elements, ranges, (lowest, highest, other) = batches(
            stream, elements_within(stream, READ_BATCH, READ_BYTES)).reduce(initial, add)
        found = FloatTargets(stream, float(lowest), float(highest), int(other)) if floats else None
        return int(elements), {key: (int(low), int(high)) for key, (low, high) in zip(label_keys, ranges.numpy())}, found
    finally:
        timer.cancel()


@contextlib.contextmanager
def same_every_pass(name: str) -> Iterator[None]:
    """A stream whose passes differ in length (a generator yielding other examples each time) meets
    tf.data's check of the length lossexp counted (:func:`lossexp.training.supervised.batched`) in
    the middle of training: one line instead of TensorFlow's graph error."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.FailedPreconditionError as exc:
        found = re.search(r"expected to contain (\d+) elements but contained (only|at least) (\d+)", str(exc))
        if found is None:
            raise
        expected, bound, got = found.groups()
        raise invalid_value(f"data ({name})", "a stream that yields the same examples at every pass (lossexp counts "
                            "them once and splits the stream by that count)",
                            f"{bound} {got} examples in a split counted at {expected}") from None


def elements_within(stream: Any, most: int, budget: int) -> int:
    """How many of a stream's elements, up to ``most``, fit in ``budget`` bytes by their shapes (an
    axis of unknown length counted once; at least one): what a shuffle buffer or a batch read at
    once may hold — 10,000 decoded 224×224×3 float images are 6 GB."""
    import tensorflow as tf

    element = sum(int(np.prod([d or 1 for d in spec.shape.as_list()])) * (8 if spec.dtype == tf.string else spec.dtype.size)
                  for spec in tf.nest.flatten(stream.element_spec) if spec.shape.rank is not None)
    return max(1, min(int(most), budget // max(element, 1)))


def padded_when_batched(stream: Any) -> bool:
    """Whether a stream's elements may differ in length — an axis of unknown size, a sequence's
    steps — so that batching pads them (:func:`batches`)."""
    import tensorflow as tf

    return any(spec.shape.rank is not None and None in spec.shape.as_list()
               for spec in tf.nest.flatten(stream.element_spec))


def batches(stream: Any, size: int, drop_remainder: bool = False) -> Any:
    """An unbatched stream in batches of ``size``; elements of varying length (a sequence's steps:
    an axis of unknown size) are padded with zeros to the longest of their batch, as tf.data's
    ``padded_batch`` pads them (a masking layer or a per-position sample weight, which pads with
    0, leaves the padding out). One sample weight per example beside integer labels per position
    gets a unit axis per position axis, as :func:`lossexp.data.checks.sample_weights` gives arrays."""
    if padded_when_batched(stream):
        batched = stream.padded_batch(size, drop_remainder=drop_remainder)
    else:
        batched = stream.batch(size, drop_remainder=drop_remainder)
    positions = label_positions(stream.element_spec)
    if not positions:
        return batched
    return batched.map(lambda x, y, weight: (x, y, _per_position(weight, positions)))


def label_positions(spec: Any) -> int:
    """The position axes of the integer labels of an ``(x, y, sample_weight)`` element whose weight is
    one per example (a tagger's labels (T,) or (T, 1): 1; a segmentation's (H, W): 2); else 0."""
    import tensorflow as tf

    if not (isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[1], tf.TensorSpec)
            and isinstance(spec[2], tf.TensorSpec) and spec[2].shape.rank == 0 and spec[1].dtype.is_integer
            and spec[1].shape.rank):
        return 0
    return spec[1].shape.rank - (1 if spec[1].shape[-1] == 1 else 0)


def _per_position(weight: Any, positions: int) -> Any:
    import tensorflow as tf

    return tf.reshape(weight, tf.concat([tf.shape(weight), tf.ones([positions], tf.int32)], axis=0))
