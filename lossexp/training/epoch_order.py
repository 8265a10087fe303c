"""The training examples in a new order every epoch, drawn from the run's seed and the epoch.

Keras' ``fit`` on arrays shuffles with a random op whose seed is fixed when the input pipeline is
built; under ``keras.utils.set_random_seed`` — which a reproducible run sets — every epoch starts a
new iterator of that pipeline and redraws the *same* permutation, so each epoch trains on the same
batches in the same order (tensorflow#29558). That is "shuffle once" SGD, not the reshuffling a
researcher expects. :class:`EpochOrder` draws epoch e's order from ``(seed, e)`` with a stateless
shuffle: a new order every epoch, the same for a run resumed at epoch e as for the run that never
stopped. Its pipeline is Keras' own array pipeline (one permutation per epoch, sliced into batches
of indices, each batch gathered from the arrays in parallel), so feeding the batches costs what it
costs Keras; the callback tells the pipeline the epoch before Keras opens the epoch's iterator.

A stream (data larger than memory) cannot be permuted; it is shuffled within a buffer
(:meth:`EpochOrder.shuffled`) whose seed is drawn from ``(seed, e)`` the same way, where tf.data's
own ``reshuffle_each_iteration`` draws each pass's seed from a generator that a resumed run starts
afresh. :class:`OneOrder` is ``trainer.shuffle: once`` for a stream: one buffer order, every epoch.

A stream that already reorders itself at every pass — a ``.shuffle(n)`` in its pipeline, as Keras'
``image_dataset_from_directory`` shuffles its file paths, before decoding — trains in its own order
(:func:`shuffles_itself`), as Keras' ``fit`` trains it: the buffer, filled with decoded examples before
the first one comes out, decoded half the images of 20,000 before the first step (4.3 s of CPU
against Keras' 0.5). One line says when its first labels come in runs of a class (:func:`in_runs`).
``trainer.shuffle: once`` adds no buffer to it either: over a stream in another order at every pass, it
would give every epoch another order too; one line says so.
"""
from __future__ import annotations

import sys
from typing import Any, Optional, Set

import keras
import numpy as np


class EpochOrder(keras.callbacks.Callback):
    """The epoch whose order :meth:`batches` draws, set at each epoch's beginning."""

    def __init__(self, seed: int) -> None:
        import tensorflow as tf

        super().__init__()
        self.seed = int(seed)
        with tf.init_scope():  # outside any distribution strategy: a plain variable on the host
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_order")

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch.assign(epoch)

    def shuffled(self, stream: Any, buffer: int) -> Any:
        """``stream`` shuffled within ``buffer`` elements in this epoch's order: each pass reads the
        epoch and shuffles with a seed drawn from ``(seed, epoch)``."""
        import tensorflow as tf

        seed, epoch = self.seed, self.epoch

        def in_epochs_order(epoch_now: Any) -> Any:
            # tf.data's seed helper compares a tensor seed with 0 in Python when the graph's own seed
            # is 0 (keras.utils.set_random_seed(0)) and fails; this function's graph gets a seed of
            # its own (not the process's), and the op seed, drawn from (seed, epoch), decides the order
            tf.random.set_seed(_FUNCTION_GRAPH_SEED)
            op_seed = tf.random.stateless_uniform([], seed=tf.stack([tf.constant(seed, tf.int64), epoch_now]),
                                                  minval=1, maxval=2 ** 31 - 1, dtype=tf.int64)
            return stream.shuffle(buffer, seed=op_seed, reshuffle_each_iteration=False)

        ordered = tf.data.Dataset.range(1).map(lambda _: epoch.read_value()).flat_map(in_epochs_order)
        cardinality = int(stream.cardinality())
        return ordered.apply(tf.data.experimental.assert_cardinality(cardinality)) if cardinality >= 0 else ordered

    def batches(self, arrays: Any, batch_size: int) -> Any:
        """``arrays`` (a structure of arrays with one row per example: inputs, targets, sample
        weights) as a ``tf.data`` stream of batches of ``batch_size`` in this epoch's order, the last
        batch partial."""
        import numpy as np
        import tensorflow as tf

        flat = keras.tree.flatten(arrays)
        examples = len(flat[0])
        full, partial = divmod(examples, batch_size)
        seed, epoch = self.seed, self.epoch

        def permutation(_: Any) -> Any:
            return tf.random.experimental.stateless_shuffle(
                tf.range(examples, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch.read_value()]))

        def batch_indices(order: Any) -> Any:
            batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full * batch_size], [full, batch_size]))
            if partial:
                batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:]))
            return batches

        def gather(indices: Any, data: Any) -> Any:
            return tf.nest.map_structure(lambda column: tf.gather(column, indices, axis=0), data)

        data = tf.nest.map_structure(lambda column: tf.convert_to_tensor(np.asarray(column)), _tuples(arrays))
        stream = tf.data.Dataset.range(1).map(permutation).prefetch(1).flat_map(batch_indices)
        stream = tf.data.Dataset.zip((stream, tf.data.Dataset.from_tensors(data).repeat()))
        stream = stream.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        stream = stream.apply(tf.data.experimental.assert_cardinality(full + (1 if partial else 0)))
        options = tf.data.Options()
        # as Keras' array pipeline: no graph rewrite to pay for, and the epoch variable is state the
        # pipeline reads, not state to serialise with it
        options.experimental_optimization.apply_default_optimizations = False
        options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
        return stream.with_options(options).prefetch(tf.data.AUTOTUNE)


