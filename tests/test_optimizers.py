"""Optimizers chosen by name: their options checked, a class of one's own given Keras' common options."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from lossexp import registry
from lossexp.config import Selection
from lossexp.errors import ConfigError
from lossexp.optimizers import build_optimizer


@pytest.mark.parametrize("name, options, message", [
    ("adam", {"global_clipnorm": -1.0}, "optimizer.global_clipnorm: expected a positive finite number or null, got -1"),
    ("adam", {"use_ema": 1}, "optimizer.use_ema: expected bool, got 1"),
    ("rmsprop", {"rho": 2}, "optimizer.rho: expected a number in [0, 1), got 2"),
    ("adam", {"gradient_accumulation_steps": 2.5}, "optimizer.gradient_accumulation_steps: expected an integer >= 2"),
    ("adam", {"learning_rate": {"schedule": "piecewise_constant_decay", "boundaries": [10, 5],
                                "values": [0.1, 0.01, 0.001]}},
     "optimizer.learning_rate.boundaries: expected an increasing list of steps, got [10, 5]"),
    ("adam", {"learning_rate": {"schedule": "piecewise_constant_decay", "boundaries": [10], "values": [0.1]}},
     "Invalid value for optimizer.learning_rate (piecewise_constant_decay): The length of boundaries"),
])
def test_a_keras_option_keras_does_not_check_is_one_line_naming_it(name, options, message):
    """Keras built each of these and trained (clipping nothing, EMA on for ``1``, a NaN loss for ``rho=2``, a
    TypeError inside the first step for 2.5 accumulation steps, the wrong rate past step 5 for unsorted boundaries)."""
    with pytest.raises(ConfigError) as info:
        build_optimizer(Selection(name, options))
    assert message in str(info.value) and "\n" not in str(info.value)


class SignSGD(keras.optimizers.Optimizer):
    """sign-SGD: θ ← θ − lr·sign(g), written as Keras' docs show (options passed on through **kwargs)."""

    def __init__(self, learning_rate=0.1, name="sign_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * ops.sign(gradient))


@pytest.fixture
def sign_sgd():
    registry.register_optimizer("probe_sign_sgd")(SignSGD)
    yield "probe_sign_sgd"
    registry._ENTRIES["optimizer"].pop("probe_sign_sgd", None)


def test_an_optimizer_class_of_ones_own_takes_keras_common_options(sign_sgd):
    """Its ``**kwargs`` reach Keras' base class: ``optimizer.clipvalue=…`` was 'Unknown key optimizer.clipvalue:
    valid keys are learning_rate, name', so a class written as Keras' docs show could not clip, average or accumulate."""
    optimizer = build_optimizer(Selection(sign_sgd, {"clipvalue": 0.5, "use_ema": True, "gradient_accumulation_steps": 2}))
    assert (optimizer.clipvalue, optimizer.use_ema, optimizer.gradient_accumulation_steps) == (0.5, True, 2)
    with pytest.raises(ConfigError, match=r"^Invalid value for optimizer.clipvalue: expected a positive finite number "
                                          r"or null, got 0$"):
        build_optimizer(Selection(sign_sgd, {"clipvalue": 0}))
    with pytest.raises(ConfigError, match=r"^Unknown key optimizer.clipvalu: valid keys are clipnorm, clipvalue, "):
        build_optimizer(Selection(sign_sgd, {"clipvalu": 0.5}))
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer = build_optimizer(Selection(sign_sgd, {"learning_rate": 0.1, "clipvalue": 0.5}))
    optimizer.apply_gradients([(ops.convert_to_tensor(np.array([3.0, -0.2], "float32")), variable)])
    np.testing.assert_allclose(variable.numpy(), [-0.1, 0.1])


def test_a_projects_optimizer_that_raises_as_it_is_built_is_one_line_naming_its_file_and_line(tmp_path, monkeypatch):
    """It read 'Invalid value for optimizer (picky): lr too high', naming no file, where a model's builder says
    where it broke; an error other than ValueError or TypeError was a traceback."""
    from lossexp import project

    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["picky_optim"]\n')
    (tmp_path / "picky_optim.py").write_text(
        "import keras\nimport lossexp\n\n\n@lossexp.register_optimizer('probe_picky')\n"
        "def picky(learning_rate: float = 0.1):\n    if learning_rate > 0.01:\n"
        "        raise ValueError('lr too high')\n    return keras.optimizers.SGD(learning_rate)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        project.load()
        with pytest.raises(ConfigError) as info:
            build_optimizer(Selection("probe_picky", {"learning_rate": 0.5}))
        assert str(info.value) == (f"Invalid optimizer 'probe_picky': building it failed at {tmp_path}/picky_optim.py:8: "
                                   "ValueError: lr too high")
    finally:
        registry._ENTRIES["optimizer"].pop("probe_picky", None)


def test_a_whole_learning_rate_is_a_number_as_documented():
    """``optimizer.learning_rate=1`` was Keras' "should be float … Received instead: learning_rate=1" (a sweep
    ``optimizer.learning_rate=0.01,1`` failed at its second job, after the first had trained)."""
    optimizer = build_optimizer(Selection("sgd", {"learning_rate": 1}))
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 1.0
