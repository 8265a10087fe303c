"""Command-line sugar for the loss composition, applied before Hydra parses the overrides.

``loss=a+b`` → ``loss=[a,b]``; the sweep ``loss=a+b,c`` → ``loss=[a,b],[c]``; ``loss=none`` →
``loss=[]``. A whole mapping given to a component's weight replaces the configured weight
instead of being merged into it (Hydra merges mappings key by key, which would mix, say, a
linear schedule's ``steps`` into a sigmoid's options): ``loss.kl.weight={schedule: sigmoid}`` →
``++loss.kl.weight=null ++loss.kl.weight={schedule: sigmoid}`` (set to null, then to the mapping: also
where the key is not in the config yet — a part registered without a YAML, a notebook's, has no
``weight`` or ``learning_rate`` to delete, and ``~key`` failed with Hydra's "Could not delete from
config"); the same for a learning-rate schedule, ``optimizer.learning_rate={schedule: cosine_decay, …}``.
One output's entry of a per-output task option, ``task.loss_weights.reg=0.25`` (``task.loss``,
``task.metrics``, ``task.class_weight`` alike), is set or added (``++``): under the option's null default
Hydra called the output an unknown key, and a multi-task sweep (``-m task.loss_weights.reg=0.1,1``) failed.
Anything else passes through untouched.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, List, Mapping, Sequence

from lossexp.errors import ConfigError, invalid_value, unknown_name

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: keys whose value may be a whole mapping (a schedule) that replaces, not merges into, the configured one
_MAPPING_KEY = re.compile(r"^(loss\.[A-Za-z_][A-Za-z0-9_]*\.weight|optimizer\.learning_rate)$")
#: one output's (or class's) entry of a task option that is null until given per output: set or added
_PER_OUTPUT_KEY = re.compile(r"^task\.(loss_weights|loss|metrics|class_weight)\.[^.=]+$")
NONE = "none"
#: the grammar's own words for where an override stopped being readable (ANTLR's), in order of preference
_UNREADABLE = ((re.compile(r"^mismatched input '<EOF>' expecting"), lambda m: "it ends where a value is expected"),
               (re.compile(r"^(?:mismatched|extraneous) input '(.*)' expecting <EOF>"),
                lambda m: f"{m.group(1)!r} after the value's end"),
               (re.compile(r"^(?:mismatched|extraneous) input '(.*)' expecting"),
                lambda m: f"{m.group(1)!r} where a value is expected"),
               (re.compile(r"^no viable alternative at input '(.*)'"), lambda m: f"{m.group(1)!r} cannot be read"),
               (re.compile(r"^LexerNoViableAltException"), lambda m: "a quote is not closed, or a character needs quoting"))
#: Hydra's override grammar in one parenthesis, for a line about an override it cannot read
GRAMMAR = "(key=value; a sweep's values key=a,b; a list [a,b]; a mapping {k: v}; other characters quoted: key='a b')"


def unreadable_override(exc: Exception, what: str = "") -> ConfigError:
    """The line for an override Hydra's grammar cannot read (its ``OverrideParseException``): which
    override, where in it, in words rather than the parser's token names (``mismatched input '<EOF>'
    expecting {':', BRACKET_OPEN, …}`` for ``model=mlp,``), and the grammar. ``what``: the key the
    overrides were given under (``for hydra.sweeper.params``), when not the command line."""
    lines = [line for line in str(exc).splitlines()
             if line.strip() and not line.startswith(("Error parsing override", "See https://"))]
    first = lines[0] if lines else str(exc)
    said = next((words(found) for pattern, words in _UNREADABLE for found in [pattern.match(first)] if found), first)
    override = getattr(exc, "override", None)
    named = f" {override!r}" if override else ""
    return ConfigError(f"Invalid override{named}{f' in {what}' if what else ''}: {said} {GRAMMAR}")


def parse_composition(text: str, known: Iterable[str]) -> List[str]:
    """``"hist_avg+activity"`` → ``["hist_avg", "activity"]``, checking every name."""
    text = text.strip()
    if text == NONE:
        return []
    parts = [part.strip() for part in text.split("+")]
    if any(not part for part in parts):
        raise invalid_value("loss", "component names joined by '+', e.g. loss=hist_avg+activity", text)
    check_names(parts, text, known)
    return parts


def check_names(parts: Sequence[str], text: str, known: Iterable[str]) -> None:
    """Each of ``parts`` (of the composition ``text``) a known component, at most once, ``none`` alone."""
    known = set(known)
    for part in parts:
        if part == NONE and len(parts) > 1:
            raise invalid_value("loss", "'none' alone, not inside a composition", text)
        if part != NONE and (not _NAME.match(part) or part not in known):
            raise unknown_name("loss component", part, known)
    duplicates = sorted({part for part in parts if parts.count(part) > 1})
    if duplicates:
        raise invalid_value("loss", f"each component at most once ({duplicates[0]} repeats)", text)


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars (``np.float32(0.1)``, ``np.int64(3)``, ``np.bool_(True)``, a 0-d array)
    as the Python values they hold, inside mappings and lists too: a config holds Python's, and a
    notebook's sweep values often come from NumPy (``np.arange``, an array's elements). NumPy is not
    imported for it (the command line's parsing runs before any heavy import)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return value.item()
    return value


def override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar: ``{kind: hist_avg, layers: ['a']}`` (keys bare, strings quoted)."""
    value = plain(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {override_value(v)}" for key, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(override_value(v) for v in value) + "]"
    return json.dumps(value)


