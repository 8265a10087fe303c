"""Values the run recorder samples, handed out of the compiled train step with its logs.

Reading a variable from Python after a compiled call costs about 0.2 ms of CPU (the first TensorFlow op
after the call; 0.04 ms each next one): the optimizer's learning rate, read at every logging interval,
cost 0.25 ms a call, 2 % of a 10-step call of a 1.4 ms MLP step; each constant component weight, read to see
whether a callback changed it, 0.1–0.2 ms more (a GAN's two rates read: the callbacks' 0.73–0.90 ms of CPU
a 10-step call of experiment=ring_pacgan at small size; carried, 0.40–0.48 ms). The train step (the composed
model's, the GAN's) adds such values to its logs under :data:`KEY`; the train function (:func:`carried`) takes them out before Keras sees the logs
(no callback, History or progress bar shows them) and keeps the last call's on the model, where
:func:`last` gives them: tensors the call already returned, read without an op.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, Optional

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


def constant_weight(name: str) -> str:
    """The carried value of component ``name``'s constant weight's variable (read at each sample only to
    see whether a callback changed it: :meth:`lossexp.losses.weighting.Weighting.tracked`)."""
    return f"constant_weight/{name}"


@contextlib.contextmanager
def lent_to_weightings(model: Any, values: Optional[Dict[str, Any]]) -> Iterator[None]:
    """Within: each constant weight of ``model``'s components is seen as its value in ``values`` (the last
    call's), not read from its variable."""
    components = getattr(model, "components", [])  # a GAN's: both players'
    lent = [(c.weighting, values[constant_weight(c.name)]) for c in components
            if values and constant_weight(c.name) in values]
    for weighting, value in lent:
        weighting.carried = value
    try:
        yield
    finally:
        for weighting, _ in lent:
            weighting.carried = None


def forget(model: Any) -> None:
    """Drop the carried values (at a fit's start: the rate may have been set since the last call)."""
    if last(model) is not None:
        object.__setattr__(model, _ATTRIBUTE, None)
