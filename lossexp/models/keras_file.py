"""A saved Keras 3 model (``.keras``) as the network: the user's architecture, trained further."""
from __future__ import annotations

import json
import sys
import zipfile
from typing import Any

from lossexp.errors import ConfigError
from lossexp.models.serializable import missing_class
from lossexp.registry import register_model


@register_model("keras_file")
def keras_file(data: Any, path: str, trainable: bool = True) -> Any:
    """The network saved at ``path`` (``model.save("net.keras")``), loaded in Keras' safe mode
    without its compiled state; its layers keep their names for loss components. Custom layers
    must be importable: register them (``keras.saving.register_keras_serializable``) in one of the
    project's modules. Relative paths are relative to the project directory. A run's own
    ``model.keras`` (a composed model) gives its trained network, which trains on: the components of
    this run start afresh from it (``hist_avg``'s reference at its weights), as does the optimizer.

    Options: ``path``; ``trainable`` (false: freeze every layer, e.g. to train only coefficients).
    """
    import keras

    from lossexp.data import resolve_path
    from lossexp.keras_objects import register_keras_objects
    from lossexp.training.composed_model import ComposedModel
    from lossexp.training.rewire import without_taps

    file = resolve_path("model.path", path, suffixes=(".keras",))
    register_keras_objects()  # the file may name lossexp's classes or an installed component's
    try:
        if not zipfile.is_zipfile(file):  # Keras' own reason is "File not found" for a file that is there
            raise _Unloadable("not a zip archive, as model.save('net.keras') writes")
        network = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as exc:  # corrupt, Keras 2, unknown custom class…: the file's fault
        raise ConfigError(f"Invalid value for model.path: expected a Keras 3 .keras model, got {path!r} "
                          f"({_reason(exc)})") from None
    _say_compiled_state_unused(file, path)
    if isinstance(network, ComposedModel):  # a run's model.keras: continue from the network it trained
        network = without_taps(network.network)  # this run's components insert their own taps
    network.trainable = trainable
    return network


class _Unloadable(ValueError):
    """The file is no ``.keras`` archive: the reason, as the user reads it."""


def _reason(exc: Exception) -> str:
    """Why Keras cannot load the file, in a line: a class it cannot find, with what to do
    (:func:`lossexp.models.serializable.missing_class`); otherwise Keras' last line."""
    if isinstance(exc, _Unloadable):
        return str(exc)
    text = str(exc)
    missing = missing_class(text)
    if missing:
        return missing
    reason = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), type(exc).__name__)
    return f"Keras cannot load it: {reason[:300]}"


def _say_compiled_state_unused(file: str, path: str) -> None:
    """A warning line when the file was saved compiled (``model.compile(optimizer=…)`` before
    ``model.save``): Keras' ``load_model`` would restore its optimizer and loss, the run trains with
    its own ``optimizer`` section and task loss — said, so a file's SGD(0.5) is not silently Adam(1e-3)."""
    try:
        compiled = json.loads(zipfile.ZipFile(file).read("config.json")).get("compile_config") or {}
    except (KeyError, ValueError, OSError):
        return
    optimizer = compiled.get("optimizer")
    if not isinstance(optimizer, dict):
        return
    options = optimizer.get("config") or {}
    rate = options.get("learning_rate")
    saved = f"optimizer {optimizer.get('class_name', '?')}"
    if isinstance(rate, (int, float)):  # a schedule is a mapping: named by the class alone
        saved += f", learning_rate {rate:.4g}"
    if isinstance(compiled.get("loss"), str):
        saved += f"; loss {compiled['loss']}"
    print(f"lossexp: warning: model.path {path} was saved compiled ({saved}): the run trains it with its own "
          "optimizer (optimizer=…) and task loss, starting its optimizer afresh", file=sys.stderr)
