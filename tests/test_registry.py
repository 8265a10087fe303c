"""The one registry: every shipped part's options live in one place (its signature, mirrored by its
YAML and named in its docstring), names resolve lazily without TensorFlow, and a package or
project cannot take a shipped name."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossexp import CONF_DIR, registry
from lossexp.errors import ConfigError
from lossexp.options import REQUIRED

PARTS = [(kind, name) for kind in ("model", "data", "loss", "weighting") for name in registry.shipped(kind)]


def yaml_defaults(kind: str, name: str) -> dict:
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / registry.KINDS[kind].group / f"{name}.yaml"))
    node.pop("defaults", None)
    if kind == "loss":
        return node[name]
    node.pop("name")
    return node


def plain(value):
    return list(value) if isinstance(value, tuple) else dict(value) if hasattr(value, "items") else value


@pytest.mark.parametrize("kind, name", PARTS, ids=[f"{k}={n}" for k, n in PARTS])
def test_yaml_signature_and_docstring_agree(kind, name):
    entry = registry.get(kind, name)
    options = entry.options()
    defaults = yaml_defaults(kind, name)
    assert set(defaults) == set(options), f"{kind}={name}: YAML keys differ from the signature"
    for key, option in options.items():
        if option.default is REQUIRED:
            assert defaults[key] == "???", f"{kind}={name}: required option {key} must be ??? in its YAML"
        elif key == "weight" and option.default is None:  # coef: its trainable default lives in the class
            continue
        else:
            assert defaults[key] == plain(option.default), f"{kind}={name}.{key}"
    doc = inspect.getdoc(entry.resolve()) or ""
    for key in options:
        assert f"``{key}``" in doc, f"{kind}={name}: the docstring does not name option {key}"


@pytest.mark.parametrize("name", registry.shipped("optimizer"))
def test_optimizer_yaml_holds_keras_defaults(name):
    cls = registry.get("optimizer", name).resolve()
    signature = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                 if p.name not in ("self", "name", "kwargs")}
    assert yaml_defaults("optimizer", name) == {k: plain(v) for k, v in signature.items()}


def test_names_resolve_without_tensorflow():
    code = ("import sys\nfrom lossexp import registry\n"
            "for kind in ('model', 'data', 'weighting'):\n"
            "    for name in registry.available(kind):\n"
            "        registry.get(kind, name).options()\n"
            "registry.available('loss'); registry.available('optimizer')\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_package_cannot_take_a_shipped_name():
    def build(data):
        return None

    build.__module__ = "someones_package.models"
    with pytest.raises(ConfigError, match=r"^Invalid model name 'mlp' \(package someones_package\): lossexp ships a "
                                          r"model of that name; choose another$"):
        registry.register_model("mlp")(build)


def test_an_unknown_name_lists_what_is_registered():
    with pytest.raises(ConfigError, match=r"^Unknown data 'mnist': valid choices are csv, digits, images, npz, "
                                          r"parquet, positive, regression, ring, steps, uniform$"):
        registry.get("data", "mnist")


def test_a_component_with_an_option_named_kind_is_refused_at_registration():
    """``kind`` picks an entry's component class (``loss.second.kind: coef``): a component's own
    ``kind`` option could never be set (``loss.margin.kind=hinge`` asked for a component 'hinge')."""
    import lossexp

    class Margin(lossexp.LossComponent):
        def __init__(self, weight=0.01, kind: str = "hinge", **kwargs):
            super().__init__(weight=weight, **kwargs)
            self.kind = kind

    with pytest.raises(ConfigError, match=r"^Invalid loss component 'margin_with_kind' \(.*\): its option 'kind' "
                                          r"is reserved \(loss.<entry>.kind chooses an entry's component class\); "
                                          r"rename it$"):
        registry.register_component("margin_with_kind")(Margin)
    assert "margin_with_kind" not in registry.available("loss")


def test_a_projects_yaml_setting_kind_to_an_option_value_says_kind_is_reserved(tmp_path, monkeypatch):
    """Before TensorFlow loads, ``conf/loss/margin.yaml`` with ``kind: hinge`` (meant as the
    component's option) is one line saying why, not only that no component is named 'hinge'."""
    from lossexp.losses.entries import check_entry

    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = []\n')
    (tmp_path / "conf" / "loss").mkdir(parents=True)
    (tmp_path / "conf" / "loss" / "margin.yaml").write_text("margin:\n  weight: 0.01\n  kind: hinge\n")
    monkeypatch.setenv("LOSSEXP_PROJECT", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^Unknown loss component 'hinge' in loss.margin.kind: valid choices are "
                                          r".*margin.* \(kind chooses an entry's component class, so no component "
                                          r"can have an option named kind: rename it in margin's class and YAML\)$"):
        check_entry("margin", {"weight": 0.01, "kind": "hinge"})
    with pytest.raises(ConfigError, match=r"valid choices are [^(]*$"):  # an alias entry's typo: no such hint
        check_entry("second", {"kind": "cooef"})


def test_a_projects_class_left_undecorated_is_named_with_the_decorator_it_lacks(tmp_path, monkeypatch):
    """Before: 'no module of the project registers it (list the module under [tool.lossexp] modules …)',
    though the module was listed and imported, its class only missing @lossexp.register_component."""
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["forgot_term"]\n')
    (tmp_path / "conf" / "loss").mkdir(parents=True)
    (tmp_path / "conf" / "loss" / "forgot.yaml").write_text("forgot:\n  weight: 0.1\n")
    (tmp_path / "forgot_term.py").write_text("import os\n\n\nclass Forgot:  # a LossComponent; no TensorFlow here\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "forgot_term", raising=False)
    __import__("forgot_term")
    with pytest.raises(ConfigError, match=r"^Unknown loss component 'forgot': .*forgot\.yaml selects it, but no module "
                                          r"of the project registers it \(class Forgot at forgot_term\.py:4 is not "
                                          r"registered: decorate it with @lossexp\.register_component\('forgot'\)\)"):
        registry.get("loss", "forgot")


def test_a_builder_whose_layer_fails_as_it_is_called_is_one_line_naming_the_layers_line(tmp_path, monkeypatch):
    import inspect

    import keras

    from lossexp.config import Selection

    class OneRowTooMany(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1] + 1, 2))

        def call(self, x):
            return keras.ops.matmul(x, self.w)

    @registry.register_model("probe_one_row_too_many")
    def builder(data):
        inputs = keras.Input((4,))
        return keras.Model(inputs, OneRowTooMany()(inputs))

    monkeypatch.chdir(Path(__file__).parent)
    try:
        with pytest.raises(ConfigError) as info:
            registry.build("model", Selection("probe_one_row_too_many", {}), data=None)
    finally:
        registry._ENTRIES["model"].pop("probe_one_row_too_many")
    message = str(info.value)
    line = inspect.getsourcelines(OneRowTooMany.call)[1] + 1
    assert message.startswith(f"Invalid model 'probe_one_row_too_many': building it failed at {__file__}:{line}: "
                              "ValueError: Exception encountered when calling OneRowTooMany.call(). "), message
    assert "\n" not in message and "\x1b" not in message and "Arguments received" not in message


