"""In-memory examples are trained in a new order every epoch, drawn from the seed and the epoch:
every example once per epoch, the same order for an epoch whatever came before it (a resumed run),
and Keras' own array shuffle shown to repeat one order under a fixed seed (why this exists). A
stream is shuffled within a buffer whose seed is drawn the same way (tf.data's reshuffling is
shown to restart with a resumed run)."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lossexp.training.epoch_order import EpochOrder, OneOrder


def orders(stream, order, epochs):
    """The first column of ``x`` in each epoch's batches, epoch by epoch."""
    drawn = []
    for epoch in epochs:
        order.on_epoch_begin(epoch)
        drawn.append([batch[0]["a"][:, 0].numpy().astype(int).tolist() for batch in stream])
    return drawn


def examples(n=10):
    x = {"a": np.arange(n, dtype="float32").reshape(n, 1), "b": np.zeros((n, 3), "float32")}
    return x, np.arange(n) % 2, np.linspace(0.5, 1.0, n).astype("float32")


def test_each_epoch_trains_every_example_once_in_a_new_order():
    x, y, weight = examples()
    order = EpochOrder(seed=0)
    stream = order.batches((x, y, weight), 4)
    drawn = orders(stream, order, range(4))
    assert [len(b) for b in drawn[0]] == [4, 4, 2]  # the last batch partial, as Keras' fit batches arrays
    assert all(sorted(sum(epoch, [])) == list(range(10)) for epoch in drawn)
    assert len({str(epoch) for epoch in drawn}) == 4
    assert int(stream.cardinality()) == 3  # Keras knows each epoch's steps
    order.on_epoch_begin(0)
    batch = next(iter(stream))  # targets and weights follow their examples
    rows = batch[0]["a"][:, 0].numpy().astype(int)
    np.testing.assert_array_equal(batch[1].numpy(), y[rows])
    np.testing.assert_array_equal(batch[2].numpy(), weight[rows])


def test_an_epochs_order_does_not_depend_on_the_epochs_before_it():
    """A run resumed at epoch 2 draws the orders of epochs 2 and 3 the uninterrupted run drew."""
    x, y, _ = examples()
    first = EpochOrder(seed=3)
    uninterrupted = orders(first.batches((x, y), 4), first, range(4))
    resumed = EpochOrder(seed=3)
    assert orders(resumed.batches((x, y), 4), resumed, [2, 3]) == uninterrupted[2:]
    other = EpochOrder(seed=4)
    assert orders(other.batches((x, y), 4), other, range(4)) != uninterrupted


def stream_orders(stream, order, epochs):
    drawn = []
    for epoch in epochs:
        order.on_epoch_begin(epoch)
        drawn.append([int(value) for value in stream.as_numpy_iterator()])
    return drawn


def test_a_streams_order_is_drawn_from_the_seed_and_the_epoch_alone_also_under_a_global_seed_of_0():
    keras.utils.set_random_seed(0)  # the default trainer.seed: tf.data's seed helper trips on a tensor seed here
    stream = tf.data.Dataset.range(20)
    first = EpochOrder(seed=0)
    uninterrupted = stream_orders(first.shuffled(stream, 8), first, range(4))
    assert all(sorted(epoch) == list(range(20)) for epoch in uninterrupted)
    assert len({str(epoch) for epoch in uninterrupted}) == 4
    resumed = EpochOrder(seed=0)
    assert stream_orders(resumed.shuffled(stream, 8), resumed, [2, 3]) == uninterrupted[2:]
    other = EpochOrder(seed=1)
    assert stream_orders(other.shuffled(stream, 8), other, range(4)) != uninterrupted
    assert int(first.shuffled(stream, 8).cardinality()) == 20  # Keras knows each epoch's steps


def test_tf_datas_own_reshuffling_restarts_with_a_new_pipeline():
    """Why a stream's order is drawn from the epoch: ``reshuffle_each_iteration`` draws each pass's
    seed from a generator that a new pipeline — a resumed run's — starts again."""
    keras.utils.set_random_seed(0)

    def passes(n):
        stream = tf.data.Dataset.range(20).shuffle(8, seed=0, reshuffle_each_iteration=True)
        return [[int(value) for value in stream.as_numpy_iterator()] for _ in range(n)]

    uninterrupted = passes(3)
    assert len({str(epoch) for epoch in uninterrupted}) == 3
    assert passes(1)[0] == uninterrupted[0] != uninterrupted[2]  # "epoch 2" after a resume draws epoch 0's


def test_once_shuffles_a_stream_in_one_order_every_epoch():
    order = OneOrder(seed=5)
    shuffled = order.shuffled(tf.data.Dataset.range(20), 8)
    drawn = [[int(value) for value in shuffled.as_numpy_iterator()] for _ in range(3)]
    assert drawn[0] == drawn[1] == drawn[2] != list(range(20))


