"""Task losses that Keras does not ship, registered so a saved model reloads with them."""
from __future__ import annotations

from typing import Any, Callable, Union

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lossexp", name="squared_log_error")
def squared_log_error(y_true: Any, y_pred: Any) -> Any:
    """mean over the last axis of (log y − log ŷ)² (R4's task loss; y and ŷ must be > 0).

    Not Keras' ``mean_squared_logarithmic_error``, which takes log(1 + y).
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return ops.mean(ops.square(ops.log(y_true) - ops.log(y_pred)), axis=-1)


CUSTOM = {"squared_log_error": squared_log_error}


def task_loss(name: str) -> Union[str, Callable[[Any, Any], Any]]:
    """What ``compile(loss=…)`` takes for the task loss called ``name``."""
    return CUSTOM.get(name, name)