def component_class(name: str) -> type:
    """A new component class called ``name`` (its term the predictions), as a notebook's cell defines one."""
    import lossexp

    return type(name, (lossexp.LossComponent,), {"term": lambda self, context: context.y_pred, "__module__": __name__})


@pytest.mark.parametrize("name, suggested", [("center-loss", "center_loss"), ("l2.pred", "l2_pred"),
                                             ("l2+pred", "l2_pred"), ("2nd", "_2nd")])
def test_a_name_no_command_line_can_select_is_refused_at_registration(name, suggested, restored_registry):
    """``center-loss`` registered, was listed among the valid choices, and ``loss=center-loss`` was
    "Unknown loss component 'center-loss'" (``l2+pred`` split into two names, ``l2.pred`` a key path)."""
    Term = component_class("Term")
    with pytest.raises(ConfigError, match=rf"^Invalid loss component name {re.escape(repr(name))} \(.*Term\): expected a Python "
                                          rf"identifier \(letters, digits and _; e.g. '{suggested}'\), which "
                                          r"loss=NAME and its options' keys can select$"):
        registry.register_component(name)(Term)
    assert name not in registry.available("loss")


def test_the_same_definition_registered_again_replaces_the_first_and_another_names_both(restored_registry):
    """A notebook's cell that defines and registers a component, run a second time, was "registered
    twice"; two classes of one name were named by their origins alone (``project /p and project /p``)."""
    first, again = component_class("Mine"), component_class("Mine")
    registry.register_component("mine_again")(first)
    registry.register_component("mine_again")(again)  # the cell run again
    assert registry.get("loss", "mine_again").resolve() is again
    with pytest.raises(ConfigError, match=r"^Invalid loss component name 'mine_again': registered twice "
                                          r"\(test_registry\.Mine of package test_registry, and "
                                          r"test_registry\.Other of package test_registry\)$"):
        registry.register_component("mine_again")(component_class("Other"))


def test_a_part_without_a_yaml_composes_with_its_signatures_defaults(restored_registry):
    """A run of a component registered without a YAML recorded ``loss.noyaml: {}`` (the weight and
    options it trained with nowhere: not in params, config.yaml nor the summary); its node holds its
    defaults now, a required option ``???`` as a YAML's, a default no config holds left to the part."""
    import keras

    import lossexp
    from lossexp.precheck import compose_validated

    class NoYaml(lossexp.LossComponent):
        def __init__(self, weight=0.1, k: int = 2, layers=("a", "b"), activation=keras.activations.relu, **kwargs):
            super().__init__(weight=weight, **kwargs)

        def term(self, context):
            return context.y_pred

    def net_without_yaml(data, units: int, act: str = "relu"):
        return None

    registry.register_component("no_yaml_defaults")(NoYaml)
    registry.register_model("net_without_yaml")(net_without_yaml)
    registry.register_config_nodes()
    config = compose_validated(["loss=no_yaml_defaults", "loss.no_yaml_defaults.k=3"])
    assert config.loss == {"no_yaml_defaults": {"weight": 0.1, "k": 3, "layers": ["a", "b"]}}
    with pytest.raises(ConfigError, match=r"^Missing value for model.units: model=net_without_yaml requires it"):
        compose_validated(["model=net_without_yaml"])
    assert compose_validated(["model=net_without_yaml", "model.units=8"]).model.options == {"units": 8, "act": "relu"}
