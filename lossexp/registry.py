"""One registry for every swappable part: models, data sources, optimizers, loss components,
weighting methods and training regimes.

A part is a function or class registered under a name; its keyword parameters are its options
(:mod:`lossexp.options`), and a YAML file ``conf/<group>/<name>.yaml`` holds their defaults so
that Hydra can select it (``model=mlp``). Parts come from three places, found the same way:

* **lossexp** itself: module ``lossexp.<package>.<name>`` (or the kind's package module),
  imported when a config first names it;
* **installed packages**: an entry point ``name = "module:object"`` in the kind's group
  (:attr:`Kind.entry_points`), loaded only when a config names it;
* **the user's project** (:mod:`lossexp.project`): the modules its ``pyproject.toml`` lists under
  ``[tool.lossexp] modules``, whose decorators register their parts.

A config only ever *selects* among registered names: no string in it is imported or called, so a
config that arrives from elsewhere (``--from-run``, a search space) cannot introduce code. A name
lossexp ships cannot be taken by a package or a project. Listing the names (:func:`available`)
reads YAML files and package metadata and imports nothing.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from lossexp import CONF_DIR
from lossexp.errors import ConfigError, unknown_name
from lossexp.options import Option, schema


@dataclass(frozen=True)
class Kind:
    """What one kind of part is called, where its configs and modules live."""

    key: str
    #: how messages name it ("Unknown loss component 'foo'")
    label: str
    #: its config group (``conf/<group>/``); None for parts no config selects (trainers)
    group: Optional[str]
    #: the lossexp package (or module) holding the shipped parts
    package: str
    #: the entry-point group through which installed packages add parts
    entry_points: Optional[str]
    #: parameters the runner passes itself, which are not options
    passed: Tuple[str, ...] = ()
    #: the names lossexp ships, for a kind that no config group lists
    builtin: Tuple[str, ...] = ()


KINDS: Dict[str, Kind] = {kind.key: kind for kind in (
    Kind("model", "model", "model", "lossexp.models", "lossexp.models", passed=("data",)),
    Kind("data", "data", "data", "lossexp.data", "lossexp.data"),
    Kind("optimizer", "optimizer", "optimizer", "lossexp.optimizers", "lossexp.optimizers"),
    Kind("loss", "loss component", "loss", "lossexp.losses", "lossexp.components", passed=("name", "kwargs")),
    Kind("trainer", "trainer", None, "lossexp.training", "lossexp.trainers", builtin=("adversarial", "objective", "supervised")),
    Kind("weighting", "weighting method", "weighting", "lossexp.balancing", "lossexp.weightings"),
)}
#: kinds whose parts are Keras classes, serialisable under ``lossexp>name`` (a saved model holds them)
KERAS_KINDS = ("loss",)


@dataclass
class Entry:
    """A registered part: its name, the object that builds it, where it came from, what it declares."""

    kind: str
    name: str
    target: Any
    #: ``lossexp``, ``package <distribution>`` or ``project <directory>``
    origin: str
    #: what the part declares besides its options (a model's ``trainer`` and ``task``, …)
    meta: Dict[str, Any] = field(default_factory=dict)

    def options(self) -> Dict[str, Option]:
        """The part's options, from its signature (constructor for a class)."""
        return schema(self.resolve(), skip=KINDS[self.kind].passed)

    def resolve(self) -> Any:
        """The registered object (a lazily named one, ``"keras.optimizers.Adam"``, imported now)."""
        if isinstance(self.target, str):
            module, _, attribute = self.target.rpartition(".")
            self.target = getattr(importlib.import_module(module), attribute)
        return self.target

    @property
    def description(self) -> str:
        """The first paragraph of the part's docstring, on one line."""
        doc = self.meta.get("description") or ("" if isinstance(self.target, str) else inspect.getdoc(self.target))
        return " ".join((doc or "").split("\n\n")[0].split())


_ENTRIES: Dict[str, Dict[str, Entry]] = {key: {} for key in KINDS}


