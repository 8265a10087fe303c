"""The Keras callback that records a run in MLflow without slowing training.

Every ``log_every_n_steps`` training steps it samples the running metrics Keras already
computed in the graph (``loss``, ``loss/<c>``, ``term/<c>``, …), the components' scheduled and
trainable weights (``weight/<c>``, ``weight/coef/<c>``), a weighting method's weights
(``weight/<method>/<task>``). The gradient diagnostics (``weight_grad/…``) are taken after every
compiled call in which the probe sampled them and logged at the step they were measured at: read only
at the recorder's own samples, a second sample between two of them replaced the first, which was
computed and never recorded (``tracking.gradients_every_n_steps=5`` under ``log_every_n_steps=10``
recorded steps 6, 16 of 1, 6, 11, 16). The weight-drift statistics (``weight_drift/…``) are
measured at the first of those samples, then at the first one at or after every multiple of
``tracking.drift_every_n_steps`` (default 100), and at the end of training: a measurement reads
every weight about fifteen times, about a step's worth of memory traffic at a few million
parameters, so at every 10-step logging interval it cost 5–7 % of training;
at each epoch end it adds the epoch's final train and validation values. After the first step it
records ``startup_seconds``, the time since the process started — since the run started, for a
process's later runs (:mod:`lossexp.tracking.clock`) — (at the end of the
first call into the compiled step, which runs ``trainer.execution_steps`` steps). Points are buffered
in memory and sent with one ``log_batch`` per epoch from a background thread
(:func:`lossexp.tracking.store.log_metrics`), so the database is never written from inside the step
loop. The MLflow step of every point is the global training step.
"""
from __future__ import annotations

from collections import defaultdict
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
from mlflow.tracking import MlflowClient

from lossexp import metric_names
from lossexp.tracking import held_signals, store
from lossexp.tracking.clock import startup_seconds
from lossexp.tracking.points import Points
from lossexp.training import step_values
from lossexp.training.step_count import IntervalCallback
from lossexp.training.drift import DriftValues, WeightDrift

Point = Tuple[str, float, int]


class MetricSink:
    """Buffers ``(key, value, step)`` points, keeps their history, sends them in batches."""

    def __init__(self, client: Optional[MlflowClient], run_id: Optional[str],
                 recorded: Optional[Dict[str, List[Tuple[int, float]]]] = None) -> None:
        self.client = client
        self.run_id = run_id
        #: every point recorded, packed (:class:`~lossexp.tracking.points.Points`: 16 bytes a point, not 120)
        self.history: Dict[str, Points] = defaultdict(Points, {key: Points(points) for key, points in (recorded or {}).items()})
        #: a resumed run's last recorded step of each key: it trains again from its checkpoint's step, and
        #: the points its stopped attempt recorded are kept rather than recorded twice. Per key: a stop
        #: between the last step's sampled points and its epoch-end points (``epoch``, ``val_loss``) left
        #: those out, and a step for the whole run skipped them again (a resumed run's epochs read 1, 3)
        self.recorded_until = {key: max((step for step, _ in points), default=-1)
                               for key, points in (recorded or {}).items()}
        self._pending: List[Point] = []
        self._writing: List[Future] = []

    def add(self, values: Dict[str, float], step: int) -> None:
        """Buffer ``values`` at ``step``; a key already recorded at ``step`` keeps one point (see :meth:`_again`)."""
        for key, value in values.items():
            value = float(value)
            if step <= self.recorded_until.get(key, -1) or self._again(key, value, step):
                continue
            self.history[key].append((step, value))
            self._pending.append((key, value, step))

    def _again(self, key: str, value: float, step: int) -> bool:
        """Whether ``key`` already has its point at ``step`` (then updated to ``value`` while still pending).

        An epoch's end repeats the values its last interval sampled at the same step. On one device
        they are equal, but under ``trainer.distribute=mirrored`` Keras' epoch logs are reduced over the
        replicas again and may differ in the last bit (``loss/task`` 2.3627117 then 2.3627119): two values
        at one step and one timestamp, which MLflow's logged model cannot take — linking the run's metrics
        of the final step to it failed on SQLite's UNIQUE constraint, and the run lost its model."""
        points = self.history.get(key)
        if not points or points[-1][0] != step:
            return False
        for i in range(len(self._pending) - 1, -1, -1):
            if self._pending[i][0] == key and self._pending[i][2] == step:  # not sent yet: the later value
                self._pending[i] = (key, value, step)
                points[-1] = (step, value)
                break
        return True

    def set_tags(self, tags: Dict[str, Any]) -> None:
        """Tag the run now (tags are rare and must survive a crash that follows)."""
        if self.client is not None:
            for key, value in tags.items():
                store.set_tag(self.client, self.run_id, key, value)

    def flush(self, synchronous: bool = False) -> None:
        """Send the pending points. A batch handed to the background writer is taken off the pending list
        with Ctrl-C and SIGTERM held, so that the run's close never sends it again; a synchronous send
        (the close's) is not held, so a second Ctrl-C still stops a store that does not answer."""
        with held_signals.held():
            points, self._pending = self._pending, []
            if points and self.client is not None and not synchronous:
                self._writing += store.log_metrics(self.client, self.run_id, points, synchronous=False)
        if points and self.client is not None and synchronous:
            store.log_metrics(self.client, self.run_id, points)

    def once_written(self, action: Callable[[], None]) -> None:
        """Run ``action`` once every point added so far is in the store, and only if it got there (at
        once without a store): on the background writer, after the batches sent before it. A
        checkpoint is committed this way, so that a kill (SIGKILL, the OOM killer) never leaves a
        checkpoint of steps whose points were lost with the process: the resumed run records from
        its checkpoint's step on, and those points would be missing."""
        self.flush()
        if self.client is None:
            action()
            return
        sent = list(self._writing)

        def when_written() -> None:
            if all(not future.cancelled() and future.exception() is None for future in sent):
                action()

        with held_signals.held():  # handed over and noted together, as a batch is (flush)
            self._writing.append(store.after_pending_writes(when_written))

    def close(self) -> None:
        """Send what is pending and wait until every batch is written."""
        self.flush(synchronous=True)
        writing, self._writing = self._writing, []
        if self.client is not None:
            store.wait_all(writing)


