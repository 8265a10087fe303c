"""A researcher's own task loss or metric, chosen by name: ``task.loss=my_loss``, ``task.metrics=[hamming]``.

Keras' ``compile`` takes a loss or metric object, but a config holds names. A class or function the
researcher registered with ``@keras.saving.register_keras_serializable()`` in a module of the project
(the registration the saved model needs to load again anyway) is found by the name it was registered
under, its package left out (``my_loss`` for ``ml_parts>my_loss``). Nothing is imported: only what the
project's modules or the notebook already registered can be named, as for every part.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import keras

from lossexp.errors import invalid_value

#: packages whose registered objects are Keras' or lossexp's own, chosen by their own names
_OWN_PACKAGES = ("keras", "lossexp")


def _registered(base: type) -> Dict[str, Any]:
    """Short name → the registered class (a subclass of ``base``) or function of the user's own."""
    found: Dict[str, Any] = {}
    for registered, value in keras.saving.get_custom_objects().items():
        package, _, name = registered.rpartition(">")
        if package.split(".")[0] in _OWN_PACKAGES:
            continue
        is_class = isinstance(value, type) and issubclass(value, base)
        if is_class or not isinstance(value, type) and callable(value):
            found.setdefault(name, value)
            found[registered] = value
    return found


def users_object(key: str, name: str, base: type) -> Optional[Any]:
    """The user's registered ``base`` (``keras.losses.Loss``, ``keras.metrics.Metric``) named ``name``,
    made with its defaults, or the registered function itself; None if there is none. A class whose
    ``__init__`` needs arguments is one line under ``key``."""
    found = _registered(base).get(name)
    if found is None or not isinstance(found, type):
        return found
    try:
        return found()
    except TypeError as exc:  # an argument without a default: a config names the class, not its arguments
        raise invalid_value(key, f"a class that {key} makes with its defaults (give its __init__ arguments "
                            "defaults)", f"{name}: {exc}") from None


def users_names(base: type) -> List[str]:
    """The short names of the user's registered ``base`` classes and functions (for the valid choices)."""
    return sorted(name for name in _registered(base) if ">" not in name)
