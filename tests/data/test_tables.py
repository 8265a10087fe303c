"""A streamed table's validation split — its last rows — is read from its own first row: a CSV's
lines before it skipped without parsing their numbers, a Parquet file's row groups before it unread.
``stream.skip(n)`` parsed, converted and unbatched every training row first (1.6M of a 2M-row CSV)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from lossexp.data import tables


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def written_table(directory, source: str, rows: int, row_group_size: int):
    """A table of 3 float features and an integer label 0 … 2 in ``directory``, as ``t.csv`` or ``t.parquet`` (row
    groups of ``row_group_size``)."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(rows, 3)).astype("float32"), columns=["a", "b", "c"])
    table["label"] = rng.integers(0, 3, size=rows)
    if source == "csv":
        table.to_csv(directory / "t.csv", index=False)
    else:
        table.to_parquet(directory / "t.parquet", row_group_size=row_group_size)
    return table


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_the_validation_rows_are_read_without_converting_the_training_rows(in_tmp, source, monkeypatch):
    table = written_table(in_tmp, source, 1000, row_group_size=300)  # the split (row 750) inside the third group
    data = dataset(source, path=f"t.{source}", target="label", stream=True, chunk_rows=100)
    converted = []
    original = tables.to_arrays

    def counting(frame, *args, **kwargs):
        converted.append(len(frame))
        return original(frame, *args, **kwargs)

    monkeypatch.setattr(tables, "to_arrays", counting)
    train, validation = data.split(0.25)
    [(x, y)] = validation.stream.batch(1000).as_numpy_iterator()
    np.testing.assert_allclose(x, table[["a", "b", "c"]].to_numpy()[750:], rtol=1e-5)
    np.testing.assert_array_equal(y, table["label"].to_numpy()[750:])
    assert sum(converted) == 250, converted
    converted.clear()
    assert sum(len(y) for _, y in train.stream.batch(1000).as_numpy_iterator()) == 750
    assert sum(converted) <= 800  # the training rows, and at most a chunk past them


def counting_reads(monkeypatch, reader_class):
    """Every row the table's reader parses, by the columns it parses (``{columns: rows}``), and every
    row converted to arrays (``[rows]``), from now on."""
    parsed, converted = {}, []
    original_chunks, original_arrays = reader_class.chunks, tables.to_arrays

    def chunks(self, file, columns, chunk_rows, start=0):
        for chunk in original_chunks(self, file, columns, chunk_rows, start):
            parsed[tuple(columns)] = parsed.get(tuple(columns), 0) + len(chunk)
            yield chunk

    def to_arrays(frame, *args, **kwargs):
        converted.append(len(frame))
        return original_arrays(frame, *args, **kwargs)

    monkeypatch.setattr(reader_class, "chunks", chunks)
    monkeypatch.setattr(tables, "to_arrays", to_arrays)
    return parsed, converted


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("target", ["label", "kind", "level"])
def test_a_streamed_table_reads_each_row_once_before_training(in_tmp, source, target, monkeypatch):
    """Its size and classes come from the pass over the target column (the one that finds a text
    target's labels): no pass over every column before the first step, only the first chunks that
    give the stream its shapes and are checked for NaN/inf."""
    from lossexp.data.csv import CsvReader
    from lossexp.data.parquet import ParquetReader

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(1000, 3)).astype("float32"), columns=["a", "b", "c"])
    table["label"] = rng.integers(1, 4, size=1000)  # classes 0 … 3, class 0 absent
    table["kind"] = np.array(["x", "y", "z"])[table["label"] - 1]
    table["level"] = table["a"] * 2
    features = ["a", "b", "c"]
    if source == "csv":
        table.to_csv(in_tmp / "t.csv", index=False)
    else:
        table.to_parquet(in_tmp / "t.parquet", row_group_size=300)
    parsed, converted = counting_reads(monkeypatch, CsvReader if source == "csv" else ParquetReader)
    data = dataset(source, path=f"t.{source}", target=target, features=features, stream=True, chunk_rows=100)
    expected = {"label": ("classification", 4), "kind": ("classification", 3), "level": ("regression", 1)}[target]
    assert (data.task, data.num_outputs, data.size) == (*expected, 1000)
    assert parsed[(target,)] == 1000  # the target column, once
    assert parsed[(*features, target)] <= 400 and sum(converted) <= 400, (parsed, converted)  # the first chunks


