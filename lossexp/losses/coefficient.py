"""Trainable coefficients: a raw variable ``s`` that the optimizer updates, and the map from
``s`` to the effective coefficient ``a`` the loss uses.

``raw``       a = s           (the seeds' version; can cross zero and run to -inf)
``softplus``  a = log(1+e^s)  (always > 0)
``exp``       a = e^s         (always > 0; multiplicative steps)
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict

from keras import ops

PARAMETRIZATIONS: Dict[str, Callable[[Any], Any]] = {
    "raw": lambda s: s,
    "softplus": ops.softplus,
    "exp": ops.exp,
}

_INVERSE: Dict[str, Callable[[float], float]] = {
    "raw": lambda a: a,
    "softplus": lambda a: a + math.log(-math.expm1(-a)),  # log(e^a - 1), stable for large a
    "exp": math.log,
}

#: Parametrizations that need a strictly positive initial coefficient.
POSITIVE = {"softplus", "exp"}


def effective(parametrization: str, raw: Any) -> Any:
    """The coefficient ``a`` for the raw variable value ``s``."""
    return PARAMETRIZATIONS[parametrization](raw)


def raw_initial(parametrization: str, initial: float) -> float:
    """The raw value ``s`` whose effective coefficient is ``initial``."""
    return _INVERSE[parametrization](initial)
