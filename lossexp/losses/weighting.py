"""A component's weight at run time: the variables behind a :class:`WeightSpec`.

Every form keeps its state in variables created on the component with ``add_weight``, because a
Python number read inside the compiled train step would be frozen into the graph:

* constant, scheduled and ``dual`` weights live in a non-trainable ``loss_weight``; a schedule
  writes its value for the step into it inside the step, dual ascent after the gradient update;
* ``raw`` / ``softplus`` / ``exp`` / ``uncertainty`` weights are a function of a trainable
  ``raw_weight`` s that the optimizer updates with the model's weights.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import keras
import numpy as np
from keras import ops

from lossexp import metric_names
from lossexp.losses.weight_spec import WeightSpec

_EFFECTIVE = {
    "raw": lambda s: s,
    "softplus": ops.softplus,
    "exp": ops.exp,
    "uncertainty": lambda s: ops.exp(-s),
}
_RAW_INITIAL = {
    "raw": lambda w: w,
    "softplus": lambda w: w + math.log(-math.expm1(-w)),  # log(eʷ − 1), stable for large w
    "exp": math.log,
    "uncertainty": lambda w: -math.log(w),
}


class Weighting:
    """Turns a component's unweighted term into its contribution to the total loss."""

    def __init__(self, spec: WeightSpec, owner: keras.layers.Layer) -> None:
        self.spec = spec
        self._was_changed = False  # a constant weight assigned another value (by a user's callback)
        #: a constant weight's value as the last compiled call ended, when the run recorder lends it
        #: (:func:`lossexp.training.step_values.lent_to_weightings`): no variable read at each sample
        self.carried: Any = None
        if spec.trained_by_gradient:
            initial = _RAW_INITIAL[spec.parametrization](spec.value)
            self.raw_weight = owner.add_weight(name="raw_weight", shape=(), trainable=True,
                                               initializer=keras.initializers.Constant(initial))
        else:
            # assigned inside the step (schedules, dual ascent): each replica computes the same value
            self.loss_weight = owner.add_weight(name="loss_weight", shape=(), trainable=False,
                                                initializer=keras.initializers.Constant(spec.initial),
                                                aggregation="only_first_replica")

    def multiplier(self, step: Any = None, training: bool = False) -> Any:
        """The weight ``w`` for this step; a training step also moves a schedule to ``step``."""
        if self.spec.trained_by_gradient:
            return _EFFECTIVE[self.spec.parametrization](self.raw_weight)
        if self.spec.kind == "scheduled" and training and step is not None:
            value = ops.cast(self._scheduled(ops.cast(step, "float64")), "float32")
            self.loss_weight.assign(value)
            return value
        return ops.convert_to_tensor(self.loss_weight)

    def contribution(self, term: Any, step: Any = None, training: bool = False) -> Any:
        """``w·term`` (``exp(−s)·term + s`` under ``uncertainty``)."""
        return self.weighted(term, self.multiplier(step, training))

    def weighted(self, term: Any, multiplier: Any) -> Any:
        """The contribution of ``term`` at the weight ``multiplier`` (from :meth:`multiplier`)."""
        weighted = multiplier * term
        if self.spec.parametrization == "uncertainty":
            weighted = weighted + self.raw_weight
        return weighted

    def after_step(self, term: Any) -> None:
        """Dual ascent, once the optimizer has applied the step: w ← max(0, w + lr·(term − ε))."""
        if self.spec.parametrization == "dual":
            self.loss_weight.assign(ops.maximum(0.0, self.loss_weight + self.spec.lr * (term - self.spec.epsilon)))

    def tracked(self, name: str) -> Dict[str, Any]:
        """What to log for component ``name`` (read eagerly, between steps): ``weight/<name>`` unless
        constant — a constant one too once something else, a callback of the user's, has assigned it
        another value, from then on —, ``weight/coef/<name>`` for trainable weights (the trained value:
        w, or s under ``uncertainty``)."""
        if self.spec.kind == "constant" and not self._changed():
            return {}
        values = {metric_names.weight(name): self.multiplier()}
        if self.spec.kind == "trainable":
            uncertainty = self.spec.parametrization == "uncertainty"
            trained = self.raw_weight if uncertainty else values[metric_names.weight(name)]
            values[metric_names.coef(name)] = trained
        return values

    def _changed(self) -> bool:
        """Whether a constant weight's variable has ever held another value than the configured one."""
        if not self._was_changed:
            configured = np.asarray(self.spec.initial, dtype=self.loss_weight.dtype)  # no TensorFlow op per sample
            current = self.carried if self.carried is not None else ops.convert_to_numpy(self.loss_weight)
            self._was_changed = bool(np.asarray(current) != configured)
        return self._was_changed

    def _scheduled(self, t: Any) -> Any:
        """The schedule's value at step ``t``, computed in float64 (the caller casts it to float32): a
        float32 step rounds above 2**24 = 16,777,216, where a cyclical schedule's phase (a remainder)
        went wrong by whole steps; float64 holds every step count exactly."""
        spec = self.spec
        span = spec.end - spec.start
        if spec.schedule == "constant":
            return ops.convert_to_tensor(spec.end, dtype="float64")
        if spec.schedule == "linear":
            return spec.start + span * ops.clip((t - spec.delay) / spec.steps, 0.0, 1.0)
        if spec.schedule == "sigmoid":
            return spec.start + span * ops.sigmoid(spec.sharpness * (t - spec.midpoint))
        tau = ops.mod(t - 1.0, float(spec.cycle_length)) / (spec.steps / spec.cycles)
        cycling = spec.start + span * ops.minimum(1.0, tau / spec.ratio)
        return ops.where(t > spec.steps, spec.end, cycling)
