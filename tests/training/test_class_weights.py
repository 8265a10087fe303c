"""Class weights: each class's weight against scikit-learn's balanced formula and a mapping, applied
to arrays and streams alike (one-hot labels, labels per position, the data's own sample weights),
and a training loss weighted by class as NumPy computes it."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import numpy_cross_entropy
from lossexp.data import Part
from lossexp.errors import ConfigError
from lossexp.training.class_weights import per_class, weighted


def test_balanced_gives_every_class_the_same_total_weight_and_a_mapping_its_classes():
    counts = np.array([70, 20, 10, 0])
    weights = per_class("balanced", counts)
    np.testing.assert_allclose(weights[:3], 100 / (3 * counts[:3]), rtol=1e-6)  # n / (k · n_c), k present
    assert weights[3] == 0.0  # absent from the training split
    np.testing.assert_allclose(weights[:3] * counts[:3], [100 / 3] * 3, rtol=1e-6)  # the weights average 1
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.repeat(np.arange(4), counts)
    np.testing.assert_allclose(weights[:3], compute_class_weight("balanced", classes=np.arange(3), y=labels),
                               rtol=1e-6)
    np.testing.assert_array_equal(per_class({1: 5.0, "3": 0.5}, counts), [1.0, 5.0, 1.0, 0.5])
    with pytest.raises(ConfigError, match=r"^Invalid value for task.class_weight: expected classes 0 … 3, got 7$"):
        per_class({7: 2.0}, counts)


def test_arrays_and_streams_are_weighted_alike_by_class_times_their_own_weight():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 2)).astype("float32"), np.array([0, 0, 0, 1, 0, 2, 0, 1, 0, 0, 2, 0])
    own = rng.uniform(size=12).astype("float32")
    expected = per_class("balanced", np.bincount(y))[y] * own
    _, _, got = weighted(Part(arrays=(x, y, own), size=12), "balanced", 3).arrays
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    one_hot = np.eye(3, dtype="float32")[y]
    np.testing.assert_allclose(weighted(Part(arrays=(x, one_hot), size=12), "balanced", 3).arrays[2],
                               per_class("balanced", np.bincount(y))[y], rtol=1e-6)
    stream = Part(stream=tf.data.Dataset.from_tensor_slices((x, y, own)), size=12)
    from lossexp.training.supervised import batched

    [(_, _, streamed)] = batched(weighted(stream, "balanced", 3), 12).as_numpy_iterator()  # weighted per batch
    np.testing.assert_allclose(streamed, expected, rtol=1e-6)
    tags = np.array([[0, 1, 1], [0, 0, 1]])  # labels per position: a weight per position
    _, _, per_token = weighted(Part(arrays=(x[:2], tags), size=2), {1: 3.0}, 2).arrays
    np.testing.assert_array_equal(per_token, [[1.0, 3.0, 3.0], [1.0, 1.0, 3.0]])


@pytest.mark.slow
def test_the_training_loss_is_the_class_weighted_cross_entropy_numpy_computes(tmp_path, monkeypatch):
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3)).astype("float32")
    y = (x[:, 0] > 0.8).astype("int64")  # about one example in five is class 1
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    before = numpy_cross_entropy(network.predict(x, verbose=0), y)  # the one training step's loss is at these
    history, _ = lossexp.fit(network, (x, y), trainer={"epochs": 1, "verbose": 0, "batch_size": 160},
                             task={"class_weight": "balanced"}, tracking={"enabled": False})
    train, validation = slice(0, 160), slice(160, None)
    weights = per_class("balanced", np.bincount(y[train], minlength=2))[y[train]]
    assert history["loss/task"][0] == pytest.approx(np.mean(before[train] * weights), rel=1e-5)
    after = numpy_cross_entropy(network.predict(x[validation], verbose=0), y[validation])
    assert history["val_loss/task"][0] == pytest.approx(np.mean(after), rel=1e-5)  # validation: not by class


def test_class_weights_on_a_regression_are_refused_before_any_run():
    from conftest import built, composed_config

    config = composed_config("model=mlp", "data=regression", "data.n_samples=40", "task.class_weight=balanced",
                             "tracking.enabled=false")
    with pytest.raises(ConfigError) as info:
        built(config)
    assert str(info.value) == ("Invalid value for task.class_weight: expected null for a task that is not "
                               "classification, got \"balanced for data 'regression' (regression)\"")


def test_sequences_of_varying_length_are_weighted_per_position_and_their_padding_weighs_nothing():
    import tensorflow as tf

    from lossexp.data.dataset import Part
    from lossexp.training.supervised import batched

    labels = [np.array([0, 1, 1]), np.array([2]), np.array([0, 0, 0, 0, 1]), np.array([1, 2])]
    stream = tf.data.Dataset.from_generator(
        lambda: ((np.ones((len(y), 2), "float32"), y) for y in labels),
        output_signature=(tf.TensorSpec((None, 2), tf.float32), tf.TensorSpec((None,), tf.int64)))
    per = per_class("balanced", np.bincount(np.concatenate(labels)))
    [(_, y, weight)] = batched(weighted(Part(stream=stream, size=4), "balanced", 3), 4).as_numpy_iterator()
    expected = np.zeros((4, 5), "float32")
    for row, label in enumerate(labels):
        expected[row, :len(label)] = per[label]
    np.testing.assert_allclose(weight, expected, rtol=1e-6)  # padding: 0, not class 0's weight


def test_class_weights_on_a_network_of_several_outputs_say_so_and_how_to_weigh_a_head(tmp_path, monkeypatch):
    """A classification head beside a regression head: the task is several outputs, not "not classification"."""
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((3,))
    network = keras.Model(inputs, {"cls": keras.layers.Dense(2, activation="softmax", name="cls")(inputs),
                                   "reg": keras.layers.Dense(1, name="reg")(inputs)})
    x = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network, (x, {"cls": np.arange(20) % 2, "reg": x[:, :1]}), task={"class_weight": "balanced"},
                    trainer={"epochs": 1})
    assert str(info.value) == ("Invalid value for task.class_weight: expected null for a network of several outputs "
                               "(weigh examples by class with the data's own sample weights, (x, y, sample_weight): "
                               "one array every head's loss takes, or one per head, {output: weights}), got 'balanced'")


def test_class_weights_weigh_the_loss_and_not_the_accuracy_as_keras_fit_does(tmp_path, monkeypatch):
    """``task.class_weight`` on data without weights of its own: the training accuracy counts every
    example, as Keras' ``fit(class_weight=…)`` with ``compile(metrics=['accuracy'])`` and as the
    validation accuracy count them (it was weighted by class: 0.29 away from Keras' on this data) —
    the losses, weights and accuracies all equal Keras', bit for bit."""
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 3, 40)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}

    def network():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                                 keras.layers.Dense(3, activation="softmax")])

    ours, theirs = network(), network()
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    want = theirs.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, shuffle=False, verbose=0,
                      class_weight=class_weight).history
    got = lossexp.fit(ours, (x, y), trainer={"epochs": 2, "batch_size": 8, "shuffle": "none", "verbose": 0},
                      optimizer={"name": "sgd", "learning_rate": 0.1}, task={"class_weight": class_weight},
                      tracking={"enabled": False}).history
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert got[key] == want[key], key
    for mine, keras_own in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(mine, keras_own)