class RunRecorder(IntervalCallback):
    """Samples metrics and weights every ``every_n_steps`` steps into a sink, and the weight drift
    every ``drift_every_n_steps`` (see the module docstring)."""

    def __init__(self, sink: MetricSink, every_n_steps: int, drift: bool = True,
                 drift_every_n_steps: int = 100, resumed_drift: Optional[List[np.ndarray]] = None) -> None:
        super().__init__(every_n_steps)
        self.sink = sink
        self.track_drift = drift
        self.drift_every_n_steps = drift_every_n_steps
        self.drift: Optional[WeightDrift] = None
        self._last_sampled = -1
        self._drift_measured: Optional[int] = None
        self._resumed_drift = resumed_drift

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        super().on_train_begin(logs)
        step_values.forget(self.model)  # the rate at step 0 is read now: it may have been set since the last fit
        self._drift_measured = None
        if self.track_drift:
            self.drift = WeightDrift(weighted_layers(self.model))
            self.drift.start()
            if self._resumed_drift:  # a resumed run: the references of its first weights, kept in its checkpoint
                self.drift.restore(self._resumed_drift[:-1])
                self._drift_measured = int(self._resumed_drift[-1])
        self.sink.add({**tracked_weights(self.model), **learning_rates(self.model)}, step=0)

    def drift_state(self) -> DriftValues:
        """What a checkpoint keeps of the drift (empty without drift): its references (variables, read
        as the checkpoint writes them) and the step of its last measurement."""
        if self.drift is None:
            return DriftValues([], [])
        initial, changing = self.drift.state_values()
        return DriftValues(initial, [*changing, np.asarray(-1 if self._drift_measured is None else self._drift_measured)])

    def on_steps_done(self, previous_step: int, logs: Dict[str, Any]) -> None:
        gradients = getattr(self.model, "gradient_diagnostics", lambda: None)()
        if gradients is not None:
            self.sink.add(gradients[1], step=gradients[0])
        in_step = getattr(self.model, "step_gradients", None)  # a step of its own's: lossexp.training.step_gradients
        for step, values in in_step.read() if in_step is not None else ():
            self.sink.add(values, step=step)
        if previous_step == 0:  # start-up as felt: interpreter, imports (a process's first run), data, model,
            started = startup_seconds()  # tracing, first call
            if started is not None:
                self.sink.add({metric_names.STARTUP: started}, step=self.step)

    def on_interval(self, logs: Dict[str, Any]) -> None:
        self._sample(logs)

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self._last_sampled != self.step:
            self._sample({})
        if self.drift is not None and self._drift_measured != self.step and _averages_weights(self.model):
            self._measure_drift()  # the trained weights': fit swaps the optimizer's average in before training ends
        self.sink.add({**(logs or {}), "epoch": epoch + 1}, step=self.step)
        self.sink.flush()

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.drift is not None and self._drift_measured != self.step:
            self._measure_drift()  # the drift the run ended with (under use_ema measured at the last epoch's end)
        self.sink.add(ema_weights(self.model), step=self.step)
        self.sink.close()

    def _drift_due(self) -> bool:
        """The first sample, then the first one in each new block of ``drift_every_n_steps`` steps."""
        every, last = self.drift_every_n_steps, self._drift_measured
        return last is None or self.step // every > last // every

    def _measure_drift(self) -> None:
        self.sink.add(self.drift.measure(self.step), step=self.step)
        self._drift_measured = self.step

    def _sample(self, logs: Dict[str, Any]) -> None:
        values = {key: value for key, value in logs.items() if np.isscalar(value) or np.ndim(value) == 0}
        carried = step_values.last(self.model)  # what the last call ended with, if its step carries it
        with step_values.lent_to_weightings(self.model, carried):
            values.update(tracked_weights(self.model))
        rates = {key: value for key, value in (carried or {}).items() if key.split("/")[0] == metric_names.LEARNING_RATE}
        values.update(_floats(rates) if carried is not None else learning_rates(self.model))
        self.sink.add(values, step=self.step)
        if self.drift is not None and self._drift_due():
            self._measure_drift()
        self._last_sampled = self.step


