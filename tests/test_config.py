"""Every config under conf/ composes with Hydra and validates; schemas reject typos early."""
import itertools

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lossexp import CONF_DIR
from lossexp.config import LossexpConfig, validate
from lossexp.errors import ConfigError
from lossexp.registry import available as registered


def available():
    return registered("loss")


def group(name):
    return sorted(p.stem for p in (CONF_DIR / name).glob("*.yaml"))


def compose_with(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


#: parts whose configs name a file of the user's (their own end-to-end tests give one)
NEEDS_A_FILE = {"keras_file", "applications", "npz", "csv", "parquet", "images"}
COMBOS = [
    (model, data, trainer)
    for model, data, trainer in itertools.product(group("model"), group("data"), group("trainer"))
    if not {model, data} & NEEDS_A_FILE
    and (model == "gan") == (data == "ring")  # the GAN and its ring go together
    and (model == "point") == (data == "steps")  # a point trains on its components alone, one step per example
]


@pytest.mark.parametrize("model, data, trainer", COMBOS)
def test_every_group_option_composes_and_validates(model, data, trainer):
    cfg = compose_with(f"model={model}", f"data={data}", f"trainer={trainer}")
    config = validate(cfg)
    assert isinstance(config, LossexpConfig)
    assert config.model.name == model and config.data.name == data


@pytest.mark.parametrize("optimizer", group("optimizer"))
def test_every_optimizer_composes_validates_and_builds_with_its_yaml(optimizer):
    from lossexp.optimizers import build_optimizer

    config = validate(compose_with(f"optimizer={optimizer}", "optimizer.learning_rate=0.05"))
    built = build_optimizer(config.optimizer)
    assert float(built.learning_rate) == pytest.approx(0.05)
    assert set(config.optimizer.options) <= set(built.get_config())


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
    assert config.model.name == "cnn" and config.optimizer.name == "adam"
    assert list(config.loss) == ["hist_avg", "activity"]
    assert config.data.name == "digits"


@pytest.mark.parametrize("overrides, message", [
    (["trainer.batch_size=0"], "Invalid value for trainer.batch_size: expected an integer >= 1, got 0"),
    (["trainer.validation_split=1.5"], "trainer.validation_split"),
    (["trainer.epochs=three"], "Invalid value for trainer.epochs"),
    (["+model.depth=3"], "Unknown key model.depth: valid keys are"),
    (["optimizer.learning_rate=-1"], "optimizer.learning_rate"),
    (["model.hidden_units=[]", "model=mlp"], "model.hidden_units"),
    (["model=gan"], "Invalid value for data: expected generation data for model=gan (adversarial regime: "
                    "data=ring), got 'digits, classification data"),
    (["model=mlp", "data=ring"], "Invalid value for data: expected classification or regression or reconstruction "
                                 "or multi_output data for model=mlp (supervised regime"),
    (["model=mlp", "model.activation=3"], "Invalid value for model.activation: expected str, got 3"),
    (["data=npz"], "Missing value for data.path: data=npz requires it"),
    (["optimizer=adamw", "optimizer.learning_rate={schedule: cosine}"],
     "Unknown optimizer.learning_rate.schedule 'cosine': valid choices are cosine_decay"),
    (["+task.kind=x"], "Unknown key task.kind: valid keys are type, loss, metrics, from_logits, class_weight"),
    (["task.class_weight=even"], "Invalid value for task.class_weight: expected null, balanced or a mapping of class "
                                 "index to a weight >= 0, got 'even'"),
    (["task.class_weight={1: -2}"], "Invalid value for task.class_weight: expected null, balanced"),
    (["task.type=ranking"], "Unknown task.type 'ranking': valid choices are classification"),
    (["model=gan", "data=ring", "model.latent_dim=0"], "Invalid value for model.latent_dim"),
    (["model=gan", "data=ring", "model.generator_units=[]"], "Invalid value for model.generator_units"),
    (["model=gan", "data=ring", "data.std=0"], "Invalid value for data.std: expected a positive finite number"),
    (["model=gan", "data=ring", "data.radius=-1"], "Invalid value for data.radius"),
    # weights are checked here, before any component (and TensorFlow) is imported
    (["loss=[coef]", "loss.coef.weight.parametrization=sigmoid"],
     "Invalid value for loss.coef.weight.parametrization: expected one of raw, softplus, exp, uncertainty, dual, "
     "got 'sigmoid'"),
    (["loss=[hist_avg]", "loss.hist_avg.weight={schedule: linear, steps: 0}"],
     "Invalid value for loss.hist_avg.weight.steps: expected a finite number > 0.0, got 0"),
    (["loss=[activity]", "loss.activity.weight=-1"],
     "Invalid value for loss.activity.weight: expected a finite number >= 0.0, got -1"),
    (["trainer.shuffle=always"], "Unknown trainer.shuffle 'always': valid choices are each_epoch, none, once"),
    # Keras' optimizers check few of their values: these trained (clipnorm=0 clipped nothing, beta_1=3 and a
    # negative decay_rate diverged, the string 'no' turned Nesterov on)
    (["optimizer.clipnorm=0"], "Invalid value for optimizer.clipnorm: expected a positive finite number or null, got 0"),
    (["optimizer.beta_1=3"], "Invalid value for optimizer.beta_1: expected a number in [0, 1), got 3"),
    (["optimizer=sgd", "optimizer.nesterov='no'"], "Invalid value for optimizer.nesterov: expected bool, got 'no'"),
    (["optimizer.gradient_accumulation_steps=0"],
     "Invalid value for optimizer.gradient_accumulation_steps: expected an integer >= 2 or null, got 0"),
    (["optimizer.learning_rate={schedule: exponential_decay, initial_learning_rate: 0.1, decay_steps: 10, "
      "decay_rate: -1}"], "Invalid value for optimizer.learning_rate.decay_rate: expected a positive finite number"),
])
def test_validation_names_the_bad_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(compose_with(*overrides))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_model_name_lists_choices():
    cfg = compose_with()
    bad = OmegaConf.merge(cfg, {"model": {"name": "resnet"}})
    with pytest.raises(ConfigError, match="Unknown model 'resnet': valid choices are applications, cnn, gan, "
                                          "keras_file, mlp, point, vae"):
        validate(bad)


def test_a_group_yaml_without_its_name_is_one_line_naming_the_file(tmp_path):
    """A project's conf/model/my_net.yaml that forgot ``name: my_net``: the file named, not 'Unknown model None'."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_net.yaml").write_text("units: 16\n")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra.searchpath=[file://{tmp_path}]", "model=my_net"],
                      return_hydra_config=True)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert str(info.value).startswith("Missing value for model.name: the YAML of model=my_net "
                                      "(conf/model/my_net.yaml) must name the registered model it configures, "
                                      "e.g. name: my_net (registered: applications, cnn,")


@pytest.mark.parametrize("name", [n for n in group("data") if n in ("npz", "csv", "parquet", "images")])
def test_every_key_of_a_file_reader_is_in_the_configuration_reference(name):
    """docs/configuration.md's table of keys is where a user looks for them: a reader's key it left out
    (sep, decimal, sample_weight, …) was found only in ``lossexp components``."""
    import re
    from pathlib import Path

    row = next(line for line in (Path(__file__).parents[1] / "docs" / "configuration.md").read_text().splitlines()
               if line.startswith("| `data=` |"))
    documented = set(re.findall(r"`([a-z_]+)`", row))
    keys = set(OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")) - {"name"}
    assert keys <= documented, sorted(keys - documented)
