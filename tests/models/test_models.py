import numpy as np
import pytest

from conftest import dataset, network
from lossexp.errors import ConfigError


def test_cnn_layer_names_are_the_documented_ones():
    net = network("cnn", dataset("digits", n_samples=20))
    names = [layer.name for layer in net.layers]
    assert names == ["inputs", "conv_1", "pool_1", "conv_2", "pool_2", "flatten", "hidden_1", "output"]
    assert net.output.shape[-1] == 10


def test_mlp_on_regression_and_on_images():
    net = network("mlp", dataset("regression", n_samples=20), hidden_units=[8, 4])
    assert [layer.name for layer in net.layers] == ["inputs", "hidden_1", "hidden_2", "output"]
    out = net(np.zeros((3, 4), "float32"))
    assert out.shape == (3, 1)
    net = network("mlp", dataset("digits", n_samples=20), hidden_units=[8])
    assert "flatten" in [layer.name for layer in net.layers]


def test_mlp_takes_one_number_per_example_as_one_feature():
    """Inputs of shape (n,) failed in Keras' "expected min_ndim=2, found ndim=1" as the builder called hidden_1."""
    from lossexp.data.dataset import as_dataset

    x = np.linspace(-1, 1, 20).astype("float32")
    net = network("mlp", as_dataset("one_column", (x, (x > 0).astype("int64"))), hidden_units=[8])
    assert net(x[:3]).shape == (3, 2)


def test_cnn_on_tabular_data_is_a_config_error():
    with pytest.raises(ConfigError, match="use model=mlp"):
        network("cnn", dataset("regression", n_samples=20))
