"""The ``loss:`` section: one entry per component instance, ``loss.<key>: {option: value, …}``.

An entry's key names the instance (metric names ``term/<key>``, ``loss/<key>``); its ``kind``
(default: the key) names the registered component class, so one class can serve two entries
(``loss.second: {kind: coef, …}``). A trainer may accept keys of its own in an entry (the GAN's
``player``). :func:`check_entry` validates an entry before TensorFlow loads, from the component's
YAML (``conf/loss/<kind>.yaml`` of lossexp or the project, which lists every option); components
without a YAML (installed packages) are checked by their constructor when built.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from omegaconf import DictConfig, OmegaConf

from lossexp import CONF_DIR, registry
from lossexp.errors import ConfigError, invalid_value
from lossexp.losses.weight_spec import parse_weight
from lossexp.options import conform, schema

#: the entry key that picks the component class when it differs from the entry's name
KIND_KEY = "kind"


def kind_of(key: str, options: Optional[Mapping[str, Any]]) -> str:
    return str((options or {}).get(KIND_KEY, key))


def _yaml(kind: str) -> Optional[Path]:
    from lossexp import project

    found = project.current()
    for conf_dir in (CONF_DIR, found.conf_dir if found is not None else None):
        if conf_dir is not None and (conf_dir / "loss" / f"{kind}.yaml").is_file():
            return conf_dir / "loss" / f"{kind}.yaml"
    return None


@functools.lru_cache(maxsize=None)
def _yaml_options(path: Path, kind: str) -> Tuple[str, ...]:
    return tuple(sorted(OmegaConf.load(path).get(kind) or {}))


def yaml_options(kind: str) -> Optional[Tuple[str, ...]]:
    """The options ``conf/loss/<kind>.yaml`` lists (no import); None without such a file."""
    path = _yaml(kind)
    return _yaml_options(path, kind) if path is not None else None


def yaml_lacks(kind: str, option: str) -> str:
    """``; it is an option of Mine (__init__ at mine.py:9) that conf/loss/mine.yaml does not list: …`` when
    ``option`` is a constructor parameter of the component ``kind`` that its YAML — the list of the options
    a config may set — leaves out; empty otherwise (a misspelling). Imports the component's module, but
    for lossexp's own components, whose YAMLs list every option (tests/losses/test_entries.py): a
    misspelled key of theirs is found before TensorFlow loads."""
    if kind in registry.shipped("loss"):
        return ""
    try:
        cls = registry.get("loss", kind).resolve()
        options = cls.option_names()
    except Exception:  # noqa: BLE001 — an unknown or broken component is reported where it is built
        return ""
    if option not in options:
        return ""
    return (f"; it is an option of {cls.__name__}{_defined_at(cls)} that {_yaml_named(kind)} does not list: "
            f"add it there (the YAML lists the options a config may set)")


def check_entry(key: str, options: Any, extra_keys: Iterable[str] = ()) -> None:
    """``loss.<key>`` names a known component, only its options (and ``extra_keys``), and a valid weight."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise invalid_value(f"loss.{key}", "a mapping of option to value", options)
    kind = kind_of(key, options)
    if kind not in registry.available("loss"):
        where = f" in loss.{key}.{KIND_KEY}" if KIND_KEY in options else ""
        reserved = (f" ({KIND_KEY} chooses an entry's component class, so no component can have an option "
                    f"named {KIND_KEY}: rename it in {key}'s class and YAML)"
                    if where and key in registry.available("loss") else "")
        raise ConfigError(f"Unknown loss component {kind!r}{where}: valid choices are "
                          f"{', '.join(registry.available('loss'))}{reserved}")
    if key in registry.RESERVED["loss"]:
        raise ConfigError(f"Invalid loss component name {key!r}: {', '.join(registry.RESERVED['loss'])} are reserved")
    valid = yaml_options(kind)
    if valid is not None:
        allowed = sorted(set(valid) | {KIND_KEY, *extra_keys})
        for option in options:
            if option not in allowed:
                raise ConfigError(f"Unknown key loss.{key}.{option}{set_in_yaml(key, option)}: valid keys are "
                                  f"{', '.join(allowed)}{yaml_lacks(kind, option)}")
    if "weight" in options:
        try:
            parse_weight(f"loss.{key}.weight", options["weight"])
        except ConfigError as error:  # a weight the entry's YAML set: name its file and line
            where = set_in_yaml(key, "weight", options["weight"])
            if not where or not str(error).startswith(f"Invalid value for loss.{key}.weight"):
                raise
            named, _, rest = str(error).partition(": ")
            raise ConfigError(f"{named}{where}: {rest}") from None


