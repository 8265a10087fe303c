"""A model that is its parameters: one trainable point θ, trained on loss components alone.

Test functions of multi-objective optimisation (the two-objective toy of CAGrad, ``loss=[mtl_toy_l1,
mtl_toy_l2]``) are functions of a point, not of data: their "network" is θ itself, and the
``objective`` regime (:mod:`lossexp.training.objective`) trains it on its components with no task
loss, one dummy example per step (``data=steps``).
"""
from __future__ import annotations

import math
import typing
from typing import Any, List

from lossexp.options import Check
from lossexp.registry import register_model

#: the point's coordinates: a non-empty list of finite numbers
Coordinates = typing.Annotated[List[float], Check("a non-empty list of finite numbers",
                                                  lambda v: len(v) > 0 and all(math.isfinite(x) for x in v))]


@register_model("point", trainer="objective")
def point(data: Any, init: Coordinates = (0.0, 0.0)) -> Any:
    """The trainable point θ (layer ``theta``, weight of shape (len(init),)); its output for a batch
    is θ once per example, which the components read as ``y_pred``.

    Options: ``init`` (θ at the start, e.g. [-8.5, 7.5]; its length is the dimension).
    """
    import keras

    from lossexp.models.layers import Point

    inputs = keras.Input(shape=data.input_shape, name="inputs")
    return keras.Model(inputs, Point(init, name="theta")(inputs), name="point")
