"""The training state at each epoch's end, so that a stopped run continues (``lossexp train --resume``).

A long run meets a scheduler's time limit, a Ctrl-C, the OOM killer or a reboot. With
``trainer.checkpoint: true`` (the default) the :class:`Checkpoint` callback writes, at the end of
every epoch but ``fit``'s last (the run then ends, and deletes it once recorded), into ``<run directory>/checkpoint/``:

* ``state-<epochs>.npz`` — every variable the next step reads: the network's weights and non-trainable
  state (normalisation statistics, dropout's random-generator state), the components' state
  (``hist_avg``'s averages, trainable coefficients, a weighting method's memory), every optimizer's
  slots and step count; the weight-drift references (the last snapshot and the mean of the
  snapshots), and with ``trainer.patience``, early stopping's best epoch's weights;
* ``drift-initial.npz`` — drift's θ₀, written at a run's first save only (it never changes), so that
  ``weight_drift/from_init`` still measures from the run's first weights;
* ``progress.json`` — the epochs finished, the global step, the state file of that epoch and early
  stopping's memory (best value, epoch and logs, epochs since), so that a resumed run's best epoch may
  be one before it stopped, the memory of Keras' stateful callbacks among the user's
  (:mod:`lossexp.training.callback_memory`), and the players whose in-step gradient sample overflowed
  at the loss scale and is retried at the next step (:meth:`~lossexp.training.step_gradients.StepGradients.retrying`).

Each is written to a temporary name and renamed, the state first (``state-<epochs>.npz``), then
the progress naming it, then the previous epoch's state removed: a kill at any moment leaves a
progress file and the state it names, whole. The directory is deleted once the run is recorded whole (its
model and plots too: :meth:`Checkpoint.discard`); a run that stopped keeps it. :func:`restore` puts a model built from the same config back in that state. Keras'
``BackupAndRestore`` saves the same at the same moments but not the random generators' state nor
anything outside the model (the drift references).
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import keras
import numpy as np

from lossexp.errors import ConfigError
from lossexp.training.callback_memory import memory as callback_memory
from lossexp.training.checkpoint_files import DRIFT_INITIAL, PROGRESS, STATE_PREFIX, progress, unreadable
from lossexp.training.drift import DriftValues
from lossexp.training.early_stopping import Memory
from lossexp.training.state_file import write_arrays
from lossexp.training.step_count import batches_trained


def optimizers(model: keras.Model) -> List[Any]:
    """The model's optimizers: Keras' ``model.optimizer`` and any other held as an attribute (a
    GAN's second player's), in a fixed order."""
    found = [model.optimizer] if getattr(model, "optimizer", None) is not None else []
    for name in sorted(vars(model)):
        value = vars(model)[name]
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not seen for seen in found):
            found.append(value)
    return found


def state_variables(model: keras.Model) -> List[Any]:
    """Every variable of the training state, in an order the same config always builds again."""
    for optimizer in optimizers(model):
        if not optimizer.built:  # its slots exist from the first step; a restore needs them now
            optimizer.build(model.trainable_variables)
    return list(model.variables) + [v for optimizer in optimizers(model) for v in optimizer.variables]


class Checkpoint(keras.callbacks.Callback):
    """Writes the training state at each epoch's end (see the module docstring); ``drift_state``
    returns the weight-drift references to keep beside it (the recorder makes them at train begin;
    :class:`~lossexp.training.drift.DriftValues` of arrays, or of variables read as they are written:
    :mod:`lossexp.training.state_file`), whose unchanging θ₀ this callback writes at its first save only.

    ``once_recorded`` (the run's :meth:`lossexp.tracking.callback.MetricSink.once_written`; the
    callback then follows the recorder) defers the progress file until the epoch's points are in the
    store: a resumed run records from its checkpoint's step on, so a checkpoint ahead of the store
    (a SIGKILL while the epoch's points were being written) left those steps unrecorded for good.
    ``early_stopping`` gives early stopping's :class:`~lossexp.training.early_stopping.Memory` to keep
    (the callback runs before this one, so that the memory is of the epoch saved); ``callbacks``, the
    user's callbacks, whose :func:`~lossexp.training.callback_memory.memory` is kept (they run before it too).
    """

    def __init__(self, directory: Path, drift_state: Optional[Callable[[], DriftValues]] = None,
                 once_recorded: Optional[Callable[[Callable[[], None]], None]] = None,
                 early_stopping: Optional[Callable[[], Memory]] = None, callbacks: Sequence[Any] = ()) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.drift_state = drift_state
        self.once_recorded = once_recorded
        self.early_stopping = early_stopping
        self.callbacks = list(callbacks)
        self._initial_written = False  # by this callback: a resumed run's process writes the same θ₀ again once

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        """Save, unless the epoch's loss is not finite (a state not worth continuing from: the
        previous epoch's stays) or the epoch is ``fit``'s last: the run ends after it and deletes the
        checkpoint (a stop at its very end continues from the epoch before)."""
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            return
        if epoch + 1 >= (self.params or {}).get("epochs", epoch + 2):
            return
        # the batches trained: the optimizer's count leaves out the steps a loss scale skipped
        batches = (self.params or {}).get("steps") or 0
        self.save(epoch + 1, max(int(keras.ops.convert_to_numpy(batches_trained(self.model.optimizer))),
                                 (epoch + 1) * batches))

    def save(self, epochs: int, step: int) -> None:
        """The state as ``state-<epochs>.npz``, then (once the epoch is recorded, with
        ``once_recorded``) the progress naming it and the older states removed: a kill at any moment
        leaves a progress file and the state it names, whole."""
        self.directory.mkdir(parents=True, exist_ok=True)
        variables = state_variables(self.model)
        initial, drift = self.drift_state() if self.drift_state is not None else DriftValues([], [])
        if initial and not self._initial_written:
            staged_initial = self.directory / f"{DRIFT_INITIAL}.partial.npz"
            write_arrays(staged_initial, ((f"drift_{i}", value) for i, value in enumerate(initial)))
            os.replace(staged_initial, self.directory / DRIFT_INITIAL)
            self._initial_written = True
        memory = self.early_stopping() if self.early_stopping is not None else None
        best = memory.best_weights if memory is not None else []
        name = f"{STATE_PREFIX}{epochs}.npz"
        staged = self.directory / f"{name}.partial.npz"
        # each variable read as it is written, not the whole state copied to the host first
        write_arrays(staged, [*((f"arr_{i}", v) for i, v in enumerate(variables)),
                              *((f"drift_{i}", value) for i, value in enumerate(drift)),
                              *((f"{BEST_PREFIX}{i}", value) for i, value in enumerate(best))])
        os.replace(staged, self.directory / name)
        gradients = _step_gradients(self.model)
        commit = functools.partial(self._commit, epochs, step, name, len(variables), bool(initial),
                                   memory.summary() if memory is not None else None, callback_memory(self.callbacks),
                                   gradients.retrying() if gradients is not None else [])
        if self.once_recorded is not None:
            self.once_recorded(commit)
        else:
            commit()

    def _commit(self, epochs: int, step: int, name: str, variables: int, initial: bool,
                early_stopping: Optional[Dict[str, Any]], callbacks: List[Dict[str, Any]], retrying: List[str]) -> None:
        """The progress naming ``name``, then the states of earlier epochs removed (not a later one's:
        with ``once_recorded`` the next epoch's may be written already)."""
        staged_progress = self.directory / f"{PROGRESS}.partial"
        staged_progress.write_text(json.dumps({"epochs": epochs, "step": step, "state": name, "variables": variables,
                                               **({"drift_initial": DRIFT_INITIAL} if initial else {}),
                                               **({"early_stopping": early_stopping} if early_stopping else {}),
                                               **({"callbacks": callbacks} if callbacks else {}),
                                               **({GRADIENTS_RETRY: retrying} if retrying else {})}))
        os.replace(staged_progress, self.directory / PROGRESS)
        for older in self.directory.glob(f"{STATE_PREFIX}*.npz"):
            number = older.name[len(STATE_PREFIX):-len(".npz")]
            if number.isdigit() and int(number) < epochs:
                older.unlink()

    def discard(self) -> None:
        """The run finished — trained, its model and artifacts recorded —: nothing to continue. Not at
        training's end: a stop while the run records its model and plots (seconds) left a KILLED run
        without them and without a checkpoint, every epoch lost; it continues from the epoch before the
        last now."""
        shutil.rmtree(self.directory, ignore_errors=True)


class Restored(NamedTuple):
    """What a checkpoint keeps beside the model's variables."""

    #: the weight-drift references
    drift: List[np.ndarray]
    #: early stopping's memory (None: the run had no ``trainer.patience``, or a checkpoint from before it was kept)
    early_stopping: Optional[Memory]
    #: the user's callbacks' memory (:func:`lossexp.training.callback_memory.memory`; empty before it was kept)
    callbacks: Sequence[Dict[str, Any]] = ()


#: the names of early stopping's best weights in a state file
BEST_PREFIX = "best_"
#: the progress file's key of the players whose gradient sample is retried at the next step
GRADIENTS_RETRY = "gradients_retry"


def _step_gradients(model: keras.Model) -> Any:
    """The model's in-step gradient diagnostics (:mod:`lossexp.training.step_gradients`), or None."""
    from lossexp.training.step_gradients import StepGradients

    gradients = getattr(model, "step_gradients", None)
    return gradients if isinstance(gradients, StepGradients) else None


def _drift_arrays(path: Path) -> List[np.ndarray]:
    """The ``drift_<i>`` arrays of the file ``path``, in order; a missing or damaged file is one line."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return [saved[f"drift_{i}"] for i in range(len(saved.files))]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise unreadable(path, f"{type(error).__name__}: {error}") from None


def restore(model: keras.Model, directory: Path) -> Restored:
    """Assign the checkpoint's variables to ``model`` (built and compiled from the run's config);
    returns what is kept with them. A model of other variables is one line."""
    written = progress(directory)
    path = Path(directory) / written["state"]
    # drift's θ₀ apart, written once (a checkpoint from before it was kept it in the state file)
    initial = [] if "drift_initial" not in written else _drift_arrays(Path(directory) / str(written["drift_initial"]))
    try:
        with np.load(path, allow_pickle=False) as saved:
            count = {prefix: sum(name.startswith(prefix) for name in saved.files) for prefix in ("drift_", BEST_PREFIX)}
            values = [saved[f"arr_{i}"] for i in range(len(saved.files) - sum(count.values()))]
            drift = initial + [saved[f"drift_{i}"] for i in range(count["drift_"])]
            best = [saved[f"{BEST_PREFIX}{i}"] for i in range(count[BEST_PREFIX])]
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:  # a disk's damage, a copy cut short
        raise unreadable(path, f"{type(error).__name__}: {error}") from None
    variables = state_variables(model)
    shapes = [tuple(v.shape) for v in variables]
    if len(values) != len(variables) or any(value.shape != shape for value, shape in zip(values, shapes)):
        raise ConfigError(f"Invalid checkpoint {directory}: it holds {len(values)} variables that do not fit the "
                          f"{len(variables)} of the model the run's config builds (was its code changed?)")
    for variable, value in zip(variables, values):
        variable.assign(value)
    memory, callbacks = written.get("early_stopping"), written.get("callbacks", [])
    if not isinstance(callbacks, list) or not all(isinstance(kept, dict) for kept in callbacks):
        raise unreadable(Path(directory) / PROGRESS, f"the callbacks' memory {str(callbacks)[:80]}")
    gradients, retrying = _step_gradients(model), written.get(GRADIENTS_RETRY, [])
    if gradients is not None:
        if not isinstance(retrying, list) or not set(retrying) <= set(gradients.players):
            raise unreadable(Path(directory) / PROGRESS, f"the gradient samples retried {str(retrying)[:80]}")
        gradients.retry(retrying)
    if memory is None:
        return Restored(drift, None, callbacks)
    try:
        return Restored(drift, Memory(best=memory["best"], best_epoch=int(memory["best_epoch"]),
                                      wait=int(memory["wait"]), best_logs=dict(memory["best_logs"]),
                                      best_weights=best), callbacks)
    except (KeyError, TypeError, ValueError) as error:
        raise unreadable(Path(directory) / PROGRESS, f"early stopping's memory {str(memory)[:80]}: {error!r}") from None

