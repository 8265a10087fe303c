"""Keras' own weight and activity regularizers (L1, L2, L1L2) on named layers, reported as a term (R3(b))."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import keras
from keras import ops

from lossexp.losses.base import LossComponent, LossContext, LossTap, zero
from lossexp.losses.layer_paths import find_layer
from lossexp.registry import register_component

#: option → the layer attribute Keras would read for it
TARGETS = {"kernel": "kernel_regularizer", "bias": "bias_regularizer", "activity": "activity_regularizer"}
#: the options that penalise a layer's weights
WEIGHTS = ("kernel", "bias")
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
    """The layers that hold ``layer``'s ``kernel`` (or ``bias``) as Keras' ``kernel_regularizer`` of each
    part would see them: the layer itself (Dense, Conv), else the layers inside it — a recurrent layer's cell (its input
    kernel, as its ``kernel_regularizer`` is; not the recurrent one), both directions' cells of a
    ``Bidirectional``, an attention layer's query, key, value and output projections, a wrapped layer."""
    attr = TARGETS[target]

    def owns(candidate: keras.layers.Layer) -> bool:  # a property (a recurrent layer's, read from its cell) is not settable
        settable = attr in vars(candidate) or not isinstance(getattr(type(candidate), attr, None), property)
        return hasattr(candidate, attr) and settable and isinstance(getattr(candidate, target, None), keras.Variable)

    if owns(layer):
        return [layer]
    return [inner for inner in layer._flatten_layers(include_self=False) if owns(inner)]


@keras.saving.register_keras_serializable(package="lossexp")
class ActivityRegularizerTap(LossTap):
    """Pass-through layer adding Keras' activity regularizer ``L1`` / ``L2`` / ``L1L2`` of its input,
    divided by the batch size as Keras ≥ 3.14 divides a layer's ``activity_regularizer`` (which
    counts a masked sequence's padded steps too: so does this)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.l1, self.l2 = l1, l2
        self.regularizer = make_regularizer(l1, l2)

    def penalty(self, inputs: Any, mask: Any = None) -> Any:
        x = ops.cast(inputs, "float32")
        return ops.cast(self.regularizer(x), "float32") / ops.cast(ops.shape(x)[0], "float32")

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}


@register_component("regularizer")
class KerasRegularizer(LossComponent):
    """Keras' ``L1`` / ``L2`` / ``L1L2`` regularizers on named layers' kernels, biases and outputs: the
    penalty ``kernel_regularizer`` / ``bias_regularizer`` / ``activity_regularizer`` would add, as a
    term of its own — without setting them on your layers.

    ``kernel``, ``bias`` and ``activity`` each take ``{l1: a, l2: b}``; the component builds
    ``keras.regularizers.L1(a)``, ``L2(b)`` or ``L1L2(a, b)`` (whichever factors are non-zero;
    none when both are 0) and applies it, reported as ``term/<name>`` (not ``loss/other``):

    * kernel: l1·Σ|W| + l2·ΣW² (bias alike), W every kernel of the layer that Keras' ``kernel_regularizer``
      of its parts would penalise: a Dense or Conv's, a recurrent layer's input kernel (both directions'
      of a ``Bidirectional``), an attention layer's four projections', a wrapped layer's;
    * activity: (l1·Σ|h| + l2·Σh²) / batch size, with h the layer's output (a pass-through layer
      ``<name>_on_<layer>`` after it reads it): Keras ≥ 3.14 divides activity penalties by the batch
      size, so with the same factor this term equals ``activity`` (reduction batch_mean) and
      ``aux_output`` (loss sum_squares).

    Your network's layers are left as you built them: a regularizer of their own stays theirs
    (``loss/other``), and after a run the network saves and trains without this component's
    penalties. The contribution is ``weight · term`` (``weight: 1`` is plain Keras). The term applies
    in training and validation.

    A layer inside a nested model (a backbone sub-model) is named by its path, ``backbone/hidden``, as
    ``activity``'s and ``coef``'s layers are (it was refused: "name 'backbone' or build the network flat",
    which penalised every kernel of the backbone).

    Options: ``weight``; ``layers``; ``kernel``; ``bias``; ``activity``.
    """

    reaches_nested_layers = True

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

    def insert_after(self) -> Dict[str, LossTap]:
        if make_regularizer(**self.activity) is None:
            return {}
        return {layer: ActivityRegularizerTap(**self.activity, name=self.tap_name(layer)) for layer in self.layers}

    def attach(self, network: keras.Model) -> None:
        self.require_layers(network, self.layers)
        for target in WEIGHTS:
            if make_regularizer(**getattr(self, target)) is None:
                continue
            for name in self.layers:
                self.require(bool(weight_owners(find_layer(network, name), target)), "layers",
                             f"layers that have a {target} (Dense, Conv, GRU, LSTM, MultiHeadAttention, wrappers of "
                             f"them{'; use_bias' if target == 'bias' else ''})", name)

    def penalised(self, network: keras.Model) -> List[Tuple[keras.regularizers.Regularizer, keras.Variable]]:
        """(regularizer, variable) of every kernel and bias the options penalise."""
        pairs = []
        for target in WEIGHTS:
            regularizer = make_regularizer(**getattr(self, target))
            if regularizer is not None:
                pairs += [(regularizer, getattr(owner, target)) for name in self.layers
                          for owner in weight_owners(find_layer(network, name), target)]
        return pairs

    def term(self, context: LossContext) -> Any:
        total = zero()
        for regularizer, variable in self.penalised(context.network):
            total = total + ops.cast(regularizer(variable), "float32")
        if make_regularizer(**self.activity) is not None:
            for layer in self.layers:
                total = total + find_layer(context.network, self.tap_path(layer)).latest_penalty()
        return total