def rewrite_override(override: str, known: Sequence[str]) -> List[str]:
    """The override(s) Hydra gets for one user override (see the module docstring)."""
    key, sep, value = override.partition("=")
    if sep and _MAPPING_KEY.match(key.strip()) and value.strip().startswith("{"):
        return [f"++{key.strip()}=null", f"++{key.strip()}={value}"]
    if sep and _PER_OUTPUT_KEY.match(key.strip()):  # task.loss_weights.reg=0.25: "Unknown key" under the null default
        return [f"++{key.strip()}={value}"]
    if key.strip() != "loss" or not sep:
        return [override]
    if value.strip().startswith("["):  # Hydra's list syntax: its unknown names as the '+' form says them
        _check_listed_names(value, known)
        return [override]
    if not value.strip():
        raise invalid_value("loss", "component names joined by '+', or none", value)
    if _FUNCTION.match(value):  # Hydra's sweep function: its alternatives, each as the '+' form or a list
        alternatives = [names if isinstance(names, list) else parse_composition(names, known)
                        for names in _choices(override, value, known)]
    else:
        alternatives = [parse_composition(alt, known) for alt in value.split(",")]
    return ["loss=" + ",".join("[" + ",".join(names) + "]" for names in alternatives)]


#: ``choice(…)``, ``range(…)``, … : a value that is a call of one of Hydra's sweep functions
_FUNCTION = re.compile(r"^\s*[A-Za-z_]+\s*\(")


def _choices(override: str, value: str, known: Sequence[str]) -> List[Any]:
    """The alternatives of ``loss=choice(a+b,[c])`` (Hydra's sweep function, as an Optuna search space writes
    it): the '+' form split on ',' inside it and called ``choice([a`` an unknown component. Another function
    (``range``, ``glob``, ``shuffle`` …) has no meaning for a composition."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import OverrideParseException

    expected = "component names joined by '+', a sweep of them (loss=a+b,c), or choice(a+b,c)"
    try:
        [parsed] = OverridesParser.create().parse_overrides([override])
    except OverrideParseException as exc:
        raise unreadable_override(exc) from None
    sweep = parsed.value()
    if not isinstance(sweep, ChoiceSweep) or sweep.shuffle:
        raise invalid_value("loss", expected, value)
    alternatives = [plain(names) for names in sweep.list]
    for names in alternatives:
        if isinstance(names, list):
            check_names([str(name) for name in names], override_value(names), known)
        elif not isinstance(names, str):
            raise invalid_value("loss", expected, value)
    return alternatives


#: ``[hist_avg,activity]`` or a sweep of such lists, ``[hist_avg],[activity,coef]``
_LISTS = re.compile(r"^\s*\[[^\[\]]*\](\s*,\s*\[[^\[\]]*\])*\s*$")


def _check_listed_names(value: str, known: Sequence[str]) -> None:
    """Each name of ``loss=[a,b]`` (or a sweep of lists) is a component: Hydra said of a misspelled one
    "In 'config': Could not load 'loss/activty'", no choices. Anything else is left to Hydra."""
    if not _LISTS.match(value):
        return
    for listed in re.findall(r"\[([^\[\]]*)\]", value):
        names = [part.strip().strip("'\"") for part in listed.split(",") if part.strip()]
        check_names(names, f"[{listed}]", known)  # as the '+' form's (Hydra's defaults list kept one of a repeat)


def rewrite_loss(overrides: Sequence[str], known: Iterable[str]) -> List[str]:
    """Every override rewritten, in order (one user override may become two)."""
    known = list(known)
    return [token for override in overrides for token in rewrite_override(override, known)]
