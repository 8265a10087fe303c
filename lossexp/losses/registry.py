"""Name → component class. One name runs through everything: registry key, module
``lossexp.losses.<name>``, YAML file ``conf/loss/<name>.yaml``, config key, layer and metric name.

Only registered names can be built: a config can never name an arbitrary Python object (a
``_target_: os.system`` in a loss entry is an unknown option, not an import path).
Listing the names (``available()``) reads ``conf/loss/`` and the installed packages' metadata and
imports nothing.

Third-party components: a distribution declares an entry point in the group
:data:`ENTRY_POINT_GROUP` (``name = "package.module:Class"``, the class a subclass of
:class:`~lossexp.losses.base.LossComponent`). The name is then a component like the built-in ones
(``loss=hist_avg+name``, options ``loss.name.KEY=VALUE``; defaults are the constructor's); the
module is imported only when a config uses the name. A built-in name cannot be taken over.
"""
from __future__ import annotations

import importlib
import re
from importlib.metadata import EntryPoint, entry_points
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


#: Entry-point group through which installed distributions add components.
ENTRY_POINT_GROUP = "lossexp.components"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def builtin() -> List[str]:
    """Component names shipped with lossexp, from the YAML files in ``conf/loss/``."""
    return sorted(path.stem for path in (CONF_DIR / "loss").glob("*.yaml"))


def plugins() -> Dict[str, EntryPoint]:
    """Components installed by other distributions, by name (read from metadata, nothing imported)."""
    taken = set(builtin()) | RESERVED
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)
            if ep.name not in taken and _NAME.match(ep.name)}


def available() -> List[str]:
    """Every component name: built-in and installed (no import of TensorFlow)."""
    return sorted(set(builtin()) | set(plugins()))


def register_plugin_configs() -> None:
    """Make ``loss=<plugin>`` composable: an options mapping in Hydra's ConfigStore per plugin
    (empty and open, so ``loss.<plugin>.KEY=VALUE`` sets a constructor argument)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    for name in plugins():
        node = OmegaConf.create({name: {}})
        OmegaConf.set_struct(node[name], False)
        ConfigStore.instance().store(group="loss", name=name, node=node)


def _load_plugin(kind: str, entry_point: EntryPoint) -> None:
    from lossexp.losses.base import LossComponent

    try:
        cls = entry_point.load()
    except Exception as exc:  # a broken third-party package: say which, in one line
        raise ConfigError(f"Invalid loss component {kind!r}: entry point {entry_point.value!r} "
                          f"({ENTRY_POINT_GROUP}) failed to load: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, LossComponent)):
        raise ConfigError(f"Invalid loss component {kind!r}: entry point {entry_point.value!r} "
                          f"({ENTRY_POINT_GROUP}) is not a subclass of lossexp.losses.base.LossComponent")
    if _REGISTRY.get(kind) is not cls:
        register(kind)(cls)


def component_class(kind: str) -> type:
    if kind not in _REGISTRY:
        if kind in builtin():
            importlib.import_module(f"lossexp.losses.{kind}")
        elif kind in plugins():
            _load_plugin(kind, plugins()[kind])
        else:
            raise unknown_name("loss component", kind, available())
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
