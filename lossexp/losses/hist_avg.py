"""Historical averaging (R0; Salimans et al. 2016, "Improved Techniques for Training GANs", §3.3)."""
from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

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

    The references of ``mean`` and ``ema`` are float64: r ← r + rate·(θ − r) in float32 drops every
    increment below half an ulp of r, i.e. wherever |θ − r|/|r| < ~6·10⁻⁸/rate (rate = 1/t for the
    mean, 1 − decay for ema), and the gradient 2(θ − r) is made of exactly those differences. Until
    6 December they were float32: in the PacGAN ring GAN's discriminator (200×1000 kernels) at step
    150,000, 60–72 % of the increments were lost and the rest rounded by about their own size; a
    slow drift left r stuck at 1.00458 where the mean was 1.01251 after 10⁶ steps. θ − r is formed
    in float64 and cast to float32 for the term and the gradient (a float32 reference saved before
    loads into it). The update is in place, one op per tensor (8 per tensor, as with float32); its
    cost is float64's memory traffic: see docs/performance.md, "hist_avg's references in float64". The
    exact alternatives measured were slower (``python -m benchmarks.hist_avg_precision``, the train step
    over plain Keras' at a 1M MLP / a 3.2M-weight Embedding: float64 1.67 / 1.87, a float32 Kahan pair
    1.85 / 2.07, every tensor's work in one XLA function 2.08 / 2.47; the inexact float32 1.27 / 1.49).

    Options: ``weight``; ``mode``; ``decay`` (ema only, 0 < decay < 1); ``layers`` (null: every
    trainable weight of the model; else layers with trainable weights: not an input, a Dropout or a
    frozen layer, whose term would be a silent 0); ``distance``.
    """

    applies_in_validation = False
    reaches_nested_layers = True
    #: none of its state: a reference per weight tensor of the network (``weight_drift/from_avg`` measures the
    #: weights' distance from their average) and a count that follows the step
    recorded_state = ()

    def __init__(self, weight: float = 0.01, mode: str = "mean", decay: float = 0.99,
                 layers: Optional[Sequence[str]] = None, distance: str = "squared_l2", **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.mode = self.require_choice("mode", mode, MODES)
        self.decay = self.require_number("decay", decay, minimum=0.0, maximum=1.0, exclusive=True)
        self.require(layers is None or (isinstance(layers, (list, tuple)) and len(layers) > 0),
                     "layers", "null (all layers) or a non-empty list of layer names", layers)
        self.layers = list(layers) if layers is not None else None
        self.distance = self.require_choice("distance", distance, DISTANCES)
        # Not tracked by Keras: these are the network's weights, not this layer's own (and not named ``_tracked``,
        # Keras' list of a TensorFlow layer's tracked collections, which SavedModel export reads as attribute names)
        object.__setattr__(self, "_watched", [])

    def _tracked_weights(self, network: keras.Model) -> List[keras.Variable]:
        if self.layers is None:
            return list(network.trainable_weights)
        return [w for name in self.layers for w in find_layer(network, name).trainable_weights]

    def attach(self, network: keras.Model) -> None:
        """One reference variable per tracked weight tensor, and the step count."""
        if self.layers is not None:
            self.require_layers(network, self.layers, needs=TRAINABLE_WEIGHTS)
        object.__setattr__(self, "_watched", self._tracked_weights(network))
        # int64: a float32 count stops at 2**24 (t + 1 rounds back to t), and the mean's 1/t with it (a float32
        # count saved by an older lossexp loads into it: Keras casts on assign)
        self.steps_seen = self.add_weight(name="steps_seen", shape=(), initializer="zeros", dtype="int64",
                                          trainable=False, aggregation="only_first_replica")
        # float64 for mean and ema (see the class docstring: r + rate·(θ − r) in float32 loses the increment once
        # |θ − r| < |r|·2⁻²⁴/rate); previous copies θ exactly. A float32 reference saved by an older lossexp loads
        # into it (Keras casts on assign). Not autocast: under mixed precision a read stays float64.
        self.references = [self.add_weight(name=f"reference_{i}", shape=tuple(w.shape), initializer="zeros",
                                           dtype=self._reference_dtype, trainable=False, autocast=False,
                                           aggregation="only_first_replica")
                           for i, w in enumerate(self._watched)]

    @property
    def _reference_dtype(self) -> str:
        return "float32" if self.mode == "previous" else "float64"

    def reference_values(self) -> List[np.ndarray]:
        """The reference of each tracked weight tensor."""
        return [keras.ops.convert_to_numpy(reference) for reference in self.references]

    def _rate(self, t: Any) -> Any:
        """How far the reference moves towards θ_t at step t (an int64 count; 1 at the first step)."""
        if self.mode == "mean":
            return 1.0 / ops.cast(t, "float64")
        first, later = (ops.convert_to_tensor(value, "float64") for value in (1.0, 1.0 - self.decay))
        return ops.where(t <= 1, first, later)

    def _advance(self) -> "_Advanced":
        """Advance the state to step t, reading each tracked tensor and its reference once.

        Per tensor this is a read of θ_t (cast to float64) and of r_{t−1}, their difference and the reference's
        update ``r ← r + rate·(θ − r)`` in place, one op (``ResourceApplyGradientDescent`` with α = −rate: the
        multiply, add and assign it replaces cost 1.3–1.5× as much at 1M parameters in float64); ``previous``
        stores θ_t. A network of many small tensors (BatchNorm's, biases) pays for every op per tensor,
        whatever its size."""
        import tensorflow as tf  # a read of r: keras.ops hands back the variable itself, which eager code reads later

        t = self.steps_seen + 1
        self.steps_seen.assign(t)
        rate = None if self.mode == "previous" else self._rate(t)
        step_size = None if rate is None else -rate  # once, not per tensor
        # a distributed reference has no one handle (and outside a replica none): Keras' assign keeps its one update
        in_place = not tf.distribute.has_strategy()
        thetas, befores, diffs = [], [], []
        for weight, reference in zip(self._watched, self.references):
            theta = ops.cast(weight, reference.dtype)
            before = tf.convert_to_tensor(reference)
            diff = theta - before
            if rate is None:
                reference.assign(theta)
            elif in_place:  # r − (−rate)·diff; ordered after the read of r, as every op on the variable
                tf.raw_ops.ResourceApplyGradientDescent(var=reference.handle, alpha=step_size, delta=diff)
            else:
                reference.assign(before + rate * diff)
            thetas.append(theta)
            befores.append(before)
            diffs.append(diff)
        # θ_t − r_t = keep·(θ_t − r_{t−1}): 1 − rate (0 at t = 1, where r_1 = θ_1); previous: r_t = r_{t−1} for t > 1
        keep = ops.cast(t > 1 if rate is None else 1.0 - rate, "float32")
        return _Advanced(t, rate, keep, thetas, befores, diffs)

    def _differences(self) -> List[Any]:
        """θ_t − r_t of each tracked tensor, r_t a constant for the gradient (the tape's path); the state advanced."""
        advanced = self._advance()
        differences = []
        for theta, before, diff in zip(advanced.thetas, advanced.befores, advanced.diffs):
            if advanced.rate is None:
                ref = ops.where(advanced.t <= 1, theta, before)
            else:
                ref = before + advanced.rate * diff
            differences.append(ops.cast(theta - ops.stop_gradient(ref), "float32"))
        return differences

    def term(self, context: LossContext) -> Any:
        if not context.training:
            return zero()
        squared = self.distance == "squared_l2"
        return ops.sum(ops.stack([_squared_norm(d) if squared else ops.mean(ops.abs(d)) for d in self._differences()]))

    def closed_form_gradients(self, context: LossContext, scale: Any) -> Tuple[Any, List[Tuple[Any, Any]]]:
        """The term and its gradient ``2(θ − r)`` (``sign(θ − r)/size`` for ``mean_abs``), scaled.

        With θ − r_t = keep·(θ − r_{t−1}) (keep ≥ 0, a scalar), each tensor's share is a few ops on the
        difference already computed: one ``L2Loss`` (Σ x²/2) for the term and one scalar multiply for
        the gradient: 8 ops per tensor where forming θ − r_t again, squaring and summing it took 12 (at a
        network of 204 small tensors, hist_avg's ops in the train step 3,318 → 2,303)."""
        import tensorflow as tf  # L2Loss: Σ x² in one op (keras.ops spells it as three)

        advanced = self._advance()
        keep, diffs = advanced.keep, [ops.cast(d, "float32") for d in advanced.diffs]
        if self.distance == "squared_l2":
            term = 2.0 * ops.square(keep) * tf.add_n([tf.nn.l2_loss(d) for d in diffs])
            factor = 2.0 * keep * scale
            return term, [(w, d * factor) for w, d in zip(self._watched, diffs)]
        term = keep * tf.add_n([ops.mean(ops.abs(d)) for d in diffs])
        factor = ops.sign(keep) * scale
        return term, [(w, ops.sign(d) * (factor / float(np.prod(d.shape)))) for w, d in zip(self._watched, diffs)]


class _Advanced(NamedTuple):
    """One step of the state (:meth:`HistoricalAverage._advance`)."""

    t: Any
    #: how far r moved towards θ_t (None for ``previous``)
    rate: Any
    #: θ_t − r_t = keep·(θ_t − r_{t−1})
    keep: Any
    #: θ_t, r_{t−1} and θ_t − r_{t−1} of each tensor, in the reference's dtype (float64 for mean and ema)
    thetas: List[Any]
    befores: List[Any]
    diffs: List[Any]


def _squared_norm(diff: Any) -> Any:
    """Σ diff² as 2·L2Loss(diff): one op, whose gradient is diff·upstream (autodiff of Σ diff² would
    broadcast the upstream scalar to the tensor's shape and multiply twice, passes over every weight).

    It was a ``custom_gradient`` to the same end, but TensorFlow registers a graph-mode custom gradient
    in its process-wide gradient registry, under a new name at every trace, and never removes it: each
    run's train step and gradient diagnostics stayed in memory with their graphs (a sweep of 45 jobs in
    one process grew 16.7 MB a job, 13 MB of it this)."""
    import tensorflow as tf

    return 2.0 * tf.nn.l2_loss(diff)
