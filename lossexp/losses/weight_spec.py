"""What a component's ``weight`` may be, parsed and checked without TensorFlow.

A weight is one of three forms (the multiplier ``w`` of the component's term):

* a number — ``weight: 0.01``: a constant ``w``;
* a schedule — ``weight: {schedule: linear, start: 0, end: 1, steps: 500}``: ``w`` follows the
  training step ``t`` (1 for the first step):

  - ``constant``: w = end
  - ``linear`` (warm-up): w = start + (end − start)·clip((t − delay)/steps, 0, 1)
  - ``sigmoid`` (Bowman et al. 2016): w = start + (end − start)·σ(sharpness·(t − midpoint))
  - ``cyclical`` (Fu et al. 2019, eq. 5): ``cycles`` cycles over ``steps`` steps, each restarting
    at ``start`` every ⌈steps/cycles⌉ steps; with τ = ((max(t, 1) − 1) mod ⌈steps/cycles⌉)/(steps/cycles),
    w = start + (end − start)·min(1, τ/ratio) for t ≤ steps, and w = end after ``steps`` (a finished
    schedule holds its maximum, as Fu's does: training past ``steps`` no longer cycles)

* trainable — ``weight: {value: 1.0, trainable: true, parametrization: softplus}``:

  - ``raw``: w = s, s trained (the seeds' version: it can cross zero and run to −∞)
  - ``softplus``: w = log(1 + eˢ) > 0, s trained
  - ``exp``: w = eˢ > 0, s trained
  - ``uncertainty`` (Kendall et al. 2018): contribution exp(−s)·term + s, s trained (w = exp(−s))
  - ``dual`` (dual ascent on the constraint term ≤ epsilon): w ← max(0, w + lr·(term − epsilon))
    after every training step, outside the gradient step

  ``value`` is the initial ``w``.
"""
# Pure Python on purpose: the config is checked with this before TensorFlow is imported.
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from lossexp.errors import ConfigError, invalid_value

SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")
PARAMETRIZATIONS = ("raw", "softplus", "exp", "uncertainty", "dual")
#: Parametrizations whose ``w`` is a function of a variable the optimizer trains.
GRADIENT_TRAINED = ("raw", "softplus", "exp", "uncertainty")

_SCHEDULE_KEYS = {
    "constant": ("end",),
    "linear": ("start", "end", "steps", "delay"),
    "sigmoid": ("start", "end", "midpoint", "sharpness"),
    "cyclical": ("start", "end", "steps", "cycles", "ratio"),
}
_TRAINABLE_KEYS = {
    "raw": (), "softplus": (), "exp": (), "uncertainty": (), "dual": ("lr", "epsilon"),
}


@dataclass(frozen=True)
class WeightSpec:
    """A parsed weight. ``kind`` is ``constant``, ``scheduled`` or ``trainable``."""

    kind: str
    value: float = 1.0
    schedule: Optional[str] = None
    start: float = 0.0
    end: float = 1.0
    steps: float = 1000.0
    delay: float = 0.0
    midpoint: float = 500.0
    sharpness: float = 0.01
    cycles: float = 4.0
    ratio: float = 0.5
    parametrization: Optional[str] = None
    lr: float = 0.01
    epsilon: float = 0.0

    @property
    def initial(self) -> float:
        """The weight before the first step."""
        return self.at_step(0) if self.kind == "scheduled" else self.value

    def at_step(self, t: float) -> float:
        """The scheduled weight at training step ``t`` (plain Python: the reference for tests)."""
        span = self.end - self.start
        if self.schedule == "constant":
            return self.end
        if self.schedule == "linear":
            return self.start + span * min(max((t - self.delay) / self.steps, 0.0), 1.0)
        if self.schedule == "sigmoid":
            return self.start + span / (1.0 + math.exp(-self.sharpness * (t - self.midpoint)))
        if t > self.steps:
            return self.end
        tau = ((max(t, 1) - 1) % self.cycle_length) / (self.steps / self.cycles)  # t = 0: the cycle's start
        return self.start + span * min(1.0, tau / self.ratio)

    @property
    def cycle_length(self) -> int:
        """Steps between restarts of a ``cyclical`` schedule: ⌈steps/cycles⌉ (Fu et al. 2019, eq. 5)."""
        return math.ceil(self.steps / self.cycles)

    @property
    def trained_by_gradient(self) -> bool:
        return self.kind == "trainable" and self.parametrization in GRADIENT_TRAINED

    @property
    def can_diverge(self) -> bool:
        """Parametrizations under which the total loss can run to −∞ (raw, uncertainty)."""
        return self.parametrization in ("raw", "uncertainty")


