"""Weight initialisers named in a config: a ``keras.initializers`` name, or a name with options.

``kernel_initializer: glorot_uniform`` or ``kernel_initializer: {name: random_normal, stddev: 0.02}``
(PacGAN's N(0, 0.02) weights). A name Keras does not know, or an option its class does not take,
is one :class:`~lossexp.errors.ConfigError` naming the key.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Union

from lossexp.errors import ConfigError, invalid_value

#: what a config writes: a name, or ``{name: NAME, OPTION: VALUE, …}``
InitializerSpec = Union[str, Dict[str, Any]]
NAME_KEY = "name"


def names() -> List[str]:
    """The ``keras.initializers`` classes by their snake_case names (``random_normal``, …)."""
    import keras

    return sorted(name for name in dir(keras.initializers)
                  if name.islower() and isinstance(getattr(keras.initializers, name), type)
                  and issubclass(getattr(keras.initializers, name), keras.initializers.Initializer))


def initializer(key: str, spec: InitializerSpec) -> Any:
    """The Keras initialiser that ``spec`` (found at config key ``key``) describes."""
    import keras

    options: Dict[str, Any] = dict(spec) if isinstance(spec, Mapping) else {NAME_KEY: spec}
    name = options.pop(NAME_KEY, None)
    if not isinstance(name, str):
        raise invalid_value(key, f"an initializer name or {{{NAME_KEY}: NAME, OPTION: VALUE, ...}}", spec)
    if name not in names():
        raise invalid_value(f"{key}.{NAME_KEY}" if isinstance(spec, Mapping) else key,
                            "one of " + ", ".join(names()), name)
    try:
        return getattr(keras.initializers, name)(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid value for {key} ({name}): {str(exc).splitlines()[0]}") from None