class OneOrder:
    """``trainer.shuffle: once`` for a stream: shuffled within a buffer in one order, every epoch."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def shuffled(self, stream: Any, buffer: int) -> Any:
        return stream.shuffle(buffer, seed=self.seed, reshuffle_each_iteration=False)


def shuffles_itself(stream: Any) -> bool:
    """Whether a training stream reorders itself at every pass (:func:`lossexp.data.streams.reshuffles`):
    ``trainer.shuffle: each_epoch`` then adds no buffer of its own."""
    from lossexp.data.streams import reshuffles

    return reshuffles(stream)


def in_runs(labels: Any) -> Optional[str]:
    """What shows that a stream's first class labels (one per example) come in runs of a class — a
    stream stored sorted by class and shuffled within too small a buffer —, or None: all of one class
    (of 32 or more), or fewer changes of class from one example to the next than a quarter of what a
    random order of the same labels makes on average."""
    labels = np.asarray(labels).reshape(-1) if labels is not None and np.ndim(labels) == 1 else None
    if labels is None or len(labels) < 32:
        return None
    counts = np.unique(labels, return_counts=True)[1]
    if len(counts) == 1:
        return f"its first {len(labels)} examples are all of class {labels[0]}"
    n = len(labels)
    expected = (n - 1) * (1 - float((counts * (counts - 1)).sum()) / (n * (n - 1)))
    changes = int((labels[1:] != labels[:-1]).sum())
    if changes >= expected / 4:
        return None
    return f"its first {n} examples change class {changes} times (about {expected:.0f} in a random order)"


def in_order(targets: Any) -> Optional[str]:
    """What shows that a stream's first regression targets (one per example) rise or fall with their position — a
    stream stored sorted by its target and shuffled within too small a buffer —, or None: their rank correlation
    with the position (Spearman's, ties ranked alike) is 0.5 or more in size, 8 standard deviations of a random
    order's at 256 examples (1/√255 = 0.063), or they are too few (under 32) or all equal to tell."""
    values = np.asarray(targets) if targets is not None else np.zeros(0)
    values = values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values
    if values.ndim != 1 or len(values) < 32 or not np.all(np.isfinite(values)) or np.all(values == values[0]):
        return None
    correlation = float(np.corrcoef(_ranks(values), np.arange(len(values)))[0, 1])
    if abs(correlation) < 0.5:
        return None
    return (f"its first {len(values)} examples' targets {'rise' if correlation > 0 else 'fall'} with their position "
            f"(rank correlation {correlation:.2f}; about 0 ± {1 / np.sqrt(len(values) - 1):.2f} in a random order)")


def _ranks(values: np.ndarray) -> np.ndarray:
    """The rank of each value (0 for the least), equal values given the mean of their ranks."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


#: the data sources (their name and options) whose own order was warned about in this process
_WARNED: Set[Optional[str]] = set()


def own_order_warning(name: str, first_labels: Any, task: str, once: bool = False,
                      source: Optional[str] = None) -> None:
    """One warning line when a training stream that shuffles itself (:func:`shuffles_itself`), trained in
    its own order, shows its first class labels in runs (:func:`in_runs`; a classifier's: ``first_labels``;
    multi-label rows are not one label) or its first regression targets sorted (:func:`in_order`; a
    regression's: ``first_labels`` its first targets, whole-valued or not, which are no classes; it trained
    sorted without a word before) — or, ``once`` (``trainer.shuffle:
    once``), that no one order can hold for every epoch: lossexp's buffer over it, filled with decoded
    examples before the first step, would reorder another order at every pass. ``source`` (the data
    config's name and options) says it once per process: a sweep's pre-check and its jobs load the same
    source again (None, a stream given from Python: at every fit)."""
    key = None if source is None else f"{source}|{'once' if once else 'runs'}"
    if key in _WARNED:
        return
    tells = {"classification": (in_runs, "class"), "regression": (in_order, "its target")}
    found, by = (None, "") if once or task not in tells else (tells[task][0](first_labels), tells[task][1])
    if once:
        print(f"lossexp: warning: trainer.shuffle=once, but data {name!r} reshuffles itself at every pass (a "
              ".shuffle() in its pipeline): no one order holds for every epoch, and it trains in its own (its "
              ".shuffle(n, reshuffle_each_iteration=False) gives one order)", file=sys.stderr)
    elif found is not None:
        print(f"lossexp: warning: data {name!r} shuffles itself at every pass and trains in that order, but {found}: "
              f"if it is stored sorted by {by}, its .shuffle() buffer is too small — shuffle its file list before "
              "decoding (.shuffle(n) of n paths), or remove the .shuffle() and lossexp shuffles it "
              "(trainer.shuffle, within 10,000 examples)", file=sys.stderr)
    else:
        return
    if key is not None:
        _WARNED.add(key)


#: the graph seed of the function that shuffles a stream in its epoch's order (any but 0)
_FUNCTION_GRAPH_SEED = 1


def _tuples(arrays: Any) -> Any:
    """Lists as tuples (tf.data's structures: a list would read as one tensor) and no None."""
    if isinstance(arrays, dict):
        return {key: _tuples(value) for key, value in arrays.items()}
    if isinstance(arrays, (list, tuple)):
        return tuple(_tuples(value) for value in arrays if value is not None)
    return arrays
