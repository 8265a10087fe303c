"""Dynamic Weight Average (Liu, Johns & Davison 2019)."""
from __future__ import annotations

from typing import Any

from lossexp.balancing.base import Signals, WeightingMethod
from lossexp.options import PositiveFloat
from lossexp.registry import register_weighting


@register_weighting("dwa")
class DynamicWeightAverage(WeightingMethod):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning with
    Attention", eq. 7): a task whose loss falls slowly gets more weight.

    αₖ(t) = K·exp(rₖ(t−1)/T) / Σᵢ exp(rᵢ(t−1)/T) with rₖ(t−1) = Lₖ(t−1)/Lₖ(t−2), where Lₖ(t) is task
    k's loss averaged over the steps of epoch t; α = 1 during the first two epochs (and r = 1 for a
    task whose average was 0). The running sums and the last two epoch averages are variables: the
    step adds to the sums, the end of each epoch rolls them. Logged: ``weight/dwa/<task>``.

    Options: ``temperature`` (T > 0; the paper's 2: a larger T flattens the weights towards 1).
    """

    def __init__(self, temperature: PositiveFloat = 2.0) -> None:
        super().__init__()
        self.temperature = float(temperature)

    def build_state(self, network: Any) -> None:
        self.epoch_sum, self.epoch_steps = self.variable("epoch_sum", (self.count,)), self.variable("epoch_steps", ())
        self.last_epoch = self.variable("last_epoch", (self.count,))
        self.epoch_before = self.variable("epoch_before", (self.count,))
        self.epochs_done = self.variable("epochs_done", ())

    def weigh(self, signals: Signals) -> Any:
        import tensorflow as tf

        self.epoch_sum.assign_add(signals.losses)
        self.epoch_steps.assign_add(1.0)
        before = tf.convert_to_tensor(self.epoch_before)
        ratio = tf.where(before != 0.0, self.last_epoch / tf.where(before != 0.0, before, 1.0), 1.0)
        dynamic = self.count * tf.nn.softmax(ratio / self.temperature)
        return tf.where(self.epochs_done >= 2.0, dynamic, tf.ones_like(dynamic))

    def end_epoch(self) -> None:
        """Roll the averages: L(t−2) ← L(t−1) ← this epoch's mean (nothing if no step ran)."""
        steps = float(self.epoch_steps.numpy())
        if steps == 0.0:
            return
        self.epoch_before.assign(self.last_epoch)
        self.last_epoch.assign(self.epoch_sum / steps)
        self.epoch_sum.assign(self.epoch_sum * 0.0)
        self.epoch_steps.assign(0.0)
        self.epochs_done.assign_add(1.0)
