"""A message about one example of a file names its row in the file, not its place after the rows' shuffle
(:mod:`lossexp.data.file_rows`): the label of -1 "at example 37" was in row 6 of the CSV."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from lossexp.data.dataset import as_dataset
from lossexp.data.file_rows import FileRows, FromFile, example_name, shuffled
from lossexp.data.labels import class_labels
from lossexp.errors import ConfigError
from lossexp.training.network_checks import check_outputs


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_example_is_named_by_the_row_of_its_file_it_came_from():
    x = np.arange(10, dtype="float32")[:, None] * 10  # row r of the file holds 10·r
    shuffled_rows = shuffled((x, np.arange(10)), FileRows("t.csv", 10), seed=3)
    validation = FileRows("v.csv", 4)
    files = (shuffled_rows.rows, validation)
    assert [example_name(files, i) for i in range(10)] == \
        [f"row {int(value) // 10 + 1} of t.csv" for value in shuffled_rows[0][:, 0]]
    assert example_name(files, 11) == "row 2 of v.csv" and example_name(files, 14) == "example 14"
    assert example_name(None, 37) == "example 37"
    in_order = shuffled((x, np.arange(10)), FileRows("a.npz's arrays", 10, unit="index", first=0), seed=None)
    assert in_order.rows.name(4) == "index 4 of a.npz's arrays" and in_order[0] is x
    for kept in (copy.deepcopy(shuffled_rows), pickle.loads(pickle.dumps(shuffled_rows))):
        assert isinstance(kept, FromFile) and [kept.rows.name(i) for i in range(10)] == \
            [shuffled_rows.rows.name(i) for i in range(10)]
        np.testing.assert_array_equal(kept[0], shuffled_rows[0])


def labelled_table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    table["label"] = np.arange(n) % 3
    return table


def written(table: pd.DataFrame, directory, source: str) -> str:
    if source == "csv":
        table.to_csv(directory / "t.csv", index=False)
    elif source == "parquet":
        table.to_parquet(directory / "t.parquet")
    else:
        np.savez(directory / "t.npz", x=table[["a", "b", "c"]].to_numpy("float32"), y=table["label"].to_numpy())
    return f"t.{source}"


ROW_OF = {"csv": "row 6 of t.csv (rows counted from 1 below the header)",
          "parquet": "row 6 of t.parquet (rows counted from 1 below the header)",
          "npz": "index 5 of t.npz's arrays"}


@pytest.mark.parametrize("source,stream", [("csv", False), ("csv", True), ("parquet", False), ("npz", False)])
def test_a_negative_label_is_named_by_its_row_in_the_file(in_tmp, source, stream):
    """It was "-1 at example 37": where the shuffle had put the file's row 6 (streamed: "in the stream's labels")."""
    table = labelled_table()
    table.loc[5, "label"] = -1
    options = {"target": "label"} if source != "npz" else {}
    options.update({"stream": True, "chunk_rows": 8} if stream else {})
    with pytest.raises(ConfigError) as info:
        class_labels(dataset(source, path=written(table, in_tmp, source), **options), 0.2)
    assert str(info.value).endswith(f"got {'-1 at ' + ROW_OF[source]!r}"), str(info.value)


@pytest.mark.parametrize("source,stream", [("csv", False), ("csv", True), ("npz", False)])
def test_a_label_beyond_the_networks_outputs_is_named_by_its_row_in_the_file(in_tmp, source, stream):
    """A network of 3 outputs on labels up to 7: "example 57 has label 7" named the place after the shuffle, and
    a streamed table's named none; the row of the file now, of a second file that validates too."""
    table = labelled_table()
    table.loc[5, "label"] = 7
    options = {"target": "label"} if source != "npz" else {}
    options.update({"stream": True, "chunk_rows": 8} if stream else {})
    data = dataset(source, path=written(table, in_tmp, source), **options)
    with pytest.raises(ConfigError) as info:
        check_outputs("net", data, np.zeros(8, "int64"), np.zeros((8, 3), "float32"))
    assert f"; {ROW_OF[source]} has label 7 (outputs 0 … 2)" in str(info.value), str(info.value)
    if source == "csv":
        table.loc[5, "label"] = 1
        table.to_csv(in_tmp / "train.csv", index=False)
        table.iloc[:10].assign(label=[0, 1, 2, 9, 0, 1, 2, 0, 1, 2]).to_csv(in_tmp / "v.csv", index=False)
        data = dataset("csv", path="train.csv", validation_path="v.csv", **options)
        with pytest.raises(ConfigError) as info:
            check_outputs("net", data, np.zeros(8, "int64"), np.zeros((8, 3), "float32"))
        assert "; row 4 of v.csv (rows counted from 1 below the header) has label 9" in str(info.value)


def test_a_negative_sample_weight_is_named_by_its_row_in_the_file(in_tmp):
    table = labelled_table()
    np.savez(in_tmp / "w.npz", x=table[["a", "b", "c"]].to_numpy("float32"), y=table["label"].to_numpy(),
             w=np.where(np.arange(60) == 9, -2.0, 1.0))
    with pytest.raises(ConfigError, match=r"got \"-2.0 at index 9 of w.npz's arrays\"$"):
        dataset("npz", path="w.npz", sample_weight="w")


def test_arrays_of_a_source_of_ones_own_keep_naming_their_examples():
    y = np.arange(40) % 3
    y[17] = -1
    with pytest.raises(ConfigError, match="got '-1 at example 17'$"):
        class_labels(as_dataset("mine", (np.zeros((40, 2), "float32"), y)), 0.2)


def test_an_example_of_a_validation_set_of_ones_own_is_named_there():
    """It was "example 107": its place after the 100 training examples, which the validation set has not."""
    x, y = np.zeros((100, 2), "float32"), np.arange(100) % 3
    held_y = np.arange(20) % 3
    held_y[7] = 5
    data = as_dataset("mine", {"train": (x, y), "validation": (x[:20], held_y)})
    with pytest.raises(ConfigError) as info:
        check_outputs("net", data, y[:8], np.zeros((8, 3), "float32"))
    assert "; example 7 of the validation set has label 5 (outputs 0 … 2)" in str(info.value), str(info.value)
    held_y[7] = -1
    with pytest.raises(ConfigError, match="got '-1 at example 7 of the validation set'$"):
        class_labels(as_dataset("mine", {"train": (x, y), "validation": (x[:20], held_y)}), 0.2)
    assert data.example_name(99) == "example 99"
