"""A streamed table's validation split — its last rows — is read from its own first row: a CSV's
lines before it skipped without parsing their numbers, a Parquet file's row groups before it unread.
``stream.skip(n)`` parsed, converted and unbatched every training row first (1.6M of a 2M-row CSV)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import dataset
from lossexp.data import tables


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_the_validation_rows_are_read_without_converting_the_training_rows(in_tmp, source, monkeypatch):
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(1000, 3)).astype("float32"), columns=["a", "b", "c"])
    table["label"] = rng.integers(0, 3, size=1000)
    if source == "csv":
        table.to_csv(in_tmp / "t.csv", index=False)
    else:
        table.to_parquet(in_tmp / "t.parquet", row_group_size=300)  # the split (row 750) inside the third group
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
