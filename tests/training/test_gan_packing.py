"""PacGAN's packing and the simultaneous step, against computations written out by hand: packed
real rows (m independent draws with replacement, side by side), the packed generated rows (m
generator calls on fresh noise), and one step of each player from the same forward pass."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

import keras
import tensorflow as tf

from conftest import composed_config, dataset, network
from lossexp.errors import ConfigError
from lossexp.training.gan_model import GANModel
from lossexp.training.packing import packed_rows

ROWS = 8
LATENT = 3
SEED = 11
LR = {"generator": 0.05, "discriminator": 0.02}


def test_packed_rows_are_independent_draws_with_replacement_side_by_side():
    points = np.arange(12, dtype="float32").reshape(6, 2)  # point i = (2i, 2i + 1)
    rows = packed_rows(points, 3, np.random.default_rng(5))
    draws = np.random.default_rng(5)
    first, second, third = (draws.integers(0, 6, size=6) for _ in range(3))
    expected = np.array([[*points[a], *points[b], *points[c]] for a, b, c in zip(first, second, third)])
    np.testing.assert_array_equal(rows, expected)
    assert rows.shape == (6, 6)
    assert packed_rows(points, 1, np.random.default_rng(5)) is points  # no packing: the data as they are


def players(pack: int, updates: str, seed: int = 0):
    keras.utils.set_random_seed(seed)
    return network("gan", dataset("ring", n_samples=ROWS), latent_dim=LATENT, generator_units=[8],
                   discriminator_units=[8], activation="tanh", pack=pack, updates=updates)


def snapshot(net: keras.Model) -> List[np.ndarray]:
    return [np.array(w.numpy(), dtype=np.float64) for w in net.trainable_weights]


def clone(net: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(net)
    copy.set_weights(net.get_weights())
    return copy


def compiled(game, jit_compile: bool = False) -> GANModel:
    model = GANModel(game.generator, game.discriminator, seed=SEED, pack=game.pack, updates=game.updates)
    model.compile(generator_optimizer=keras.optimizers.SGD(LR["generator"]),
                  discriminator_optimizer=keras.optimizers.SGD(LR["discriminator"]), jit_compile=jit_compile)
    return model


def sgd(net: keras.Model, loss_fn, lr: float) -> None:
    with tf.GradientTape() as tape:
        loss = loss_fn()
    for w, g in zip(net.trainable_weights, tape.gradient(loss, net.trainable_weights)):
        w.assign_sub(lr * g)


def packed_fake(generator: keras.Model, noises) -> tf.Tensor:
    return tf.concat([generator(z) for z in noises], axis=1)


def d_loss(discriminator, real, fake):
    real_loss = tf.reduce_mean(tf.math.softplus(-discriminator(real)))
    return real_loss + tf.reduce_mean(tf.math.softplus(discriminator(fake)))


def assert_weights(got, expected):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-6)


def test_pacgan2_alternating_step_packs_real_rows_and_two_generator_calls():
    game = players(pack=2, updates="alternating")
    assert game.discriminator.inputs[0].shape[-1] == 4  # two 2-D points side by side
    model = compiled(game)
    real = packed_rows(dataset("ring", n_samples=ROWS, seed=3).x, 2, np.random.default_rng(0))
    seeds = keras.random.SeedGenerator(SEED)
    noise = [keras.random.normal((ROWS, LATENT), seed=seeds) for _ in range(4)]  # D: 2 calls, then G: 2 calls
    g_net, d_net = clone(game.generator), clone(game.discriminator)
    fake = packed_fake(g_net, noise[:2])
    sgd(d_net, lambda: d_loss(d_net, real, fake), LR["discriminator"])
    sgd(g_net, lambda: tf.reduce_mean(tf.math.softplus(-d_net(packed_fake(g_net, noise[2:])))), LR["generator"])
    model.fit(real, batch_size=ROWS, epochs=1, shuffle=False, verbose=0)
    assert_weights(snapshot(game.discriminator), snapshot(d_net))
    assert_weights(snapshot(game.generator), snapshot(g_net))
    assert model(np.zeros((5, LATENT), "float32")).shape == (5, 2)  # sampling is unpacked: one point per noise row


@pytest.mark.parametrize("pack", [1, 2])
def test_simultaneous_step_takes_both_gradients_from_one_forward_pass(pack):
    game = players(pack=pack, updates="simultaneous", seed=4)
    model = compiled(game)
    real = packed_rows(dataset("ring", n_samples=ROWS, seed=5).x, pack, np.random.default_rng(1))
    seeds = keras.random.SeedGenerator(SEED)
    g_net, d_net = clone(game.generator), clone(game.discriminator)
    for _ in range(2):
        noise = [keras.random.normal((ROWS, LATENT), seed=seeds) for _ in range(pack)]  # one draw per step
        d, g = reference_simultaneous_step(g_net, d_net, real, noise)
        logs = model.fit(real, batch_size=ROWS, epochs=1, shuffle=False, verbose=0).history
        assert logs["loss/discriminator"][0] == pytest.approx(d, rel=1e-5)
        assert logs["loss/generator"][0] == pytest.approx(g, rel=1e-5)
        assert_weights(snapshot(game.discriminator), snapshot(d_net))
        assert_weights(snapshot(game.generator), snapshot(g_net))


def reference_simultaneous_step(g_net, d_net, real, noise):
    """Both losses from one forward pass, both gradients before either update; returns the losses."""
    with tf.GradientTape(persistent=True) as tape:
        fake = packed_fake(g_net, noise)
        d = d_loss(d_net, real, fake)
        g = tf.reduce_mean(tf.math.softplus(-d_net(fake)))
    d_grads = tape.gradient(d, d_net.trainable_weights)
    g_grads = tape.gradient(g, g_net.trainable_weights)  # against the discriminator before its update
    for w, grad in zip(d_net.trainable_weights, d_grads):
        w.assign_sub(LR["discriminator"] * grad)
    for w, grad in zip(g_net.trainable_weights, g_grads):
        w.assign_sub(LR["generator"] * grad)
    return float(d), float(g)


def test_simultaneous_step_under_xla_reads_the_discriminator_before_its_update():
    """XLA (ring_pacgan's ``trainer.jit_compile``) draws other noise than the eager step, so the
    generator's first kernel starts at zero: its samples do not depend on the noise, and every
    weight but that kernel must move as the reference step says."""
    game = players(pack=2, updates="simultaneous", seed=6)
    first = game.generator.get_layer("hidden_1").kernel
    first.assign(np.zeros(first.shape, "float32"))
    model = compiled(game, jit_compile=True)
    real = packed_rows(dataset("ring", n_samples=ROWS, seed=5).x, 2, np.random.default_rng(1))
    g_net, d_net = clone(game.generator), clone(game.discriminator)
    noise = [np.zeros((ROWS, LATENT), "float32")] * 2
    reference_simultaneous_step(g_net, d_net, real, noise)
    model.fit(real, batch_size=ROWS, epochs=1, shuffle=False, verbose=0)
    assert_weights(snapshot(game.discriminator), snapshot(d_net))
    skip = [i for i, w in enumerate(game.generator.trainable_weights) if w is first]
    assert_weights([w for i, w in enumerate(snapshot(game.generator)) if i not in skip],
                   [w for i, w in enumerate(snapshot(g_net)) if i not in skip])


def test_a_saved_packed_gan_keeps_its_packing_and_updates(tmp_path):
    model = compiled(players(pack=2, updates="simultaneous"))
    model.fit(packed_rows(dataset("ring", n_samples=ROWS).x, 2, np.random.default_rng(0)), batch_size=ROWS,
              epochs=1, verbose=0)
    model.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")
    assert (loaded.pack, loaded.updates) == (2, "simultaneous")


def test_the_regime_packs_the_real_data_and_counts_batch_size_in_rows():
    config = composed_config("model=gan", "data=ring", "data.n_samples=64", "model.latent_dim=2",
                             "model.generator_units=[8]", "model.discriminator_units=[8]", "model.pack=3",
                             "loss=none", "trainer.batch_size=16", "trainer.seed=9")
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    [order] = trainer.callbacks(model, data)[1:]  # the samples' scores, then the epoch's order of the rows
    order.on_epoch_begin(0)
    batches = list(trainer.fit_arguments(data)["x"].as_numpy_iterator())
    assert [len(batch) for batch in batches] == [16] * 4 and model.pack == 3  # 16 rows: 48 real and 48 generated points a step
    rows, fed = packed_rows(data.x, 3, np.random.default_rng(9)), np.concatenate(batches)
    np.testing.assert_array_equal(fed[np.lexsort(fed.T)], rows[np.lexsort(rows.T)])  # every row once, reordered


def test_a_discriminator_that_does_not_read_pack_points_is_one_error():
    from lossexp.training.adversarial import check_pack

    game = players(pack=2, updates="alternating")
    check_pack(game.generator, game.discriminator, 2)
    with pytest.raises(ConfigError, match=r"^Invalid value for model: expected a discriminator reading pack × the "
                                          r"generator's output \(3 × 2 = 6 values\), got '4 inputs'$"):
        check_pack(game.generator, game.discriminator, 3)