def build_components(loss_cfg: Mapping[str, Any], extra_keys: Iterable[str] = ()) -> List[Any]:
    """Instantiate every entry of a ``loss:`` mapping, in order, validating its options.

    ``extra_keys`` of an entry are the trainer's and are not passed to the component.
    """
    from lossexp.losses.base import require_initialised
    from lossexp.project import where_it_broke

    extra = set(extra_keys)
    components = []
    for key, options in loss_cfg.items():
        check_entry(key, options, extra)
        options = {k: v for k, v in dict(options or {}).items() if k not in extra}
        kind = str(options.pop(KIND_KEY, key))
        entry = registry.get("loss", kind)
        cls = entry.resolve()
        valid = cls.option_names()
        for option in options:
            if option not in valid:  # the YAML's own key, perhaps (its file and line, which the user never typed)
                raise ConfigError(f"Unknown key loss.{key}.{option}{set_in_yaml(key, option)}: valid keys are "
                                  f"{', '.join(valid + [KIND_KEY])}")
        missing = [name for name, option in schema(cls, skip=("name",)).items()
                   if option.required and (name not in options or options[name] == "???")]  # ???: a YAML-less node's
        if missing:  # Python's TypeError would name lossexp's line that called the constructor
            where = (f"list it in {_yaml_named(kind)}, which holds the options a config may set, with a value"
                     if _yaml(kind) is not None and missing[0] not in options else f"set loss.{key}.{missing[0]}=…")
            raise ConfigError(f"Missing value for loss.{key}.{missing[0]}: {cls.__name__}{_defined_at(cls)} has no "
                              f"default for {', '.join(missing)} ({where})")
        hints = schema(cls, skip=("name", "weight"))  # a weight is a number, a schedule or trainable: parse_weight's
        try:
            conformed = {option: conform(f"loss.{key}.{option}", value, hints[option].hint) if option in hints
                         else value for option, value in options.items()}
            component = cls(name=key, **conformed)
        except ConfigError as error:  # a value the entry's YAML set (its type, or its constructor's check): where
            prefix = f"Invalid value for loss.{key}."
            bad = str(error)[len(prefix):].partition(":")[0] if str(error).startswith(prefix) else None
            where = set_in_yaml(key, bad, options[bad]) if bad in options else ""
            if where:
                raise ConfigError(str(error).replace(f"{prefix}{bad}:", f"{prefix}{bad}{where}:", 1)) from None
            raise
        except Exception as exc:  # a component's own constructor failing (the user's code)
            raise ConfigError(f"Invalid loss component {key!r} ({kind}): its constructor failed at "
                              f"{where_it_broke(exc)}: {type(exc).__name__}: {exc}") from None
        require_initialised(component)
        components.append(component)
    return components


_UNSET = object()


def set_in_yaml(key: str, option: str, value: Any = _UNSET) -> str:
    """`` (set in conf/loss/<key>.yaml:4)`` when the YAML of the entry ``key`` (the project's or lossexp's)
    sets ``option`` — to ``value``, when given: the file and line to fix, where the key alone named neither
    (a mistake in one's own YAML read as if typed on the command line); empty otherwise."""
    import yaml

    path = _yaml(key)
    try:
        node = yaml.compose(path.read_text()) if path is not None else None
        entry = next((v for k, v in node.value if k.value == key), None) if node is not None else None
        line = next((k.start_mark.line + 1 for k, _ in entry.value if k.value == option), None) if entry else None
        same = value is _UNSET or _typed(_plain(OmegaConf.to_container(OmegaConf.load(path)[key]).get(option))) == \
            _typed(_plain(value))
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        return ""
    return f" (set in {_shown(path)}:{line})" if line is not None and same else ""


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _defined_at(cls: type) -> str:
    """`` (__init__ at file.py:12)``: where a component class's constructor is (empty without source)."""
    import inspect

    try:
        return f" (__init__ at {inspect.getsourcefile(cls.__init__)}:{inspect.getsourcelines(cls.__init__)[1]})"
    except (TypeError, OSError):
        return ""


def check_selected(names: Sequence[str], loss: Any) -> None:
    """Every component ``loss=`` selects has its entry, a mapping, in the composed ``loss`` section: a
    project's ``conf/loss/<name>.yaml`` that is empty, a comment, or holds another name, left the
    component out of the run without a word (``loss=mine`` trained the task alone, exit 0), and one
    holding ``mine:`` alone (null) trained its defaults and recorded ``loss.mine: None``. ``loss``: the
    composed section (a ``DictConfig``, a mapping, or None)."""
    loss = OmegaConf.to_container(loss) if isinstance(loss, DictConfig) else (loss or {})
    for name in names:
        if name in loss and isinstance(loss[name], Mapping):
            continue
        held = f"holds only '{name}:', no options" if name in loss else f"holds no entry '{name}'{_entries_of(name)}"
        raise ConfigError(f"Invalid config file {_yaml_named(name)}: it {held} (write "
                          f"'{name}: {{weight: …, …}}' with its options, or delete the file: its class's defaults "
                          f"then; lossexp components {name} lists them)")


def _entries_of(kind: str) -> str:
    """`` but 'pne'``: the entries the component's YAML holds instead (its top keys), when it can be read."""
    path = _yaml(kind)
    try:
        held = OmegaConf.load(path) if path is not None else None
    except Exception:  # noqa: BLE001 — unreadable YAML: Hydra's composition said so first
        return ""
    return f" but {', '.join(map(repr, held))}" if isinstance(held, DictConfig) and len(held) else ""


def _yaml_named(kind: str) -> str:
    """The component's YAML file, relative to the working directory when inside it, or where it would be."""
    path = _yaml(kind)
    return f"conf/loss/{kind}.yaml" if path is None else _shown(path)


def _typed(value: Any) -> Any:
    """``value`` with the type of every leaf, so that equal means the same YAML value: the command line's
    ``true`` is not the YAML's ``1.0`` (``True == 1.0`` in Python)."""
    if isinstance(value, dict):
        return {key: _typed(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value), value)


def _plain(value: Any) -> Any:
    """Keras' tracked lists and dicts (and tuples) as plain lists and dicts, for a config."""
    if isinstance(value, Mapping):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def entries_of(components: Iterable[Any]) -> Dict[str, Dict[str, Any]]:
    """A ``loss:`` mapping that rebuilds ``components`` (their options, from ``get_config``)."""
    section = {}
    for component in components:
        config = component.get_config()
        options = {name: _plain(config[name]) for name in component.option_names()}
        kind = type(component).registry_name
        if kind != component.name:
            options[KIND_KEY] = kind
        section[component.name] = options
    return section
