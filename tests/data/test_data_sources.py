"""The generic data sources on the user's own files — .npz, CSV, Parquet (in memory and streamed),
a directory of images, a function returning a tf.data stream — each read, checked and trained on
end to end through the Python API into a real MLflow store."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import dataset
from lossexp.errors import ConfigError

QUICK = {"trainer": {"epochs": 1, "verbose": 0, "batch_size": 16}, "tracking": {"plots": False, "log_model": False}}


def rows(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([1.0, -2.0, 0.5], "float32"))[:, None]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def finished(tmp_path, run_id):
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED"
    return run


# --- .npz ------------------------------------------------------------------------------------
def test_npz_reads_the_named_keys_shuffled_once_from_its_seed(in_tmp):
    x, y = rows()
    np.savez(in_tmp / "d.npz", inputs=x, target=y)
    data = dataset("npz", path="d.npz", x="inputs", y="target", seed=3)
    order = np.random.default_rng(3).permutation(len(x))
    np.testing.assert_array_equal(data.x, x[order])
    np.testing.assert_array_equal(data.y, y[order])
    assert data.task == "regression" and data.num_outputs == 1
    unshuffled = dataset("npz", path="d.npz", x="inputs", y="target", shuffle=False)
    np.testing.assert_array_equal(unshuffled.split(0.25)[1].arrays[0], x[90:])  # its last rows validate
    np.savez(in_tmp / "mnist_like.npz", x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    held_out = dataset("npz", path="mnist_like.npz", x="x_train", y="y_train", validation_x="x_test",
                       validation_y="y_test")
    train, validation = held_out.split(0.2)
    assert train.size == 100 and held_out.held_out == len(x) - 100
    np.testing.assert_array_equal(validation.arrays[0], x[100:])  # the archive's own, in its order


def test_npz_weights_weigh_their_rows_through_the_shuffle_and_the_archives_validation_set(in_tmp):
    """``data.sample_weight`` (and ``data.validation_sample_weight``) name arrays of one weight per row: an archive's
    rows could not be weighed."""
    x, y = rows(30)
    np.savez(in_tmp / "w.npz", x=x, y=y, w=np.abs(x[:, 0]), x_test=x[:6], y_test=y[:6], w_test=np.arange(6.0))
    data = dataset("npz", path="w.npz", sample_weight="w", seed=2)
    np.testing.assert_allclose(data.sample_weight, np.abs(data.x[:, 0]))  # each weight beside its own row
    assert not np.array_equal(data.x, x) and data.weighs_examples
    held_out = dataset("npz", path="w.npz", sample_weight="w", validation_x="x_test", validation_y="y_test",
                       validation_sample_weight="w_test")
    _, validation = held_out.split(0.2)
    np.testing.assert_array_equal(validation.arrays[2], np.arange(6.0))
    for options, message in (
            ({"sample_weight": "weights"}, "Invalid value for data.sample_weight: w.npz has no array 'weights'; its "
                                           "arrays are x, y, w, x_test, y_test, w_test"),
            ({"validation_sample_weight": "w_test"}, "Invalid value for data.validation_sample_weight: expected it "
                                                     "beside data.validation_x and data.validation_y (the validation "
                                                     "set it weighs), got 'w_test'")):
        with pytest.raises(ConfigError) as info:
            dataset("npz", path="w.npz", **options)
        assert str(info.value) == message


@pytest.mark.parametrize("options, message", [
    ({"path": "nope.npz"}, "Invalid value for data.path: expected an existing file (.npz), got 'nope.npz'"),
    ({"path": "d.npz", "y": "label"}, "Invalid value for data.y: d.npz has no array 'label'; its arrays are x, y"),
    ({"path": "bad.npz"}, "Invalid value for data (npz): expected finite array 'x' of bad.npz, got \"NaN/inf in array "
     "'x' of bad.npz at example 2\""),
    ({"path": "bad.npz", "shuffle": True}, "Invalid value for data (npz): expected finite array 'x' of bad.npz, got "
     "\"NaN/inf in array 'x' of bad.npz at example 2\""),  # its row in the file: it was its place after the shuffle
    ({"path": "ragged.npz"}, "Invalid value for data.x: expected an array of numbers or of text, got 'x' of "
     "ragged.npz, an array of Python objects (rows of different lengths?), which lossexp does not unpickle; pad its "
     "rows to one length"),  # it named NumPy's line of its refusal to unpickle
    ({"path": "short.npz"}, "Invalid value for data.y: expected as many rows as array 'x' (5), got 4 rows in array 'y' "
                            "of short.npz"),
    ({"path": "d.npz", "validation_x": "x"}, "Invalid value for data.validation_y: expected the key of the "
     "validation targets beside data.validation_x, got null"),
    ({"path": "d.npz", "validation_x": "x", "validation_y": "y_test"}, "Invalid value for data.validation_y: d.npz "
     "has no array 'y_test'; its arrays are x, y"),
])
def test_npz_mistakes_are_one_line(in_tmp, options, message):
    x, y = rows(10)
    np.savez(in_tmp / "d.npz", x=x, y=y)
    np.savez(in_tmp / "short.npz", x=x[:5], y=y[:4])
    x[2, 1] = np.nan
    np.savez(in_tmp / "bad.npz", x=x, y=y)
    np.savez(in_tmp / "ragged.npz", x=np.array([[1.0, 2.0], [3.0]], dtype=object), y=y[:2])
    with pytest.raises(ConfigError) as info:
        dataset("npz", **{"shuffle": False, **options})
    assert str(info.value).startswith(message)


@pytest.mark.slow
def test_npz_integer_targets_train_a_classifier_end_to_end(in_tmp):
    import lossexp

    x, _ = rows(160)
    labels = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")  # 3 classes
    np.savez(in_tmp / "c.npz", x=x, y=labels)
    history, run_id = lossexp.fit("mlp", "npz", loss=["hist_avg"], overrides=["data.path=c.npz"], **QUICK)
    run = finished(in_tmp, run_id)
    assert "accuracy" in history and run.data.tags["data"] == "npz"
    assert {"loss/hist_avg", "val_accuracy"} <= set(run.data.metrics)


@pytest.mark.slow
def test_npz_with_several_targets_trains_a_two_output_model(in_tmp):
    import keras

    import lossexp

    x, y = rows(160)
    np.savez(in_tmp / "m.npz", x=x, level=y, sign=(y[:, 0] > 0).astype("int64"))
    inputs = keras.Input((3,), name="inputs")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden_1")(inputs)
    network = keras.Model(inputs, {"level": keras.layers.Dense(1, name="level")(hidden),
                                   "sign": keras.layers.Dense(2, activation="softmax", name="sign")(hidden)})
    history, run_id = lossexp.fit(network, dataset("npz", path="m.npz", y=["level", "sign"]), loss=["activity"],
                                  **QUICK)
    finished(in_tmp, run_id)
    assert {"level_loss", "sign_loss", "loss/activity"} <= set(history)


# --- CSV and Parquet ---------------------------------------------------------------------------
def frame(n: int = 120):
    import pandas as pd

    x, y = rows(n)
    table = pd.DataFrame(x, columns=["a", "b", "c"])
    table["note"] = "text"
    table["y"] = y[:, 0]
    table["kind"] = np.where(y[:, 0] > 0, "up", "down")
    return table


def test_csv_in_memory_takes_the_named_columns_and_string_labels_become_classes(in_tmp):
    frame().to_csv(in_tmp / "t.csv", index=False)
    data = dataset("csv", path="t.csv", target="kind", features=["a", "b", "c"], shuffle=False)
    assert data.x.shape == (120, 3) and data.task == "classification" and data.num_outputs == 2
    np.testing.assert_array_equal(data.y, (frame()["kind"] == "up").to_numpy().astype(int))  # down=0, up=1


def test_a_streamed_csv_encodes_text_labels_alike_in_every_chunk(in_tmp):
    table = frame(30)[["a", "b", "c"]]
    table["kind"] = ["b", "c"] * 5 + ["a", "b"] * 5 + ["c", "a"] * 5  # each chunk of 10 lacks one class
    table.to_csv(in_tmp / "t.csv", index=False)
    data = dataset("csv", path="t.csv", target="kind", stream=True, chunk_rows=10)
    labels = np.concatenate([np.asarray(y) for _, y in data.stream.batch(30)])
    np.testing.assert_array_equal(labels, table["kind"].map({"a": 0, "b": 1, "c": 2}).to_numpy())
    assert (data.task, data.num_outputs) == ("classification", 3)


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_validation_file_validates_and_text_labels_share_one_encoding(in_tmp, source, stream):
    table = frame(30)[["a", "b", "c", "kind"]]
    held_out = table.iloc[:6].assign(kind=["zeta", "up", "down", "zeta", "up", "down"])  # a class training lacks
    for rows, name in ((table, "t"), (held_out, "v")):
        if source == "csv":
            rows.to_csv(in_tmp / f"{name}.csv", index=False)
        else:
            rows.to_parquet(in_tmp / f"{name}.parquet")
    data = dataset(source, path=f"t.{source}", target="kind", validation_path=f"v.{source}", stream=stream,
                   shuffle=False, chunk_rows=8)
    train, validation = data.split(0.2)
    assert (data.num_outputs, train.size, validation.size) == (3, 30, 6)  # down 0, up 1, zeta 2
    labels = validation.arrays[1] if not stream else np.concatenate([y for _, y in validation.stream.batch(6)])
    np.testing.assert_array_equal(labels, [2, 1, 0, 2, 1, 0])
    with pytest.raises(ConfigError, match=r"Invalid value for data.validation_path: expected an existing file"):
        dataset(source, path=f"t.{source}", target="kind", validation_path=f"nope.{source}")


@pytest.mark.parametrize("options, message", [
    ({"target": "z"}, "Invalid value for data.target: t.csv has no column 'z'; its columns are a, b, c, note, y, kind"),
    ({"target": "y"}, "Invalid value for data.features: expected numeric columns, got 'note' ("),
])
def test_csv_mistakes_are_one_line(in_tmp, options, message):
    frame().to_csv(in_tmp / "t.csv", index=False)
    with pytest.raises(ConfigError) as info:
        dataset("csv", path="t.csv", **options)
    assert str(info.value).startswith(message)


def write_table(table, directory, name: str, source: str) -> str:
    """``table`` as ``name.csv`` or ``name.parquet`` in ``directory``; its file name."""
    if source == "csv":
        table.to_csv(directory / f"{name}.csv", index=False)
    else:
        table.to_parquet(directory / f"{name}.parquet")
    return f"{name}.{source}"


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_an_empty_or_infinite_cell_is_one_line_naming_its_column_and_its_row_in_the_file(in_tmp, source):
    """A missing value was "NaN/inf in inputs at example 5": its place after the rows' shuffle, which no row of the
    file has; an empty text label became a class 'nan'. Now the column and the file's row, before any shuffle."""
    table = frame(30)[["a", "b", "kind"]]
    table.loc[[11, 20], "b"] = [np.inf, np.nan]
    table.loc[7, "kind"] = None
    write_table(table, in_tmp, "t", source)
    with pytest.raises(ConfigError) as info:
        dataset(source, path=f"t.{source}", target="kind")
    assert str(info.value) == (f"Invalid value for data.path: expected a finite value in every cell of the columns used, "
                               f"got an empty cell in column 'kind', row 8 of t.{source} (rows counted from 1 below the "
                               "header; 3 rows have such a cell: fill or drop them)")
    with pytest.raises(ConfigError) as info:  # streamed: the target column read alone, chunk by chunk
        dataset(source, path=f"t.{source}", target="kind", stream=True, chunk_rows=5)
    assert f"got an empty cell in column 'kind', row 8 of t.{source} (rows counted from 1 below the header: fill" in \
        str(info.value)
    with pytest.raises(ConfigError) as info:
        dataset(source, path=f"t.{source}", target="a", features=["b"])
    assert "got inf in column 'b', row 12 of" in str(info.value) and "or leave the column out: data.features)" in str(
        info.value)
    write_table(table.drop(index=[7, 11, 20]), in_tmp, "clean", source)  # row labels 0 … 29 less three: no column
    write_table(table, in_tmp, "v", source)
    with pytest.raises(ConfigError, match=rf"^Invalid value for data.validation_path: .* row 8 of v\.{source} "):
        dataset(source, path=f"clean.{source}", target="kind", validation_path=f"v.{source}")
    assert dataset(source, path=f"clean.{source}", target="kind").x.shape == (27, 2)


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_weight_column_weighs_each_row_and_moves_with_it(in_tmp, source, stream):
    """``data.sample_weight`` names a column of one weight per row (there was none: a table's rows could not be
    weighed): read beside its row through the shuffle and the chunks, no feature; mistakes are one line."""
    table = frame(40)[["a", "b", "y"]]
    table["w"] = np.round(np.abs(table["a"]), 3)  # each row's weight, told by its own feature
    path = write_table(table, in_tmp, "t", source)
    data = dataset(source, path=path, target="y", sample_weight="w", stream=stream, chunk_rows=16, seed=3)
    if stream:
        x, _, weights = (np.concatenate(part) for part in zip(*data.stream.batch(16).as_numpy_iterator()))
    else:
        x, weights = data.x, data.sample_weight
    assert x.shape == (40, 2) and data.weighs_examples  # w is no feature
    np.testing.assert_allclose(weights, np.round(np.abs(x[:, 0]), 3), rtol=1e-6)
    for options, message in (
            ({"sample_weight": "y"}, "Invalid value for data.sample_weight: expected a column of its own, got 'y', "
                                     "which is a target column too"),
            ({"sample_weight": "a", "features": ["a", "b"]}, "Invalid value for data.sample_weight: expected a column "
                                                             "of its own, got 'a', which is a feature column too"),
            ({"sample_weight": "weight"}, f"Invalid value for data.sample_weight: {path} has no column 'weight'; its "
                                          "columns are a, b, y, w")):
        with pytest.raises(ConfigError) as info:
            dataset(source, path=path, target="y", stream=stream, **options)
        assert str(info.value) == message
    table.loc[5, "w"] = np.nan
    with pytest.raises(ConfigError, match=rf"got an empty cell in column 'w', row 6 of t\.{source} "):
        dataset(source, path=write_table(table, in_tmp, "t", source), target="y", sample_weight="w")


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_column_of_categories_taken_one_hot_is_one_column_per_category_of_every_file(in_tmp, source, stream):
    """``data.one_hot=[colour]``: a text column was refused ("encode it or leave it out"), so a table of categories
    needed a data source of one's own. Each category is a 0/1 column in the column's place, the categories sorted
    over both files (the validation file's 'violet', which training lacks, too), alike in every chunk."""
    table = frame(24)[["a", "y"]].assign(colour=["red", "green", "blue"] * 8)[["a", "colour", "y"]]
    held_out = table.iloc[:4].assign(colour=["violet", "red", "green", "blue"])
    train_path, validation_path = write_table(table, in_tmp, "t", source), write_table(held_out, in_tmp, "v", source)
    data = dataset(source, path=train_path, target="y", one_hot=["colour"], validation_path=validation_path,
                   stream=stream, shuffle=False, chunk_rows=5)
    train, validation = data.split(0.2)

    def inputs(part) -> np.ndarray:
        return part.arrays[0] if not stream else np.concatenate([x for x, _ in part.stream.batch(100)])

    def expected(rows) -> np.ndarray:  # written from the rule: a, then blue, green, red, violet as 0/1
        categories = np.array(["blue", "green", "red", "violet"])
        return np.column_stack([rows["a"], rows["colour"].to_numpy()[:, None] == categories]).astype("float32")

    np.testing.assert_allclose(inputs(train), expected(table), rtol=1e-6)
    np.testing.assert_allclose(inputs(validation), expected(held_out), rtol=1e-6)
    with pytest.raises(ConfigError) as info:
        dataset(source, path=train_path, target="y")
    assert "got 'colour' (" in str(info.value) and str(info.value).endswith(
        "; encode it, leave it out (data.features) or take it one-hot: data.one_hot=[colour]")
    with pytest.raises(ConfigError) as info:
        dataset(source, path=train_path, target="y", one_hot=["y"])
    assert str(info.value) == (f"Invalid value for data.one_hot: expected feature columns of {train_path} (a, colour), "
                               "got 'y'")


