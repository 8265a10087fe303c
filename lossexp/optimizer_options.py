"""What Keras' optimizers and learning-rate schedules take, as option hints lossexp checks.

Keras' classes declare no type hints and check few of their values themselves: ``beta_1=3``
trained (Adam's moments grew without bound), ``clipnorm=0`` or ``-1`` clipped nothing, a string
``nesterov: "no"`` turned Nesterov momentum on (Keras tests it for truth),
``gradient_accumulation_steps=0`` accumulated nothing and ``2.5`` failed inside the first step, an
exponential schedule's ``decay_rate=-1`` made the loss NaN. :data:`OPTIMIZER_HINTS` and
:data:`SCHEDULE_HINTS` give those options by name the hint :mod:`lossexp.options` checks, so a bad
value is one line naming the key, before TensorFlow loads for lossexp's own optimizers.

A class of the user's own that subclasses ``keras.optimizers.Optimizer`` and passes ``**kwargs`` to
it (Keras' idiom) takes Keras' common options (``clipnorm``, ``use_ema``, …) too:
:func:`base_options` lists them. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import inspect
import math
import sys
from dataclasses import replace
from typing import Annotated, Any, Dict, List, Optional, Union

from lossexp.options import REQUIRED, Check, NonNegativeFloat, Option, PositiveFloat, PositiveInt

Number = Union[int, float]
_FRACTION = Annotated[float, Check("a number in [0, 1)", lambda v: 0 <= v < 1)]
_CLOSED_FRACTION = Annotated[float, Check("a number in [0, 1]", lambda v: 0 <= v <= 1)]
_POSITIVE = Annotated[Number, Check("a positive finite number", lambda v: math.isfinite(v) and v > 0)]
_NON_NEGATIVE = Annotated[Number, Check("a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)]
_STEPS = Annotated[int, Check("an integer >= 2", lambda v: v >= 2)]

#: an option of Keras' optimizers (any of them that takes it) → what it must be
OPTIMIZER_HINTS: Dict[str, Any] = {
    **{name: _FRACTION for name in ("beta_1", "beta_2", "rho", "adam_beta_1", "adam_beta_2")},
    **{name: _CLOSED_FRACTION for name in ("momentum", "ema_momentum")},
    "epsilon": NonNegativeFloat,
    **{name: Optional[NonNegativeFloat] for name in ("weight_decay", "adam_weight_decay")},
    **{name: Optional[PositiveFloat] for name in ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor")},
    "gradient_accumulation_steps": Optional[_STEPS],
    "ema_overwrite_frequency": Optional[PositiveInt],
    **{name: bool for name in ("use_ema", "amsgrad", "nesterov", "centered", "relative_step", "exclude_embeddings")},
}

#: an option of Keras' learning-rate schedules → what it must be
SCHEDULE_HINTS: Dict[str, Any] = {
    **{name: _NON_NEGATIVE for name in ("initial_learning_rate", "end_learning_rate", "alpha", "power", "m_mul")},
    **{name: _POSITIVE for name in ("decay_steps", "first_decay_steps", "decay_rate", "t_mul")},
    "warmup_steps": Annotated[int, Check("an integer >= 0", lambda v: v >= 0)],
    "warmup_target": Optional[_NON_NEGATIVE],
    **{name: bool for name in ("staircase", "cycle")},
    "boundaries": Annotated[List[Number], Check("an increasing list of steps",
                                                lambda v: all(a < b for a, b in zip(v, v[1:])))],
    "values": Annotated[List[Number], Check("a list of learning rates >= 0", lambda v: all(x >= 0 for x in v))],
}


def hinted(options: Dict[str, Option], hints: Dict[str, Any]) -> Dict[str, Option]:
    """``options`` with each one that has no hint of its own (Keras' have none) given the one of ``hints``."""
    return {name: replace(option, hint=hints[name]) if option.hint is Any and name in hints else option
            for name, option in options.items()}


def base_options(target: Any) -> Dict[str, Option]:
    """Keras' common optimizer options (``weight_decay``, ``clipnorm``, ``use_ema``, …), for a class of
    one's own that subclasses ``keras.optimizers.Optimizer`` and passes them on through ``**kwargs``;
    nothing for anything else (a factory function names what it takes)."""
    keras = sys.modules.get("keras")  # a subclass of Keras' class means Keras is imported
    if keras is None or not inspect.isclass(target) or not issubclass(target, keras.optimizers.Optimizer):
        return {}
    try:
        own = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return {}
    if not any(p.kind == p.VAR_KEYWORD for p in own):
        return {}
    for klass in keras.optimizers.Optimizer.__mro__:  # the class whose constructor names them (Keras' base)
        parameters = inspect.signature(klass.__init__).parameters
        if "clipnorm" in parameters:
            return {p.name: Option(p.name, Any, p.default) for p in parameters.values()
                    if p.name not in ("self", "learning_rate", "name") and p.default is not REQUIRED
                    and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {}
