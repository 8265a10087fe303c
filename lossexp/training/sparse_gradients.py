"""A gather's gradient summed per row before the optimizer sees it.

The gradient of an ``Embedding`` (of any ``gather``) is a ``tf.IndexedSlices`` with one slice per
lookup: a token used k times in a batch has k slices, whose sum is its row's gradient. Keras 3's
optimizers square such a gradient slice by slice (``ops.square`` keeps the slices), so Adam's,
RMSprop's, Adagrad's second moment of a row gets Σ gᵢ² where its gradient is Σ gᵢ: in Adam's first
step a token used k times moves up to √k·lr instead of lr. A term that makes the gradient dense
(``hist_avg`` touches every row, at any weight) sums the slices first, so adding it at weight 0
changed the training. Summing the slices here makes every update Adam's on the row's gradient, the
same whether or not a component densifies it; the gradient stays sparse (rows of the batch only).
"""
from __future__ import annotations

from typing import Any, List, Sequence


def rows_summed(gradients: Sequence[Any]) -> List[Any]:
    """``gradients`` with each ``tf.IndexedSlices`` holding one slice per row, the sum of its slices."""
    import tensorflow as tf

    summed = []
    for gradient in gradients:
        if isinstance(gradient, tf.IndexedSlices):
            rows, slot = tf.unique(gradient.indices)
            values = tf.math.unsorted_segment_sum(gradient.values, slot, tf.shape(rows)[0])
            gradient = tf.IndexedSlices(values, rows, gradient.dense_shape)
        summed.append(gradient)
    return summed