def _origin(target: Any) -> str:
    module = getattr(target, "__module__", "") or ""
    if module == "lossexp" or module.startswith("lossexp."):
        return "lossexp"
    from lossexp import project

    current = project.current()
    if current is not None and current.owns(module):
        return f"project {current.root}"
    return f"package {module.split('.')[0]}"


def _defined(obj: Any) -> str:
    """Where ``obj`` is defined, as Python names it (``myterms.CenterLoss``)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', repr(obj)))}"


#: a part's name: what ``model=NAME``, ``loss=a+b`` and ``loss.NAME.weight`` can select
PART_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(kind: str, name: str, target: Any = None, **meta: Any) -> Callable[[Any], Any]:
    """Register ``target`` (or, as a decorator, the decorated object) as the ``kind`` part ``name``.

    Raises :class:`ConfigError` for a name no command line can select (not a Python identifier:
    ``center-loss`` registered, was listed among the valid choices, and ``loss=center-loss`` was
    "unknown"), when a package or project takes a name lossexp ships, or a second object takes a name
    already registered — not the same definition again (a notebook's cell run again, a module
    reloaded: the same module and name), which replaces the first.
    """
    def decorate(obj: Any) -> Any:
        origin = _origin(obj) if not isinstance(obj, str) else "lossexp"
        if not isinstance(name, str) or not PART_NAME.match(name):
            raise ConfigError(f"Invalid {KINDS[kind].label} name {name!r} ({_defined(obj)}): expected a Python "
                              f"identifier (letters, digits and _; e.g. {name_suggestion(name)!r}), which "
                              f"{KINDS[kind].group or kind}=NAME and its options' keys can select")
        if origin != "lossexp" and name in shipped(kind):
            raise ConfigError(f"Invalid {KINDS[kind].label} name {name!r} ({origin}): lossexp ships a "
                              f"{KINDS[kind].label} of that name; choose another")
        existing = _ENTRIES[kind].get(name)
        if existing is not None and existing.target is not obj and existing.resolve() is not obj \
                and (_defined(existing.resolve()), existing.origin) != (_defined(obj), origin):  # not a cell run again
            raise ConfigError(f"Invalid {KINDS[kind].label} name {name!r}: registered twice "
                              f"({_defined(existing.resolve())} of {existing.origin}, and {_defined(obj)} of {origin})")
        if kind == "loss" and isinstance(obj, type) and "kind" in getattr(obj, "option_names", list)():
            raise ConfigError(f"Invalid loss component {name!r} ({origin}): its option 'kind' is reserved "
                              f"(loss.<entry>.kind chooses an entry's component class); rename it")
        _ENTRIES[kind][name] = Entry(kind, name, obj, origin, dict(meta))
        if kind in KERAS_KINDS and isinstance(obj, type):
            _make_serialisable(name, obj)
        elif kind == "weighting" and isinstance(obj, type):
            obj.registry_name = name  # its metrics are weight/<name>/<task>
        return obj

    return decorate(target) if target is not None else decorate


def name_suggestion(name: Any) -> str:
    """``name`` made a part's name: each run of other characters an ``_`` (``center-loss`` → ``center_loss``)."""
    made = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "my_part"
    return made if not made[0].isdigit() else f"_{made}"


def register_model(name: str, **meta: Any) -> Callable[[Any], Any]:
    """Decorator: ``@register_model("my_net")`` on ``def build(data, **options) -> keras.Model``.

    ``meta``: ``trainer`` (the regime that trains it, default ``supervised``), ``task`` (the task it
    turns any data into, e.g. ``reconstruction``), ``description``.
    """
    return register("model", name, **meta)


def register_data(name: str, **meta: Any) -> Callable[[Any], Any]:
    """Decorator: ``@register_data("my_data")`` on ``def load(**options)`` returning ``(x, y)`` or
    ``(x, y, sample_weight)`` arrays, a ``tf.data.Dataset`` of such elements or a
    :class:`lossexp.data.Dataset` (``x``: one array, or a dict or list of arrays for several inputs).

    ``meta``: ``task`` (classification, regression, …; inferred from the targets when absent).
    """
    return register("data", name, **meta)


