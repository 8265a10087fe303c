"""The GAN's players: the documented layer names and shapes, batch normalisation in the generator
(batch statistics in training, moving statistics in inference, against NumPy), the maxout
discriminator, kernel initialisers and the packed discriminator's input."""
import numpy as np
import pytest

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
    assert (players.pack, players.updates) == (1, "alternating")


def pacgan_players(**options):
    return network("gan", dataset("ring", n_samples=20), latent_dim=2, generator_units=[6, 6, 6],
                   discriminator_units=[4, 4], batch_norm=True, batch_norm_momentum=0.95, batch_norm_epsilon=1e-4,
                   maxout_pieces=5, kernel_initializer={"name": "random_normal", "stddev": 0.02}, **options)


def test_pacgan_players_layers_pack_and_initial_weights():
    import keras

    keras.utils.set_random_seed(0)  # the draw below is checked statistically: the same draw every run
    players = pacgan_players(pack=2, updates="simultaneous")
    assert [layer.name for layer in players.generator.layers] == [
        "noise", "hidden_1", "batch_norm_1", "activation_1", "hidden_2", "batch_norm_2", "activation_2",
        "hidden_3", "batch_norm_3", "activation_3", "output"]
    assert players.generator.get_layer("hidden_1").bias is None  # the normalisation's shift replaces it
    assert [type(layer).__name__ for layer in players.discriminator.layers] == [
        "InputLayer", "Maxout", "Maxout", "Dense"]
    assert players.discriminator.inputs[0].shape[-1] == 4 and (players.pack, players.updates) == (2, "simultaneous")
    assert players.discriminator.get_layer("hidden_1").kernel.shape == (4, 20)  # 4 units × 5 pieces
    kernels = [w.numpy() for p in players[:2] for w in p.trainable_weights if w.path.endswith("kernel")]
    drawn = np.concatenate([k.ravel() for k in kernels])
    # N(0, 0.02): about 260 draws, so the sample std is 0.02 ± 0.0009 (one standard error) and the mean 0 ± 0.0012
    assert abs(drawn.mean()) < 0.005 and drawn.std() == pytest.approx(0.02, rel=0.2)
    same_shape = [players.generator.get_layer(f"hidden_{i}").kernel.numpy() for i in (2, 3)]  # both 6 × 6
    assert not np.allclose(*same_shape)  # a fresh initialiser per layer: a seeded one would repeat its draw
    assert all(np.all(w.numpy() == 0) for p in players[:2] for w in p.trainable_weights if w.path.endswith("bias"))


def np_generator(players, z: np.ndarray, training: bool) -> np.ndarray:
    """Dense (no bias) → batch norm (batch statistics in training, moving ones otherwise) → ReLU, three
    times, → output."""
    g = players.generator
    x = z.astype(np.float64)
    for i in (1, 2, 3):
        x = x @ g.get_layer(f"hidden_{i}").kernel.numpy()
        bn = g.get_layer(f"batch_norm_{i}")
        if training:
            mean, var = x.mean(axis=0), x.var(axis=0)
        else:
            mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
        x = bn.gamma.numpy() * (x - mean) / np.sqrt(var + 1e-4) + bn.beta.numpy()
        x = np.maximum(x, 0.0)
    out = g.get_layer("output")
    return x @ out.kernel.numpy() + out.bias.numpy()


def test_generator_batch_norm_uses_batch_statistics_in_training_and_moving_ones_in_inference():
    players = pacgan_players()
    g = players.generator
    z = np.random.default_rng(0).standard_normal((32, 2)).astype("float32")
    before = [(g.get_layer(f"batch_norm_{i}").moving_mean.numpy().copy(),
               g.get_layer(f"batch_norm_{i}").moving_variance.numpy().copy()) for i in (1, 2)]
    np.testing.assert_allclose(g(z, training=False), np_generator(players, z, training=False), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g(z, training=True), np_generator(players, z, training=True), rtol=1e-3, atol=1e-5)
    # one training call moved the moving statistics by 5 % towards the batch's (momentum 0.95)
    x = z.astype(np.float64) @ g.get_layer("hidden_1").kernel.numpy()
    mean, var = before[0]
    np.testing.assert_allclose(g.get_layer("batch_norm_1").moving_mean.numpy(), 0.95 * mean + 0.05 * x.mean(axis=0),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(g.get_layer("batch_norm_1").moving_variance.numpy(),
                               0.95 * var + 0.05 * x.var(axis=0, ddof=0), rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(g(z, training=False), np_generator(players, z, training=False), rtol=1e-4, atol=1e-6)
    assert not np.allclose(g(z, training=False), g(z, training=True), atol=1e-4)  # the two modes differ
