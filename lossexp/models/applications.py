"""A ``keras.applications`` architecture by name, randomly initialised or from a local weights file."""
from __future__ import annotations

from typing import Any, Optional

from lossexp.errors import ConfigError, unknown_name
from lossexp.registry import register_model


@register_model("applications")
def applications(data: Any, architecture: str, weights: Optional[str] = None, pooling: Optional[str] = None) -> Any:
    """``keras.applications.<architecture>`` (``ResNet50``, ``MobileNetV2``, ``EfficientNetB0``, …)
    sized for the data's images and classes, its classifier head included.

    Nothing is downloaded: ``weights`` is null (random initialisation) or the path of a local
    weights file (``*.weights.h5``, ``*.h5``) saved for the same architecture and class count.
    Layer names are the architecture's own (``lossexp components`` cannot list them; a wrong name
    in a component lists them). Images must meet the architecture's minimum size (32×32 for most).

    Options: ``architecture``; ``weights``; ``pooling`` (null | avg | max; unused with the head).
    """
    import keras

    from lossexp.data import resolve_path

    known = sorted(name for name in dir(keras.applications) if name[0].isupper())
    if architecture not in known:
        raise unknown_name("model.architecture", architecture, known)
    if data.task != "classification":
        raise ConfigError(f"Invalid value for model: applications builds classifiers; data {data.name!r} is a "
                          f"{data.task} task")
    builder = getattr(keras.applications, architecture)
    try:
        network = builder(weights=None, input_shape=data.input_shape, classes=data.num_outputs, pooling=pooling)
    except ValueError as exc:
        raise ConfigError(f"Invalid value for model.architecture: {architecture} does not fit the data "
                          f"{data.name!r} of shape {data.input_shape}: {str(exc).splitlines()[0]}") from None
    if weights is not None:
        file = resolve_path("model.weights", weights, suffixes=(".h5",))
        try:
            network.load_weights(file)
        except Exception as exc:
            raise ConfigError(f"Invalid value for model.weights: {weights!r} does not fit {architecture} with "
                              f"{data.num_outputs} classes: {str(exc).splitlines()[0][:300]}") from None
    return network
