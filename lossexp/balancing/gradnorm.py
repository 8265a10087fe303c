"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018)."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

from lossexp.balancing.base import GRADIENTS, Signals, WeightingMethod
from lossexp.balancing.heads import shared_by, split_outputs
from lossexp.errors import ConfigError, invalid_value
from lossexp.options import NonNegativeFloat, PositiveFloat
from lossexp.registry import register_weighting

#: no weight falls below this before the weights are renormalised (they must stay positive)
FLOOR = 1e-3


def weighted_layer(network: Any, name: Optional[str], heads: Sequence[str] = ()) -> str:
    """``name`` checked against the network's layers with trainable weights; None: the last of them.
    With ``heads`` (the outputs whose losses are parts of their own), only the layers every one of them
    is computed through count: a head's own layer gives the other heads no gradient to balance."""
    from lossexp.losses.layer_paths import find_layer, listed, paths_below  # Keras: not when the options are listed

    weighted = [layer.name for layer in network.layers if layer.trainable_weights]
    shared = shared_by(network, heads) if len(heads) > 1 else None
    if len(heads) > 1 and shared is None and name is None:
        # a subclassed network's layers come in the order its attributes were set: its last one was a head's
        # own (one head then floored to 0.001, silently)
        raise ConfigError(f"Invalid value for weighting.layer: null for {type(network).__name__} {network.name!r}, "
                          f"whose graph lossexp cannot read (a subclassed model), so the last layer every split output "
                          f"({', '.join(heads)}) is computed through is unknown: name GradNorm's shared W, one of "
                          f"{', '.join(weighted)}")
    if shared is not None:
        trunk = [layer for layer in weighted if layer in shared]
        if not trunk:
            # Chen et al.'s W is the last *shared* layer: heads that share none have no gradients there to balance
            raise ConfigError(f"Invalid value for weighting=gradnorm: expected outputs that share a layer with trainable "
                              f"weights (GradNorm's W, the last shared layer), got none shared by the split outputs "
                              f"{', '.join(heads)}: set task.split_outputs=false (one part for all outputs) or use a "
                              f"weighting that reads the losses only (dwa, uncertainty, equal)")
        # a path into a nested model (backbone/trunk_2) is shared when the nested model is
        if name is None or (name.partition("/")[0] in trunk and getattr(find_layer(network, name), "trainable_weights",
                                                                        None)):
            return name or trunk[-1]
        if name.partition("/")[0] in weighted and find_layer(network, name) is not None:
            raise invalid_value("weighting.layer", f"a layer every split output ({', '.join(heads)}) is computed "
                                f"through, GradNorm's shared W: {', '.join(trunk)}", name)
    if name is None:
        if not weighted:
            raise ConfigError("Invalid value for weighting.layer: the network has no layer with trainable weights")
        return weighted[-1]
    if not getattr(find_layer(network, name), "trainable_weights", None):
        paths = paths_below(network, lambda layer: bool(layer.trainable_weights))
        raise ConfigError(f"Invalid value for weighting.layer: layer {name!r} is not a layer of the model with "
                          f"trainable weights; those are {listed(paths)}")
    return name


