"""The objective(s) a job returns to the sweeper, named in config.

One objective: ``objective.metric`` (default ``val_loss``) to ``objective.direction``. Several:
``objective.metrics: [val_loss, loss/activity]`` with ``objective.directions`` (one each; a single
direction applies to all). ``val_loss`` falls back, when the run has no validation split, to what the
training regime offers (the training ``loss``; a GAN on the ring: the modes its generator misses).
Any other metric must have been recorded by the run, or the run fails saying which ones were (a
sweep checks that before it starts: :mod:`lossexp.sweeps.checks`).

A job logs the metric ``objective`` (the first objective's final value) and, with several
objectives, ``objective/<metric>`` for each; it returns a float, or a list of floats.
"""
from __future__ import annotations

import math
import sys

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from lossexp.errors import ConfigError, unknown_name

DEFAULT_METRIC = "val_loss"
DIRECTIONS = ("minimize", "maximize")
OBJECTIVE_METRIC = "objective"


class ObjectiveMissing(ConfigError):
    """The configured objective metric was not recorded by this run (known only after training): one
    line, not a traceback (``objective.metric=nope`` ended a finished training in one)."""


def objectives(objective: Any) -> List[Tuple[str, str]]:
    """``[(metric, direction), …]`` from an ``objective`` config section (see the module docstring)."""
    metrics = list(getattr(objective, "metrics", None) or []) or [objective.metric]
    directions = list(getattr(objective, "directions", None) or []) or [objective.direction]
    if len(directions) == 1:
        directions = directions * len(metrics)
    return list(zip(metrics, directions))


def check_objective(objective: Any) -> None:
    """Raise :class:`ConfigError` for an unknown direction, a repeated metric or mismatched lists."""
    key = "objective.directions" if getattr(objective, "directions", None) else "objective.direction"
    for direction in list(getattr(objective, "directions", None) or []) or [objective.direction]:
        if direction not in DIRECTIONS:
            raise unknown_name(key, direction, DIRECTIONS)
    metrics = list(getattr(objective, "metrics", None) or [])
    directions = list(getattr(objective, "directions", None) or [])
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"Invalid value for objective.metrics: expected distinct metric names, got {metrics}")
    if directions and len(directions) not in (1, len(metrics or [objective.metric])):
        raise ConfigError(f"Invalid value for objective.directions: expected one direction per metric of "
                          f"objective.metrics ({len(metrics or [objective.metric])}), got {directions}")


#: what a training regime offers when ``val_loss`` is not recorded (None: nothing)
Fallback = Callable[[Dict[str, Sequence[Any]]], Optional[float]]


def objective_value(history: Dict[str, Sequence[Any]], metric: str = DEFAULT_METRIC,
                    fallback: Optional[Fallback] = None) -> float:
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


def objective_values(history: Dict[str, Sequence[Any]], objective: Any,
                     fallback: Optional[Fallback] = None) -> Union[float, List[float]]:
    """What the job returns: one float, or one per objective when there are several."""
    values = [objective_value(history, metric, fallback) for metric, _ in objectives(objective)]
    return values[0] if len(values) == 1 else values


def recorded_objective(history: Dict[str, Sequence[Any]], objective: Any,
                       fallback: Optional[Fallback] = None) -> Union[None, float, List[float]]:
    """:func:`objective_values`, or None and a warning line when the objective is the default
    ``val_loss`` and the run recorded neither it, ``loss`` nor a fallback (a regime of the user's
    whose model names its losses per player, ``loss/critic``): the run trained, and stays FINISHED. A
    regime's ``fallback`` that raises is one line naming its file and line (it was a traceback)."""
    from lossexp.project import user_code_errors

    try:
        with user_code_errors("computing the run's objective"):
            return objective_values(history, objective, fallback)
    except ObjectiveMissing as missing:
        if [metric for metric, _ in objectives(objective)] != [DEFAULT_METRIC]:
            raise
        print(f"lossexp: warning: {missing}; no objective is recorded (objective.metric=… names one)", file=sys.stderr)
        return None


def objective_points(value: Union[float, List[float]], objective: Any, step: int) -> List[Tuple[str, float, int]]:
    """The ``(key, value, step)`` metric points a job logs for its objective value(s)."""
    if not isinstance(value, list):
        return [(OBJECTIVE_METRIC, value, step)]
    points = [(OBJECTIVE_METRIC, value[0], step)]
    return points + [(f"{OBJECTIVE_METRIC}/{metric}", v, step) for (metric, _), v in zip(objectives(objective), value)]


def objective_keys(metrics: Sequence[str]) -> List[str]:
    """The metric keys a child holds its objective values under (``objective`` alone for one)."""
    return [OBJECTIVE_METRIC] if len(metrics) <= 1 else [f"{OBJECTIVE_METRIC}/{m}" for m in metrics]


def best(values: Dict[str, float], direction: str) -> Optional[str]:
    """The key whose value is best under ``direction`` (None when there is none). A NaN is never best:
    ``min`` and ``max`` compare nothing with it, so a NaN first in ``values`` was picked over every number."""
    scored = {key: value for key, value in values.items() if not math.isnan(value)}
    if not scored:
        return None
    pick = min if direction == "minimize" else max
    return pick(scored, key=scored.__getitem__)
