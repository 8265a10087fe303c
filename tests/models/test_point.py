"""model=point: a trainable point θ, output once per example; its composed model (no task loss)
saves and reloads with θ, its components and its weighting method."""
import keras
import numpy as np
import pytest

from lossexp.data import load
from lossexp.data.dataset import as_dataset
from lossexp.models.point import point
from lossexp.precheck import compose_validated
from lossexp.training.trainer import for_config


def test_the_output_is_theta_for_every_example_and_init_sets_the_dimension():
    data = as_dataset("steps", (np.zeros((4, 1), "float32"), np.zeros((4, 1), "float32")), "objective")
    network = point(data, init=[1.5, -2.0, 3.0])
    [theta] = network.trainable_weights
    assert theta.shape == (3,) and network.get_layer("theta").theta is theta
    np.testing.assert_array_equal(network(np.zeros((4, 1), "float32")).numpy(), np.tile([1.5, -2.0, 3.0], (4, 1)))


@pytest.mark.slow
def test_the_composed_point_saves_and_reloads(tmp_path):
    config = compose_validated(["experiment=mtl_toy", "weighting=pcgrad", "data.n_samples=20", "trainer.epochs=1",
                                "tracking.enabled=false", "model.init=[9.0,9.0]"])
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    model.fit(**trainer.fit_arguments(data), epochs=1, verbose=0)
    model.save(tmp_path / "point.keras")
    reloaded = keras.saving.load_model(tmp_path / "point.keras")
    assert reloaded.task_loss is None and reloaded.tasks() == ["mtl_toy_l1", "mtl_toy_l2"]
    assert reloaded.weighting.name == "pcgrad"
    np.testing.assert_array_equal(reloaded.network.get_layer("theta").theta.numpy(),
                                  model.network.get_layer("theta").theta.numpy())
