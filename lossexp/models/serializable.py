"""Will a saved network load again? Keras finds a custom class or function only through its registry.

Keras 3 writes a class of the user's own into ``model.keras`` by name, and loads it again only when
``@keras.saving.register_keras_serializable()`` registered it in the loading process: it never
imports the module the class came from (Keras' own modules aside). A network with a layer of a
research script's own — the common case — therefore trained and saved its ``model.keras`` and its
MLflow model without a word, and neither loaded again ("Could not locate class 'Scale'"), in any
process, the one that trained it included. :func:`unregistered` finds such classes in the network's
config before training (so :func:`warn_unregistered` can say it when it can still be fixed), and
:func:`missing_class` turns Keras' message into the same advice when a file will not load.
"""
from __future__ import annotations

import ast
import re
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional

#: how Keras writes a Python lambda (a ``Lambda`` layer's), which a load refuses in safe mode, and how it is named
LAMBDA, LAMBDA_NAME = "__lambda__", "the lambda of a Lambda layer (write it as a def)"
#: how Keras' safe-mode refusal of such a lambda begins
_SAFE_MODE_LAMBDA = "Requested the deserialization of a `Lambda` layer whose `function` is a Python lambda"
#: modules whose classes Keras finds without a registration
_KERAS_MODULES = ("keras", "keras.")


def _nodes(config: Any) -> Iterator[Dict[str, Any]]:
    """Every serialized object (a dict with ``class_name`` and ``config``) in a Keras config tree."""
    if isinstance(config, dict):
        if "class_name" in config and "config" in config:
            yield config
        for value in config.values():
            yield from _nodes(value)
    elif isinstance(config, list):
        for value in config:
            yield from _nodes(value)


def _found_by_keras(node: Dict[str, Any]) -> bool:
    """Whether ``keras.saving.load_model`` finds the object ``node`` describes without importing anything."""
    import keras

    if re.fullmatch(r"__\w+__", str(node["class_name"])) and node["class_name"] != LAMBDA:
        return True  # Keras' own encoding of a value: a mask's KerasTensor, an array
    module = node.get("module") or ""
    if module == "keras" or module.startswith(_KERAS_MODULES[1]):
        return True
    registered = node.get("registered_name")
    if node["class_name"] == "function":  # a def (a Lambda's, an activation): its name is the config, and
        # its registered_name is Keras' marker "function" (Keras 3.15), once None
        registered = node["config"] if isinstance(node["config"], str) else None
    return bool(registered) and keras.saving.get_registered_object(registered) is not None


def unregistered(network: Any) -> List[str]:
    """The names of the classes and functions in ``network``'s config that a load would not find, in
    the order the config holds them (empty when its config cannot be written: saving says why)."""
    import keras

    try:
        with warnings.catch_warnings():  # Keras' own advice on get_config comes with the save, if at all
            warnings.simplefilter("ignore")
            config = keras.saving.serialize_keras_object(network)
    except Exception:  # a layer whose get_config fails: the save names it, with its own message
        return []
    names: List[str] = []
    for node in _nodes(config):
        if not _found_by_keras(node):
            name = node["config"] if node["class_name"] == "function" else node["class_name"]
            name = LAMBDA_NAME if name == LAMBDA else name
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def advice(names: List[str]) -> str:
    """What to do about the unregistered ``names``, as the warning and the load error say it: in a project
    of modules, register them in one of its modules; outside one (a network from a script or a notebook
    given to ``lossexp.fit``), in a module imported before the load, which lossexp evaluate finds only
    through a project."""
    from lossexp import project

    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    found = project.current()
    where = ("of your project (listed in [tool.lossexp] modules of its pyproject.toml), which lossexp evaluate "
             "imports before it loads the model" if found is not None and found.modules else
             "imported before the model is loaded: import it yourself before keras.saving.load_model or "
             "mlflow.pyfunc.load_model; lossexp evaluate imports the modules listed in [tool.lossexp] modules of "
             "a pyproject.toml in its working directory or above (none here)")
    return (f"{shown} {'is' if len(names) == 1 else 'are'} not registered with Keras: decorate "
            f"{'it' if len(names) == 1 else 'each'} with @keras.saving.register_keras_serializable() in a module "
            f"{where}")


def warn_unregistered(network: Any) -> None:
    """One warning line when the network's saved model would not load again (see the module docstring)."""
    names = unregistered(network)
    if names:
        print(f"lossexp: warning: the run's saved model will not load again (model.keras, the MLflow model): "
              f"{advice(names)}", file=sys.stderr)


def missing_class(message: str) -> Optional[str]:
    """Keras' "Could not locate class 'X'" in a load error's ``message`` as what to do (None if absent):
    a class saved under a package (``package>Name``) is named as the file names it — lossexp's own
    from another version of it, or a project's whose module is not listed —, one never registered
    gets :func:`advice`, and so does a ``Lambda`` layer's Python lambda, which Keras refuses in safe mode
    (its message would advise ``safe_mode=False``, which lossexp's loads never pass)."""
    if _SAFE_MODE_LAMBDA in message:
        return advice([LAMBDA_NAME])
    missing = re.search(r"Could not locate (?:class|function) '([^']+)'", message)
    if not missing:
        return None
    registered = _registered_name(message[missing.end():]) or missing.group(1)
    package = registered.split(">")[0] if ">" in registered else None
    module = _saved_module(message[missing.end():])
    if package == "lossexp" and module is not None and module.split(".")[0] != "lossexp":  # a project's part
        return (f"its class {registered} is registered by no module loaded now: the code that registered "
                f"'{registered.split('>', 1)[1]}' (your project's, or a package's) is gone or not listed — restore it, "
                f"or list its module in [tool.lossexp] modules of the project's pyproject.toml (Could not locate "
                f"class '{missing.group(1)}')")
    if package == "lossexp":
        return (f"its class {registered} is none this lossexp registers: saved by another version of lossexp? "
                f"(Could not locate class '{missing.group(1)}')")
    if package:
        return (f"its class {registered} is not registered: list the module that registers it in "
                "[tool.lossexp] modules of the project's pyproject.toml")
    return f"its class {advice([missing.group(1)])}"


def _saved_config(rest: str) -> Optional[dict]:
    """The object config Keras prints after "Full object config: " (None if it prints none or it cannot be read)."""
    shown = rest.split("Full object config: ", 1)
    if len(shown) < 2:
        return None
    try:
        config = ast.literal_eval(shown[1].strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return config if isinstance(config, dict) else None


def _registered_name(rest: str) -> Optional[str]:
    """The saved object's ``registered_name`` (None if Keras printed none)."""
    name = (_saved_config(rest) or {}).get("registered_name")
    return name if isinstance(name, str) else None


def _saved_module(rest: str) -> Optional[str]:
    """The Python module the saved object's class was in (``myterms``; ``lossexp.losses.hist_avg``), or None."""
    module = (_saved_config(rest) or {}).get("module")
    return module if isinstance(module, str) else None
