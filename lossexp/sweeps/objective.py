"""The objective a job returns to the sweeper, named in config (``objective.metric``).

``val_loss`` (the default) falls back, when the run has no validation split, to what the training
regime offers (the training ``loss``; a GAN on the ring: the modes its generator misses). Any
other metric must have been recorded by the run, or the run fails saying which ones were.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

DEFAULT_METRIC = "val_loss"
DIRECTIONS = ("minimize", "maximize")


class ObjectiveMissing(RuntimeError):
    """The configured objective metric was not recorded by this run (known only after training)."""


def objective_value(history: Dict[str, Sequence[Any]], metric: str = DEFAULT_METRIC,
                    fallback: Optional[Callable[[Dict[str, Sequence[Any]]], Optional[float]]] = None) -> float:
    """The final value of ``metric`` in a Keras history; for the default metric without
    validation, ``fallback(history)`` (else the training ``loss``)."""
    if metric in history:
        return float(history[metric][-1])
    if metric == DEFAULT_METRIC:
        value = fallback(history) if fallback is not None else None
        if value is None and "loss" in history:
            value = float(history["loss"][-1])
        if value is not None:
            return value
    recorded = ", ".join(sorted(history)) or "(none)"
    raise ObjectiveMissing(f"objective.metric {metric!r} was not recorded by this run; it recorded {recorded}")


def best(values: Dict[str, float], direction: str) -> Optional[str]:
    """The key whose value is best under ``direction`` (None when there is none)."""
    if not values:
        return None
    pick = min if direction == "minimize" else max
    return pick(values, key=values.__getitem__)
