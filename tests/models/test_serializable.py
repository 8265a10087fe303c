"""A saved network loads again exactly when lossexp finds no unregistered class in it (real Keras saves)."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from lossexp.models.serializable import advice, missing_class, unregistered, warn_unregistered


class Scale(keras.layers.Layer):
    """A research script's own layer, not registered."""

    def call(self, x):
        return x * 2.0


@keras.saving.register_keras_serializable(package="tests_serializable")
class RegisteredScale(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def swish_of_mine(x):
    return x * keras.ops.sigmoid(x)


@keras.saving.register_keras_serializable(package="tests_serializable")
def registered_double(x):
    return x * 2.0


class Tower(keras.Model):
    """A subclassed network of a script's own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def _functional(*layers) -> keras.Model:
    inputs = keras.Input((3,))
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


NETWORKS = {  # name → (builder, the names a load would not find)
    "keras' own layers": (lambda: _functional(keras.layers.Rescaling(0.5), keras.layers.LayerNormalization(),
                                              keras.layers.Dense(2, activation="gelu")), []),
    "a registered layer": (lambda: _functional(RegisteredScale(), keras.layers.Dense(2)), []),
    "a layer of the script's": (lambda: _functional(keras.layers.Dense(2), Scale()), ["Scale"]),
    "an activation of the script's": (lambda: _functional(keras.layers.Dense(2, activation=swish_of_mine)),
                                      ["swish_of_mine"]),
    "a registered function in a Lambda layer": (lambda: _functional(keras.layers.Lambda(registered_double)), []),
    "a registered activation": (lambda: _functional(keras.layers.Dense(2, activation=registered_double)), []),
    "a subclassed network": (lambda: Tower(), ["Tower"]),
    "a mask passed on (its KerasTensor in the config)": (lambda: _masked(), []),
}


def _masked() -> keras.Model:
    """A text classifier: the Embedding's mask is a ``__keras_tensor__`` argument of the pooling in the config."""
    tokens = keras.Input((3,), dtype="int32")
    embedded = keras.layers.Embedding(50, 4, mask_zero=True)(tokens)
    return keras.Model(tokens, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(embedded)))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_unregistered_names_exactly_what_keras_cannot_load_again(tmp_path: Path, name: str) -> None:
    build, expected = NETWORKS[name]
    network = build()
    network(np.zeros((1, 3), "float32"))
    assert unregistered(network) == expected
    network.save(tmp_path / "net.keras")
    try:
        keras.saving.load_model(tmp_path / "net.keras")
        loaded, message = True, ""
    except Exception as exc:  # Keras' own failure, whatever its type
        loaded, message = False, str(exc)
    assert loaded == (not expected)
    if expected:
        assert missing_class(message).startswith(f"its class {expected[0]} is not registered with Keras: decorate it "
                                                 "with @keras.saving.register_keras_serializable()")


def test_a_lambda_layers_lambda_is_named_as_what_a_load_refuses(tmp_path: Path, monkeypatch) -> None:
    """Keras writes a Python lambda as {'class_name': '__lambda__'}, which loading refuses in safe mode (as lossexp
    evaluate loads); the mask's '__keras_tensor__', also of that form, loads."""
    monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["my_layers"]\n')
    network = _functional(keras.layers.Lambda(lambda x: x * 2.0))
    assert unregistered(network) == ["the lambda of a Lambda layer (write it as a def)"]
    network.save(tmp_path / "net.keras")
    with pytest.raises(ValueError, match="lambda") as refused:
        keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    assert missing_class(str(refused.value)) == (  # what lossexp evaluate and model=keras_file then say
        "the lambda of a Lambda layer (write it as a def) is not registered with Keras: decorate it with "
        "@keras.saving.register_keras_serializable() in a module of your project (listed in [tool.lossexp] "
        "modules of its pyproject.toml), which lossexp evaluate imports before it loads the model")


def test_outside_a_project_the_advice_says_where_else_to_register(tmp_path: Path, monkeypatch) -> None:
    """A network given to lossexp.fit from a script or a notebook: no project of modules to put the class in."""
    monkeypatch.delenv("LOSSEXP_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert advice(["Scale"]) == (
        "Scale is not registered with Keras: decorate it with @keras.saving.register_keras_serializable() in a "
        "module imported before the model is loaded: import it yourself before keras.saving.load_model or "
        "mlflow.pyfunc.load_model; lossexp evaluate imports the modules listed in [tool.lossexp] modules of a "
        "pyproject.toml in its working directory or above (none here)")


def test_the_warning_is_one_line_naming_the_class(capsys) -> None:
    network = _functional(Scale())
    warn_unregistered(network)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossexp: warning: the run's saved model will not load again")
    assert "Scale is not registered with Keras" in lines[0]
    warn_unregistered(_functional(RegisteredScale()))
    assert capsys.readouterr().err == ""


def test_a_class_saved_under_a_package_is_named_as_the_file_names_it() -> None:
    def keras_message(registered: str, module: str = "elsewhere") -> str:  # as Keras 3.13 words it, the config last
        return ("Could not locate class 'Unlisted'. Make sure custom classes are decorated with "
                f"`@keras.saving.register_keras_serializable()`. Full object config: {{'module': '{module}', "
                "'class_name': 'Unlisted', 'config': {'dtype': {'registered_name': None}}, "
                f"'registered_name': '{registered}'}}")

    assert missing_class(keras_message("elsewhere>Unlisted")) == (
        "its class elsewhere>Unlisted is not registered: list the module that registers it in [tool.lossexp] "
        "modules of the project's pyproject.toml")
    assert missing_class(keras_message("lossexp>historical_average", "lossexp.losses.hist_avg")).startswith(
        "its class lossexp>historical_average is none this lossexp registers: saved by another version of lossexp?")
    # a project's component (registered under lossexp> too), its code since dropped: no version of lossexp's to blame
    assert missing_class(keras_message("lossexp>cospair", "myterms")) == (
        "its class lossexp>cospair is registered by no module loaded now: the code that registered 'cospair' (your "
        "project's, or a package's) is gone or not listed — restore it, or list its module in [tool.lossexp] modules "
        "of the project's pyproject.toml (Could not locate class 'Unlisted')")
    assert missing_class("Unknown layer") is None
