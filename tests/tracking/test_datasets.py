"""A stream's dataset digest: lossexp's own, of its size, structure and first rows — MLflow's read
the whole stream twice, element by element (165 s for 200,000 rows)."""
from __future__ import annotations

import json

import numpy as np

from lossexp.tracking import datasets
from lossexp.tracking.datasets import stream_digest


def stream(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y))


def test_the_same_rows_digest_alike_and_other_rows_sizes_or_structures_do_not():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)).astype("float32"), np.arange(50) % 4
    digest = stream_digest(stream(x, y), 50)
    assert len(digest) == 8 and digest == stream_digest(stream(x.copy(), y.copy()), 50)
    other = x.copy()
    other[7, 1] += 1.0
    assert stream_digest(stream(other, y), 50) != digest
    assert stream_digest(stream(x, y), 49) != digest
    assert stream_digest(stream(x.astype("float64"), y), 50) != digest
    texts = np.array(["a", "bb", "c"] * 10)  # text inputs: the bytes, not the object pointers
    assert stream_digest(stream(texts, np.arange(30)), 30) == stream_digest(stream(texts.copy(), np.arange(30)), 30)


def test_only_the_first_rows_are_read(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(datasets, "STREAM_ROWS", 100)

    def rows():
        for i in range(5000):
            if i >= 200:
                raise AssertionError("read past the digest's rows")
            yield np.float32(i), np.int64(i % 2)

    endless = tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((), tf.float32),
                                                                     tf.TensorSpec((), tf.int64)))
    assert stream_digest(endless, 5000) == stream_digest(stream(np.arange(100, dtype="float32"),
                                                                np.arange(100) % 2), 5000)


def test_a_stream_of_images_is_digested_by_a_bounded_number_of_bytes():
    """10,000 decoded 64×64×3 float images are 491 MB: reading and hashing them took 8.0 s of a 28.5 s
    start (a directory of 20,000 images) before the first step. The digest reads the first elements
    that fit in DIGEST_BYTES (682 of these), at most STREAM_ROWS (256)."""
    import tensorflow as tf

    read = []

    def images():
        for i in range(2000):
            read.append(i)
            yield np.full((64, 64, 3), i, "float32"), np.int64(i % 2)

    generated = tf.data.Dataset.from_generator(images, output_signature=(tf.TensorSpec((64, 64, 3), tf.float32),
                                                                         tf.TensorSpec((), tf.int64)))
    within = datasets.DIGEST_BYTES // (64 * 64 * 3 * 4 + 8)
    digest = stream_digest(generated, 2000)
    assert len(read) <= min(within, datasets.STREAM_ROWS) + 10, f"{len(read)} images read for the digest"
    assert stream_digest(generated.map(lambda x, y: (x + tf.cast(tf.equal(y, -1), tf.float32), y)), 2000) == digest
    assert stream_digest(generated.map(lambda x, y: (x + tf.cast(tf.equal(y, 1), tf.float32), y)), 2000) != digest


def test_arrays_of_images_are_digested_by_a_bounded_number_of_bytes():
    """The first rows within DIGEST_BYTES: 10,000 rows of a 64×64×3 float32 array are 491 MB (2.0 s of
    hashing per split before the first step); a row past the bound does not change the digest."""
    from lossexp.tracking.datasets import array_digest

    x, y = np.zeros((1000, 64, 64, 3), "float32"), np.arange(1000) % 3
    within = datasets.DIGEST_BYTES // x[0].nbytes
    late, early = x.copy(), x.copy()
    late[within + 1] += 1.0
    early[within - 1] += 1.0
    assert array_digest(late, y) == array_digest(x, y) != array_digest(early, y)


def test_an_empty_stream_has_a_digest():
    assert len(stream_digest(stream(np.zeros((0, 2), "float32"), np.zeros(0, "int64")), 0)) == 8


def test_a_streams_validation_split_is_logged_without_reading_the_training_elements_before_it(tmp_path, monkeypatch):
    """Its digest is the whole stream's first rows and where the cut falls; its schema the training
    split's; each split's profile its own size — logged to a real MLflow store."""
    import mlflow
    import tensorflow as tf

    from lossexp.data.dataset import Dataset

    monkeypatch.setattr(datasets, "STREAM_ROWS", 100)
    read = []

    def rows():
        for i in range(5000):
            read.append(i)
            yield np.full(3, i, "float32"), np.int64(i % 2)

    generated = tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((3,), tf.float32),
                                                                       tf.TensorSpec((), tf.int64)))
    train, validation = Dataset("mine", "classification", stream=generated, size=5000, num_outputs=2).split(0.2)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    datasets.log_datasets(client, run_id, {"name": "mine"}, train, validation)
    assert max(read) < 200 and len(read) < 200  # the first rows, read once
    logged = {i.tags[0].value: i.dataset for i in client.get_run(run_id).inputs.dataset_inputs}
    assert set(logged) == {"training", "validation"}
    assert logged["training"].digest != logged["validation"].digest
    assert logged["training"].schema == logged["validation"].schema and "float32" in logged["training"].schema
    assert json.loads(logged["training"].profile)["features_cardinality"] == 4000
    assert json.loads(logged["validation"].profile)["targets_cardinality"] == 1000
    assert logged["validation"].digest == stream_digest(generated, 1000, offset=4000)
    assert stream_digest(generated, 1000, offset=4000) != stream_digest(generated, 1000)


