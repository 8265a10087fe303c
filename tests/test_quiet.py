"""A quiet console: TensorFlow's start-up notices are filtered out of its import, MLflow logs at
WARNING; ``LOSSEXP_LOG_LEVEL=info`` brings them back; anything else on stderr goes through."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import lossexp_env
from lossexp import quiet

SAMPLE = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796286114.792657    6000 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1796286114.923752    6000 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.
To enable the following instructions: AVX2 FMA, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796286114.923752    6000 cuda_dnn.cc:8] a real error
something the user must see
"""


def test_only_the_notices_are_recognised():
    assert len(quiet.tensorflow_notices(SAMPLE)) == 4
    assert quiet._without_notices(SAMPLE).splitlines() == [
        "E0000 00:00:1796286114.923752    6000 cuda_dnn.cc:8] a real error", "something the user must see"]


def stderr_of(code: str, **env: str) -> str:
    environment = lossexp_env(**env)
    environment.pop("TF_CPP_MIN_LOG_LEVEL")  # as a user's shell has it: unset
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


IMPORT = ("import os, sys\nfrom lossexp import quiet\nquiet.configure()\nimport tensorflow\n"
          "os.write(2, b'after import\\n')\nimport logging, mlflow\n"
          "logging.getLogger('mlflow.store').info('an INFO line')\n")


@pytest.mark.slow
def test_info_brings_back_what_the_quiet_default_hides():
    """(The quiet default on a whole run: tests/tracking/test_mlflow_record.py, stderr empty.)"""
    loud = stderr_of(IMPORT, LOSSEXP_LOG_LEVEL="info")
    assert "oneDNN custom operations" in loud and "after import" in loud and "an INFO line" in loud


def test_a_bad_log_level_is_one_line(run_cli):
    result = run_cli("train", "model=mlp", LOSSEXP_LOG_LEVEL="loud")
    assert result.returncode == 2 and result.stderr == (
        "lossexp: error: Invalid value for $LOSSEXP_LOG_LEVEL: expected one of warning, info, debug, got 'loud'\n")


@pytest.mark.parametrize("level, printed", [("warning", False), ("info", True)])
def test_mlflows_own_run_links_are_quiet_by_default(level, printed):
    """Against a tracking server MLflow writes '🏃 View run … / 🧪 View experiment …' to stdout as each
    run ends (two lines per run, a sweep's parent too), beside lossexp's own ``view`` line."""
    code = ("from lossexp import quiet\nquiet.configure()\n"
            "from mlflow.environment_variables import MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT as V\nprint(V.get())")
    environment = lossexp_env(LOSSEXP_LOG_LEVEL=level)
    environment.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(not printed)


NOTEBOOK = """import os, numpy as np, keras, tensorflow as tf, lossexp
os.chdir({cwd!r})
x, y = np.zeros((32, 3), "float32"), np.zeros((32, 1), "float32")
lossexp.fit(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), (x, y), trainer={{"epochs": 1, "verbose": 0}})
for run in range(7):  # seven more models in this process, as a sweep's jobs or a notebook's fits
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).predict(x, verbose=0)
for shape in range(1, 8):  # the user's own function, retraced for real
    tf.function(lambda t: t * 2)(tf.zeros((shape,)))
"""


@pytest.mark.slow
def test_a_notebooks_fits_print_nothing_but_a_warning_about_its_own_retracing(tmp_path):
    """lossexp.fit has the CLI's console: MLflow's INFO lines on creating the store's tables are
    hidden, and TensorFlow's "triggered tf.function retracing" about Keras' steps, which each model
    makes anew and traces once (from the fifth model on), is dropped; the user's own function, really
    retraced, still warns. Nothing else reaches stderr but the TensorFlow notices of the notebook's
    own ``import keras``."""
    lines = [line for line in stderr_of(NOTEBOOK.format(cwd=str(tmp_path))).splitlines()
             if not quiet.tensorflow_notices(line)]  # printed when the notebook imported Keras, before lossexp
    assert lines and all("triggered tf.function retracing" in line and "<lambda>" in line for line in lines), lines


def test_a_stream_not_counted_trains_its_epochs_without_keras_warning_that_it_ran_out_of_data(tmp_path, monkeypatch,
                                                                                                recwarn):
    """A generator of unknown length whose length nothing needs (no validation split cut from it) is not
    counted (300 of its 300 read before the first step before): Keras learns an epoch's steps at the first
    epoch's end, and its "Your input ran out of data" warning, misleading here, is not shown."""
    import keras
    import tensorflow as tf

    import lossexp

    read, at_first_step = [], []

    def stream(n):
        def rows():
            for i in range(n):
                read.append(i)
                yield np.full(2, i / n, "float32"), np.float32(i / n)
        return tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((2,), tf.float32),
                                                                      tf.TensorSpec((), tf.float32)))

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            at_first_step.append(len(read))

    monkeypatch.chdir(tmp_path)
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    result = lossexp.fit(network, stream(300), callbacks=[FirstStep()], tracking={"enabled": False},
                         trainer={"epochs": 2, "batch_size": 64, "verbose": 0, "steps_per_execution": 2,
                                  "validation_split": 0})
    assert at_first_step[0] < 300 and len(result.history["loss"]) == 2
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]
