"""Historical averaging (R0; Salimans et al. 2016, "Improved Techniques for Training GANs", §3.3)."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import keras
import numpy as np
from keras import ops

from lossexp.losses.base import TRAINABLE_WEIGHTS, LossComponent, LossContext, zero
from lossexp.registry import register_component
from lossexp.losses.layer_paths import find_layer

MODES = ("mean", "ema", "previous")
DISTANCES = ("squared_l2", "mean_abs")


@register_component("hist_avg")
class HistoricalAverage(LossComponent):
    """Penalise the distance of the weights from a reference built from their own history.

    At training step t (t = 1, 2, …) with weights θ_t, read before the step's update:

    * ``mode: mean`` (default, Salimans): r_t = (1/t) Σ_{i=1..t} θ_i, the running mean of
      every value the weights have had;
    * ``mode: ema``: r_1 = θ_1, r_t = decay·r_{t-1} + (1-decay)·θ_t;
    * ``mode: previous``: r_t = θ_{t-1} (r_1 = θ_1), the one-step change the seed's answer used.

    term = Σ_tensors Σ_elements (θ − r)²  with ``distance: squared_l2`` (Salimans' ||θ − r||²),
    or Σ_tensors mean|θ − r| with ``distance: mean_abs`` (the seed's reduction).
    The reference is a constant for the gradient: ∂term/∂θ = 2(θ − r), which the plain update adds
    to the tape's gradient in closed form (:meth:`closed_form_gradients`: no pass differentiating
    through the term; weighting methods and gradient diagnostics differentiate it). The running
    state — t and one reference per weight tensor, so no step copies the weights into one vector
    and back — lives in non-trainable variables updated inside the compiled train step (no
    recompiles; under a distribution strategy each replica computes the same update, kept once);
    validation steps neither use nor update it, and the validation loss excludes the term.

    Options: ``weight``; ``mode``; ``decay`` (ema only, 0 < decay < 1); ``layers`` (null: every
    trainable weight of the model; else layers with trainable weights: not an input, a Dropout or a
    frozen layer, whose term would be a silent 0); ``distance``.
    """

    applies_in_validation = False
    reaches_nested_layers = True

    def __init__(self, weight: float = 0.01, mode: str = "mean", decay: float = 0.99,
                 layers: Optional[Sequence[str]] = None, distance: str = "squared_l2", **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.mode = self.require_choice("mode", mode, MODES)
        self.decay = self.require_number("decay", decay, minimum=0.0, maximum=1.0, exclusive=True)
        self.require(layers is None or (isinstance(layers, (list, tuple)) and len(layers) > 0),
                     "layers", "null (all layers) or a non-empty list of layer names", layers)
        self.layers = list(layers) if layers is not None else None
        self.distance = self.require_choice("distance", distance, DISTANCES)
        # Not tracked by Keras: these are the network's weights, not this layer's own.
        object.__setattr__(self, "_tracked", [])

    def _tracked_weights(self, network: keras.Model) -> List[keras.Variable]:
        if self.layers is None:
            return list(network.trainable_weights)
        return [w for name in self.layers for w in find_layer(network, name).trainable_weights]

    def attach(self, network: keras.Model) -> None:
        """One reference variable per tracked weight tensor, and the step count."""
        if self.layers is not None:
            self.require_layers(network, self.layers, needs=TRAINABLE_WEIGHTS)
        object.__setattr__(self, "_tracked", self._tracked_weights(network))
        self.steps_seen = self.add_weight(name="steps_seen", shape=(), initializer="zeros", trainable=False,
                                          aggregation="only_first_replica")
        self.references = [self.add_weight(name=f"reference_{i}", shape=tuple(w.shape), initializer="zeros",
                                           trainable=False, aggregation="only_first_replica")
                           for i, w in enumerate(self._tracked)]

    def reference_values(self) -> List[np.ndarray]:
        """The reference of each tracked weight tensor."""
        return [keras.ops.convert_to_numpy(reference) for reference in self.references]

    def _rate(self, t: Any) -> Any:
        """How far the reference moves towards θ_t at step t (1 at the first step)."""
        if self.mode == "mean":
            return 1.0 / t
        return ops.where(t <= 1.0, 1.0, 1.0 - self.decay)

    def _differences(self) -> List[Any]:
        """θ_t − r_t of each tracked tensor (r_t a constant for the gradient), the state advanced to t."""
        t = self.steps_seen + 1.0
        self.steps_seen.assign(t)
        rate = self._rate(t)
        differences = []
        for weight, reference in zip(self._tracked, self.references):
            theta = ops.cast(weight, "float32")
            if self.mode == "previous":
                ref = ops.where(t <= 1.0, theta, reference)
                reference.assign(theta)
            else:
                ref = reference + rate * (theta - reference)
                reference.assign(ref)
            differences.append(theta - ops.stop_gradient(ref))
        return differences

    def term(self, context: LossContext) -> Any:
        if not context.training:
            return zero()
        squared = self.distance == "squared_l2"
        return ops.sum(ops.stack([_squared_norm(d) if squared else ops.mean(ops.abs(d)) for d in self._differences()]))

    def closed_form_gradients(self, context: LossContext, scale: Any) -> Tuple[Any, List[Tuple[Any, Any]]]:
        """The term and its gradient ``2(θ − r)`` (``sign(θ − r)/size`` for ``mean_abs``), scaled."""
        differences = self._differences()
        if self.distance == "squared_l2":
            term = ops.sum(ops.stack([ops.sum(ops.square(d)) for d in differences]))
            factor = 2.0 * scale
            return term, [(w, d * factor) for w, d in zip(self._tracked, differences)]
        term = ops.sum(ops.stack([ops.mean(ops.abs(d)) for d in differences]))
        return term, [(w, ops.sign(d) * (scale / float(np.prod(d.shape)))) for w, d in zip(self._tracked, differences)]


@ops.custom_gradient
def _squared_norm(diff: Any) -> Any:
    """Σ diff², with its gradient 2·diff·upstream given directly: autodiff would broadcast the upstream
    scalar to the tensor's shape and multiply twice, passes over every weight at every step."""

    def gradient(*args: Any, upstream: Any = None) -> Any:
        if upstream is None:
            (upstream,) = args
        return diff * (2.0 * upstream)

    return ops.sum(ops.square(diff)), gradient
