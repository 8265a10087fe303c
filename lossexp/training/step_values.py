"""Values the run recorder samples, handed out of the compiled train step with its logs.

Reading a variable from Python after a compiled call costs about 0.2 ms of CPU (the first TensorFlow op
after the call; 0.04 ms each next one): the optimizer's learning rate, read at every logging interval,
cost 0.25 ms a call, 2 % of a 10-step call of a 1.4 ms MLP step. The train step adds such values to its
logs under :data:`KEY`; the train function (:func:`carried`) takes them out before Keras sees the logs
(no callback, History or progress bar shows them) and keeps the last call's on the model, where
:func:`last` gives them: tensors the call already returned, read without an op.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

KEY = "_lossexp_step_values"
_ATTRIBUTE = "_lossexp_last_step_values"


def with_values(logs: Dict[str, Any], values: Dict[str, Any]) -> Dict[str, Any]:
    """The train step's ``logs`` carrying ``values`` (name → tensor, read at the step's end)."""
    return {**logs, KEY: values} if values else logs


def carried(model: Any, function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``function`` (the model's train function), whose logs' carried values are kept on ``model``."""
    def train_function(iterator: Any) -> Any:
        logs = function(iterator)
        if isinstance(logs, dict) and KEY in logs:
            logs = dict(logs)
            object.__setattr__(model, _ATTRIBUTE, logs.pop(KEY))  # not a tracked attribute of the Keras model
        return logs

    return train_function


def last(model: Any) -> Optional[Dict[str, Any]]:
    """The values the model's last compiled call carried (None: none since :func:`forget`)."""
    return getattr(model, _ATTRIBUTE, None)


def forget(model: Any) -> None:
    """Drop the carried values (at a fit's start: the rate may have been set since the last call)."""
    if last(model) is not None:
        object.__setattr__(model, _ATTRIBUTE, None)