def test_fit_sets_the_epoch_before_each_epoch_reads_its_batches():
    keras.utils.set_random_seed(0)
    x, y, _ = examples(12)
    seen = []

    class Record(keras.layers.Layer):
        def call(self, inputs):
            tf.py_function(lambda rows: seen.append(rows.numpy()[:, 0].astype(int).tolist()) or 0, [inputs], tf.int32)
            return inputs

    a, b = keras.Input((1,), name="a"), keras.Input((3,), name="b")
    network = keras.Model({"a": a, "b": b}, keras.layers.Dense(1)(keras.layers.Concatenate()([Record()(a), b])))
    network.compile("sgd", "mse", run_eagerly=True)
    order = EpochOrder(seed=0)
    network.fit(order.batches((x, y), 12), epochs=3, callbacks=[order], shuffle=False, verbose=0)
    assert len(seen) == 3 and len({str(rows) for rows in seen}) == 3
    assert all(sorted(rows) == list(range(12)) for rows in seen)
    assert int(order.epoch.numpy()) == 2


def test_keras_fit_on_arrays_repeats_one_order_under_a_fixed_seed():
    """Why lossexp orders arrays itself: Keras 3's array pipeline redraws the same permutation at
    every epoch once ``set_random_seed`` is called (its shuffle op's seed is fixed when it is built)."""
    keras.utils.set_random_seed(0)
    seen = []

    class Record(keras.layers.Layer):
        def call(self, inputs):
            tf.py_function(lambda rows: seen.append(rows.numpy()[:, 0].astype(int).tolist()) or 0, [inputs], tf.int32)
            return inputs

    network = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(1)])
    network.compile("sgd", "mse", run_eagerly=True)
    x = np.arange(8, dtype="float32").reshape(8, 1)
    network.fit(x, x, batch_size=8, epochs=3, shuffle=True, verbose=0)
    assert len(seen) == 3 and seen[0] != list(range(8)) and seen[0] == seen[1] == seen[2]


def first_step_decodes(stream_of_ids, tmp_path, monkeypatch, shuffle="each_epoch"):
    """The elements ``stream_of_ids`` (ids 0…n-1, sorted by class: label id * 3 // n) decoded before
    ``lossexp.fit``'s first step, and what it printed on stderr."""
    import lossexp

    decoded = tf.Variable(0, dtype=tf.int64)
    size = int(stream_of_ids.cardinality())

    def decode(i):
        decoded.assign_add(1)
        return tf.fill([4], tf.cast(i, tf.float32) / size), i * 3 // size

    first = []

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            first.append(int(decoded.numpy()))
            self.model.stop_training = True

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    lossexp.fit(network, stream_of_ids.map(decode), callbacks=[FirstStep()], tracking={"enabled": False},
                trainer={"epochs": 1, "validation_split": 0, "verbose": 0, "steps_per_execution": 1, "shuffle": shuffle})
    return first[0]


def test_a_stream_that_shuffles_itself_trains_in_its_own_order_without_a_buffer_of_decoded_examples(
        tmp_path, monkeypatch, capsys):
    """Keras' idiom — ids (file paths) shuffled at every pass before decoding — was shuffled again in
    lossexp's buffer, filled with decoded examples before the first step (all 2,000 here; 12,200 of
    20,000 PNGs)."""
    assert first_step_decodes(tf.data.Dataset.range(2000).shuffle(2000, seed=0), tmp_path, monkeypatch) < 1000
    assert "warning" not in capsys.readouterr().err


def test_shuffle_once_on_a_stream_that_shuffles_itself_fills_no_buffer_and_says_why(tmp_path, monkeypatch, capsys):
    """One buffer order over a stream in another order at every pass is no one order: its buffer decoded all
    2,000 examples before the first step for nothing."""
    assert first_step_decodes(tf.data.Dataset.range(2000).shuffle(2000, seed=0), tmp_path, monkeypatch, "once") < 1000
    [line] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert "trainer.shuffle=once" in line and "reshuffles itself at every pass" in line


def test_a_stream_sorted_by_class_that_shuffles_itself_within_too_few_is_one_warning_line(
        tmp_path, monkeypatch, capsys):
    first_step_decodes(tf.data.Dataset.range(2000).shuffle(16, seed=0), tmp_path, monkeypatch)
    [line] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert "shuffles itself" in line and "its first 256 examples are all of class 0" in line