def register_optimizer(name: str, **meta: Any) -> Callable[[Any], Any]:
    """Decorator: ``@register_optimizer("my_opt")`` on a ``keras.optimizers.Optimizer`` class or factory."""
    return register("optimizer", name, **meta)


def register_component(name: str, **meta: Any) -> Callable[[type], type]:
    """Class decorator: ``@register_component("my_term")`` on a :class:`lossexp.LossComponent` subclass."""
    return register("loss", name, **meta)


def register_trainer(name: str, **meta: Any) -> Callable[[type], type]:
    """Class decorator for a training regime (:class:`lossexp.training.trainer.Trainer`)."""
    return register("trainer", name, **meta)


def register_weighting(name: str, **meta: Any) -> Callable[[type], type]:
    """Class decorator: ``@register_weighting("my_method")`` on a
    :class:`lossexp.balancing.base.WeightingMethod` subclass (``weighting=my_method``)."""
    return register("weighting", name, **meta)


def _make_serialisable(name: str, cls: type) -> None:
    """A component class reloads from a saved model under ``lossexp>name``."""
    import keras

    keras.saving.register_keras_serializable(package="lossexp", name=name)(cls)
    cls.registry_name = name


# --- what exists, without importing ---------------------------------------------------------
def shipped(kind: str) -> List[str]:
    """Names lossexp ships: the YAML files of the kind's group in lossexp's ``conf/``."""
    group = KINDS[kind].group
    if group is None:
        return sorted(KINDS[kind].builtin)
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def installed(kind: str) -> Dict[str, EntryPoint]:
    """Parts installed by other distributions, by name (metadata only; shipped names excluded)."""
    group = KINDS[kind].entry_points
    if group is None:
        return {}
    taken = set(shipped(kind)) | set(RESERVED.get(kind, ()))
    return {ep.name: ep for ep in _entry_points(group) if ep.name not in taken and ep.name.isidentifier()}


@functools.lru_cache(maxsize=None)
def _entry_points(group: str) -> Tuple[EntryPoint, ...]:
    """The group's entry points, read once per process: each read scans every installed distribution's
    metadata (about 70 ms here, and ``lossexp train`` asks a dozen times before it trains)."""
    return tuple(entry_points(group=group))


def project_names(kind: str) -> List[str]:
    """Names the user's project offers: YAML files of the group in its ``conf/``, and what its
    modules registered (if they are imported already)."""
    from lossexp import project

    current = project.current()
    group = KINDS[kind].group
    names = set(current.config_names(group)) if current is not None and group else set()
    names |= {name for name, entry in _ENTRIES[kind].items() if entry.origin.startswith("project ")}
    return sorted(names)


def available(kind: str) -> List[str]:
    """Every name of ``kind``: shipped, installed and the project's (no import of TensorFlow)."""
    return sorted(set(shipped(kind)) | set(installed(kind)) | set(project_names(kind)) | set(_ENTRIES[kind]))


#: names the runner uses for its own metrics (``loss/task``, ``loss/other``): no component may take them;
#: ``coef`` is ``weight/coef/<c>``'s section, which a method's ``weight/<method>/<task>`` must not join
RESERVED = {"loss": ("task", "other"), "weighting": ("coef",)}


