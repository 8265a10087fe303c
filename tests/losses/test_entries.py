"""The ``loss:`` entries: components by registered name, option validation with one-line messages
that name ``loss.<name>.<key>``, and ``kind:`` for several entries of one class."""
from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from lossexp import CONF_DIR
from lossexp import registry
from lossexp.errors import ConfigError
from lossexp.losses.entries import build_components


def available():
    return registry.available("loss")


def component_class(name):
    return registry.get("loss", name).resolve()


def test_available_lists_the_yaml_files_of_conf_loss():
    names = available()
    shipped = sorted(p.stem for p in (CONF_DIR / "loss").glob("*.yaml"))
    assert {"activity", "coef", "hist_avg"} <= set(names) and set(shipped) <= set(names)
    # beside them, only what tests of this worker registered in its process (a notebook's components)
    assert all(registry.get("loss", name).origin != "lossexp" for name in set(names) - set(shipped))


@pytest.mark.parametrize("name, cls_name", [("activity", "ActivityPenalty"), ("coef", "TrainableCoefficient"),
                                            ("hist_avg", "HistoricalAverage")])
def test_component_class_imports_the_module_of_the_name(name, cls_name):
    import keras

    cls = component_class(name)
    assert cls.__name__ == cls_name
    assert cls.__module__ == f"lossexp.losses.{name}"
    assert cls.registry_name == name
    assert keras.saving.get_registered_object(f"lossexp>{name}") is cls


@pytest.mark.parametrize("name", registry.shipped("loss"))
def test_every_shipped_yaml_lists_every_option_of_its_class(name):
    """What lets a misspelled key of a shipped component be one line before TensorFlow loads: no option
    of its class is one its YAML leaves out (the hint for a project's incomplete YAML is not needed)."""
    listed = OmegaConf.load(CONF_DIR / "loss" / f"{name}.yaml")[name]
    assert set(listed) == set(registry.get("loss", name).resolve().option_names())


@pytest.mark.parametrize("name", ["activity", "coef", "cross_layer", "hist_avg"])
def test_shipped_yaml_builds_with_exactly_its_options(name):
    """Every key of conf/loss/<name>.yaml is an option, and the values arrive unchanged."""
    loss_cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "loss" / f"{name}.yaml"), resolve=True)
    (component,) = build_components(loss_cfg)
    assert component.name == name
    options = loss_cfg[name]
    assert set(options) == set(type(component).option_names())
    for key, value in options.items():
        assert getattr(component, key) == value, key
    initial = options["weight"]["value"] if isinstance(options["weight"], dict) else options["weight"]
    assert float(component.weighting.multiplier()) == pytest.approx(initial)


def test_unknown_component_names_the_valid_choices():
    with pytest.raises(ConfigError) as info:
        build_components({"hist_avgg": {"weight": 0.1}})
    message = str(info.value)
    assert message == f"Unknown loss component 'hist_avgg': valid choices are {', '.join(available())}"
    assert "activity, " in message and ", hist_avg" in message


def test_unknown_kind_names_the_valid_choices():
    with pytest.raises(ConfigError, match=r"Unknown loss component 'coeff' in loss.penalty_a.kind: valid choices are .*coef"):
        build_components({"penalty_a": {"kind": "coeff"}})


@pytest.mark.parametrize("name, key, valid", [
    ("hist_avg", "decy", ["decay", "distance", "layers", "mode", "weight"]),
    ("activity", "layer", ["layers", "norm", "reduction", "weight"]),
    ("coef", "init", ["layers", "penalty", "weight"]),
])
def test_unknown_option_key_lists_the_valid_keys(name, key, valid):
    with pytest.raises(ConfigError) as info:
        build_components({name: {key: 1}})
    message = str(info.value)
    assert message.startswith(f"Unknown key loss.{name}.{key}: valid keys are ")
    listed = message.split("valid keys are ", 1)[1].split(", ")
    assert sorted(listed) == sorted(valid + ["kind"])


def test_unknown_option_key_uses_the_entry_name_not_the_kind():
    with pytest.raises(ConfigError, match=r"^Unknown key loss\.penalty_a\.decay: valid keys are "):
        build_components({"penalty_a": {"kind": "coef", "decay": 0.5}})


BAD_VALUES = [
    ("hist_avg", "decay", 1.5),
    ("hist_avg", "decay", 0.0),
    ("hist_avg", "decay", 1.0),
    ("hist_avg", "weight", -0.1),
    ("hist_avg", "weight", math.nan),
    ("hist_avg", "weight", math.inf),
    ("hist_avg", "weight", True),
    ("hist_avg", "weight", "0.1"),
    ("hist_avg", "mode", "median"),
    ("hist_avg", "distance", "l1"),
    ("hist_avg", "layers", []),
    ("hist_avg", "layers", "hidden_1"),
    ("activity", "weight", -1),
    ("activity", "weight", math.nan),
    ("activity", "norm", "l3"),
    ("activity", "reduction", "max"),
    ("activity", "layers", []),
    ("activity", "layers", "hidden_1"),
    ("coef", "weight", -0.01),
    ("coef", "penalty", "weight_norm"),
    ("cross_layer", "norm", "l3"),
    ("cross_layer", "layers", []),
]


