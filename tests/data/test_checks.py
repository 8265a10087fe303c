"""Checks of a data source's arrays before training (lossexp/data/checks.py): what they refuse, and
what memory they take beside arrays of a researcher's size."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lossexp.data import checks
from lossexp.errors import ConfigError


def test_the_finite_check_reads_an_array_in_chunks_and_names_the_example(monkeypatch):
    """``np.isfinite`` of a whole array made a boolean copy of a quarter of its float32 size (500 MB
    beside 2 GB of images, which Keras' fit does not copy); checked in chunks of rows within
    FINITE_CHUNK_BYTES (1 MiB here) the check holds one chunk's, and a NaN in a later chunk is
    still named by its example."""
    monkeypatch.setattr(checks, "FINITE_CHUNK_BYTES", 1 << 20, raising=False)
    x = np.zeros((1000, 64, 64), "float32")  # 16 MB: its isfinite was 4 MB
    tracemalloc.start()
    try:
        checks.check_finite("big", "inputs", x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    x[777, 5, 9] = np.nan
    with pytest.raises(ConfigError, match=r"expected finite inputs, got 'NaN/inf in inputs at example 777'"):
        checks.check_finite("big", "inputs", x)
    checks.check_finite("scalar", "targets", np.float32(1.0))
    with pytest.raises(ConfigError, match="at example 0"):
        checks.check_finite("scalar", "targets", np.float64(np.inf))


def test_the_first_row_not_finite_is_the_first_example_holding_nan_or_inf_in_any_of_its_values():
    """One search serves the arrays' check and a stream's (lossexp/data/finite_check.py)."""
    x = np.zeros((6, 3, 2), "float32")
    assert checks.first_not_finite_row(x) == -1
    x[4, 2, 1], x[2, 0, 0] = np.nan, -np.inf
    assert checks.first_not_finite_row(x) == 2
    assert checks.first_not_finite_row(np.array([1.0, np.inf, np.nan])) == 1
    assert checks.first_not_finite_row(np.float64(np.nan)) == 0
    assert checks.first_not_finite_row(np.float32(3.0)) == -1
    assert checks.first_not_finite_row(np.zeros((0, 4))) == -1


def test_a_stray_label_above_classes_without_examples_is_told_and_a_gap_below_classes_of_weight_is_not():
    """With model=mlp a corrupt row's label 25 among 0 … 19 silently made a 26-unit network."""
    from lossexp.data.checks import stray_classes

    labels = np.arange(200_000) % 20
    labels[5] = 25
    assert stray_classes(labels) == ("no example of class 20 … 24, and 1 of 200000 of class 25 above: its network "
                                     "gets 26 outputs, a unit per class up to the highest label (a stray label?)")
    labels[labels == 3] = 4
    assert stray_classes(labels).startswith("no example of 6 classes up to 24, and 1 of 200000 of class 25 above")
    assert stray_classes(np.arange(100) % 7) is None  # 0 … k-1
    gapped = np.arange(1000) % 10
    gapped[gapped == 3] = 4
    assert stray_classes(gapped) is None  # a class without examples below classes that hold 60 % of them
    assert stray_classes(np.where(np.arange(100) % 2, 0.0, 1.0)) is None and stray_classes(None) is None
