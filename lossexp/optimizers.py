"""Optimizers: every ``keras.optimizers`` class by name, with its own options, and learning-rate
schedules by name.

``optimizer=adamw optimizer.weight_decay=1e-4`` builds ``keras.optimizers.AdamW(weight_decay=1e-4,
…)``; ``conf/optimizer/<name>.yaml`` lists the class's options with Keras' defaults. The user's
own optimizer is a class or factory registered with :func:`lossexp.register_optimizer`.

``learning_rate`` is a number or a schedule, ``{schedule: NAME, OPTION: VALUE, …}`` with NAME one
of :data:`SCHEDULES` (``keras.optimizers.schedules``) and its options, e.g.
``{schedule: cosine_decay, initial_learning_rate: 0.001, decay_steps: 1000}``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping

from lossexp.errors import ConfigError, invalid_value, unknown_name
from lossexp.optimizer_options import OPTIMIZER_HINTS, SCHEDULE_HINTS, base_options, hinted
from lossexp.registry import register_optimizer

#: lossexp name → keras.optimizers class
KERAS_OPTIMIZERS = {
    "adadelta": "Adadelta", "adafactor": "Adafactor", "adagrad": "Adagrad", "adam": "Adam", "adamw": "AdamW",
    "adamax": "Adamax", "ftrl": "Ftrl", "lamb": "Lamb", "lion": "Lion", "muon": "Muon", "nadam": "Nadam",
    "rmsprop": "RMSprop", "sgd": "SGD",
}
#: schedule name → keras.optimizers.schedules class
SCHEDULES = {
    "cosine_decay": "CosineDecay", "cosine_decay_restarts": "CosineDecayRestarts",
    "exponential_decay": "ExponentialDecay", "inverse_time_decay": "InverseTimeDecay",
    "piecewise_constant_decay": "PiecewiseConstantDecay", "polynomial_decay": "PolynomialDecay",
}
SCHEDULE_KEY = "schedule"

for _name, _class in KERAS_OPTIMIZERS.items():
    register_optimizer(_name, description=f"keras.optimizers.{_class}")(f"keras.optimizers.{_class}")


def check_options(name: str, given: Mapping[str, Any]) -> None:
    """The values of the options ``given`` to optimizer ``name`` that lossexp knows how to check before
    TensorFlow loads: ``learning_rate`` (:func:`check_learning_rate`) and, for Keras' own optimizers,
    the options of :data:`~lossexp.optimizer_options.OPTIMIZER_HINTS` (their names are checked when it is built)."""
    from lossexp.options import conform

    if "learning_rate" in given:
        check_learning_rate(given["learning_rate"])
    if name in KERAS_OPTIMIZERS:
        for key, value in given.items():
            if key in OPTIMIZER_HINTS:
                conform(f"optimizer.{key}", value, OPTIMIZER_HINTS[key])


def check_learning_rate(value: Any) -> None:
    """``optimizer.learning_rate`` is a positive finite number or a schedule mapping naming a known
    schedule, the values of its options that :data:`~lossexp.optimizer_options.SCHEDULE_HINTS` knows
    checked (its option names are checked when it is built). No TensorFlow."""
    from lossexp.options import conform

    key = "optimizer.learning_rate"
    if isinstance(value, Mapping):
        name = value.get(SCHEDULE_KEY)
        if name not in SCHEDULES:
            raise unknown_name(f"{key}.{SCHEDULE_KEY}", name, SCHEDULES)
        for option, given in value.items():
            if option in SCHEDULE_HINTS:
                conform(f"{key}.{option}", given, SCHEDULE_HINTS[option])
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise invalid_value(key, f"a positive finite number or {{{SCHEDULE_KEY}: NAME, ...}}", value)


def _schedule(spec: Mapping[str, Any]) -> Any:
    import keras

    from lossexp.options import check, schema

    options = dict(spec)
    name = options.pop(SCHEDULE_KEY)
    cls = getattr(keras.optimizers.schedules, SCHEDULES[name])
    checked = check("optimizer.learning_rate", hinted(schema(cls, skip=("name",)), SCHEDULE_HINTS), options)
    try:
        return cls(**checked)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Invalid value for optimizer.learning_rate ({name}): {str(exc).splitlines()[0]}") from None


def build_optimizer(selection: Any) -> Any:
    """The optimizer of a validated ``optimizer:`` selection (name + options), built by Keras.

    Its options are checked against their hints (Keras' declare none: lossexp's
    :mod:`~lossexp.optimizer_options` gives those of its common options); a class of one's own that
    passes ``**kwargs`` on to ``keras.optimizers.Optimizer`` also takes Keras' common options. Keras' own
    objections (``clipnorm`` with ``global_clipnorm``, …) are one-line :class:`ConfigError`; an error raised in
    the project's own optimizer code is one line naming its file and line, as a model builder's is.
    """
    from lossexp import registry
    from lossexp.options import check
    from lossexp.project import one_line, user_frame, where_it_broke

    entry = registry.get("optimizer", selection.name)
    declared = {**base_options(entry.resolve()), **entry.options()}
    options: Dict[str, Any] = check("optimizer", hinted(declared, OPTIMIZER_HINTS), selection.options)
    if isinstance(options.get("learning_rate"), Mapping):
        options["learning_rate"] = _schedule(options["learning_rate"])
    elif isinstance(options.get("learning_rate"), int) and not isinstance(options["learning_rate"], bool):
        options["learning_rate"] = float(options["learning_rate"])  # a number, as documented: Keras takes floats only
    try:
        return entry.resolve()(**options)
    except ConfigError:
        raise
    except Exception as exc:
        if user_frame(exc) is not None:  # the project's own code raised, as a model's builder may: where it broke
            raise ConfigError(f"Invalid optimizer {selection.name!r}: building it failed at {where_it_broke(exc)}: "
                              f"{type(exc).__name__}: {one_line(str(exc))}") from None
        if not isinstance(exc, (ValueError, TypeError)):
            raise
        raise ConfigError(f"Invalid value for optimizer ({selection.name}): {str(exc).splitlines()[0]}") from None
