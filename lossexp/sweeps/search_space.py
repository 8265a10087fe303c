"""The Optuna search space of a sweep, from the Hydra plugin's ``params:`` syntax.

``hydra.sweeper.params`` (and sweep overrides on the command line) map a config key to:

* ``interval(a, b)``: a float (int when both bounds are ints) in ``[a, b]``; ``tag(log, interval(a, b))``
  samples on a log scale (``a > 0``);
* ``range(a, b[, step])``: ``a, a+step, …`` below ``b``, as Hydra's basic sweeper reads it
  (hydra-optuna-sweeper 1.x included ``b``);
* ``choice(x, y, …)`` or ``x,y,…``: one of the values;
* a plain value: fixed for every trial.

A mistake (an empty or reversed interval, a log scale that reaches 0, a key the config does not
have) is a :class:`~lossexp.errors.ConfigError` naming the key, before anything runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

from lossexp.errors import ConfigError
from lossexp.overrides import unreadable_override

_SAFE_VALUE = re.compile(r"^[\w.+\-/:]*$")


@dataclass
class SearchSpace:
    """What Optuna samples (``distributions``) and what every trial gets as given (``fixed``)."""

    distributions: Dict[str, Any] = field(default_factory=dict)
    fixed: List[str] = field(default_factory=list)
    #: keys whose choices are lists (``loss=choice([a],[a,b])``, ``model.hidden_units=choice([8],[16,16])``):
    #: Optuna holds each as its text, which a trial gives Hydra as the list it reads, not as a quoted string
    lists: Set[str] = field(default_factory=set)

    def grid(self) -> Dict[str, List[Any]]:
        """The points of each distribution, for the grid sampler (discrete ones only)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        points = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                points[key] = list(dist.choices)
            elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None and not dist.log:
                count = int(round((dist.high - dist.low) / dist.step)) + 1
                points[key] = [_number(dist.low + i * dist.step, dist) for i in range(count)]
            else:
                raise ConfigError(f"Invalid value for hydra.sweeper.params.{key}: expected choice(…) or range(…) "
                                  f"for hydra.sweeper.sampler=grid, got an interval")
        return points

    def trial_overrides(self, params: Mapping[str, Any]) -> List[str]:
        """A trial's overrides: its sampled values, then the fixed ones."""
        return [self.override(key, value) for key, value in params.items()] + list(self.fixed)

    def override(self, key: str, value: Any) -> str:
        """``key=value`` for a value Optuna drew (or an end of the space)."""
        return f"{key}={value}" if key in self.lists else f"{key}={format_value(value)}"


def _number(value: float, dist: Any) -> Any:
    from optuna.distributions import IntDistribution

    return int(value) if isinstance(dist, IntDistribution) else round(value, 12)


def format_value(value: Any) -> str:
    """A sampled value as a Hydra override value (strings quoted where Hydra's grammar needs it)."""
    if isinstance(value, str) and not _SAFE_VALUE.match(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "null"
    return str(value)


def _bad(key: str, expected: str, got: str) -> ConfigError:
    return ConfigError(f"Invalid value for hydra.sweeper.params.{key}: expected {expected}, got {got!r}")


def _distribution(override: Any) -> Any:
    """Optuna's distribution for one sweep override (choice, range or interval)."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key, value, text = override.get_key_element(), override.value(), override.input_line.partition("=")[2]
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        if not choices or any(not isinstance(c, (str, int, float, bool, type(None))) for c in choices):
            raise _bad(key, "choice(…) of numbers, strings, booleans or null", text)
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise _bad(key, "range(start, stop[, step]) with at least one value below stop", text)
        step = value.step or 1
        if all(isinstance(v, int) for v in (value.start, value.stop, step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step)) if len(values) > 1 \
            else CategoricalDistribution([float(values[0])])
    if override.is_interval_sweep():
        low, high, log = value.start, value.end, "log" in value.tags
        unknown = sorted(set(value.tags) - {"log"})
        if unknown:
            raise _bad(key, "tag(log, interval(low, high)) (the only tag is log)", text)
        if not low < high:
            raise _bad(key, "interval(low, high) with low < high", text)
        if log and low <= 0:
            raise _bad(key, "tag(log, interval(low, high)) with 0 < low", text)
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise _bad(key, "interval(…), range(…) or choice(…)", text)


def sweep_arguments(params: Optional[Mapping[str, Any]], arguments: Sequence[str]) -> List[str]:
    """``hydra.sweeper.params`` as overrides, then the command line's (which win on the same key)."""
    return [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)


def parse(params: Optional[Mapping[str, Any]], arguments: Sequence[str]) -> SearchSpace:
    """The search space of ``hydra.sweeper.params`` and the command line's overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(sweep_arguments(params, arguments))
    except OverrideParseException as exc:
        raise unreadable_override(exc, "hydra.sweeper.params") from None
    space = SearchSpace()
    for override in parsed:
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed = [f for f in space.fixed if f.partition("=")[0] != key]
        space.lists.discard(key)
        if override.is_sweep_override():
            space.distributions[key] = _distribution(override)
            if override.is_choice_sweep() and all(isinstance(c, list) for c in override.sweep_iterator()):
                space.lists.add(key)
        else:
            space.fixed.append(override.input_line)
    return space


def bounds(space: SearchSpace) -> List[List[str]]:
    """Two sets of overrides: every distribution at its low end, then at its high end (checked up front)."""
    from optuna.distributions import CategoricalDistribution

    ends = []
    for pick in (0, -1):
        overrides = []
        for key, dist in space.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                values = list(dist.choices)
            else:
                values = [dist.low, dist.high]
            overrides.append(space.override(key, values[pick]))
        ends.append(overrides)
    return ends