def test_a_streams_labels_are_read_once_for_its_class_weights(tmp_path, monkeypatch):
    """They were read twice before the first step — every label's range, then each class's count —,
    each pass decoding every example (1,000 here)."""
    import keras
    import tensorflow as tf

    import lossexp

    decoded, first = tf.Variable(0, dtype=tf.int64), []

    def decode(i):
        decoded.assign_add(1)
        return tf.fill([3], tf.cast(i, tf.float32) / 1000), i % 3

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            first.append(int(decoded.numpy()))
            self.model.stop_training = True

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((3,))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    lossexp.fit(network, tf.data.Dataset.range(1000).map(decode), task={"class_weight": "balanced"},
                trainer={"epochs": 1, "verbose": 0, "steps_per_execution": 1, "shuffle": "none"},
                tracking={"enabled": False}, callbacks=[FirstStep()])
    assert first[0] < 1500


def _padded_tags(n: int = 40, steps: int = 12, classes: int = 4):
    """Token ids zero-padded after 3 to 12 real ones, a tag per position (0 on the padding)."""
    rng = np.random.default_rng(1)
    real = np.arange(steps)[None, :] < rng.integers(3, steps + 1, n)[:, None]
    tokens = np.where(real, rng.integers(1, 50, (n, steps)), 0).astype("int32")
    return tokens, np.where(real, tokens % classes, 0).astype("int32"), real


def _weights(arrays: tuple, spec, classes: int, mask=None, streamed: bool = False) -> np.ndarray:
    """The weights :func:`weighted` gives ``arrays`` (x, y[, own weight]), as arrays or as a stream of
    their examples (weighted per batch, as training reads it)."""
    if not streamed:
        return weighted(Part(arrays=arrays, size=len(arrays[1])), spec, classes, mask).arrays[2]
    import tensorflow as tf

    from lossexp.training.supervised import batched

    stream = Part(stream=tf.data.Dataset.from_tensor_slices(arrays), size=len(arrays[1]))
    [(_, _, got)] = batched(weighted(stream, spec, classes, mask), len(arrays[1])).as_numpy_iterator()
    return got


@pytest.mark.parametrize("streamed", [False, True], ids=["arrays", "stream"])
def test_padding_weighted_0_by_the_data_is_not_counted_as_class_0(streamed):
    from sklearn.utils.class_weight import compute_class_weight

    tokens, tags, real = _padded_tags()
    got = _weights((tokens, tags, real.astype("float32")), "balanced", 4, streamed=streamed)
    expected = compute_class_weight("balanced", classes=np.arange(4), y=tags[real])  # the real positions alone
    np.testing.assert_allclose(got[real], expected[tags[real]], rtol=1e-6)
    assert not got[~real].any()


@pytest.mark.parametrize("streamed", [False, True], ids=["arrays", "stream"])
def test_padding_the_network_masks_is_not_counted_as_class_0(streamed):
    import keras
    from sklearn.utils.class_weight import compute_class_weight

    from lossexp.training.class_weights import output_mask

    tokens, tags, real = _padded_tags()
    inputs = keras.Input((tokens.shape[1],), dtype="int32")
    x = keras.layers.Embedding(50, 4, mask_zero=True)(inputs)
    network = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    mask = output_mask(network)
    np.testing.assert_array_equal(mask(tokens), real)
    got = _weights((tokens, tags), "balanced", 4, mask, streamed=streamed)  # a stream: padded by the data itself
    expected = compute_class_weight("balanced", classes=np.arange(4), y=tags[real])
    np.testing.assert_allclose(got[real], expected[tags[real]], rtol=1e-6)
    assert output_mask(keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Embedding(50, 4)(inputs)))) is None
