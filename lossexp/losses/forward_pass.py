"""What a pass-through layer saw in the current forward pass, per thread: the record a
:class:`~lossexp.losses.base.LossTap` keeps of its penalties and an
:class:`~lossexp.training.output_readers.OutputReader` of its layer's output."""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, List

import keras


class ForwardPassRecord(keras.layers.Layer):
    """A pass-through layer keeping a value per call in this thread's current forward pass.

    Per thread: under a distribution strategy each replica traces its step in a thread of its own,
    and a list on the layer — as Keras' ``layer.losses``, cleared by every replica's forward pass —
    would hand a replica another replica's batch. Started afresh where Keras clears the losses, at
    each outermost call, unless :func:`forward_pass_kept` keeps the batch's record while its terms
    run. A :class:`LossTap` records its penalties, an output reader what its layer returned.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # it returns its input: a mask (Embedding(mask_zero=True)) passes on
        object.__setattr__(self, "_latest", threading.local())  # not state Keras tracks or saves

    def record(self, value: Any) -> None:
        """Keep ``value`` as this call's, unless the batch's record is kept (:func:`forward_pass_kept`)."""
        if not getattr(self._latest, "kept", False):
            self._latest.values = [*getattr(self._latest, "values", []), value]

    def recorded(self) -> List[Any]:
        """What each call of this thread's last forward pass recorded, in order."""
        return list(getattr(self._latest, "values", []))

    def _clear_losses(self) -> None:
        """Keras' reset at the start of each outermost call: this thread's record too (unless kept)."""
        super()._clear_losses()
        if not getattr(self._latest, "kept", False):
            self._latest.values = []

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@contextlib.contextmanager
def forward_pass_kept(network: keras.Model) -> Iterator[None]:
    """While the terms of one batch are computed, the records of ``network`` (its taps' penalties, its
    readers' outputs) keep this thread's forward pass of the batch: a term that calls
    ``context.network`` again (on a perturbed or augmented input: a consistency, smoothness or
    adversarial term) runs them on other inputs, which would otherwise replace what the components read."""
    records = [layer for layer in network._flatten_layers(include_self=False) if isinstance(layer, ForwardPassRecord)]
    for record in records:
        record._latest.kept = True
    try:
        yield
    finally:
        for record in records:
            record._latest.kept = False
