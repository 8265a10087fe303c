"""Early stopping for ``trainer.patience``: Keras' own, the best epoch's weights restored, and a
monitor the run does not record refused in one line (Keras only warns, and trains every epoch)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import keras

from lossexp.errors import invalid_value


#: words of a metric's name that make higher better (Keras' own inference needs a metric object;
#: lossexp's ``loss/<c>``, ``term/<c>`` and ``weight_grad/…`` are not)
HIGHER_IS_BETTER = ("accuracy", "acc", "auc", "precision", "recall", "r2", "modes_covered", "high_quality")


def higher_is_better(metric: str) -> bool:
    return any(word in metric.split("/")[-1] for word in HIGHER_IS_BETTER)


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when ``monitor`` (``trainer.monitor``) has not improved for ``patience`` epochs — lower
    is better, higher for an accuracy, AUC, precision, recall or R² (:func:`higher_is_better`) — and end training with
    the weights (every variable of the model: the components' state too) of its best epoch."""

    def __init__(self, monitor: str, patience: int) -> None:
        super().__init__(monitor=monitor, patience=patience, restore_best_weights=True, verbose=0,
                         mode="max" if higher_is_better(monitor) else "min")

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.monitor not in (logs or {}):
            raise invalid_value("trainer.monitor", "a metric the run records at each epoch's end: "
                                + ", ".join(sorted(logs or {})), self.monitor)
        super().on_epoch_end(epoch, logs)

    def outcome(self) -> Optional[str]:
        """What happened, for the run's tag ``lossexp.early_stopping`` (None when it never measured)."""
        if self.best is None:
            return None
        stopped = f"stopped after epoch {self.stopped_epoch + 1}" if self.stopped_epoch else "trained every epoch"
        return f"{stopped}; weights of epoch {self.best_epoch + 1} ({self.monitor} {float(self.best):.6g})"
