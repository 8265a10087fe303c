"""Name → component class. One name runs through everything: registry key, module
``lossexp.losses.<name>``, YAML file ``conf/loss/<name>.yaml``, config key, layer and metric name.

Only registered names can be built: a config can never name an arbitrary Python object.
Listing the names (``available()``) reads ``conf/loss/`` and imports nothing.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping

from lossexp import CONF_DIR
from lossexp.errors import ConfigError, unknown_name

if TYPE_CHECKING:
    from lossexp.losses.base import LossComponent

_REGISTRY: Dict[str, type] = {}

#: Config keys that are not options but pick the class, so one class can serve several
#: entries (``loss.penalty_a.kind: coef``).
KIND_KEY = "kind"
#: ``model=gan`` only: which player an entry targets (see ``lossexp.training.gan_assemble``).
PLAYER_KEY = "player"
#: Names the runner uses for its own metrics; no component may take them.
RESERVED = {"task", "other"}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a component buildable under ``name`` and serialisable by Keras."""

    def decorate(cls: type) -> type:
        import keras

        _REGISTRY[name] = keras.saving.register_keras_serializable(package="lossexp", name=name)(cls)
        cls.registry_name = name
        return cls

    return decorate


def available() -> List[str]:
    """Component names, from the YAML files in ``conf/loss/`` (no import of TensorFlow)."""
    return sorted(path.stem for path in (CONF_DIR / "loss").glob("*.yaml"))


def component_class(kind: str) -> type:
    if kind not in available():
        raise unknown_name("loss component", kind, available())
    if kind not in _REGISTRY:
        importlib.import_module(f"lossexp.losses.{kind}")
    return _REGISTRY[kind]


def build_components(loss_cfg: Mapping[str, Any]) -> List["LossComponent"]:
    """Instantiate every entry of the ``loss:`` mapping, in order, validating its options."""
    components = []
    for key, options in loss_cfg.items():
        if key in RESERVED:
            raise ConfigError(f"Invalid loss component name {key!r}: {', '.join(sorted(RESERVED))} are reserved")
        options = dict(options or {})
        if PLAYER_KEY in options:
            raise ConfigError(f"Invalid key loss.{key}.{PLAYER_KEY}: only model=gan has players "
                              f"(got {options[PLAYER_KEY]!r})")
        kind = options.pop(KIND_KEY, key)
        cls = component_class(kind)
        valid = cls.option_names()
        for option in options:
            if option not in valid:
                raise ConfigError(f"Unknown key loss.{key}.{option}: valid keys are {', '.join(valid + [KIND_KEY])}")
        components.append(cls(name=key, **options))
    return components
