"""From a validated config and a data set to a compiled :class:`ComposedModel`."""
from __future__ import annotations

from typing import Dict, List, Sequence

import keras

from lossexp.config import LossexpConfig, OptimizerConfig
from lossexp.data import Dataset
from lossexp.losses.base import LossComponent, LossTap
from lossexp.losses.registry import build_components
from lossexp.models import build_network
from lossexp.training.composed_model import ComposedModel
from lossexp.training.rewire import insert_taps
from lossexp.training.task_losses import resolve as resolve_task_loss


def make_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    if cfg.name == "sgd":
        return keras.optimizers.SGD(learning_rate=cfg.learning_rate, momentum=cfg.momentum)
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate)


def compose(network: keras.Model, components: Sequence[LossComponent], task_loss: str,
            name: str = "composed") -> ComposedModel:
    """Insert the components' pass-through taps into ``network`` and wrap both (uncompiled).

    Raises :class:`lossexp.errors.ConfigError` for a tap after a layer the network does not have.
    """
    taps: Dict[str, List[LossTap]] = {}
    for component in components:
        wanted = component.insert_after()
        component.require_layers(network, list(wanted))
        for layer, tap in wanted.items():
            taps.setdefault(layer, []).append(tap)
    return ComposedModel(insert_taps(network, taps), components, task_loss=task_loss, name=name)


def build_model(cfg: LossexpConfig, data: Dataset) -> ComposedModel:
    """Build the network, the loss components and their taps; compile the composed model.

    Raises :class:`lossexp.errors.ConfigError` (before any training) for bad component options
    or layer names that the network does not have.
    """
    network = build_network(cfg.model, data)
    components = build_components(cfg.loss)
    model = compose(network, components, data.task_loss, name=f"{cfg.model.name}_composed")
    model.compile(optimizer=make_optimizer(cfg.optimizer), loss=resolve_task_loss(data.task_loss),
                  metrics=[data.task_metric], steps_per_execution=cfg.trainer.execution_steps)
    return model