def _finite(value: float) -> bool:
    """A finite number that a float can hold (an int beyond ±1.8e308 cannot: OverflowError)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(key: str, value: Any, minimum: Optional[float] = None, positive: bool = False,
            maximum: Optional[float] = None) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if ok and minimum is not None:
        ok = value > minimum if positive else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            expected = f"{minimum} {'<' if positive else '<='} value <= {maximum}"
        elif minimum is not None:
            expected = f"a finite number {'>' if positive else '>='} {minimum}"
        else:
            expected = "a finite number"
        raise invalid_value(key, expected, value)
    return float(value)


def _check_keys(key: str, given: Mapping[str, Any], allowed: tuple) -> None:
    for name in given:
        if name not in allowed:
            raise ConfigError(f"Unknown key {key}.{name}: valid keys are {', '.join(allowed)}")


def parse_weight(key: str, spec: Any) -> WeightSpec:
    """Parse the ``weight`` option found at config key ``key`` (e.g. ``loss.kl.weight``)."""
    if not isinstance(spec, Mapping):
        return WeightSpec(kind="constant", value=_number(key, spec, minimum=0.0))
    spec: Dict[str, Any] = dict(spec)
    if "schedule" in spec:
        schedule = spec["schedule"]
        if schedule not in SCHEDULES:
            raise invalid_value(f"{key}.schedule", "one of " + ", ".join(SCHEDULES), schedule)
        _check_keys(key, spec, ("schedule",) + _SCHEDULE_KEYS[schedule])
        options: Dict[str, float] = {}
        for name in ("start", "end"):
            if name in spec:
                options[name] = _number(f"{key}.{name}", spec[name], minimum=0.0)
        for name in ("steps", "cycles", "sharpness"):
            if name in spec:
                options[name] = _number(f"{key}.{name}", spec[name], minimum=0.0, positive=True)
        for name in ("delay", "midpoint"):
            if name in spec:
                options[name] = _number(f"{key}.{name}", spec[name], minimum=0.0)
        if "ratio" in spec:
            options["ratio"] = _number(f"{key}.ratio", spec["ratio"], minimum=0.0, positive=True, maximum=1.0)
        parsed = WeightSpec(kind="scheduled", schedule=schedule, **options)
        if schedule == "cyclical" and parsed.cycles > parsed.steps:
            raise invalid_value(f"{key}.cycles", f"at most steps ({parsed.steps:g}) cycles", spec.get("cycles"))
        return parsed
    if spec.get("trainable") is not True:
        raise invalid_value(key, "a number >= 0, a mapping with `schedule:` or a mapping with `trainable: true`",
                            spec)
    parametrization = spec.get("parametrization", "softplus")
    if parametrization not in PARAMETRIZATIONS:
        raise invalid_value(f"{key}.parametrization", "one of " + ", ".join(PARAMETRIZATIONS), parametrization)
    _check_keys(key, spec, ("value", "trainable", "parametrization") + _TRAINABLE_KEYS[parametrization])
    positive = parametrization in ("softplus", "exp", "uncertainty")
    value = _number(f"{key}.value", spec.get("value", 1.0), minimum=0.0, positive=positive)
    options = {"value": value, "parametrization": parametrization}
    if parametrization == "dual":
        options["lr"] = _number(f"{key}.lr", spec.get("lr", 0.01), minimum=0.0, positive=True)
        options["epsilon"] = _number(f"{key}.epsilon", spec.get("epsilon", 0.0))
    return WeightSpec(kind="trainable", **options)
