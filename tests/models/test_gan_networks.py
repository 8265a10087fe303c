"""The GAN's players: the documented layer names and shapes."""
import numpy as np

from conftest import dataset, network


def test_players_have_mlp_layer_names_and_the_documented_shapes():
    players = network("gan", dataset("ring", n_samples=20), latent_dim=5, generator_units=[16, 8],
                      discriminator_units=[4])
    assert [layer.name for layer in players.generator.layers] == ["noise", "hidden_1", "hidden_2", "output"]
    assert [layer.name for layer in players.discriminator.layers] == ["inputs", "hidden_1", "output"]
    points = players.generator(np.zeros((3, 5), "float32"))
    assert points.shape == (3, 2)
    assert players.discriminator(points).shape == (3, 1)
    assert players.discriminator.get_layer("output").activation.__name__ == "linear"  # a logit