def register_config_nodes() -> None:
    """Make parts without a YAML selectable (``model=<name>``, ``loss=<name>``): one Hydra
    ConfigStore node per installed, project-registered or otherwise registered part (a notebook's
    ``@lossexp.register_component``), open so that its options can be set on the command line
    (checked against its signature like any other). A registered part's node holds its signature's
    defaults, as a YAML would (:func:`signature_defaults`): a run's params and ``config.yaml`` say what
    it trained with (they held ``loss.noyaml: {}``, the weight nowhere) and ``--from-run`` replays it
    whatever the defaults become. An installed package's part, not imported until named, holds none."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from lossexp import project

    current = project.current()
    for kind, spec in KINDS.items():
        if spec.group is None:
            continue
        with_yaml = set(shipped(kind)) | set(current.config_names(spec.group) if current is not None else ())
        for name in sorted((set(installed(kind)) | set(project_names(kind)) | set(_ENTRIES[kind])) - with_yaml):
            defaults = signature_defaults(_ENTRIES[kind][name]) if name in _ENTRIES[kind] else {}
            node = OmegaConf.create({name: defaults} if kind == "loss" else {"name": name, **defaults})
            OmegaConf.set_struct(node, False)
            ConfigStore.instance().store(group=spec.group, name=name, node=node)


def signature_defaults(entry: Entry) -> Dict[str, Any]:
    """The part's options with their defaults, as its YAML would hold them: ``???`` for a required one
    (composing fails until it is set, as for a shipped part's), tuples as lists; an option whose
    default no config can hold (a function, an object) is left out, the part's own default then."""
    def held(value: Any) -> bool:
        if value is None or isinstance(value, (bool, int, float, str)):
            return True
        if isinstance(value, (list, tuple)):
            return all(held(item) for item in value)
        return isinstance(value, dict) and all(isinstance(k, str) and held(v) for k, v in value.items())

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return {k: plain(v) for k, v in value.items()} if isinstance(value, dict) else value

    return {name: "???" if option.required else plain(option.default)
            for name, option in entry.options().items() if option.required or held(option.default)}


# --- resolving a name to its part -----------------------------------------------------------
def _import_shipped(kind: str, name: str) -> None:
    package = KINDS[kind].package
    module = f"{package}.{name}"
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the package is a module (lossexp.optimizers)
        found = False
    importlib.import_module(module if found else package)


def _load_installed(kind: str, name: str, entry_point: EntryPoint) -> None:
    label = KINDS[kind].label
    try:
        target = entry_point.load()
    except Exception as exc:  # a broken third-party package: say which, in one line
        raise ConfigError(f"Invalid {label} {name!r}: entry point {entry_point.value!r} "
                          f"({entry_point.group}) failed to load: {type(exc).__name__}: {exc}") from None
    check_target(kind, name, target, f"entry point {entry_point.value!r} ({entry_point.group})")
    if name not in _ENTRIES[kind] or _ENTRIES[kind][name].target is not target:
        dist = entry_point.dist.name if entry_point.dist is not None else entry_point.value.split(":")[0]
        _ENTRIES[kind][name] = Entry(kind, name, target, f"package {dist}")
        if kind in KERAS_KINDS:
            _make_serialisable(name, target)
        elif kind == "weighting":
            target.registry_name = name


def check_target(kind: str, name: str, target: Any, where: str) -> None:
    """A part is of the right sort: a LossComponent subclass for components, else a callable."""
    label = KINDS[kind].label
    if kind == "loss":
        from lossexp.losses.base import LossComponent

        if not (isinstance(target, type) and issubclass(target, LossComponent)):
            raise ConfigError(f"Invalid {label} {name!r}: {where} is not a subclass of lossexp.LossComponent")
    elif kind == "weighting":
        from lossexp.balancing.base import WeightingMethod

        if not (isinstance(target, type) and issubclass(target, WeightingMethod)):
            raise ConfigError(f"Invalid {label} {name!r}: {where} is not a subclass of lossexp.WeightingMethod")
    elif not callable(target):
        raise ConfigError(f"Invalid {label} {name!r}: {where} is not a function or class")


def get(kind: str, name: str) -> Entry:
    """The part registered as ``name``, importing its module first if needed.

    Raises :class:`ConfigError` for a name nothing registers, listing the valid ones.
    """
    if name in RESERVED.get(kind, ()):
        raise ConfigError(f"Invalid {KINDS[kind].label} name {name!r}: "
                          f"{', '.join(RESERVED[kind])} are reserved")
    if name not in _ENTRIES[kind]:
        if name in shipped(kind):
            _import_shipped(kind, name)
        elif name in installed(kind):
            _load_installed(kind, name, installed(kind)[name])
        else:
            from lossexp import project

            project.load()
    if name not in _ENTRIES[kind]:
        raise _not_registered(kind, name)
    return _ENTRIES[kind][name]


def build(kind: str, selection: Any, **passed: Any) -> Any:
    """Call the part a validated selection (``name`` + ``options``) names, with what the runner
    passes (a model's ``data``). The part's own failure — the user's code raising — is one line
    naming the part and where it broke."""
    from lossexp.project import one_line, where_it_broke

    entry = get(kind, selection.name)
    try:
        return entry.resolve()(**passed, **selection.options)
    except ConfigError:
        raise
    except Exception as exc:
        verb = "loading" if kind == "data" else "building"
        # one line: a layer's call that fails as the builder calls it is Keras' message of several lines,
        # colour codes and the arguments' reprs
        failure = f"{where_it_broke(exc)}: {type(exc).__name__}: {one_line(str(exc))}"
        key = _missing_path_option(exc, selection.options) if kind in SELECTED_ONCE else None
        if key is not None:
            raise ConfigError(f"Invalid value for {KINDS[kind].group}.{key}: expected an existing file or directory, "
                              f"got {selection.options[key]!r} ({verb} {kind} {selection.name!r} failed at "
                              f"{failure})") from None
        raise ConfigError(f"Invalid {KINDS[kind].label} {selection.name!r}: {verb} it failed at {failure}") from None


#: kinds of which a config selects one part, whose options are ``<group>.<option>``
SELECTED_ONCE = ("model", "data", "optimizer", "weighting")


def _missing_path_option(exc: Exception, options: Dict[str, Any]) -> Optional[str]:
    """The option whose value is the path a part failed to find (a ``FileNotFoundError`` for it, as
    ``open``/``np.load`` raise), so that the message names the key the user set; None otherwise."""
    missing = getattr(exc, "filename", None) if isinstance(exc, FileNotFoundError) else None
    if not missing:
        return None
    missing = str(missing)
    return next((key for key, value in options.items() if isinstance(value, str) and value
                 and (missing == value or missing.endswith("/" + value.removeprefix("./")))), None)


#: the decorator that registers each kind (``lossexp.register_<it>``)
_DECORATORS = {"model": "model", "data": "data", "optimizer": "optimizer", "loss": "component",
               "trainer": "trainer", "weighting": "weighting"}


def _unregistered_definition(root: Path, name: str) -> Optional[str]:
    """``class Mine at mine.py:9`` for a class or function of the project's imported modules whose name is
    ``name`` (``my_term`` ↔ ``MyTerm``, ``my_term``) but that nothing registered: a forgotten decorator."""
    wanted = name.replace("_", "").lower()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not Path(path).resolve().is_relative_to(root.resolve()):
            continue
        for attribute, obj in vars(module).items():
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == \
                    module.__name__ and attribute.replace("_", "").lower() == wanted:
                try:
                    where = f" at {Path(inspect.getsourcefile(obj)).name}:{inspect.getsourcelines(obj)[1]}"
                except (TypeError, OSError):
                    where = ""
                return f"{'class' if inspect.isclass(obj) else 'function'} {attribute}{where}"
    return None


def _not_registered(kind: str, name: Any) -> ConfigError:
    from lossexp import project

    current = project.current()
    label = KINDS[kind].label
    group = KINDS[kind].group
    if current is not None and group and name in current.config_names(group):
        forgotten = _unregistered_definition(current.root, name)
        how = (f"{forgotten} is not registered: decorate it with @lossexp.register_{_DECORATORS[kind]}({name!r})"
               if forgotten else f"list the module under [tool.lossexp] modules in {current.root / 'pyproject.toml'}")
        return ConfigError(
            f"Unknown {label} {name!r}: {current.conf_dir / group / f'{name}.yaml'} selects it, but no module "
            f"of the project registers it ({how}): valid choices are "
            f"{', '.join(sorted(set(shipped(kind)) | set(installed(kind)) | set(_ENTRIES[kind])))}")
    return unknown_name(label, name, available(kind))
