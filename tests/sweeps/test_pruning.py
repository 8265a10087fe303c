"""A trial reports its objective at every epoch end and stops training when the pruner says so
(a real Keras fit and a real Optuna study in SQLite, as a sweep's job sees it)."""
from pathlib import Path

import numpy as np
import optuna

from lossexp.sweeps import study as studies
from lossexp.sweeps.pruning import TrialReporter


class _Sink:
    def __init__(self):
        self.tags = {}

    def set_tags(self, tags):
        self.tags.update(tags)


def _fit(reporter, epochs: int = 6):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    return model.fit(x, x[:, :1], validation_split=0.25, epochs=epochs, verbose=0, callbacks=[reporter])


def test_a_pruned_trial_stops_after_the_epoch_it_was_pruned_at(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = studies.open_study(url, "s", ["minimize"], pruner=studies.make_pruner("median", {"n_startup_trials": 1}))
    finished = study.ask()
    for epoch in range(1, 7):
        finished.report(1e-6, epoch)  # an earlier trial that did far better at every epoch
    study.tell(finished, 1e-6)
    storage = studies.storage(url)  # the job opens the study through the storage, as in another process
    pruner = studies.make_pruner("median", {"n_startup_trials": 1})
    loaded = optuna.load_study(study_name="s", storage=storage, pruner=pruner)
    trial = optuna.trial.Trial(loaded, study.ask()._trial_id)
    sink = _Sink()
    reporter = TrialReporter(trial, "val_loss", sink, prune=True)
    history = _fit(reporter)
    assert len(history.history["val_loss"]) == 1 and reporter.pruned_epoch == 1
    assert sink.tags == {"optuna.state": "PRUNED", "optuna.pruned_epoch": 1}
    frozen = study._storage.get_trial(trial._trial_id)
    assert frozen.user_attrs[studies.PRUNED_EPOCH] == 1
    assert frozen.intermediate_values == {1: history.history["val_loss"][0]}


def test_without_a_pruner_nothing_is_reported_and_training_runs_on(tmp_path: Path):
    study = studies.open_study(f"sqlite:///{tmp_path}/optuna.db", "s", ["minimize", "minimize"])
    trial = study.ask()
    history = _fit(TrialReporter(trial, "val_loss", _Sink(), prune=False), epochs=3)
    assert len(history.history["loss"]) == 3 and study._storage.get_trial(trial._trial_id).intermediate_values == {}
