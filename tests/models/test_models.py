import numpy as np
import pytest

from lossexp.config import CNNConfig, DigitsConfig, MLPConfig, RegressionConfig
from lossexp.data import load
from lossexp.errors import ConfigError
from lossexp.models import build_network


def test_cnn_layer_names_are_the_documented_ones():
    net = build_network(CNNConfig(), load(DigitsConfig(n_samples=20)))
    names = [layer.name for layer in net.layers]
    assert names == ["inputs", "conv_1", "pool_1", "conv_2", "pool_2", "flatten", "hidden_1", "output"]
    assert net.output.shape[-1] == 10


def test_mlp_on_regression_and_on_images():
    net = build_network(MLPConfig(hidden_units=[8, 4]), load(RegressionConfig(n_samples=20)))
    assert [layer.name for layer in net.layers] == ["inputs", "hidden_1", "hidden_2", "output"]
    out = net(np.zeros((3, 4), "float32"))
    assert out.shape == (3, 1)
    net = build_network(MLPConfig(hidden_units=[8]), load(DigitsConfig(n_samples=20)))
    assert "flatten" in [layer.name for layer in net.layers]


def test_cnn_on_tabular_data_is_a_config_error():
    with pytest.raises(ConfigError, match="use model=mlp"):
        build_network(CNNConfig(), load(RegressionConfig(n_samples=20)))
