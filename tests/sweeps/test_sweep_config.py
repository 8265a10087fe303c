"""The sweep's config: objective validated up front, swept keys and the parent's name from the
composed Hydra config, the callback registered and joblib defaulting to 2 jobs."""
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import read_write

from lossexp import CONF_DIR
from lossexp.errors import ConfigError
from lossexp.precheck import check_jobs
from lossexp.sweeps.callback import parent_name, swept_keys


def _hydra_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_a_bad_objective_direction_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="Unknown objective.direction 'up': valid choices are maximize, minimize"):
        check_jobs(["objective.direction=up"], multirun=False, config_name=None)
    with pytest.raises(ConfigError, match="Unknown key objective.metrik"):
        check_jobs(["objective.metrik=val_loss"], multirun=False, config_name=None)


def test_swept_keys_and_parent_name_come_from_the_sweep_overrides():
    cfg = _hydra_config()
    with read_write(cfg.hydra.overrides):  # as Hydra records a multirun's command line
        cfg.hydra.overrides.task = ["loss=[hist_avg,activity],[coef]", "optimizer.learning_rate=0.1,0.01",
                                    "trainer.epochs=1"]
    keys = swept_keys(cfg)
    assert keys == ["loss", "optimizer.learning_rate"]
    assert parent_name(cfg, keys).endswith("· loss=hist_avg+activity,coef optimizer.learning_rate=0.1,0.01")
    assert cfg.hydra.callbacks.sweep_tracker._target_ == "lossexp.sweeps.callback.SweepTracker"


def test_optuna_weights_searches_component_weights_with_lossexps_sweeper():
    cfg = _hydra_config("hparams_search=optuna_weights", "hydra.sweeper.pruner=median")
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.lossexp_sweeper.optuna_sweeper.OptunaSweeper"
    assert (cfg.hydra.sweeper.sampler, cfg.hydra.sweeper.pruner, cfg.hydra.sweeper.seed) == ("tpe", "median", 0)
    assert cfg.hydra.sweeper.storage is None and cfg.hydra.sweeper.study_name is None  # beside the store; fresh
    assert swept_keys(cfg) == ["loss.hist_avg.weight", "loss.activity.weight"]
    assert "log" in cfg.hydra.sweeper.params["loss.activity.weight"]


def test_an_optuna_sweeps_study_and_its_checks(tmp_path, monkeypatch):
    from lossexp.sweeps.optuna_sweep import location

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store beside the working directory
    cfg = _hydra_config("hparams_search=optuna_weights", "hydra.sweep.dir=multirun/2026-12-02/04-30-00")
    assert location(cfg) == (f"sqlite:///{tmp_path}/outputs/optuna.db", "lossexp-2026-12-02_04-30-00")
    with pytest.raises(ConfigError, match="Unknown key loss.activity.wieght in hydra.sweeper.params: valid keys are "
                                          "loss.activity.layers"):
        check_jobs(["hparams_search=optuna_weights", "loss.activity.wieght=interval(0.1,1)"], multirun=True)
    with pytest.raises(ConfigError, match="Invalid value for loss.activity.weight: .*got -1.0 \\(at an end of "
                                          "hydra.sweeper.params"):
        check_jobs(["hparams_search=optuna_weights", "loss.activity.weight=interval(-1,1)"], multirun=True)


def test_joblib_launcher_defaults_to_two_jobs():
    cfg = _hydra_config("hydra/launcher=joblib")
    assert cfg.hydra.launcher.n_jobs == 2 and cfg.hydra.launcher._target_.endswith("JoblibLauncher")


def test_another_compositions_search_space_is_the_sweepers_alone_as_optuna_weights_says():
    """The comment of conf/hparams_search/optuna_weights.yaml is a command that runs: its params, a
    field of the sweeper's schema, cannot be deleted (said in one line with OmegaConf's reason), and the
    sweeper alone takes a search space on the command line or in hydra.sweeper.params."""
    comment = (CONF_DIR / "hparams_search" / "optuna_weights.yaml").read_text()
    assert "'~hydra.sweeper.params'" not in comment
    with pytest.raises(ConfigError, match="^Error merging override ~hydra.sweeper.params: LossexpOptunaSweeperConf "
                                          r"\(DictConfig\) does not support deletion$"):
        check_jobs(["hparams_search=optuna_weights", "~hydra.sweeper.params"], multirun=True, destinations=False)
    alone = ["hydra/sweeper=lossexp_optuna", "loss=[coef,activity]"]
    check_jobs([*alone, "loss.activity.weight=tag(log, interval(1e-4, 1))",
                "optimizer.learning_rate=tag(log, interval(1e-4, 1e-2))"], multirun=True, destinations=False)
    cfg = _hydra_config(*alone, '+hydra.sweeper.params={loss.activity.weight: "tag(log, interval(1e-4, 1))"}')
    assert dict(cfg.hydra.sweeper.params) == {"loss.activity.weight": "tag(log, interval(1e-4, 1))"}
    assert swept_keys(cfg) == ["loss.activity.weight"]


def test_an_optuna_option_under_the_basic_sweeper_says_which_sweeper_has_it():
    """``-m … hydra.sweeper.n_trials=8`` without choosing Optuna's sweeper was ``Could not override
    'hydra.sweeper.n_trials'.``: OmegaConf says a structured config lacks a key in other words than
    a struct's, so it was not read as an unknown key."""
    with pytest.raises(ConfigError, match=r"^Unknown key hydra.sweeper.n_trials: valid keys are _target_, "
                                          r"max_batch_size, params; it is an option of hydra/sweeper=lossexp_optuna "
                                          r"\(or hparams_search=…\), not of this sweep's sweeper \(in sweep job: "
                                          r"loss.activity.weight=0.1 hydra.sweeper.n_trials=2\)$"):
        check_jobs(["loss.activity.weight=0.1,1", "hydra.sweeper.n_trials=2"], multirun=True)
    with pytest.raises(ConfigError, match=r"^Unknown key hydra.sweeper.ntrials: valid keys are _target_, "
                                          r"max_failure_rate, n_jobs, n_trials, params, pruner, .*study_name, trial$"):
        check_jobs(["hydra/sweeper=lossexp_optuna", "hydra.sweeper.ntrials=3"], multirun=False)


def test_a_grid_the_config_defines_is_checked_job_by_job(tmp_path, monkeypatch):
    """A project's ``conf/grid/NAME.yaml`` (``hydra.sweeper.params``): each of its jobs is composed and validated
    before the sweep starts (only the command line's combinations were, so its bad value failed mid-sweep)."""
    (tmp_path / "conf" / "grid").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[tool.lossexp]\n")
    (tmp_path / "conf" / "grid" / "rates.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      trainer.epochs: 1,0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"trainer\.epochs.*\(in sweep job: .*trainer\.epochs=0"):
        check_jobs(["+grid=rates", "model=mlp"], multirun=True, destinations=False)
    jobs = check_jobs(["+grid=rates", "trainer.epochs=2,3"], multirun=True, destinations=False)  # the command's win
    assert [job.config.trainer.epochs for job in jobs] == [2, 3]