@register_weighting("gradnorm")
class GradNorm(WeightingMethod):
    """GradNorm (Chen et al. 2018, "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
    Deep Multitask Networks", Algorithm 1): learned weights that equalise the tasks' training rates.

    With wᵢ the weights (1 at the start, Σ wᵢ = K), W the weights of one shared layer and
    Gᵢ = ‖∇_W wᵢLᵢ‖ = wᵢ‖∇_W Lᵢ‖, Ḡ = mean Gᵢ, L̃ᵢ = Lᵢ(t)/Lᵢ(0) and rᵢ = L̃ᵢ / mean L̃: the network
    follows Σ wᵢ∇Lᵢ, and the weights take one gradient step on L_grad = Σ |Gᵢ − Ḡ·rᵢ^α| (the target
    Ḡ·rᵢ^α held constant, as in the paper), ``wᵢ ← wᵢ − lr·sign(Gᵢ − targetᵢ)·‖∇_W Lᵢ‖``, then are
    renormalised to Σ wᵢ = K (after a floor of 10⁻³ keeps them positive). Lᵢ(0) is the first positive
    loss of each task (a term such as ``hist_avg`` is 0 at the first step). A part with no gradient on W
    at a step (a term on a lower layer only: ``activity`` when W is the output layer; ``hist_avg`` at its
    first step) is left out of that step's balance and keeps its weight: Ḡ, the mean rate and the
    renormalisation are over the parts that have one (Σ of their weights = their count). Counted in,
    its G of 0 pulled Ḡ below every other part's G, which then all stepped down to the floor while the
    renormalisation gave the gradient-less part nearly all of K (``model=mlp loss=activity``: task 0.001,
    activity 1.999). Logged: ``weight/gradnorm/<task>``.

    Options: ``alpha`` (the asymmetry α ≥ 0; the paper's 1.5 for NYUv2); ``lr`` (the weights' learning
    rate, plain gradient descent); ``layer`` (the shared layer W, or a path into a nested model,
    ``backbone/trunk_2``; null: the network's last layer with
    trainable weights, as the paper's "last shared layer"; with ``task.split_outputs``, the last layer every
    split output is computed through — a head's own layer would give the other heads no gradient).
    """

    reads = GRADIENTS

    def __init__(self, alpha: NonNegativeFloat = 1.5, lr: PositiveFloat = 0.025, layer: Optional[str] = None) -> None:
        super().__init__()
        self.alpha, self.lr, self.layer = float(alpha), float(lr), layer

    def build_state(self, network: Any) -> None:
        self.layer_name = weighted_layer(network, self.layer, split_outputs(self.tasks))
        self.loss_weights = self.variable("loss_weights", (self.count,), initializer="ones")
        self.initial_losses = self.variable("initial_losses", (self.count,))

    def gradient_layers(self) -> List[str]:
        return [self.layer_name]

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        weights = tf.convert_to_tensor(self.loss_weights)
        losses = tf.maximum(tf.cast(signals.losses, tf.float32), 0.0)
        initial = tf.where(self.initial_losses > 0.0, self.initial_losses, losses)
        self.initial_losses.assign(initial)
        norms = tf.cast(tf.sqrt(tf.maximum(tf.linalg.diag_part(signals.gramian), 0.0)), tf.float32)
        balanced = norms > 0.0  # the parts with a gradient on W (the others keep their weight)
        counted = tf.maximum(tf.reduce_sum(tf.cast(balanced, tf.float32)), 1.0)

        def mean(values: Any) -> Any:
            return tf.reduce_sum(tf.where(balanced, values, 0.0)) / counted

        scaled = weights * norms
        ratio = tf.where(initial > 0.0, losses / tf.where(initial > 0.0, initial, 1.0), 1.0)
        inverse_rate = ratio / tf.maximum(mean(ratio), 1e-12)
        target = mean(scaled) * tf.pow(inverse_rate, self.alpha)
        stepped = tf.maximum(weights - self.lr * tf.sign(scaled - target) * norms, FLOOR)
        renormalised = tf.where(balanced, counted * stepped / tf.maximum(tf.reduce_sum(tf.where(balanced, stepped, 0.0)),
                                                                          1e-12), weights)
        finite = tf.reduce_all(tf.math.is_finite(renormalised))
        self.loss_weights.assign(tf.where(finite, renormalised, weights))
        return weights

    def warning(self, weights: Sequence[float]) -> Optional[str]:
        """The task loss weighted to the floor: GradNorm raises a part whose loss falls slowest relative to
        its first (Lᵢ(t)/Lᵢ(0)); a term whose first loss is near 0 (``hist_avg`` one step from its
        reference) has an enormous such ratio, so it takes the weight from the task."""
        neglected = self.neglected_task(weights, 2 * FLOOR)  # at the floor
        if neglected is None:
            return None
        which, task, top = neglected
        return (f"weighting=gradnorm weighs {which} {task:.2g} and {top} {max(weights):.3g}: GradNorm raises the "
                f"part whose loss falls slowest relative to its first ({top}'s), so the network follows {top} and "
                f"not its task; balance the task losses alone (a component's weight of its own) or use "
                f"weighting=equal")
