"""A Keras PyDataset (a user's loader of batches) as lossexp's unbatched stream: the same examples
in the same order, the size counted, the task inferred, several inputs and sample weights kept."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from lossexp.data.dataset import as_dataset
from lossexp.errors import ConfigError


class Loader(keras.utils.PyDataset):
    """Batches of ``batch_size`` rows of ``columns`` (the last one shorter), as users write them."""

    def __init__(self, columns, batch_size=16):
        super().__init__()
        self.columns, self.batch_size = columns, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.columns[1]) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return tuple({k: v[rows] for k, v in c.items()} if isinstance(c, dict) else
                     tuple(v[rows] for v in c) if isinstance(c, tuple) else c[rows] for c in self.columns)

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_a_loaders_batches_become_its_examples_in_order_with_the_task_inferred():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)).astype("float32"), rng.integers(0, 4, size=50)
    data = as_dataset("loader", Loader((x, y)))
    assert (data.examples, data.task, data.num_outputs, data.input_shapes) == (50, "classification", 4, (3,))
    train, validation = data.split(0.2)
    [(x_val, y_val)] = validation.stream.batch(100).as_numpy_iterator()
    np.testing.assert_array_equal(x_val, x[40:])
    np.testing.assert_array_equal(y_val, y[40:])
    assert sum(1 for _ in train.stream) == 40


def test_several_inputs_and_sample_weights_are_kept():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 2)).astype("float32"), rng.normal(size=(20, 4)).astype("float32")
    weight = rng.uniform(size=20).astype("float32")
    data = as_dataset("loader", Loader(({"a": a, "b": b}, a[:, :1] * 2.0, weight), batch_size=8))
    assert (data.examples, data.task, data.input_shapes) == (20, "regression", {"a": (2,), "b": (4,)})
    [(x, y, w)] = data.stream.batch(20).as_numpy_iterator()
    np.testing.assert_array_equal(x["b"], b)
    np.testing.assert_array_equal(w, weight)


def test_an_item_that_is_not_a_batch_is_one_line():
    class Broken(Loader):
        def __getitem__(self, index):
            return self.columns[0][:4]

    with pytest.raises(ConfigError) as info:
        as_dataset("loader", Broken((np.zeros((8, 2)), np.zeros(8))))
    assert str(info.value) == ("Invalid value for data (loader): expected a PyDataset whose items are (x, y) or "
                               "(x, y, sample_weight) batches, got 'item 0: ndarray of shape (4, 2)'")


class Recording(Loader):
    """A loader that notes every batch it is asked for (each one an image decoded, in a real one)."""

    def __init__(self, columns, batch_size=16):
        super().__init__(columns, batch_size)
        self.asked = []

    def __getitem__(self, index):
        self.asked.append(index)
        return super().__getitem__(index)


@pytest.mark.parametrize("labels", ["integers", "booleans"])
def test_the_validation_split_is_read_from_its_own_batch_without_loading_the_training_batches(labels):
    """Its first example is the 36th of 50 (in batch 2 of batches of 16): ``skip(35)`` loaded batches
    0–2 (decoding every training image) before each validation pass that was not cached."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = rng.integers(0, 4, size=50) if labels == "integers" else rng.integers(0, 2, size=50).astype(bool)
    loader = Recording((x, y))
    data = as_dataset("loader", loader)
    _, validation = data.split(0.3)
    loader.asked.clear()
    [(x_val, y_val)] = validation.stream.batch(100).as_numpy_iterator()
    np.testing.assert_array_equal(x_val, x[35:])
    np.testing.assert_array_equal(y_val, y[35:].astype("int64"))
    assert loader.asked == [2, 3]
    _, flat = data.autoencoding().split(0.3)  # a reconstruction's validation: the same examples, flattened
    [(x_flat, y_flat)] = flat.stream.batch(100).as_numpy_iterator()
    np.testing.assert_array_equal(x_flat, x[35:])
    np.testing.assert_array_equal(y_flat, x[35:])


