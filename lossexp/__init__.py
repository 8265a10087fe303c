"""lossexp: config-driven experiments with composed loss functions in Keras 3, tracked in MLflow.

Importing the package is cheap: TensorFlow is imported only by the modules that train.
"""
from pathlib import Path

__version__ = "0.1.0"

#: The Hydra config tree shipped beside the package (``conf/`` at the repository's top level).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