@pytest.mark.parametrize("name, key, value", BAD_VALUES)
def test_bad_option_values_are_one_line_config_errors(name, key, value):
    with pytest.raises(ConfigError) as info:
        build_components({name: {key: value}})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"Invalid value for loss.{name}.{key}: expected ")
    assert message.endswith(f"got {value!r}")


def test_bad_value_is_named_by_the_entry_name():
    with pytest.raises(ConfigError, match=r"^Invalid value for loss\.slow_avg\.decay: expected .*got 1\.5$"):
        build_components({"slow_avg": {"kind": "hist_avg", "mode": "ema", "decay": 1.5}})


@pytest.mark.parametrize("reserved", sorted(registry.RESERVED["loss"]))
def test_reserved_names_are_rejected(reserved):
    with pytest.raises(ConfigError, match=f"Invalid loss component name '{reserved}'"):
        build_components({reserved: {"kind": "activity"}})


def test_empty_options_use_the_defaults():
    (component,) = build_components({"hist_avg": None})
    assert (component.weight, component.mode, component.decay, component.layers, component.distance) == (
        0.01, "mean", 0.99, None, "squared_l2")


def test_kind_lets_one_class_appear_twice(tiny_network, compose, regression_data):
    x, y = regression_data
    components = build_components({
        "penalty_a": {"kind": "coef", "layers": ["hidden_1"], "weight": {"value": 0.5, "trainable": True}},
        "penalty_b": {"kind": "coef", "penalty": "prediction_mean",
                      "weight": {"value": 2.0, "trainable": True, "parametrization": "exp"}},
        "hist_avg": {"weight": 0.2},
    })
    assert [c.name for c in components] == ["penalty_a", "penalty_b", "hist_avg"]
    assert type(components[0]) is type(components[1]) is component_class("coef")
    assert components[0].weighting.raw_weight is not components[1].weighting.raw_weight

    model = compose(tiny_network(), components, learning_rate=0.05)
    coefs = {k: float(v) for k, v in model.tracked_weights().items() if k.startswith("weight/coef/")}
    assert coefs == pytest.approx({"weight/coef/penalty_a": 0.5, "weight/coef/penalty_b": 2.0}, rel=1e-6)
    history = model.fit(x, y, batch_size=20, epochs=1, verbose=0).history
    for name in ("penalty_a", "penalty_b", "hist_avg"):
        assert f"term/{name}" in history and f"loss/{name}" in history
    raw_paths = sorted(v.path for v in model.trainable_variables if "raw_weight" in v.path)
    assert raw_paths == ["penalty_a/raw_weight", "penalty_b/raw_weight"]
    # Both coefficients were trained, independently of each other.
    trained = model.tracked_weights()
    assert float(trained["weight/coef/penalty_a"]) != pytest.approx(0.5)
    assert float(trained["weight/coef/penalty_b"]) != pytest.approx(2.0)


def test_get_config_round_trips_the_options():
    (component,) = build_components({"slow_avg": {"kind": "hist_avg", "mode": "ema", "decay": 0.9,
                                                  "layers": ["hidden_2"], "distance": "mean_abs", "weight": 0.3}})
    config = component.get_config()
    clone = type(component).from_config(config)
    for key in type(component).option_names():
        assert getattr(clone, key) == getattr(component, key) == config[key]
    assert clone.name == "slow_avg"


def _margin_class(with_default: bool, calls_super: bool = True):
    from keras import ops

    from lossexp.losses.base import LossComponent

    class Margin(LossComponent):
        def __init__(self, weight=0.1, margin=1.0, **kwargs):
            if calls_super:
                super().__init__(weight=weight, **kwargs)
            self.margin = margin

        def term(self, context):
            return ops.mean(ops.relu(self.margin - context.y_pred))

    class Required(Margin):
        def __init__(self, margin: float, weight=0.1, **kwargs):
            super().__init__(weight=weight, margin=margin, **kwargs)

    return Margin if with_default else Required


