"""No data: one dummy example per training step, for a model that is its parameters
(``model=point``, the ``objective`` regime), whose loss components are functions of θ alone.

Keras' ``fit`` still counts steps by batches: ``n_samples`` zeros at ``trainer.batch_size: 1`` are
``n_samples`` steps per epoch. The inputs set the batch size and nothing else.
"""
from __future__ import annotations

from typing import Annotated, Tuple

import numpy as np

from lossexp.options import Check
from lossexp.registry import register_data

Steps = Annotated[int, Check("an integer >= 2", lambda n: n >= 2)]


@register_data("steps", task="objective")
def steps(n_samples: Steps = 1000) -> Tuple[np.ndarray, np.ndarray]:
    """``n_samples`` examples of zeros (inputs and targets of width 1), the ``objective`` task.

    Options: ``n_samples`` (examples; at ``trainer.batch_size: 1``, the steps of an epoch).
    """
    zeros = np.zeros((n_samples, 1), dtype="float32")
    return zeros, zeros
