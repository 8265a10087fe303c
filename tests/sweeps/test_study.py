"""The study: where it is stored, samplers and pruners by name, directions of a resumed study,
and trials a dead sweep left RUNNING (a real SQLite storage in a temporary directory)."""
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lossexp.errors import ConfigError
from lossexp.sweeps import study as studies


def test_storage_lives_beside_the_tracking_store(tmp_path: Path):
    store = f"sqlite:///{tmp_path}/outputs/mlflow.db"
    assert studies.resolve_storage(None, store, tmp_path) == f"sqlite:///{tmp_path}/outputs/optuna.db"
    assert studies.resolve_storage(None, "http://127.0.0.1:5000", tmp_path / "w") == \
        f"sqlite:///{tmp_path}/w/outputs/optuna.db"
    assert studies.resolve_storage("sqlite:///s.db", store, tmp_path) == f"sqlite:///{tmp_path}/s.db"
    assert studies.resolve_storage("postgresql://h/db", store, tmp_path) == "postgresql://h/db"
    assert studies.default_study_name("lossexp", "outputs/multirun/2026-12-02/04-30-00") == \
        "lossexp-2026-12-02_04-30-00"


@pytest.mark.parametrize("name, cls", [("tpe", "TPESampler"), ("gp", "GPSampler"), ("cmaes", "CmaEsSampler"),
                                       ("random", "RandomSampler"), ("nsgaii", "NSGAIISampler")])
def test_samplers_by_name_take_the_seed(name: str, cls: str):
    sampler = studies.make_sampler(name, {}, 3)
    assert type(sampler).__name__ == cls
    assert studies.make_sampler("tpe", {}, 0)._multivariate is True  # lossexp's default


def test_grid_sampler_takes_the_grid_and_pruners_take_options():
    grid = studies.make_sampler("grid", None, 0, {"a": [1, 2]})
    assert type(grid).__name__ == "GridSampler" and grid._search_space == {"a": [1, 2]}
    assert type(studies.make_pruner("median", {"n_warmup_steps": 2})).__name__ == "MedianPruner"
    for name, cls in (("none", "NopPruner"), ("percentile", "PercentilePruner"),
                      ("successive_halving", "SuccessiveHalvingPruner"), ("hyperband", "HyperbandPruner")):
        assert type(studies.make_pruner(name, {})).__name__ == cls
    with pytest.raises(ConfigError, match="Unknown key hydra.sweeper.pruner_options.percentile for "
                                          "hydra.sweeper.pruner=median: valid keys are interval_steps"):
        studies.make_pruner("median", {"percentile": 5})
    with pytest.raises(ConfigError, match="Unknown hydra.sweeper.sampler 'bayes': valid choices are cmaes, gp, grid"):
        studies.check_names("bayes", "none")


def test_a_resumed_study_must_keep_its_directions(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    assert studies.existing_directions(url, "s") is None and not (tmp_path / "optuna.db").exists()  # not created
    studies.open_study(url, "s", ["minimize", "maximize"])
    assert studies.existing_directions(url, "s") == ["minimize", "maximize"]
    studies.check_directions(url, "s", ["minimize", "maximize"])
    with pytest.raises(ConfigError, match="study 's' in .* optimises minimize, maximize; this sweep's "
                                          "objective.directions are minimize"):
        studies.open_study(url, "s", ["minimize"])


def test_trials_a_dead_sweep_left_running_are_failed_and_asked_again(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    space = {"w": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study = studies.open_study(url, "s", ["minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    done = study.ask(space)
    study.tell(done, 1.0)
    left = study.ask(space)  # the sweep died here
    resumed = studies.open_study(url, "s", ["minimize"])
    assert [t.number for t in studies.recover_abandoned(resumed)] == [left.number]
    trials = resumed.get_trials()
    assert trials[left.number].state == TrialState.FAIL and trials[left.number].user_attrs[studies.ABANDONED]
    assert studies.counted(trials) == 1  # the abandoned trial does not count towards n_trials
    again = resumed.ask(space)
    assert again.params == left.params and again.user_attrs[studies.RETRY_OF] == left.number
