"""A sweep trial's side of Optuna: report the objective at every epoch end, stop when pruned.

In a job of ``hydra/sweeper=lossexp_optuna`` (``hydra.sweeper.trial`` set), :func:`trial_callbacks`
opens the study through its storage — so trials in joblib, submitit or Ray workers report like
those in the launching process — and returns a Keras callback that reports ``objective.metric``
at each epoch end (step = epochs done) and asks the pruner. A pruned trial stops training after
that epoch: its run ends FINISHED as usual, tagged ``optuna.state=PRUNED`` and
``optuna.pruned_epoch``; the trial's user attribute ``lossexp.pruned_epoch`` tells the sweeper to
record the trial PRUNED. The trial also learns its MLflow run (``mlflow.run_id``). Several
objectives cannot be pruned (Optuna's pruners are single-objective): the trial only reports.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import keras

from lossexp.sweeps import study as studies
from lossexp.sweeps.objective import objective_value, objectives

PRUNED_TAGS = ("optuna.state", "optuna.pruned_epoch")


class TrialReporter(keras.callbacks.Callback):
    """Reports ``metric`` to ``trial`` at each epoch end and stops training when it is pruned."""

    def __init__(self, trial: Any, metric: str, sink: Any, prune: bool) -> None:
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.sink = sink
        self.prune = prune
        self.pruned_epoch: Optional[int] = None

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if not self.prune:
            return
        value = objective_value({key: [v] for key, v in (logs or {}).items()}, self.metric)
        self.trial.report(value, step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_epoch = epoch + 1
            self.trial.set_user_attr(studies.PRUNED_EPOCH, self.pruned_epoch)
            self.sink.set_tags(dict(zip(PRUNED_TAGS, ("PRUNED", self.pruned_epoch))))
            print(f"lossexp: trial #{self.trial.number} pruned after epoch {self.pruned_epoch} "
                  f"({self.metric}={value:.6g})")
            self.model.stop_training = True


def _trial_settings() -> Optional[Any]:
    """``hydra.sweeper`` of this job when it is a trial of lossexp's Optuna sweeper; else None."""
    from hydra.core.hydra_config import HydraConfig

    from lossexp.sweeps.optuna_sweep import OPTUNA_SWEEPER

    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if not str(sweeper.get("_target_", "")).startswith(OPTUNA_SWEEPER) or sweeper.get("trial") is None:
        return None
    return sweeper


def trial_callbacks(objective: Any, tracked: Any) -> List[keras.callbacks.Callback]:
    """``[TrialReporter]`` in an Optuna sweep's job, ``[]`` anywhere else (see the module docstring)."""
    sweeper = _trial_settings()
    if sweeper is None:
        return []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = studies.storage(str(sweeper.storage))
    study = optuna.load_study(study_name=str(sweeper.study_name), storage=storage,
                              pruner=studies.make_pruner(str(sweeper.pruner), sweeper.get("pruner_options")))
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, int(sweeper.trial))
    trial = optuna.trial.Trial(study, trial_id)
    if tracked.run_id:
        trial.set_user_attr(studies.RUN_ID, tracked.run_id)
    metrics = objectives(objective)
    prune = len(metrics) == 1 and str(sweeper.pruner) != "none"
    return [TrialReporter(trial, metrics[0][0], tracked.sink, prune)]
