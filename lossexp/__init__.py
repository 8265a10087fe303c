"""lossexp: config-driven experiments with composed loss functions in Keras 3, tracked in MLflow.

Importing the package is cheap: TensorFlow is imported only by the modules that train. Once Keras
is imported (by anyone), lossexp's Keras classes are registered, so a saved lossexp model loads
with ``keras.saving.load_model`` or ``mlflow.keras.load_model`` after a plain ``import lossexp``
(see :mod:`lossexp.keras_objects`).
"""
from pathlib import Path

from lossexp.keras_objects import register_keras_objects, register_when_keras_loads

__version__ = "0.1.0"
__all__ = ["CONF_DIR", "register_keras_objects", "__version__"]

#: The Hydra config tree shipped beside the package (``conf/`` at the repository's top level).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

register_when_keras_loads()