def tracked_weights(model: keras.Model) -> Dict[str, float]:
    """The model's ``weight/<c>`` and ``weight/coef/<c>`` values now, as floats (none for plain Keras)."""
    return _floats(getattr(model, "tracked_weights", lambda: {})())


def _averages_weights(model: keras.Model) -> bool:
    """Whether the model's optimizer keeps a moving average of the weights (``use_ema``), which Keras' ``fit``
    puts into the model after the last epoch and before ``on_train_end``: the drift taken then was the
    average's (``from_init`` 0.24 where the trained weights' was 0.49: Adam 0.05, momentum 0.9, 8 steps), the
    one point of the series not of the trained weights."""
    return bool(getattr(getattr(model, "optimizer", None), "use_ema", False))


def ema_weights(model: keras.Model) -> Dict[str, float]:
    """``weight_ema/…`` of the components' weights (``weight/<c>``, ``weight/coef/<c>``, …) when the optimizer
    keeps a moving average of the weights (``use_ema``), read as training ends: Keras has then put the
    average into the model (``finalize_variable_values``), so these are the values the saved model holds,
    where ``weight/coef/<c>`` at the last step is the last update's (0.0061 beside the saved 0.0093,
    Adam at 0.05 for 10 steps). None without ``use_ema``."""
    composition = getattr(model, "composition", None)
    if composition is None or not _averages_weights(model):
        return {}
    return {metric_names.ema(key): value for key, value in _floats(composition.tracked_weights()).items()
            if not metric_names.is_component_state(key)}  # non-trainable: the optimizer keeps no average of it


def learning_rates(model: keras.Model) -> Dict[str, float]:
    """The model's optimizers' ``learning_rate`` now, as floats (none for plain Keras)."""
    return _floats(getattr(model, "learning_rates", lambda: {})())


def _floats(values: Dict[str, Any]) -> Dict[str, float]:
    return {key: float(keras.ops.convert_to_numpy(value)) for key, value in values.items()}


def weighted_layers(model: keras.Model) -> Dict[str, List[Any]]:
    """Layers of the model's network that own trainable weights, by name."""
    network = getattr(model, "network", model)
    return {layer.name: list(layer.trainable_weights) for layer in network.layers if layer.trainable_weights}
