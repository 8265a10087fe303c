"""The objective a job returns to the sweeper, named in config (``objective.metric``).

``val_loss`` (the default) falls back to the training ``loss`` when there is no validation
split; a GAN has no ``val_loss`` and is scored by the ring modes its generator misses. Any
other metric must have been recorded by the run, or the run fails saying which ones were.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

DEFAULT_METRIC = "val_loss"
DIRECTIONS = ("minimize", "maximize")


class ObjectiveMissing(RuntimeError):
    """The configured objective metric was not recorded by this run (known only after training)."""


def objective_value(history: Dict[str, Sequence[Any]], metric: str = DEFAULT_METRIC) -> float:
    """The final value of ``metric`` in a Keras history."""
    if metric in history:
        return float(history[metric][-1])
    if metric == DEFAULT_METRIC:
        if "ring/modes_covered" in history:  # a GAN: the number of modes it misses
            from lossexp.data.ring import N_MODES

            return float(N_MODES - history["ring/modes_covered"][-1])
        if "loss" in history:
            return float(history["loss"][-1])
    recorded = ", ".join(sorted(history)) or "(none)"
    raise ObjectiveMissing(f"objective.metric {metric!r} was not recorded by this run; it recorded {recorded}")


def best(values: Dict[str, float], direction: str) -> Optional[str]:
    """The key whose value is best under ``direction`` (None when there is none)."""
    if not values:
        return None
    pick = min if direction == "minimize" else max
    return pick(values, key=values.__getitem__)
