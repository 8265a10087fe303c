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


def test_optuna_weights_searches_component_weights_in_the_objectives_direction():
    cfg = _hydra_config("hparams_search=optuna_weights", "objective.direction=maximize",
                        "objective.metric=val_accuracy")
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.hydra.sweeper.storage is None
    assert swept_keys(cfg) == ["loss.hist_avg.weight", "loss.activity.weight"]
    assert "log" in cfg.hydra.sweeper.params["loss.activity.weight"]


def test_joblib_launcher_defaults_to_two_jobs():
    cfg = _hydra_config("hydra/launcher=joblib")
    assert cfg.hydra.launcher.n_jobs == 2 and cfg.hydra.launcher._target_.endswith("JoblibLauncher")
