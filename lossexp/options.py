"""The options of a registered part, read from its signature and checked key by key.

Every swappable part (a model builder, a data source, an optimizer, a loss component) is a
function or class whose keyword parameters are its options: names, defaults and type hints in
one place. :func:`schema` reads them; :func:`check` validates what a config gives against them
and answers a mistake with one line naming the key, the bad value and what is allowed
(``Unknown key model.hidden_unitz: valid keys are activation, hidden_units``;
``Invalid value for model.hidden_units: expected list[int], got 'abc'``).

Type hints are honoured where they are plain: ``int``, ``float`` (an int is accepted), ``str``,
``bool``, ``list[X]`` / ``Sequence[X]`` / ``tuple``, ``dict`` / ``Mapping``, ``Optional[X]``,
``Literal[...]`` (the choices are listed in the message) and unions of those; anything else is
taken as given and left to the part to check. ``Annotated[hint, Check(...)]`` adds a constraint
that is checked with the type, before TensorFlow loads (:data:`PositiveInt`, :data:`PositiveInts`).
Nothing here imports TensorFlow.
"""
from __future__ import annotations

import collections.abc
import inspect
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from lossexp.errors import ConfigError, invalid_value

#: the default of an option that has none (a required option)
REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One keyword parameter of a part: its name, type hint (or ``Any``) and default."""

    name: str
    hint: Any = Any
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _hints(target: Callable) -> Dict[str, Any]:
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # an unresolvable forward reference: fall back to no hints
        return {}


def schema(target: Callable, skip: Iterable[str] = ()) -> Dict[str, Option]:
    """The options of ``target`` (a function, or a class by its constructor), in signature order.

    ``self``, ``*args``/``**kwargs`` and the names in ``skip`` (what the runner passes itself,
    such as a builder's ``data``) are not options. A parameter whose default is None takes None
    whatever its hint (``steps: int = None``, PEP 484's implicit Optional: the YAML's ``steps: null``,
    its own default, was "expected int, got None").
    """
    skipped = {"self", *skip}
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    hints = _hints(target)
    return {
        p.name: Option(p.name, _or_none(hints.get(p.name, Any)) if p.default is None else hints.get(p.name, Any),
                       p.default)
        for p in parameters
        if p.name not in skipped and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _or_none(hint: Any) -> Any:
    """``hint``, or ``Optional[hint]`` when it does not take None already."""
    try:
        _conform(None, hint)
        return hint
    except _Mismatch:
        return Optional[hint]


def describe(hint: Any) -> str:
    """``list[int]``, ``one of 'a', 'b'``, ``str or null`` — a hint as an error message says it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        checks = [m.expected for m in hint.__metadata__ if isinstance(m, Check)]
        return checks[0] if checks else describe(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Union:
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:  # Tuple[int, int]: so many, each its own
        return f"a list of {len(args)}: [{', '.join(describe(a) for a in args)}]"
    if origin in (list, tuple, collections.abc.Sequence):
        return f"list[{describe(args[0])}]" if args else "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if hint is Any:
        return "any value"
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


@dataclass(frozen=True)
class Check:
    """A constraint on an option, carried by its hint: ``Annotated[int, Check("an integer >= 1", lambda v: v >= 1)]``."""

    expected: str
    predicate: Callable[[Any], bool]


#: common constrained hints
PositiveInt = typing.Annotated[int, Check("an integer >= 1", lambda v: v >= 1)]
PositiveInts = typing.Annotated[List[int], Check("a non-empty list of integers >= 1",
                                                 lambda v: len(v) > 0 and all(x >= 1 for x in v))]
PositiveFloat = typing.Annotated[float, Check("a positive finite number", lambda v: math.isfinite(v) and v > 0)]
NonNegativeFloat = typing.Annotated[float, Check("a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)]


class _Mismatch(Exception):
    """A value that does not fit a hint (caught by :func:`conform`)."""


def _conform(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` wants it (``3`` for a float hint becomes ``3.0``); raise on a mismatch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, (str, typing.TypeVar)):
        return value
    if origin is typing.Annotated:
        value = _conform(value, args[0])
        if all(m.predicate(value) for m in hint.__metadata__ if isinstance(m, Check)):
            return value
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if origin is typing.Union:
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return _conform(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if value is None:
        raise _Mismatch
    if origin is tuple and args and args[-1] is not Ellipsis:  # its length is part of it ([1, 2, 3] passed for two)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != len(args):
            raise _Mismatch
        return [_conform(v, item) for v, item in zip(value, args)]
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _Mismatch
        item = args[0] if args and args[-1] is not Ellipsis else (args[0] if args else Any)
        return [_conform(v, item) for v in value]
    if origin in (dict, collections.abc.Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    return value  # a hint this module does not interpret: the part checks it


def conform(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against ``hint``; :class:`ConfigError` naming ``key`` if it does not fit."""
    try:
        return _conform(value, hint)
    except _Mismatch:
        raise invalid_value(key, describe(hint), value) from None


def check(section: str, options: Mapping[str, Option], given: Mapping[str, Any],
          ignore: Iterable[str] = ()) -> Dict[str, Any]:
    """The options ``given`` for a part (at config key ``section``), each checked against its hint.

    Unknown keys and missing required options are errors; keys in ``ignore`` (e.g. a group's
    ``name``) are passed over. Defaults are not filled in: the part's own signature does that.
    """
    ignored = set(ignore)
    checked = {}
    for key, value in given.items():
        if key in ignored:
            continue
        if key not in options:
            valid = ", ".join(sorted(options)) or "(none)"
            raise ConfigError(f"Unknown key {section}.{key}: valid keys are {valid}")
        checked[key] = conform(f"{section}.{key}", value, options[key].hint)
    missing = [name for name, option in options.items() if option.required and name not in given]
    if missing:
        raise ConfigError(f"Missing value for {section}.{missing[0]}: {section} requires "
                          f"{', '.join(missing)} (set it in the config or on the command line)")
    return checked


def finite(key: str, value: Any, minimum: Optional[float] = None, exclusive: bool = False) -> float:
    """``value`` as a finite float ≥ ``minimum`` (> with ``exclusive``), else a one-line error."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive else value >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"
        raise invalid_value(key, f"a finite number{bound}", value)
    return float(value)
