"""What ends training early and how the run learns why: a non-finite loss.

* :class:`NonFiniteGuard` looks at the values the step already computed, every
  ``log_every_n_steps`` steps and at each epoch end (the validation loss's parts too, then); the
  first time the loss or one of its parts is NaN or ±inf it tags the run (``nonfinite``: the part
  that is not finite — of several, the one not finite at the most steps of the epoch, which the loss
  breakdown counts in the step, then the first in ``loss/task``, ``loss/<c>`` order; ``loss`` when
  only the total is; the same of ``val_loss`` after —, ``nonfinite.step``, ``nonfinite.value``) and
  raises :class:`NonFiniteLoss`, which ends the run FAILED. Training past that point only produces
  NaNs, so it stops within one logging interval.
* SIGINT / SIGTERM: :mod:`lossexp.tracking.termination`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Dict, Optional

from lossexp import metric_names
from lossexp.errors import NonFiniteLoss
from lossexp.tracking.callback import MetricSink
from lossexp.training.step_count import IntervalCallback


def first_non_finite(logs: Dict[str, Any], components: list,
                     steps: Optional[Callable[[], Dict[str, int]]] = None) -> Optional[str]:
    """The part of ``loss`` (``loss/task``, ``loss/<c>``) that is not finite; of several, the one not finite
    at the most ``steps()`` (the steps of the epoch each was non-finite at: the first to go, whose NaN gradient
    made the others NaN; read only then, as it reads a variable), then the first in ``loss/task``, ``loss/<c>``
    component order; ``loss`` itself when every part is finite but the total is not; then, the training loss
    finite (at an epoch's end), the same of ``val_loss`` (a term NaN in validation alone); None if all are
    finite."""
    order = [metric_names.loss(metric_names.TASK)] + [metric_names.loss(name) for name in components]
    order += sorted(k for k in logs if k.startswith("loss/") and k not in order)
    for keys in (order, [metric_names.validation(key) for key in order]):  # training's first, then validation's
        total = metric_names.validation("loss") if keys is not order else "loss"
        bad = [key for key in keys + [total] if _is_scalar(logs.get(key)) and not math.isfinite(float(logs[key]))]
        parts = [key for key in bad if key != total]
        if len(parts) > 1:
            counts = steps() if steps is not None else {}
            return max(parts, key=lambda key: counts.get(key, 0))  # max keeps the first of equal counts
        if parts:
            return parts[0]
        if bad:
            return bad[0]
    return None


def _is_scalar(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


class NonFiniteGuard(IntervalCallback):
    """Stops training at the first non-finite loss it sees, after tagging the run."""

    def __init__(self, sink: MetricSink, every_n_steps: int) -> None:
        super().__init__(every_n_steps)
        self.sink = sink
        #: the breakdown's non-finite counts of the epoch's training steps, as validation began
        self.trained: Any = None

    def on_interval(self, logs: Dict[str, Any]) -> None:
        self.check(logs)

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.trained = None

    def on_test_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        """Validation inside ``fit`` resets the breakdown next, and with it which step each part was first not
        finite at: kept (two reads an epoch) for the epoch's end, where a run of epochs shorter than
        ``log_every_n_steps`` first looks (it said "nan at step 8", not "(first at step 6)", and no tag)."""
        breakdown = getattr(self.model, "breakdown", None)
        if hasattr(breakdown, "nonfinite_record"):
            self.trained = breakdown.nonfinite_record()

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.check(logs or {})

    def check(self, logs: Dict[str, Any]) -> None:
        """Tag and stop at a non-finite part of the loss in ``logs``. Every value a finite float (Keras'
        logs are floats) is the common case, told from the logs alone: the breakdown's counts of
        non-finite steps are a variable, whose read after each compiled call cost 0.13 ms of CPU (1 % of
        a 10-step call of a 1.4 ms MLP step), and are read only to blame one of several parts."""
        if all(isinstance(value, float) and math.isfinite(value) for value in logs.values()):
            return
        names = [c.name for c in getattr(self.model, "components", [])]
        breakdown = getattr(self.model, "breakdown", None)
        trained = self.trained  # at an epoch's end, the training steps' (validation has reset the breakdown since)
        counted = (lambda: trained.steps) if trained is not None else (
            breakdown.nonfinite_steps if hasattr(breakdown, "nonfinite_steps") else None)
        steps = functools.lru_cache(maxsize=None)(counted) if counted is not None else None  # one read at most
        key = first_non_finite(logs, names, steps)
        if key is None:
            return
        value = float(logs[key])

        def first_step(part: str) -> Optional[int]:
            if trained is not None:
                return trained.first.get(part)
            return breakdown.first_nonfinite_step(part) if hasattr(breakdown, "first_nonfinite_step") else None

        first = first_step(key)
        family = "val_loss/" if key.startswith("val_") else "loss/"
        others = [k for k in logs if k.startswith(family) and k != key and _is_scalar(logs[k])
                  and not math.isfinite(float(logs[k]))]
        counts = steps() if others and steps is not None else {}
        # parts that went at the very steps ``key`` did: which one's gradient made the weights NaN is not told
        together = [k for k in others if counts and counts.get(k) == counts.get(key) and first_step(k) == first]
        tags = {"nonfinite": key, "nonfinite.step": self.step, "nonfinite.value": value}
        self.sink.set_tags({**tags, **({"nonfinite.first_step": first} if first is not None else {})})
        raise NonFiniteLoss(key, value, self.step, first, together)
