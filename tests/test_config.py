"""Every config under conf/ composes with Hydra and validates; schemas reject typos early."""
import itertools

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lossexp import CONF_DIR
from lossexp.config import CNNConfig, LossexpConfig, validate
from lossexp.errors import ConfigError
from lossexp.losses.registry import available


def group(name):
    return sorted(p.stem for p in (CONF_DIR / name).glob("*.yaml"))


def compose_with(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


COMBOS = [
    (model, data, optimizer, trainer)
    for model, data, optimizer, trainer in itertools.product(group("model"), group("data"), group("optimizer"),
                                                             group("trainer"))
    if not (model == "cnn" and data == "regression")  # cnn needs images
]


@pytest.mark.parametrize("model, data, optimizer, trainer", COMBOS)
def test_every_group_option_composes_and_validates(model, data, optimizer, trainer):
    cfg = compose_with(f"model={model}", f"data={data}", f"optimizer={optimizer}", f"trainer={trainer}")
    config = validate(cfg)
    assert isinstance(config, LossexpConfig)
    assert config.model.name == model and config.data.name == data and config.optimizer.name == optimizer


@pytest.mark.parametrize("component", available())
def test_every_loss_yaml_composes_under_its_own_name(component):
    cfg = compose_with(f"loss=[{component}]")
    assert list(cfg.loss) == [component]
    assert "weight" in cfg.loss[component]


def test_all_components_compose_together():
    cfg = compose_with("loss=[" + ",".join(available()) + "]")
    assert sorted(cfg.loss) == available()


def test_empty_composition():
    assert validate(compose_with("loss=[]")).loss == {}


def test_defaults_are_the_documented_demo():
    config = validate(compose_with())
    assert isinstance(config.model, CNNConfig)
    assert list(config.loss) == ["hist_avg", "activity"]
    assert config.data.name == "digits"


@pytest.mark.parametrize("overrides, message", [
    (["trainer.batch_size=0"], "Invalid value for trainer.batch_size: expected an integer >= 1, got 0"),
    (["trainer.validation_split=1.5"], "trainer.validation_split"),
    (["trainer.epochs=three"], "Invalid value for trainer.epochs"),
    (["+model.depth=3"], "Unknown key model.depth: valid keys are"),
    (["optimizer.learning_rate=-1"], "optimizer.learning_rate"),
    (["model.hidden_units=[]", "model=mlp"], "model.hidden_units"),
    # weights are checked here, before any component (and TensorFlow) is imported
    (["loss=[coef]", "loss.coef.weight.parametrization=sigmoid"],
     "Invalid value for loss.coef.weight.parametrization: expected one of raw, softplus, exp, uncertainty, dual, "
     "got 'sigmoid'"),
    (["loss=[hist_avg]", "loss.hist_avg.weight={schedule: linear, steps: 0}"],
     "Invalid value for loss.hist_avg.weight.steps: expected a finite number > 0.0, got 0"),
    (["loss=[activity]", "loss.activity.weight=-1"],
     "Invalid value for loss.activity.weight: expected a finite number >= 0.0, got -1"),
])
def test_validation_names_the_bad_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(compose_with(*overrides))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_model_name_lists_choices():
    cfg = compose_with()
    bad = OmegaConf.merge(cfg, {"model": {"name": "resnet"}})
    with pytest.raises(ConfigError, match="Unknown model 'resnet': valid choices are cnn, mlp"):
        validate(bad)
