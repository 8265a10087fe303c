"""lossexp's Keras-serialisable classes, registered so that a saved lossexp model loads anywhere.

A ``.keras`` file names its classes (``lossexp>ComposedModel``, ``lossexp>activity``,
``lossexp>Sampling``, …); Keras finds them only once the modules that define them have run.
:func:`register_keras_objects` imports all of them (and the installed third-party components).

``import lossexp`` calls :func:`register_when_keras_loads`: Keras and TensorFlow are not imported
then (``lossexp --help`` stays fast); registration happens at the moment Keras is first imported,
by whoever imports it — so ``import lossexp`` followed by ``mlflow.keras.load_model(uri)`` (which
imports Keras) gives the composed model. When Keras is first imported by a lossexp module that is
itself still being imported, registration is left to that code path (lossexp's training code
imports the classes it uses; :mod:`lossexp.evaluate` calls :func:`register_keras_objects`), since
importing the other lossexp modules from the middle of one could meet it half-initialised; and a
training process (the CLI's) leaves it to the code that builds what its config names
(:func:`leave_registration_to_training`).
"""
from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

#: modules that define Keras-serialisable classes other than the loss components
MODULES = ("lossexp.training.composed_model", "lossexp.training.task", "lossexp.models.layers",
           "lossexp.training.gan_model")
_registered = False
#: set by a training process (the CLI's, a sweep's worker): it imports the classes its config names
_left_to_training = False


def register_keras_objects() -> None:
    """Import every module that registers a lossexp class with Keras (idempotent).

    A third-party component whose package fails to import is skipped: loading then fails only
    for a model that uses it, with Keras' own message naming the class.
    """
    global _registered
    if _registered:
        return
    from lossexp import registry
    from lossexp.errors import ConfigError

    for module in MODULES:
        importlib.import_module(module)
    for name in registry.available("loss"):
        try:
            registry.get("loss", name)
        except ConfigError:
            continue
    _registered = True


def _lossexp_module_initialising() -> bool:
    """True while some ``lossexp.*`` module is half-way through its own import (the package itself
    is complete enough once :data:`lossexp.CONF_DIR` exists, which precedes this hook)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("lossexp."):
            if getattr(getattr(module, "__spec__", None), "_initializing", False):
                return True
    return False


def leave_registration_to_training() -> None:
    """In a process that trains one config: Keras' first import registers nothing, so that an
    installed third-party component is imported only when the config names it (its entries import
    it); loading a saved model (:mod:`lossexp.evaluate`) still registers everything."""
    global _left_to_training
    _left_to_training = True


def _register_after_keras(_keras: ModuleType) -> None:
    if _left_to_training or _lossexp_module_initialising():
        return
    try:
        register_keras_objects()
    except Exception as exc:  # never break the user's `import keras`
        warnings.warn(f"lossexp could not register its Keras classes: {type(exc).__name__}: {exc}", stacklevel=2)


def register_when_keras_loads() -> None:
    """Register lossexp's Keras classes at Keras' first import (now, if Keras is loaded already)."""
    from lossexp.import_hooks import on_import

    on_import("keras", after=_register_after_keras)