@pytest.mark.parametrize("validation", [False, True])
def test_one_hot_columns_are_read_in_the_target_columns_pass(in_tmp, validation, monkeypatch):
    """A streamed table (or one with a validation file) with ``data.one_hot`` read those columns in a pass of
    their own beside the target column's: two parses of every line before training (500,000 rows × 50
    columns: 1.35 s, one pass 0.62 s). Each category is found in either file, as before."""
    from lossexp.data.csv import CsvReader

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(1000, 2)).astype("float32"), columns=["a", "b"])
    table["colour"] = rng.choice(["red", "blue"], size=1000)
    table["label"] = rng.integers(0, 3, size=1000)
    table.to_csv(in_tmp / "t.csv", index=False)
    table.iloc[:10].assign(colour="green").to_csv(in_tmp / "v.csv", index=False)  # a category training lacks
    parsed, _ = counting_reads(monkeypatch, CsvReader)
    options = {"validation_path": "v.csv"} if validation else {"stream": True}
    data = dataset("csv", path="t.csv", target="label", one_hot=["colour"], chunk_rows=100, **options)
    assert parsed[("label", "colour")] == 1000 + 10 * validation and ("colour",) not in parsed, parsed
    if validation:  # blue, green, red: the validation file's rows all green
        np.testing.assert_array_equal(data.held_out_x[:, 2:], np.tile([0.0, 1.0, 0.0], (10, 1)))
    else:
        x = next(data.stream.batch(1000).as_numpy_iterator())[0]
        np.testing.assert_array_equal(x[:, 2:], table["colour"].to_numpy()[:, None] == np.array([["blue", "red"]]))


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_class_weights_of_a_streamed_table_count_its_target_column_not_its_stream(in_tmp, source, monkeypatch):
    """Balanced class weights need each class's training rows: the target column's pass gave them
    (a validation file's classes included in the classes, not in the counts); no row is parsed again."""
    import tensorflow as tf

    from lossexp.data.csv import CsvReader
    from lossexp.data.parquet import ParquetReader
    from lossexp.training.class_weights import weighted

    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(600, 2)).astype("float32"), columns=["a", "b"])
    table["kind"] = np.array(["x", "y"])[(rng.random(600) < 0.25).astype(int)]  # 3 x : 1 y
    held_out = table.iloc[:40].assign(kind=["w", "x"] * 20)  # w: a class the training file lacks
    for rows, name in ((table, "t"), (held_out, "v")):
        if source == "csv":
            rows.to_csv(in_tmp / f"{name}.{source}", index=False)
        else:
            rows.to_parquet(in_tmp / f"{name}.{source}")
    parsed, converted = counting_reads(monkeypatch, CsvReader if source == "csv" else ParquetReader)
    data = dataset(source, path=f"t.{source}", target="kind", validation_path=f"v.{source}", stream=True,
                   chunk_rows=50)
    assert (data.num_outputs, data.size, data.held_out) == (3, 640, 40)  # w 0, x 1, y 2
    parsed.clear(), converted.clear()
    train, validation = data.split(0.2)
    batch = weighted(train, "balanced", data.num_outputs).batch_map
    counts = table["kind"].value_counts()
    expected = [0.0, 600 / (2 * counts["x"]), 600 / (2 * counts["y"])]
    np.testing.assert_allclose(batch(tf.zeros((3, 2)), tf.constant([0, 1, 2]))[2], expected, rtol=1e-6)
    assert parsed == {} and converted == []
    single = dataset(source, path=f"t.{source}", target="kind", stream=True, chunk_rows=50)
    train, _ = single.split(0.5)  # the first 300 rows train
    first = table["kind"][:300].value_counts()
    weights = weighted(train, "balanced", single.num_outputs).batch_map(tf.zeros((2, 2)), tf.constant([0, 1]))[2]
    np.testing.assert_allclose(weights, [300 / (2 * first["x"]), 300 / (2 * first["y"])], rtol=1e-6)


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_passes_over_a_streamed_tables_first_rows_read_its_first_chunk_once(in_tmp, source, monkeypatch):
    """Before the first step a stream is read from its start several times (the checks, the dataset's digest,
    a sample of rows): each pass parsed and converted the whole first chunk again — 7 passes, 70,000 rows of a
    1M-row CSV at chunk_rows 10,000. The first chunk is converted once; a pass reads the file after it, and a
    pass from inside it (a validation split's) takes its rows from there."""
    from lossexp.data.csv import CsvReader
    from lossexp.data.parquet import ParquetReader

    table = written_table(in_tmp, source, 250, row_group_size=100)
    parsed, converted = counting_reads(monkeypatch, CsvReader if source == "csv" else ParquetReader)
    data = dataset(source, path=f"t.{source}", target="label", stream=True, chunk_rows=100)
    assert converted == [100, 100, 50], converted  # the first chunk once, then the rest once for the checks' 256
    parsed.clear(), converted.clear()
    for _ in range(3):  # three passes over the first 50 rows: nothing parsed or converted again
        [(x, y)] = data.stream.take(50).batch(50).as_numpy_iterator()
        np.testing.assert_array_equal(y, table["label"].to_numpy()[:50])
    assert parsed == {} and converted == [], (parsed, converted)
    train, validation = data.split(0.2)  # the last 50 rows, from row 200
    [(x, y)] = validation.stream.batch(100).as_numpy_iterator()
    np.testing.assert_allclose(x, table[["a", "b", "c"]].to_numpy()[200:], rtol=1e-6)
    [(x, y)] = data.seek(30).take(90).batch(90).as_numpy_iterator()  # from inside the first chunk, across its end
    np.testing.assert_array_equal(y, table["label"].to_numpy()[30:120])


def test_a_stray_text_cell_in_a_column_of_numbers_is_named_with_its_row(tmp_path, monkeypatch):
    """The line named the column and its dtype (with pandas' DtypeWarning above it), not the cell to fix."""
    import lossexp.data.csv  # noqa: F401 (registers the source)
    from lossexp import registry
    from lossexp.config import Selection
    from lossexp.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    rows = ["a,b,kind"] + [f"{i % 7},{i % 5},{i % 3}" for i in range(300)]
    rows[201] = "1,oops,2"
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError) as info:
        registry.build("data", Selection("csv", {"path": "t.csv", "target": "kind"}))
    assert re.fullmatch(r"Invalid value for data.features: expected numeric columns, got 'b' \((object|str): 'oops' "
                        r"in row 201\) in t.csv; encode it, leave it out \(data.features\) or take it one-hot: "
                        r"data.one_hot=\[b\]", str(info.value)), str(info.value)
