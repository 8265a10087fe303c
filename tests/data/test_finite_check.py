"""A stream's values are checked for NaN and inf as it trains: a NaN past the examples read before training
trained on silently (a ReLU hides it from the loss while its gradient wrote NaN into the kernel) and the run
ended FINISHED with a broken model; it is one line naming the example now, the run FAILED."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import cli
from lossexp.errors import ConfigError

#: past the stream's first 256 elements, which are checked before training
LATE = 600


def relu_network():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden_1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def test_a_nan_input_past_the_first_examples_of_a_stream_is_one_line_naming_it(tmp_path, monkeypatch, all_runs):
    import tensorflow as tf

    import lossexp

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 4)).astype("float32"), np.arange(1000) % 3
    x[LATE, 2] = np.nan
    with pytest.raises(ConfigError) as info:
        lossexp.fit(relu_network(), tf.data.Dataset.from_tensor_slices((x, y)).batch(50),
                    trainer={"epochs": 1, "verbose": 0}, tracking={"plots": False, "log_model": False})
    assert str(info.value) == ("Invalid value for data (python): expected finite inputs, got "
                               f"'NaN/inf in inputs at example {LATE}'")
    [run] = all_runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    assert run.info.status == "FAILED"


def test_the_first_example_not_finite_is_named_by_its_part():
    import tensorflow as tf

    from lossexp.data.finite_check import first_not_finite

    x = {"a": np.zeros((30, 2), "float32"), "b": np.zeros((30, 3), "float32")}
    y, w = np.zeros((30, 1), "float32"), np.ones(30, "float32")
    x["b"][17, 1], y[12, 0], w[25] = np.inf, np.nan, np.nan
    assert first_not_finite(tf.data.Dataset.from_tensor_slices((x, y, w)), batch=8) == (12, "targets")
    y[12, 0] = 0
    assert first_not_finite(tf.data.Dataset.from_tensor_slices((x, y, w)), batch=8) == (17, "inputs['b']")
    x["b"][17, 1] = 0
    assert first_not_finite(tf.data.Dataset.from_tensor_slices((x, y, w)), batch=8) == (25, "sample weights")
    w[25] = 1
    assert first_not_finite(tf.data.Dataset.from_tensor_slices((x, y, w)), batch=8) == (-1, "")


@pytest.mark.parametrize("cell, said", [
    ("", "Invalid value for data (csv): expected finite inputs, got 'NaN/inf in inputs at row 601 of t.csv (rows "
         "counted from 1 below the header)'"),
    # lossexp's own line, raised in the reader inside a TensorFlow op: was two tracebacks, 56 lines
    ("oops", "Invalid value for data.features: expected numeric columns, got 'b' (str: 'oops' in row 601) in t.csv; "
             "encode it, leave it out (data.features) or take it one-hot: data.one_hot=[b]"),
])
def test_a_streamed_table_with_a_bad_cell_past_its_first_chunks_is_one_line(tmp_path, all_runs, cell, said):
    rows = ["a,b,kind"] + [f"{i % 7},{i % 5},{i % 3}" for i in range(1000)]
    rows[LATE + 1] = f"1,{cell},2"
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    result = cli(tmp_path, "train", "model=mlp", "loss=none", "data=csv", "data.path=t.csv", "data.target=kind",
                 "data.stream=true", "data.chunk_rows=100", "data.shuffle=false", "trainer.epochs=1",
                 "trainer.batch_size=50", "tracking.plots=false", "tracking.log_model=false")
    assert result.stderr.strip().splitlines()[-1] == f"lossexp: error: {said}", result.stderr[-3000:]
    assert "Traceback" not in result.stderr and result.returncode != 0
    assert [run.info.status for run in all_runs(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")] == ["FAILED"]
