"""lossexp: config-driven experiments with composed loss functions in Keras 3, tracked in MLflow.

The public API, for a user's project and for notebooks:

* ``register_model``, ``register_data``, ``register_optimizer``, ``register_component``,
  ``register_trainer``, ``register_weighting``: add a part under a name (:mod:`lossexp.registry`);
* ``LossComponent``, ``LossContext``, ``LossTap``: the loss-component contract
  (:mod:`lossexp.losses.base`); ``WeightingMethod``, ``Signals``: the weighting-method contract
  (:mod:`lossexp.balancing.base`);
* ``Dataset``: what a data source may return (:mod:`lossexp.data.dataset`);
* ``fit``, ``compose``: train and record from Python, or get the composed Keras model
  (:mod:`lossexp.api`);
* ``register_keras_objects``: lossexp's Keras classes for ``keras.saving.load_model``.

Importing the package is cheap: TensorFlow is imported only by the names that need it, on first use.
Once Keras is imported (by anyone), lossexp's Keras classes are registered, so a saved lossexp model
loads with ``keras.saving.load_model`` or ``mlflow.keras.load_model`` after a plain ``import lossexp``
(see :mod:`lossexp.keras_objects`).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__version__ = "0.2.0"

#: The Hydra config tree shipped inside the package.
CONF_DIR = Path(__file__).resolve().parent / "conf"

from lossexp.keras_objects import register_keras_objects, register_when_keras_loads  # noqa: E402
from lossexp.registry import (register_component, register_data, register_model,  # noqa: E402
                              register_optimizer, register_trainer, register_weighting)

_LAZY = {
    "LossComponent": "lossexp.losses.base", "LossContext": "lossexp.losses.base", "LossTap": "lossexp.losses.base",
    "Dataset": "lossexp.data.dataset", "fit": "lossexp.api", "compose": "lossexp.api",
    "WeightingMethod": "lossexp.balancing.base", "Signals": "lossexp.balancing.base",
}

__all__ = ["register_model", "register_data", "register_optimizer", "register_component", "register_trainer",
           "register_weighting", "register_keras_objects", *_LAZY, "CONF_DIR", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lossexp' has no attribute {name!r}")


register_when_keras_loads()
