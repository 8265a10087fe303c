"""Task losses that Keras does not ship, resolved from the name a :class:`~lossexp.data.Dataset`
gives (``Dataset.task_loss``); Keras' own names pass through unchanged.

``summed_binary_crossentropy`` is the VAE convention for a reconstruction of inputs in [0, 1]:
the binary cross-entropy summed over the features of an example (Kingma & Welling 2014's
Bernoulli log-likelihood), averaged over the batch by Keras. Summed rather than averaged over
the pixels, so that it and the KL term (summed over the latent dimensions) are on the scale of
the ELBO; Keras' ``binary_crossentropy`` would be this divided by the number of features.

``squared_log_error`` is R4's ``(log y − log ŷ)²`` (``data.task_loss=squared_log_error``).
"""
from __future__ import annotations

from typing import Any, Callable, Union

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lossexp")
def summed_binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Per example: −Σ_features [y·log ŷ + (1 − y)·log(1 − ŷ)] (ŷ clipped by Keras' epsilon)."""
    y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (ops.shape(y_pred)[0], -1))
    y_pred = ops.reshape(y_pred, (ops.shape(y_pred)[0], -1))
    return ops.sum(ops.binary_crossentropy(y_true, y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="lossexp", name="squared_log_error")
def squared_log_error(y_true: Any, y_pred: Any) -> Any:
    """mean over the last axis of (log y − log ŷ)² (R4's task loss; y and ŷ must be > 0).

    Not Keras' ``mean_squared_logarithmic_error``, which takes log(1 + y).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.mean(ops.square(ops.log(y_true) - ops.log(y_pred)), axis=-1)


CUSTOM = {"summed_binary_crossentropy": summed_binary_crossentropy, "squared_log_error": squared_log_error}


def resolve(name: str) -> Union[str, Callable[[Any, Any], Any]]:
    """What ``compile(loss=...)`` takes for a task-loss name: lossexp's own function, or the name."""
    return CUSTOM.get(name, name)
