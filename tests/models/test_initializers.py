"""Kernel initialisers named in a config: a Keras name or a name with options; mistakes are one line."""
from __future__ import annotations

import pytest

from lossexp.errors import ConfigError
from lossexp.models.initializers import initializer, names

KEY = "model.kernel_initializer"


def test_a_name_or_a_name_with_options_builds_that_keras_initializer():
    import keras

    assert isinstance(initializer(KEY, "glorot_uniform"), keras.initializers.GlorotUniform)
    normal = initializer(KEY, {"name": "random_normal", "mean": 0.0, "stddev": 0.02})
    assert isinstance(normal, keras.initializers.RandomNormal) and (normal.mean, normal.stddev) == (0.0, 0.02)
    assert {"glorot_uniform", "random_normal", "he_normal", "zeros"} <= set(names())


@pytest.mark.parametrize("spec, message", [
    ("gaussian", "Invalid value for model.kernel_initializer: expected one of constant, glorot_normal, "),
    ({"name": "normal"}, "Invalid value for model.kernel_initializer.name: expected one of constant, "),
    ({"stddev": 0.02}, "Invalid value for model.kernel_initializer: expected an initializer name or "
                       "{name: NAME, OPTION: VALUE, ...}, got {'stddev': 0.02}"),
    ({"name": "random_normal", "sttdev": 0.02}, "Invalid value for model.kernel_initializer (random_normal): "),
])
def test_a_bad_initializer_is_one_error_naming_the_key(spec, message):
    with pytest.raises(ConfigError) as error:
        initializer(KEY, spec)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
