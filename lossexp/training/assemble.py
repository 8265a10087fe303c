"""From a validated config and a data set to a compiled :class:`ComposedModel`."""
from __future__ import annotations

from typing import Dict, List

import keras

from lossexp.config import LossexpConfig, OptimizerConfig
from lossexp.data import Dataset
from lossexp.losses.base import LossTap
from lossexp.losses.registry import build_components
from lossexp.models import build_network
from lossexp.training.composed_model import ComposedModel
from lossexp.training.rewire import insert_taps


def make_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    if cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate)


def build_model(cfg: LossexpConfig, data: Dataset) -> ComposedModel:
    """Build the network, the loss components and their taps; compile the composed model.

    Raises :class:`lossexp.errors.ConfigError` (before any training) for bad component options
    or layer names that the network does not have.
    """
    network = build_network(cfg.model, data)
    components = build_components(cfg.loss)
    taps: Dict[str, List[LossTap]] = {}
    for component in components:
        wanted = component.insert_after()
        component.require_layers(network, list(wanted))
        for layer, tap in wanted.items():
            taps.setdefault(layer, []).append(tap)
    network = insert_taps(network, taps)
    model = ComposedModel(network, components, task_loss=data.task_loss, name=f"{cfg.model.name}_composed")
    model.compile(optimizer=make_optimizer(cfg.optimizer), loss=data.task_loss, metrics=[data.task_metric])
    return model
