"""The one registry: every shipped part's options live in one place (its signature, mirrored by its
YAML and named in its docstring), names resolve lazily without TensorFlow, and a package or
project cannot take a shipped name."""
from __future__ import annotations

import inspect
import subprocess
import sys

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
