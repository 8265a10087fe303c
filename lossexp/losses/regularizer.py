"""Keras' own weight and activity regularizers on named layers, reported as a term (R3(b))."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence

import keras

from lossexp.losses.base import LossComponent, LossContext, zero
from lossexp.registry import register_component

#: option → the layer attribute Keras reads (the variable's ``regularizer`` for kernel and bias)
TARGETS = {"kernel": "kernel_regularizer", "bias": "bias_regularizer", "activity": "activity_regularizer"}
FACTORS = ("l1", "l2")
#: the defaults: no kernel or bias penalty, an activity L2 of 0.001 (the same penalty as activity's and
#: aux_output's defaults)
NONE = MappingProxyType({"l1": 0.0, "l2": 0.0})
DEFAULT_ACTIVITY = MappingProxyType({"l1": 0.0, "l2": 0.001})


def make_regularizer(l1: float, l2: float) -> Optional[keras.regularizers.Regularizer]:
    """``L1`` / ``L2`` / ``L1L2`` objects (the string ``'l1_l2'`` is rejected by Keras 3.15); None if both are 0."""
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


def weight_owners(layer: keras.layers.Layer, target: str) -> List[keras.layers.Layer]:
    """The layers that hold ``layer``'s ``kernel`` (or ``bias``) and whose Keras regularizer for it can be
    set: the layer itself (Dense, Conv), else the layers inside it — a recurrent layer's cell (its input
    kernel, as its ``kernel_regularizer`` is; not the recurrent one), both directions' cells of a
    ``Bidirectional``, an attention layer's query, key, value and output projections, a wrapped layer."""
    attr = TARGETS[target]

    def owns(candidate: keras.layers.Layer) -> bool:  # a property (a recurrent layer's, read from its cell) is not settable
        settable = attr in vars(candidate) or not isinstance(getattr(type(candidate), attr, None), property)
        return hasattr(candidate, attr) and settable and isinstance(getattr(candidate, target, None), keras.Variable)

    if owns(layer):
        return [layer]
    return [inner for inner in layer._flatten_layers(include_self=False) if owns(inner)]


@register_component("regularizer")
class KerasRegularizer(LossComponent):
    """Keras' ``kernel_regularizer`` / ``bias_regularizer`` / ``activity_regularizer`` on named layers.

    ``kernel``, ``bias`` and ``activity`` each take ``{l1: a, l2: b}``; the component builds
    ``keras.regularizers.L1(a)``, ``L2(b)`` or ``L1L2(a, b)`` (whichever factors are non-zero;
    none when both are 0) and sets it on every layer of ``layers``. Keras then adds the
    penalties itself; the term is their sum, reported as ``term/<name>`` and not in
    ``loss/other``:

    * kernel: l1·Σ|W| + l2·ΣW² (bias alike), W every kernel of the layer that Keras' ``kernel_regularizer``
      of its parts would penalise: a Dense or Conv's, a recurrent layer's input kernel (both directions'
      of a ``Bidirectional``), an attention layer's four projections', a wrapped layer's;
    * activity: (l1·Σ|h| + l2·Σh²) / batch size, with h the layer's output: Keras ≥ 3.14
      divides activity penalties by the batch size, so with the same factor this term equals
      ``activity`` (reduction batch_mean) and ``aux_output`` (loss sum_squares).

    The contribution is ``weight · term`` (``weight: 1`` is plain Keras). The term applies in
    training and validation. A layer that already has a different regularizer is refused.

    Options: ``weight``; ``layers``; ``kernel``; ``bias``; ``activity``.
    """

    def __init__(self, weight: Any = 1.0, layers: Sequence[str] = ("hidden_1",),
                 kernel: Optional[Mapping[str, float]] = NONE, bias: Optional[Mapping[str, float]] = NONE,
                 activity: Optional[Mapping[str, float]] = DEFAULT_ACTIVITY, **kwargs: Any) -> None:
        super().__init__(weight=weight, **kwargs)
        self.require(isinstance(layers, (list, tuple)) and len(layers) > 0 and all(isinstance(n, str) for n in layers),
                     "layers", "a non-empty list of layer names", layers)
        self.layers = list(layers)
        self.kernel = self._factors("kernel", kernel)
        self.bias = self._factors("bias", bias)
        self.activity = self._factors("activity", activity)
        self.require(any(v for target in TARGETS for v in getattr(self, target).values()), "activity",
                     "at least one non-zero l1 or l2 factor among kernel, bias and activity", self.activity)

    def _factors(self, option: str, value: Optional[Mapping[str, float]]) -> Dict[str, float]:
        value = {} if value is None else value
        self.require(isinstance(value, Mapping) and set(value) <= set(FACTORS), option,
                     "a mapping with keys l1, l2 (or null)", value)
        return {f: self.require_number(f"{option}.{f}", value.get(f, 0.0), minimum=0.0) for f in FACTORS}

    def regularizers(self) -> Dict[str, Optional[keras.regularizers.Regularizer]]:
        return {target: make_regularizer(**getattr(self, target)) for target in TARGETS}

    def attach(self, network: keras.Model) -> None:
        self.require_layers(network, self.layers)
        wanted = self.regularizers()
        for name in self.layers:
            layer = network.get_layer(name)
            for target, regularizer in wanted.items():
                if regularizer is None:
                    continue
                attr = TARGETS[target]
                if target == "activity":
                    self._set(layer, attr, target, regularizer, name)
                    continue
                owners = weight_owners(layer, target)
                self.require(bool(owners), "layers", f"layers that have a {target} (Dense, Conv, GRU, LSTM, "
                             f"MultiHeadAttention, wrappers of them{'; use_bias' if target == 'bias' else ''})", name)
                for owner in owners:
                    self._set(owner, attr, target, regularizer, name)

    def _set(self, layer: keras.layers.Layer, attr: str, target: str, regularizer: Any, named: str) -> None:
        """Set ``regularizer`` as ``layer.<attr>`` (and on the variable, Keras' regularizers being read
        from it); idempotent for a reloaded model. ``named``: the layer the option names (``layer`` or
        one holding it)."""
        current = getattr(layer, attr, None)
        same = type(current) is type(regularizer) and current.get_config() == regularizer.get_config()
        self.require(current is None or same, "layers", f"layers without another {attr}", named)
        try:
            setattr(layer, attr, regularizer)
        except AttributeError:  # a read-only property
            self.require(False, "layers", f"layers whose {attr} can be set (a {type(layer).__name__} takes it when "
                         f"built: {type(layer).__name__}(..., {attr}=...), reported as loss/other)", named)
        if target != "activity":
            getattr(layer, target).regularizer = regularizer

    def distribution_problem(self) -> Optional[str]:
        """Keras adds an activity regularizer's value to ``layer.losses``, one list every replica's
        forward pass clears and refills: under tf.distribute a replica reads another's batch."""
        if any(self.activity.values()):
            return ("its activity factors are read from Keras' layer.losses, which Keras 3.15 shares between "
                    "replicas; use loss=activity (or kernel/bias factors only)")
        return None

    def owned_loss_layers(self) -> List[str]:
        return list(self.layers)

    def term(self, context: LossContext) -> Any:
        total = zero()
        for name in self.layers:
            for loss in context.network.get_layer(name).losses:
                total = total + loss
        return total