@pytest.mark.parametrize("stream", [False, True])
def test_a_parquet_column_of_arrays_is_one_input_column_per_element(in_tmp, stream):
    """An embedding per row (a Parquet list column) was refused as a column of objects (and told to take it
    one-hot); its elements are input columns in its place now, and arrays of several lengths are one line."""
    table = frame(20)[["a", "y"]]
    vectors = np.random.default_rng(1).normal(size=(20, 4)).astype("float32")
    table["embedding"] = list(vectors)
    table.to_parquet(in_tmp / "e.parquet")
    data = dataset("parquet", path="e.parquet", target="y", shuffle=False, stream=stream, chunk_rows=7)
    x = data.x if not stream else np.concatenate([x for x, _ in data.stream.batch(20)])
    np.testing.assert_allclose(x, np.column_stack([table["a"], vectors]), rtol=1e-6)
    table["embedding"] = [vector[: 4 - (row == 6)] for row, vector in enumerate(vectors)]
    table.to_parquet(in_tmp / "ragged.parquet")
    with pytest.raises(ConfigError) as info:
        dataset("parquet", path="ragged.parquet", target="y")
    assert str(info.value) == ("Invalid value for data.features: expected arrays of one length in column 'embedding' "
                               "of ragged.parquet, got 4 values in its first row and 3 in row 7")


