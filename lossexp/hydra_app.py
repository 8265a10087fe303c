"""The ``@hydra.main`` application behind ``lossexp train``.

A :class:`~lossexp.errors.ConfigError` raised inside a job (e.g. a layer name the network does
not have, which is only known once the network is built) is printed as one line and ends the
process with status 2, like the CLI's own checks; no MLflow run exists at that point.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lossexp import CONF_DIR
from lossexp.errors import EXIT_BAD_INPUT, ConfigError


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_train(cfg: DictConfig) -> float:
    from lossexp.train import run

    try:
        return run(cfg)
    except ConfigError as exc:
        print(f"lossexp: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
