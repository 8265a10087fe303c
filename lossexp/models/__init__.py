"""Architectures, one module per model; each builds a Keras 3 functional network whose layers
carry the names that loss components refer to."""
from __future__ import annotations

import importlib
from typing import Any, Optional

from lossexp.config import MODEL_SCHEMAS
from lossexp.data import Dataset


def build_network(cfg: Any, data: Dataset) -> Any:
    """Build the functional ``keras.Model`` named by ``cfg.name`` for ``data``."""
    assert cfg.name in MODEL_SCHEMAS, cfg.name
    return importlib.import_module(f"lossexp.models.{cfg.name}").build(cfg, data)


def prepare_data(cfg: Any, data: Dataset) -> Dataset:
    """``data`` as model ``cfg.name`` trains on it: unchanged unless the model's module defines
    ``prepare_data`` (the VAE turns a data set into the reconstruction of its inputs)."""
    module = importlib.import_module(f"lossexp.models.{cfg.name}")
    return module.prepare_data(data) if hasattr(module, "prepare_data") else data


def output_layer(data: Dataset, activation: Optional[str] = None) -> Any:
    """The ``output`` layer: ``activation`` if given, else softmax over classes or linear for regression."""
    import keras

    if activation is None:
        activation = "softmax" if data.task == "classification" else None
    return keras.layers.Dense(data.num_outputs, activation=activation, name="output")