@pytest.mark.slow
def test_rows_weighed_one_change_nothing_and_weighed_zero_leave_the_task_loss(in_tmp):
    """End to end from the config, through Keras' weighted loss: weights of 1 train as no weights do (every metric
    the same); weights of 0 on the rows that validate (the file's last fifth, unshuffled) make the validation task
    loss 0, training as before."""
    import lossexp

    table = frame(64)[["a", "b", "c", "y"]]
    histories = {}
    for name, weights in (("none", None), ("ones", np.ones(64)), ("held_out_zero", (np.arange(64) < 51) * 1.0)):
        write_table(table if weights is None else table.assign(w=weights), in_tmp, name, "csv")
        overrides = [f"data.path={name}.csv", "data.target=y", "data.shuffle=false", "trainer.validation_split=0.2"]
        histories[name] = lossexp.fit("mlp", "csv", loss="none", overrides=overrides + (
            ["data.sample_weight=w"] if weights is not None else []), **QUICK).history
    assert histories["ones"] == histories["none"]
    assert histories["held_out_zero"]["val_loss/task"] == [0.0] != histories["ones"]["val_loss/task"]
    assert histories["held_out_zero"]["loss/task"] == histories["ones"]["loss/task"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_csv_of_another_locale_or_of_tabs_reads_with_its_separator_and_decimal_mark(in_tmp, stream):
    """A file of ``;`` and decimal commas could not be read (its header was one column, 'a;b;y'), nor a ``.tsv``;
    ``data.sep`` and ``data.decimal`` read them, a command line's ``'\\t'`` as a tab, and the header read as one
    column says which separator it holds."""
    table = frame(20)[["a", "b", "y"]]
    table.to_csv(in_tmp / "semi.csv", sep=";", decimal=",", index=False)
    table.to_csv(in_tmp / "tabs.tsv", sep="\t", index=False)
    expected = table[["a", "b"]].to_numpy("float32")
    for path, options in (("semi.csv", {"sep": ";", "decimal": ","}), ("tabs.tsv", {"sep": "\\t"})):
        data = dataset("csv", path=path, target="y", shuffle=False, stream=stream, chunk_rows=8, **options)
        x = data.x if not stream else np.concatenate([x for x, _ in data.stream.batch(20)])
        np.testing.assert_allclose(x, expected, rtol=1e-6)
    with pytest.raises(ConfigError) as info:
        dataset("csv", path="semi.csv", target="y")
    assert str(info.value) == ("Invalid value for data.target: semi.csv has no column 'y'; its columns are a;b;y (its "
                               "header reads as one column: fields separated by ';' need data.sep=';')")


@pytest.mark.parametrize("stream", [False, True])
def test_a_parquet_file_of_a_shuffled_or_indexed_frame_reads_its_columns_not_its_row_labels(in_tmp, stream):
    """``df.sample(frac=1).to_parquet(…)`` (any frame whose row labels are not 0 … n-1) failed, "KeyError:
    '__index_level_0__'": pyarrow stores the row labels as a column, which lossexp took for a feature. They are
    no column now; a named index (``set_index("id")``) is an ordinary one, as its name says."""
    table = frame(30)[["a", "b", "kind"]]
    table.sample(frac=1.0, random_state=0).to_parquet(in_tmp / "shuffled.parquet")
    data = dataset("parquet", path="shuffled.parquet", target="kind", stream=stream, shuffle=False, chunk_rows=8)
    x = data.x if not stream else np.concatenate([x for x, _ in data.stream.batch(30)])
    np.testing.assert_array_equal(x, table.sample(frac=1.0, random_state=0)[["a", "b"]].to_numpy("float32"))
    table.set_index("a").to_parquet(in_tmp / "indexed.parquet")
    indexed = dataset("parquet", path="indexed.parquet", target="kind", features=["a", "b"], stream=stream,
                      shuffle=False, chunk_rows=8)
    x = indexed.x if not stream else np.concatenate([x for x, _ in indexed.stream.batch(30)])
    np.testing.assert_array_equal(x, table[["a", "b"]].to_numpy("float32"))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_a_streamed_table_trains_end_to_end_with_its_last_rows_validating(in_tmp, source):
    import lossexp

    table = frame(200).drop(columns=["note", "kind"])
    if source == "csv":
        table.to_csv(in_tmp / "t.csv", index=False)
    else:
        table.to_parquet(in_tmp / "t.parquet")
    data = dataset(source, path=f"t.{source}", target="y", stream=True, chunk_rows=64)
    assert not data.in_memory and data.size == 200 and data.input_shape == (3,)
    _, validation = data.split(0.25)
    streamed = np.concatenate([np.asarray(x) for x, _ in validation.stream.batch(16)])
    np.testing.assert_allclose(streamed, table[["a", "b", "c"]].to_numpy("float32")[150:])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history, run_id = lossexp.fit("mlp", source, loss=["hist_avg", "activity"],
                                      overrides=[f"data.path=t.{source}", "data.target=y", "data.stream=true",
                                                 "data.chunk_rows=64"], **QUICK)
    finished(in_tmp, run_id)
    assert np.isfinite(history["val_loss"][-1]) and "val_loss/activity" in history
    # the chunked stream's length is lossexp's count: Keras knows each epoch's steps, never runs out of data
    assert not [str(w.message) for w in caught if "ran out of data" in str(w.message)]


# --- a directory of images ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_directory_of_images_streams_through_keras_and_trains_a_cnn(in_tmp):
    import tensorflow as tf

    import lossexp

    rng = np.random.default_rng(0)
    for label, brightness in (("dark", 40), ("light", 200)):
        (in_tmp / "pics" / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(brightness, 20, (10, 12, 3)), 0, 255).astype("uint8")
            tf.io.write_file(str(in_tmp / "pics" / label / f"{i}.png"), tf.io.encode_png(pixels))
    data = dataset("images", directory="pics", image_size=[8, 8])
    assert data.size == 24 and data.num_outputs == 2 and data.input_shape == (8, 8, 3)
    assert data.extras["class_names"] == ["dark", "light"]
    x, _ = data.sample(4)
    assert 0.0 <= x.min() and x.max() <= 1.0  # scaled by 1/255
    train, validation = data.split(0.25)
    assert (train.size, validation.size) == (18, 6)
    history, run_id = lossexp.fit("cnn", "images", loss=["activity"],
                                  overrides=["data.directory=pics", "data.image_size=[8,8]"], **QUICK)
    finished(in_tmp, run_id)
    assert "val_accuracy" in history


@pytest.mark.slow
def test_a_project_function_returning_a_tf_data_stream_trains_with_a_learning_rate_schedule(run_cli, store_uri,
                                                                                              tmp_path):
    """The user's own data function returns an unbatched ``tf.data.Dataset`` (nothing in memory): it is
    split, batched and prefetched like any stream; the optimizer follows a Keras schedule by name."""
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["stream_data"]\n')
    (tmp_path / "stream_data.py").write_text(
        "import numpy as np\nimport tensorflow as tf\nimport lossexp\n\n\n"
        "@lossexp.register_data('counting', task='regression')\n"
        "def counting(n_samples: int = 160):\n"
        "    x = np.random.default_rng(0).random((n_samples, 3)).astype('float32')\n"
        "    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True)))\n")
    result = run_cli("train", "model=mlp", "data=counting", "loss=hist_avg", "trainer.epochs=2", "optimizer=sgd",
                     "optimizer.learning_rate={schedule: cosine_decay, initial_learning_rate: 0.05, decay_steps: 8}",
                     "tracking.plots=false", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-3000:]
    run = MlflowClient(store_uri).search_runs(
        [MlflowClient(store_uri).get_experiment_by_name("lossexp").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.data.tags["data"] == "counting"
    assert run.data.params["optimizer.learning_rate.schedule"] == "cosine_decay"
    assert {"val_loss", "term/hist_avg"} <= set(run.data.metrics)
    [training] = [d for d in run.inputs.dataset_inputs if d.tags[0].value == "training"]
    assert training.dataset.source_type == "code"  # a stream, logged as the rows of a TensorFlow dataset


def test_files_of_a_directory_of_images_that_are_not_images_are_one_line_naming_them(in_tmp):
    """Every format Keras' reader lists passes (as PNG, JPEG, GIF, BMP, and a WebP named .jpg, which
    TensorFlow decodes by content); an empty file and a web page saved as .jpg are named — without
    the check, TensorFlow's "Unknown image file format" stops training at their batch, naming none."""
    import tensorflow as tf
    from PIL import Image

    from lossexp.data.images import undecodable

    pixels = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    good = in_tmp / "pics" / "good"
    good.mkdir(parents=True)
    tf.io.write_file(str(good / "a.png"), tf.io.encode_png(pixels))
    tf.io.write_file(str(good / "b.jpg"), tf.io.encode_jpeg(pixels))
    for name, kind in (("c.gif", "GIF"), ("d.bmp", "BMP"), ("e.jpg", "WEBP")):
        Image.fromarray(pixels).save(good / name, kind)
    paths = sorted(str(p) for p in good.iterdir())
    for path in paths:  # what the check accepts, TensorFlow decodes
        assert tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape[:2] == (6, 5)
    (good / "f.png").write_bytes((good / "a.png").read_bytes() + b"\0" * 100)  # bytes after its end: TF decodes it
    paths.append(str(good / "f.png"))
    assert tf.io.decode_image(tf.io.read_file(paths[-1]), expand_animations=False).shape[:2] == (6, 5)
    assert undecodable(paths) == ([], [])
    assert dataset("images", directory="pics", image_size=[4, 4]).size == 6
    bad = in_tmp / "pics" / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "page.jpg").write_text("<html>Too many requests</html>")
    with pytest.raises(ConfigError) as info:
        dataset("images", directory="pics", image_size=[4, 4])
    assert str(info.value) == ("Invalid value for data.directory: expected image files (JPEG, PNG, GIF, BMP, WebP; remove or "
                       "convert the others), got 'pics', where bad/empty.png, bad/page.jpg are not images")


def test_a_directory_of_images_is_judged_by_the_order_it_trains_in_and_its_split_read_once(in_tmp, capsys):
    """Every run of ``data=images`` with a validation split warned that the data "shuffles itself at every pass
    … but its first 256 examples change class 2 times": the labels read were the files sorted by class, not the
    shuffled file list that trains; and Keras' "Using 288 files for training." came three times (the split
    listed the directory at each of three asks)."""
    import tensorflow as tf

    from lossexp.training.epoch_order import in_runs
    from lossexp.training.supervised import first_training_labels

    for label in range(3):
        (in_tmp / "pics" / f"c{label}").mkdir(parents=True)
        for i in range(120):
            tf.io.write_file(str(in_tmp / "pics" / f"c{label}" / f"{i}.png"),
                             tf.io.encode_png(np.full((4, 4, 1), 80 * label, np.uint8)))
    data = dataset("images", directory="pics", image_size=[4, 4], color_mode="grayscale")
    assert in_runs(data.first_labels)  # the data's own stream: the files sorted by class
    train, validation = data.split(0.2)
    assert data.split(0.2) == (train, validation) and (train.size, validation.size) == (288, 72)
    labels = first_training_labels(data, train)
    assert len(labels) == 256 and in_runs(labels) is None, labels
    assert "files for" not in capsys.readouterr().out


def test_image_files_cut_off_or_damaged_are_one_line_naming_them(in_tmp):
    """A file that begins as an image but was cut off (a download stopped mid-file) passed the check of its
    first bytes and stopped training at its batch — or the dataset's record, or the first read — with
    TensorFlow's "Invalid PNG. Failed to initialize decoder" in a traceback, no file named."""
    from PIL import Image

    from lossexp.data.images import undecodable

    pixels = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    folder = in_tmp / "pics" / "a"
    folder.mkdir(parents=True)
    for kind, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("BMP", "bmp"), ("WEBP", "webp")):
        Image.fromarray(pixels).save(folder / f"whole.{suffix}", kind)
        whole = (folder / f"whole.{suffix}").read_bytes()
        (folder / f"cut.{suffix}").write_bytes(whole[:len(whole) * 3 // 4])
    paths = sorted(str(p) for p in folder.iterdir())
    not_images, broken = undecodable(paths)
    assert not_images == [] and [Path(p).name for p in broken] == ["cut.bmp", "cut.gif", "cut.jpg", "cut.png",
                                                                     "cut.webp"]
    for path in paths:
        if "whole" in path:
            (Path(path)).unlink()
    (folder / "page.jpg").write_text("<html>Too many requests</html>")
    with pytest.raises(ConfigError) as info:
        dataset("images", directory="pics", image_size=[4, 4])
    assert str(info.value) == ("Invalid value for data.directory: expected image files (JPEG, PNG, GIF, BMP, WebP; remove or "
                               "convert the others), got 'pics', where a/page.jpg is not an image and a/cut.bmp, "
                               "a/cut.gif, a/cut.jpg, … (4 of 5 files) do not decode (cut off or damaged)")
