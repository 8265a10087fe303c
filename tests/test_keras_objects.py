"""``import lossexp`` registers lossexp's Keras classes when Keras loads, whoever imports it, and
imports neither Keras nor TensorFlow itself (checked in fresh processes)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import lossexp_env

CHECK = ("import keras\n"
         "objects = keras.saving.get_custom_objects()\n"
         "print(all(n in objects for n in ('lossexp>ComposedModel', 'lossexp>GANModel', 'lossexp>Sampling',"
         " 'lossexp>hist_avg', 'lossexp>activity', 'lossexp>ActivityTap', 'lossexp>kl', 'lossexp>regularizer',"
         " 'lossexp>ActivityRegularizerTap')))\n")


def python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], env=lossexp_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_import_lossexp_loads_neither_keras_nor_tensorflow():
    assert python("import sys, lossexp\nprint(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))") == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("first", ["import lossexp\n", "import keras, lossexp\n"])  # mlflow.keras: test_mlflow_record
def test_lossexp_classes_are_registered_whatever_imports_keras_first(first):
    assert python(first + CHECK) == "True"