def test_a_validation_split_from_the_middle_of_a_batch_keeps_several_inputs_and_weights():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20, 2)).astype("float32"), rng.normal(size=(20, 4)).astype("float32")
    weight = rng.uniform(size=20).astype("float32")
    data = as_dataset("loader", Loader(((a, b), a[:, :1] * 2.0, weight), batch_size=8))
    _, validation = data.split(0.25)  # the last 5: from the middle of batch 1
    [((a_val, b_val), y_val, w_val)] = validation.stream.batch(20).as_numpy_iterator()
    np.testing.assert_array_equal(b_val, b[15:])
    np.testing.assert_array_equal(y_val, a[15:, :1] * 2.0)
    np.testing.assert_array_equal(w_val, weight[15:])


def test_a_len_that_counts_more_batches_than_the_loader_has_is_one_line():
    """``__len__`` one too many (rounded up twice): the last item is an empty slice, or an IndexError of a
    loader that indexes a list; it was TensorFlow's cardinality error in a traceback as lossexp counted
    the labels ("expected to contain 110 elements but contained only 100")."""
    class Longer(Loader):
        def __len__(self):
            return super().__len__() + 1

    class Listed(Longer):
        def __getitem__(self, index):
            return [super(Longer, self).__getitem__(i) for i in range(Loader.__len__(self))][index]

    expected = ("Invalid value for data (loader): expected a PyDataset whose len() is its number of batches, each "
                "holding an example, got 'len() 5, item 4 ")
    columns = (np.zeros((40, 2), "float32"), np.arange(40) % 3)
    for loader, got in ((Longer(columns, batch_size=10), "of no examples'"),
                        (Listed(columns, batch_size=10), "raising IndexError: list index out of range'")):
        with pytest.raises(ConfigError) as info:
            as_dataset("loader", loader)
        assert str(info.value) == expected + got


def test_batches_of_other_sizes_than_the_first_are_one_line_at_the_first_pass():
    """The size is counted from the first and last batches (10 + 10 + 5 + 10 = 35 here, of 30): tf.data's
    cardinality error was a traceback as the labels (or the first targets, for a regression) were read."""
    class Uneven(Loader):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            rows = [slice(0, 10), slice(10, 15), slice(15, 25), slice(25, 30)][index]
            return tuple(c[rows] for c in self.columns)

    x = np.zeros((30, 2), "float32")
    for y in (np.arange(30) % 3, np.zeros(30, "float32")):
        with pytest.raises(ConfigError) as info:
            as_dataset("loader", Uneven((x, y)))
        assert str(info.value) == ("Invalid value for data (loader): expected a PyDataset whose batches but the last "
                                   "hold as many examples as its first (10), as lossexp counts its size from them, got "
                                   "'Uneven of 4 batches: batch 1 holds 5 examples'")


def test_a_loader_is_not_read_past_its_first_batches_before_training_and_uneven_batches_are_one_line_as_it_trains(
        tmp_path, monkeypatch):
    """Before: the pass over its class labels read all 10 batches (and their decoding) before training.
    Now its first batches tell; a batch of another size past them is the same one line as it trains, the run
    FAILED — each batch checked as it is read: training's split stops before the end, where tf.data checks the
    size (the run's dataset digest read the whole loader before, and met it there)."""
    import lossexp
    from mlflow.tracking import MlflowClient

    class Uneven(Loader):
        def __getitem__(self, index):
            self.read.append(index)
            return super().__getitem__(index) if index != 6 else tuple(c[600:650] for c in self.columns)

    columns = (np.zeros((1000, 4), "float32"), np.arange(1000) % 3)
    loader = Uneven(columns, batch_size=100)
    loader.read = []
    data = as_dataset("loader", loader)
    assert (data.size, data.num_outputs) == (1000, 3) and 6 not in loader.read, loader.read
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((4,))
    with pytest.raises(ConfigError) as info:
        lossexp.fit(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs)), loader,
                    trainer={"epochs": 1, "verbose": 0}, tracking={"plots": False, "log_model": False})
    assert str(info.value) == ("Invalid value for data (python): expected a PyDataset whose batches but the last hold "
                               "as many examples as its first (100), as lossexp counts its size from them, got 'Uneven "
                               "of 10 batches: batch 6 holds 50 examples'")
    [run] = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["1"])
    assert run.info.status == "FAILED"
