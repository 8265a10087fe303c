"""Data sets, one module per data set; each returns a :class:`Dataset` of NumPy arrays.

Nothing is downloaded: data sets are bundled with a package (scikit-learn's digits) or
generated from a seed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from lossexp.config import DATA_SCHEMAS

#: (inputs, targets)
Arrays = Tuple[np.ndarray, np.ndarray]


@dataclass
class Dataset:
    """Arrays plus what the model and the task loss need to know about them."""

    name: str
    x: np.ndarray
    y: np.ndarray
    task: str  # "classification" | "regression" | "reconstruction" (the targets are the inputs)
    num_outputs: int
    #: the task loss for regression (``data.task_loss``); classification uses cross-entropy
    regression_loss: str = "mean_squared_error"

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def task_loss(self) -> str:
        """A Keras loss name, or one of ``lossexp.training.task_losses`` (reconstruction, squared_log_error)."""
        return {"classification": "sparse_categorical_crossentropy",
                "reconstruction": "summed_binary_crossentropy"}.get(self.task, self.regression_loss)

    @property
    def task_metric(self) -> str:
        return "accuracy" if self.task == "classification" else "mean_absolute_error"

    def autoencoding(self) -> "Dataset":
        """The same examples as a reconstruction task: inputs flattened, targets = inputs."""
        x = self.x.reshape(len(self.x), -1)
        return Dataset(self.name, x, x, task="reconstruction", num_outputs=x.shape[1])

    def split(self, validation_split: float) -> Tuple[Arrays, Optional[Arrays]]:
        """(train, validation) — the last ``validation_split`` of the (already shuffled) rows."""
        n_val = int(round(len(self.x) * validation_split))
        if n_val == 0:
            return (self.x, self.y), None
        return (self.x[:-n_val], self.y[:-n_val]), (self.x[-n_val:], self.y[-n_val:])


def load(cfg: Any) -> Dataset:
    """Load the data set named by ``cfg.name`` (a validated data config)."""
    assert cfg.name in DATA_SCHEMAS, cfg.name
    return importlib.import_module(f"lossexp.data.{cfg.name}").load(cfg)
