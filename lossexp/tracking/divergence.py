"""Detect a trainable weight running away, say so, tag the run, optionally stop.

R1's seed trains ``a·||W_a|| + ||W_b||`` with ``a`` a raw variable: ∂L/∂a = ||W_a|| > 0 pushes
``a`` through zero and the total loss on to −∞. Under ``raw`` (and Kendall's ``uncertainty``,
whose ``exp(−s)·L + s`` is unbounded below when L can reach 0) lossexp keeps training, so the
failure can be studied, but reports it the first time it shows, for each component:

* ``crossed zero`` — a raw weight became negative (it starts ≥ 0);
* ``loss heads to -inf`` — the total training loss is negative and fell at each of the last
  :data:`FALLING_CHECKS` checks (every task loss and every term lossexp ships is ≥ 0, so only a
  runaway weight makes it negative); blamed on the watched component whose contribution
  ``loss/<c>`` is lowest.

Any weight the optimizer trains (``softplus`` and ``exp`` too) runs away when its term is negative —
a project's may be: Pereyra's confidence penalty −H(p) — since ∂L/∂w = term < 0 at every step:

* ``weight grows without bound`` — the weight rose, and the term ``term/<c>`` was negative, at each
  of the last :data:`FALLING_CHECKS` + 1 checks.

Reported as a console warning and the run tags ``diverged=<component>``, ``diverged.step``,
``diverged.reason``; with ``trainer.stop_on_divergence=true`` training stops there.
Checks run every ``log_every_n_steps`` steps on values the step already computed.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

import keras

from lossexp import metric_names
from lossexp.tracking.callback import MetricSink
from lossexp.training.step_count import IntervalCallback

FALLING_CHECKS = 3


class DivergenceWatch(IntervalCallback):
    """Watches components whose weight can diverge (``raw``, ``uncertainty``; any trained one whose
    term is negative)."""

    def __init__(self, sink: MetricSink, every_n_steps: int, stop: bool = False) -> None:
        super().__init__(every_n_steps)
        self.sink = sink
        self.stop = stop
        self.diverged: Dict[str, Dict[str, Any]] = {}
        self._watched: List[Any] = []
        self._losses: Deque[float] = deque(maxlen=FALLING_CHECKS + 1)
        #: components whose weight the optimizer trains, and their (weight, term) at the last checks
        self._trained: List[Any] = []
        self._seen: Dict[str, Deque[Tuple[float, float]]] = {}

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_train_begin(logs)
        components = getattr(self.model, "components", [])
        self._watched = [c for c in components if c.weighting.spec.can_diverge]
        self._trained = [c for c in components if c.weighting.spec.trained_by_gradient]
        self._losses.clear()
        self._seen = {c.name: deque(maxlen=FALLING_CHECKS + 1) for c in self._trained}

    def on_interval(self, logs: Dict[str, Any]) -> None:
        if self._watched or self._trained:
            self.check(logs)

    def check(self, logs: Dict[str, Any]) -> None:
        """Look at the latest values; report each component's first divergence."""
        # the weights of the components checked, not every tracked value (a component's own trained
        # tensors, which the recorder reads and takes the norms of at its samples)
        weights = {metric_names.weight(c.name): float(keras.ops.convert_to_numpy(c.weighting.multiplier()))
                   for c in {id(c): c for c in (*self._watched, *self._trained)}.values()}
        for component in self._watched:
            weight = weights.get(metric_names.weight(component.name))
            if component.weighting.spec.parametrization == "raw" and weight is not None and weight < 0:
                self._report(component.name, f"weight crossed zero (a = {weight:.4g})")
        for component in self._trained:
            self._check_growth(component.name, weights.get(metric_names.weight(component.name)),
                               logs.get(metric_names.term(component.name)))
        if "loss" not in logs or not self._watched:
            return
        self._losses.append(float(logs["loss"]))
        losses = list(self._losses)
        falling = len(losses) > FALLING_CHECKS and all(b < a for a, b in zip(losses, losses[1:]))
        if falling and losses[-1] < 0:
            blamed = min(self._watched, key=lambda c: float(logs.get(metric_names.loss(c.name), 0.0)))
            self._report(blamed.name, f"loss heads to -inf (loss = {losses[-1]:.4g})")

    def _check_growth(self, name: str, weight: Optional[float], term: Any) -> None:
        """Report ``name`` when its weight rose, its term negative, at each of the last checks."""
        if weight is None or term is None:
            return
        seen = self._seen[name]
        seen.append((float(weight), float(term)))
        values = list(seen)
        if len(values) > FALLING_CHECKS and all(t < 0 for _, t in values) \
                and all(later[0] > earlier[0] for earlier, later in zip(values, values[1:])):
            self._report(name, f"weight grows without bound (w = {float(weight):.4g}): its term is negative "
                               f"(term = {float(term):.4g}), so a larger weight always lowers the loss")

    def _report(self, name: str, reason: str) -> None:
        if name in self.diverged:
            return
        self.diverged[name] = {"step": self.step, "reason": reason}
        action = "stopping (trainer.stop_on_divergence=true)" if self.stop else "training goes on"
        print(f"lossexp: warning: loss.{name} diverged at step {self.step}: {reason}; {action}", file=sys.stderr)
        if len(self.diverged) == 1:
            self.sink.set_tags({"diverged": name, "diverged.step": self.step, "diverged.reason": reason})
        else:
            self.sink.set_tags({"diverged": ",".join(self.diverged)})
        if self.stop:
            self.model.stop_training = True
