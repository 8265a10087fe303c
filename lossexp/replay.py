"""A config read back from a store is data: parsed without resolvers, checked, stripped of where it went.

``lossexp train --from-run RUN_ID`` and ``lossexp evaluate MODEL.keras`` read a ``config.yaml``
that someone else may have written (any user of a shared tracking server can log a run). Loaded
as OmegaConf usually loads YAML, a value like ``${oc.env:SECRET_TOKEN}`` would run a resolver in
the replaying user's process and record the secret on the server; a ``tracking.uri`` would send
the replaying user's run (params, metrics, model) wherever the file says. So such a file is
loaded here, and only here, as plain data:

* it is parsed as YAML without resolving anything, and a value (or key) holding ``${…}`` or
  OmegaConf's missing-value marker ``???`` is **refused** with one line naming the source and the
  key. lossexp logs configs resolved, so a run it recorded never holds one: such a value was put
  there by hand. Refusing (rather than taking it literally) makes the tampering visible, and no
  later step that composes the config (Hydra) can resolve it;
* only the sections of the current schema (:class:`lossexp.config.LossexpConfig`) are accepted;
  the replay's ``hydra`` and ``defaults`` are dropped (the replaying run uses lossexp's own);
* where a run goes — ``tracking.uri``, ``.experiment``, ``.run_name``, ``.parent_run_id``,
  ``.sweep_keys`` — is replaced by the current defaults, so the command line and environment of
  the person who runs the replay decide it.

The keys inside each section are checked afterwards by :func:`lossexp.config.validate`, with the
replaying user's overrides applied. Nothing here imports MLflow or TensorFlow.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, Tuple

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossexp import CONF_DIR
from lossexp.config import LossexpConfig
from lossexp.errors import ConfigError

#: the top-level sections a replayed config may hold
SECTIONS = tuple(sorted(field.name for field in dataclasses.fields(LossexpConfig)))
#: sections of a composed config that a replay never uses
DROPPED = ("defaults", "hydra")
#: ``tracking`` keys that say where a run goes: the replaying user's, never the replay's
DESTINATION_KEYS = ("uri", "experiment", "run_name", "parent_run_id", "sweep_keys")
#: what OmegaConf would interpret in a string value: an interpolation, the missing-value marker
INTERPOLATION = "${"
MISSING = "???"
#: a logged config is a few kB; a replay larger than this is not one
MAX_CHARACTERS = 1_000_000


def _leaves(node: Any, path: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every key and leaf value of a nested mapping / list; keys too, as values."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, key
            yield from _leaves(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{path}[{index}]")
    else:
        yield path, node


def _refuse_interpreted(config: Dict[str, Any], source: str) -> None:
    for key, value in _leaves(config):
        if isinstance(value, str) and (INTERPOLATION in value or value.strip() == MISSING):
            what = ("no ${…} interpolation is resolved" if INTERPOLATION in value
                    else "OmegaConf's missing-value marker ??? is not accepted")
            raise ConfigError(f"Invalid value for {key} in {source}: expected a plain value (a replayed config "
                              f"is data: {what}), got {value[:200]!r}")


def _bad_file(source: str, reason: str) -> ConfigError:
    return ConfigError(f"Invalid file {source}: expected lossexp's config YAML, got {reason}")


def _summary(exc: Exception) -> str:
    """One line for a YAML or OmegaConf error: what is wrong and where."""
    mark = getattr(exc, "problem_mark", None)
    if getattr(exc, "problem", None) and mark is not None:
        text = f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    else:
        text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text[:200]}"


def parse(text: str, source: str) -> Dict[str, Any]:
    """The YAML ``text`` as plain containers, nothing resolved; :class:`ConfigError` if it is not a mapping.

    YAML aliases are refused: lossexp never writes them, and nested aliases expand exponentially
    when the document is converted (a "billion laughs" file would exhaust memory).
    """
    if len(text) > MAX_CHARACTERS:
        raise _bad_file(source, f"{len(text):,} characters (a logged config has a few thousand)")
    try:
        aliased = any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # the document's top node, nothing constructed
    except yaml.YAMLError as exc:
        raise _bad_file(source, _summary(exc)) from None
    if aliased:
        raise _bad_file(source, "a YAML alias (*name), which lossexp never writes")
    if not isinstance(root, yaml.MappingNode):
        got = {yaml.ScalarNode: "a single value", yaml.SequenceNode: "a list"}.get(type(root), "nothing")
        raise ConfigError(f"Invalid file {source}: expected a mapping with the sections {', '.join(SECTIONS)}, "
                          f"got {got}")
    try:
        # OmegaConf's YAML loader (its float syntax, duplicate keys refused), converted before any access
        return OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    except (yaml.YAMLError, OmegaConfBaseException, ValueError, TypeError) as exc:
        raise _bad_file(source, _summary(exc)) from None


def _current_destinations() -> Dict[str, Any]:
    """The default ``tracking`` destination keys of lossexp's own config (null uri: env or local store)."""
    tracking = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml").tracking, resolve=True)
    return {key: tracking.get(key) for key in DESTINATION_KEYS}


def load_replayed_config(text: str, source: str) -> Dict[str, Any]:
    """The config ``text`` read from ``source`` (e.g. ``the config.yaml of run 'ab12…'``), as data.

    Refuses interpolations and unknown sections with a one-line :class:`ConfigError` naming
    ``source`` and the key; drops ``hydra`` / ``defaults``; resets the destination keys of
    ``tracking`` to the current defaults (see the module docstring).
    """
    config = parse(text, source)
    _refuse_interpreted(config, source)
    for name in DROPPED:
        config.pop(name, None)
    unknown = sorted(str(key) for key in config if key not in SECTIONS)
    if unknown:
        raise ConfigError(f"Unknown key {unknown[0]} in {source}: valid keys are {', '.join(SECTIONS)}")
    for section, value in config.items():
        if value is not None and not isinstance(value, (dict, list)):
            raise ConfigError(f"Invalid value for {section} in {source}: expected a mapping of its keys, "
                              f"got {str(value)[:200]!r}")
    if config.get("tracking") is None:  # absent or empty: lossexp's defaults
        config["tracking"] = {}
    tracking = config["tracking"]
    if isinstance(tracking, dict):  # anything else: validate() says what a tracking section is
        tracking.update(_current_destinations())
    return config
