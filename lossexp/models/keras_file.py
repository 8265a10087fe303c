"""A saved Keras 3 model (``.keras``) as the network: the user's architecture, trained further."""
from __future__ import annotations

from typing import Any

from lossexp.errors import ConfigError
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
        network = keras.saving.load_model(file, compile=False, safe_mode=True)
    except Exception as exc:  # corrupt, Keras 2, unknown custom class…: the file's fault
        reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), type(exc).__name__)
        raise ConfigError(f"Invalid value for model.path: expected a Keras 3 .keras model, got {path!r} "
                          f"(Keras cannot load it: {reason[:300]})") from None
    if isinstance(network, ComposedModel):  # a run's model.keras: continue from the network it trained
        network = without_taps(network.network)  # this run's components insert their own taps
    network.trainable = trainable
    return network