def test_labels_in_runs_are_told_from_a_random_order_of_them():
    from lossexp.training.epoch_order import in_runs

    rng = np.random.default_rng(0)
    assert in_runs(rng.integers(0, 10, 256)) is None
    assert in_runs(rng.permutation(np.r_[np.zeros(250, int), np.ones(6, int)])) is None  # imbalanced, in no order
    assert "change class 1 times" in in_runs(np.repeat([0, 1], 128))
    assert in_runs(np.sort(rng.integers(0, 3, 256))[::-1]).startswith("its first 256 examples change class 2 times")
    assert in_runs(np.zeros(10, int)) is None  # too few to tell


def test_a_sources_own_order_is_warned_of_once_per_process_and_for_class_labels_only(capsys):
    """A sweep said it at its pre-check and in each job (the same source loaded again); a regression's
    whole-valued targets in runs are no classes (sorted, they are a target sorted: :func:`in_order`'s words); a
    stream given from Python (no source) is said at every fit; multi-output data is neither."""
    from lossexp.training import epoch_order

    runs = np.repeat([0, 1], 128)
    for _ in range(3):
        epoch_order.own_order_warning("sorted", runs, "classification", source="Selection(name='sorted', n=600)")
    epoch_order.own_order_warning("ages", runs.astype("float32"), "regression", source="Selection(name='ages')")
    epoch_order.own_order_warning("python", runs, "classification")
    epoch_order.own_order_warning("python", runs, "classification")
    epoch_order.own_order_warning("heads", runs, "multi_output")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("'")[1] for line in lines] == ["sorted", "ages", "python", "python"]
    assert "sorted by class" in lines[0] and "change class 1 times" in lines[0]
    assert "sorted by its target" in lines[1] and "targets rise with their position" in lines[1]


def test_regression_targets_sorted_are_told_from_a_random_order_of_them():
    """The regression twin of :func:`in_runs`: a stream sorted by its target and shuffled within 16 (its first 256
    targets' rank correlation with their position 0.98, as
    SciPy's spearmanr has it, ties too) warns, rising or falling; no random order of 256 of 1,000
    does (the largest of 1,000 draws is 0.22, the threshold 0.5: 8 standard deviations); nor do too few or equal ones."""
    from lossexp.training.epoch_order import in_order

    sorted_within_16 = np.concatenate([y for y in tf.data.Dataset.range(2000).shuffle(16, seed=0).take(256)
                                      .map(lambda i: tf.cast(i, tf.float32) / 2000.0).batch(256).as_numpy_iterator()])
    from scipy.stats import spearmanr

    expected = spearmanr(sorted_within_16, np.arange(256)).statistic  # 0.98, the reference
    assert in_order(sorted_within_16) == (f"its first 256 examples' targets rise with their position (rank correlation "
                                          f"{expected:.2f}; about 0 ± 0.06 in a random order)")
    tied = np.repeat(np.arange(8.0), 32)[np.argsort(np.arange(256) + np.random.default_rng(1).integers(0, 40, 256))]
    assert in_order(tied).split("correlation ")[1][:4] == f"{spearmanr(tied, np.arange(256)).statistic:.2f}"
    assert "fall" in in_order(-sorted_within_16[:, None])  # (n, 1) as a regression's targets come
    rng = np.random.default_rng(0)
    largest = max(abs(np.corrcoef(rng.permutation(256), np.arange(256))[0, 1]) for _ in range(1000))
    assert largest < 0.3
    assert not any(in_order(rng.permutation(rng.normal(size=256))) for _ in range(1000))
    assert not any(in_order(rng.permutation(np.repeat(np.arange(4.0), 64))) for _ in range(200))  # ties
    assert in_order(np.arange(20.0)) is None and in_order(np.ones(256)) is None and in_order(np.ones((256, 2))) is None


def test_a_regression_stream_sorted_by_its_target_that_shuffles_itself_within_too_few_is_one_warning_line(
        tmp_path, monkeypatch, capsys):
    """A sorted classifier was warned of; a regression stream sorted by its target trained sorted without a word."""
    import lossexp

    size = 400

    def decode(i):
        return tf.fill([4], tf.cast(i, tf.float32) / size), tf.reshape(tf.cast(i, tf.float32) / size, [1])

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((4,))
    lossexp.fit(keras.Model(inputs, keras.layers.Dense(1)(inputs)), tf.data.Dataset.range(size).shuffle(16, seed=0)
                .map(decode), tracking={"enabled": False},
                trainer={"epochs": 1, "validation_split": 0, "verbose": 0, "steps_per_execution": 10})
    [line] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert line.startswith("lossexp: warning: data 'python' shuffles itself at every pass and trains in that order, "
                           "but its first 256 examples' targets rise with their position")
    assert "if it is stored sorted by its target, its .shuffle() buffer is too small" in line