def test_a_projects_component_option_its_yaml_does_not_list_or_set_is_one_line_naming_its_file(tmp_path, monkeypatch):
    """A constructor parameter the component's YAML leaves out was 'Unknown key loss.m.margin: valid keys are
    weight' (set with or without +), and one without a default a TypeError at lossexp's own line
    (entries.py:101); a class whose __init__ skips super().__init__ an AttributeError traceback, exit 1."""
    from lossexp.losses.entries import check_entry
    from lossexp.precheck import check_jobs

    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = []\n')
    (tmp_path / "conf" / "loss").mkdir(parents=True)
    for name in ("lacks_margin", "requires_margin", "skips_super"):
        (tmp_path / "conf" / "loss" / f"{name}.yaml").write_text(f"{name}: {{weight: 0.1}}\n")
    monkeypatch.setenv("LOSSEXP_PROJECT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    registry.register_component("lacks_margin")(_margin_class(True))
    registry.register_component("requires_margin")(_margin_class(False))
    registry.register_component("skips_super")(_margin_class(True, calls_super=False))
    here = __file__
    lacks = (r"; it is an option of Margin \(__init__ at " + here + r":\d+\) that conf/loss/lacks_margin.yaml does "
             r"not list: add it there \(the YAML lists the options a config may set\)$")
    with pytest.raises(ConfigError, match=r"^Unknown key loss.lacks_margin.margin: valid keys are kind, weight" + lacks):
        check_entry("lacks_margin", {"weight": 0.1, "margin": 2.0})
    with pytest.raises(ConfigError, match=r"^Unknown key loss.lacks_margin.margin: valid keys are weight" + lacks):
        check_jobs(["loss=lacks_margin", "loss.lacks_margin.margin=2"], multirun=False, destinations=False)
    with pytest.raises(ConfigError, match=r"^Unknown key loss.lacks_margin.margn: valid keys are weight$"):  # a typo
        check_jobs(["loss=lacks_margin", "loss.lacks_margin.margn=2"], multirun=False, destinations=False)
    with pytest.raises(ConfigError, match=r"^Missing value for loss.requires_margin.margin: Required \(__init__ at "
                                          + here + r":\d+\) has no default for margin \(list it in "
                                          r"conf/loss/requires_margin.yaml, which holds the options a config may "
                                          r"set, with a value\)$"):
        build_components({"requires_margin": {"weight": 0.1}})
    with pytest.raises(ConfigError, match=r"^Invalid loss component Margin: its __init__ at " + here + r":\d+ does not "
                                          r"call super\(\).__init__\(weight=weight, \*\*kwargs\), which gives a "
                                          r"component its name and weight$"):
        build_components({"skips_super": {"weight": 0.1}})


@pytest.fixture
def project_yaml(tmp_path, monkeypatch):
    """A project whose conf/loss/second.yaml sets activity's options, one of them wrong."""
    def write(options: str):
        (tmp_path / "pyproject.toml").write_text("[tool.lossexp]\nmodules = []\n")
        (tmp_path / "conf" / "loss").mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / "loss" / "second.yaml").write_text(f"# two activity penalties\nsecond:\n  kind: activity\n{options}")
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
        return OmegaConf.to_container(OmegaConf.load(tmp_path / "conf" / "loss" / "second.yaml"))
    return write

def test_a_command_line_value_equal_in_python_to_the_yamls_is_not_blamed_on_the_yaml(project_yaml):
    """``loss.second.weight=true`` beside the YAML's ``weight: 1.0`` said "(set in conf/loss/second.yaml:4)":
    ``True == 1.0`` in Python (probe J). Only the YAML's own value, of its own type, is the YAML's."""
    from lossexp.losses.entries import set_in_yaml

    project_yaml("  weight: 1.0\n  layers: [hidden_1, 0]\n")
    assert set_in_yaml("second", "weight", 1.0) == " (set in conf/loss/second.yaml:4)"
    assert set_in_yaml("second", "weight", True) == ""
    assert set_in_yaml("second", "weight", 1) == ""
    assert set_in_yaml("second", "layers", ["hidden_1", 0]) == " (set in conf/loss/second.yaml:5)"
    assert set_in_yaml("second", "layers", ["hidden_1", False]) == ""



def test_a_mistake_in_ones_own_yaml_names_its_file_and_line(project_yaml):
    """Before: 'Unknown key loss.second.nrom' / 'Invalid value for loss.second.norm', as if typed on the
    command line; now the YAML that set it is named, file:line."""
    from lossexp.losses.entries import check_entry

    loss = project_yaml("  weight: 0.1\n  nrom: l2\n")
    with pytest.raises(ConfigError, match=r"^Unknown key loss\.second\.nrom \(set in conf/loss/second\.yaml:5\): "):
        check_entry("second", loss["second"])
    loss = project_yaml("  weight: 0.1\n  norm: l3\n")
    with pytest.raises(ConfigError, match=r"^Invalid value for loss\.second\.norm \(set in conf/loss/second\.yaml:5\): "
                                          r"expected one of l2, l1, got 'l3'$"):
        build_components(loss)
    with pytest.raises(ConfigError, match=r"^Invalid value for loss\.second\.norm: expected"):  # a value of the command line's
        build_components({"second": {**loss["second"], "norm": "l4"}})
    loss = project_yaml("  weight: {value: 0.0, trainable: true, parametrization: dual, lr: -1}\n")
    with pytest.raises(ConfigError, match=r"^Invalid value for loss\.second\.weight\.lr \(set in conf/loss/second\.yaml:4\): "):
        check_entry("second", loss["second"])