def test_a_stream_of_texts_is_logged_with_a_schema_of_text(tmp_path):
    """One text per element (a TextVectorization's input) is a scalar: MLflow's digest of it failed
    (``'bytes' object has no attribute 'flatten'``), failing the run before its first step."""
    import mlflow

    from lossexp.data.dataset import Dataset

    texts = stream(np.array(["good film", "bad plot", "great acting", "awful film"] * 5), np.array([1, 0, 1, 0] * 5))
    train, validation = Dataset("reviews", "classification", stream=texts, size=20, num_outputs=2).split(0.25)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    datasets.log_datasets(client, run_id, {"name": "reviews"}, train, validation)
    logged = [i.dataset for i in client.get_run(run_id).inputs.dataset_inputs]
    assert len(logged) == 2 and all('\\"dtype\\": \\"object\\"' in d.schema for d in logged)


def test_arrays_are_digested_by_their_first_rows_not_their_first_numbers():
    """MLflow's digest of arrays hashes their first 10,000 numbers (200 rows of a 50-column table,
    part of one 64×64×3 image): a table that differs in row 300 logged the same digest."""
    from lossexp.data.dataset import Dataset

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 50)).astype("float32"), np.arange(1000) % 3
    other = x.copy()
    other[300, 7] += 1.0

    def digest(x, y):
        train, _ = Dataset("table", "classification", x=x, y=y, num_outputs=3).split(0.2)
        return datasets.dataset({"name": "table"}, train).digest

    base, same, changed = digest(x, y), digest(x.copy(), y.copy()), digest(other, y)
    assert base == same and changed != base
    shorter, wider = digest(x[:999], y[:999]), digest(x.astype("float64"), y)
    assert shorter != base and wider != base  # the size and the dtype count too


def test_arrays_are_digested_without_a_copy_of_them():
    """MLflow's ``compute_numpy_digest`` flattened each whole array (a copy) to hash its first numbers:
    a 1.2 GB split of images was copied once more before the first step. numpy reports its buffers to
    tracemalloc, so a copy shows as a peak of the array's size."""
    import tracemalloc

    from lossexp.data.dataset import Dataset

    x = np.ones((4000, 32, 32, 3), "float32")  # 49 MB
    train, validation = Dataset("images", "classification", x=x, y=np.arange(4000) % 10, num_outputs=10).split(0.2)
    datasets.dataset({"name": "images"}, validation)._to_mlflow_entity()  # MLflow's modules imported untraced
    tracemalloc.start()
    try:
        for part in (train, validation):
            datasets.dataset({"name": "images", "path": "images.npz"}, part)._to_mlflow_entity()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < train.arrays[0].nbytes / 4, f"{peak / 1e6:.1f} MB allocated to log a {x.nbytes / 1e6:.0f} MB array"


def test_a_streams_schema_has_its_examples_shape_as_arrays_have_theirs():
    """MLflow's schema of a ``tf.data`` stream takes the first axis of an element for the batch's: a stream
    of (8, 8, 3) images was logged as [-1, 8, 3] and one of (4,) rows as [-1], where the same arrays log
    [-1, 8, 8, 3] and [-1, 4]; labels, one per example, [-1] alike."""
    from lossexp.data.dataset import Dataset

    for shape in ((8, 8, 3), (4,)):
        parts = Dataset("mine", "classification", stream=stream(np.zeros((10, *shape), "float32"), np.arange(10) % 2),
                        size=10, num_outputs=2).split(0.2)
        [logged, _] = datasets.stream_entities({"name": "mine"}, parts)
        schema = {key: json.loads(value)[0]["tensor-spec"]
                  for key, value in json.loads(logged.schema)["mlflow_tensorspec"].items() if value}
        assert schema == {"features": {"dtype": "float32", "shape": [-1, *shape]},
                          "targets": {"dtype": "int64", "shape": [-1]}}


def rows_stream(n, read, changed=None):
    """A generator stream of ``n`` rows of known length, appending each index read to ``read``; row
    ``changed`` (if any) differs."""
    import tensorflow as tf

    def rows():
        for i in range(n):
            read.append(i)
            yield np.full(3, i + (0.5 if i == changed else 0), "float32"), np.int64(i % 2)

    return tf.data.Dataset.from_generator(rows, output_signature=(
        tf.TensorSpec((3,), tf.float32), tf.TensorSpec((), tf.int64))).apply(tf.data.experimental.assert_cardinality(n))


def test_a_streams_digest_reads_nothing_past_what_its_checks_read():
    """The digest read a stream's first 10,000 elements before the first step (all 100 batches of a
    3,200-example PyDataset; 11 without tracking): it is now of the first 256 its checks read, hashed as
    they read them — the schema's first element the one element read again. Same rows, one digest;
    a row among them changed, or a validation set of one's own changed, another."""
    from lossexp.data.dataset import as_dataset

    def logged(changed=None, validation_changed=None):
        read, held = [], []
        data = as_dataset("mine", {"train": rows_stream(3000, read, changed),
                                   "validation": rows_stream(500, held, validation_changed)})
        checks = len(read) + len(held)
        entities = datasets.stream_entities({"name": "mine"}, data.split(0.2))
        assert len(read) + len(held) - checks <= 1, f"{len(read) + len(held) - checks} rows read for the digests"
        return tuple(entity.digest for entity in entities)

    training, validation = logged()
    assert training != validation and logged() == (training, validation)
    changed, same = logged(changed=100)
    assert changed != training and same == validation
    same, changed = logged(validation_changed=7)
    assert same == training and changed != validation
