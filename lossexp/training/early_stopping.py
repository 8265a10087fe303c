"""Early stopping for ``trainer.patience``: Keras' own, the best epoch's weights restored, and a
monitor the run does not record refused in one line (Keras only warns, and trains every epoch)."""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import keras
import numpy as np

from lossexp.errors import invalid_value


#: words of a metric's name that make higher better (Keras' own inference needs a metric object;
#: lossexp's ``loss/<c>``, ``term/<c>`` and ``weight_grad/…`` are not)
HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall", "r2", "modes_covered", "high_quality")


def higher_is_better(metric: str) -> bool:
    return any(word in metric.split("/")[-1] for word in HIGHER_IS_BETTER)


class Memory(NamedTuple):
    """What early stopping has seen, kept in a checkpoint so that a resumed run goes on from it:
    the best value, its epoch (0-based) and logs, the epochs since, and the best epoch's weights."""

    best: Optional[float]
    best_epoch: int
    wait: int
    best_logs: Dict[str, float]
    best_weights: List[np.ndarray]

    def summary(self) -> Dict[str, Any]:
        """Everything but the weights, as JSON holds it."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "best_logs": self.best_logs}


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when ``monitor`` (``trainer.monitor``) has not improved for ``patience`` epochs — lower
    is better, higher for an accuracy, AUC, precision, recall or R² (:func:`higher_is_better`) — and end training with
    the weights (every variable of the model: the components' state too) of its best epoch. ``resumed``:
    the :meth:`memory` a stopped run's checkpoint kept, so that its best epoch may precede the resume."""

    def __init__(self, monitor: str, patience: int, resumed: Optional[Memory] = None) -> None:
        super().__init__(monitor=monitor, patience=patience, restore_best_weights=True, verbose=0,
                         mode="max" if higher_is_better(monitor) else "min")
        self.resumed = resumed
        self.best_logs: Dict[str, float] = {}

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_train_begin(logs)
        if self.resumed is not None:
            self.best, self.best_epoch, self.wait = self.resumed.best, self.resumed.best_epoch, self.resumed.wait
            self.best_logs = dict(self.resumed.best_logs)
            self.best_weights = list(self.resumed.best_weights) or None

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.monitor not in (logs or {}):
            raise invalid_value("trainer.monitor", "a metric the run records at each epoch's end: "
                                + ", ".join(sorted(logs or {})), self.monitor)
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch:
            self.best_logs = {key: float(value) for key, value in (logs or {}).items()}

    def memory(self) -> Memory:
        """What a checkpoint keeps of this callback (see :class:`Memory`)."""
        return Memory(None if self.best is None else float(self.best), int(self.best_epoch), int(self.wait),
                      dict(self.best_logs), list(self.best_weights or []))


def restoring(callbacks: Sequence[Any]) -> Optional[keras.callbacks.EarlyStopping]:
    """The early stopping whose best epoch's weights the model ends with: the last of ``callbacks`` (in
    the order their ``on_train_end`` runs) that is a Keras ``EarlyStopping(restore_best_weights=True)``
    with weights to put back — ``trainer.patience``'s or the user's own, which Keras restores as training
    ends whether it stopped or not; None when none has."""
    found = [callback for callback in callbacks if isinstance(callback, keras.callbacks.EarlyStopping)
             and callback.restore_best_weights and callback.best_weights is not None]
    return found[-1] if found else None


def best_history(callback: keras.callbacks.EarlyStopping, history: Dict[str, Sequence[Any]],
                 first_epoch: int) -> Dict[str, Sequence[Any]]:
    """``history`` (Keras' of the epochs from ``first_epoch`` on: a resumed run's) cut at ``callback``'s
    best epoch, whose values the run's objective then is; a best epoch before ``first_epoch`` (kept by
    ``trainer.patience``'s memory of a resumed run) is its logs."""
    if callback.best_epoch < first_epoch:
        return {key: [value] for key, value in getattr(callback, "best_logs", {}).items()}
    return {key: values[:callback.best_epoch - first_epoch + 1] for key, values in history.items()}


def outcome(callback: keras.callbacks.EarlyStopping) -> str:
    """What happened, for the run's tag ``lossexp.early_stopping``."""
    stopped = f"stopped after epoch {callback.stopped_epoch + 1}" if callback.stopped_epoch else "trained every epoch"
    return f"{stopped}; weights of epoch {callback.best_epoch + 1} ({callback.monitor} {float(callback.best):.6g})"
