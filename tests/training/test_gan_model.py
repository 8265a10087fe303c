"""The GAN step against an independent computation of the documented step: each player is
updated by its own optimizer (its own learning rate) on its own loss only, and historical
averaging on one player penalises that player's weights only (NumPy reference for the running
mean, the term and its gradient). The model runs through Keras' compiled ``fit``."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

import keras
import tensorflow as tf

from conftest import dataset, network
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.models import gan
from lossexp.training.gan_model import GANModel

BATCH = 16
LATENT = 3
SEED = 7
LR = {"generator": 0.05, "discriminator": 0.02}
WEIGHT = 0.5


def players(seed: int = 0) -> gan.Players:
    keras.utils.set_random_seed(seed)
    return network("gan", dataset("ring", n_samples=BATCH), latent_dim=LATENT, generator_units=[8],
                   discriminator_units=[8], activation="tanh")


def snapshot(network: keras.Model) -> List[np.ndarray]:
    return [np.array(w.numpy(), dtype=np.float64) for w in network.trainable_weights]


def reference_step(generator, discriminator, real, z_d, z_g, generator_penalty=None):
    """One step as the module docstring states it, on copies, with plain SGD written out.

    ``generator_penalty(θ)`` returns NumPy gradients of the generator's extra term to add.
    Returns the players' weights after the step.
    """
    g_net, d_net = keras.models.clone_model(generator), keras.models.clone_model(discriminator)
    g_net.set_weights(generator.get_weights())
    d_net.set_weights(discriminator.get_weights())
    fake = g_net(z_d)
    with tf.GradientTape() as tape:
        d_loss = (tf.reduce_mean(tf.math.softplus(-d_net(real))) + tf.reduce_mean(tf.math.softplus(d_net(fake))))
    for w, g in zip(d_net.trainable_weights, tape.gradient(d_loss, d_net.trainable_weights)):
        w.assign_sub(LR["discriminator"] * g)
    with tf.GradientTape() as tape:
        g_loss = tf.reduce_mean(tf.math.softplus(-d_net(g_net(z_g))))
    g_grads = [np.asarray(g, np.float64) for g in tape.gradient(g_loss, g_net.trainable_weights)]
    if generator_penalty is not None:
        g_grads = [g + p for g, p in zip(g_grads, generator_penalty(snapshot(g_net)))]
    new_g = [theta - LR["generator"] * g for theta, g in zip(snapshot(g_net), g_grads)]
    return new_g, snapshot(d_net)


def compiled(generator, discriminator, generator_components=(), discriminator_components=()) -> GANModel:
    model = GANModel(generator, discriminator, generator_components, discriminator_components, seed=SEED)
    model.compile(generator_optimizer=keras.optimizers.SGD(LR["generator"]),
                  discriminator_optimizer=keras.optimizers.SGD(LR["discriminator"]))
    return model


def noise_stream():
    """The model's draws, reproduced: per step, the discriminator's noise then the generator's."""
    seeds = keras.random.SeedGenerator(SEED)
    while True:
        yield (keras.random.normal((BATCH, LATENT), seed=seeds), keras.random.normal((BATCH, LATENT), seed=seeds))


def real_batches(steps: int) -> np.ndarray:
    return dataset("ring", n_samples=BATCH * steps, seed=1).x


def assert_weights(got: List[np.ndarray], expected: List[np.ndarray]) -> None:
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-6)


def test_each_player_is_updated_by_its_own_optimizer_on_its_own_loss():
    generator, discriminator, *_ = players()
    model = compiled(generator, discriminator)
    real = real_batches(3)
    noise = noise_stream()
    for step in range(3):
        batch = real[step * BATCH:(step + 1) * BATCH]
        z_d, z_g = next(noise)
        expected_g, expected_d = reference_step(generator, discriminator, batch, z_d, z_g)
        model.fit(batch, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        assert_weights(snapshot(generator), expected_g)
        assert_weights(snapshot(discriminator), expected_d)
    for player, player_net in (("generator", generator), ("discriminator", discriminator)):
        optimizer = model.player_optimizer(player)
        assert int(optimizer.iterations) == 3
        assert float(optimizer.learning_rate) == pytest.approx(LR[player])
        built_for = {id(v) for v in optimizer._trainable_variables}
        assert built_for == {id(v) for v in player_net.trainable_weights}


def test_hist_avg_on_the_generator_penalises_the_generator_weights_only():
    generator, discriminator, *_ = players(seed=2)
    hist_avg = HistoricalAverage(name="hist_avg", weight=WEIGHT, mode="mean")
    model = compiled(generator, discriminator, generator_components=[hist_avg])
    assert [v.shape for v in hist_avg.reference_values()] == [w.shape for w in generator.trainable_weights]
    assert hist_avg.trainable_weights == []  # it reads the generator's weights; it does not own them
    real = real_batches(4)
    noise = noise_stream()
    history: List[List[np.ndarray]] = []
    for step in range(4):
        batch = real[step * BATCH:(step + 1) * BATCH]
        z_d, z_g = next(noise)
        history.append(snapshot(generator))  # θ_t, read before the step's update
        reference = [np.mean(np.stack([h[i] for h in history]), axis=0) for i in range(len(history[0]))]
        theta = history[-1]
        expected_term = sum(float(np.sum((th - r) ** 2)) for th, r in zip(theta, reference))

        def penalty(weights):  # ∂(w·Σ(θ − r)²)/∂θ with r held constant
            return [2.0 * WEIGHT * (th - r) for th, r in zip(weights, reference)]

        expected_g, expected_d = reference_step(generator, discriminator, batch, z_d, z_g, generator_penalty=penalty)
        logs = model.fit(batch, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
        assert logs["term/hist_avg"][0] == pytest.approx(expected_term, rel=1e-4, abs=1e-7)
        assert logs["loss/hist_avg"][0] == pytest.approx(WEIGHT * expected_term, rel=1e-4, abs=1e-7)
        assert logs["loss/generator"][0] == pytest.approx(
            logs["loss/generator/adversarial"][0] + WEIGHT * expected_term, rel=1e-5)
        assert logs["loss/discriminator"][0] == logs["loss/discriminator/adversarial"][0]
        assert_weights(snapshot(generator), expected_g)
        assert_weights(snapshot(discriminator), expected_d)  # the discriminator's step has no penalty
    assert expected_term > 1e-6  # by step 4 the generator has moved, so the penalty was active
    for stored, r in zip(hist_avg.reference_values(), reference):
        np.testing.assert_allclose(stored, r, rtol=1e-5, atol=1e-7)


def test_trainable_weight_of_a_discriminator_component_is_the_discriminators_to_update():
    generator, discriminator, *_ = players()
    hist_avg = HistoricalAverage(name="hist_avg", weight={"value": 0.1, "trainable": True,
                                                          "parametrization": "softplus"})
    model = compiled(generator, discriminator, discriminator_components=[hist_avg])
    raw = hist_avg.weighting.raw_weight
    for player, player_net in (("generator", generator), ("discriminator", discriminator)):
        expected = list(player_net.trainable_weights) + ([raw] if player == "discriminator" else [])
        assert [id(v) for v in model.player_variables(player)] == [id(v) for v in expected]  # each once
    assert set(model.tracked_weights()) == {"weight/hist_avg", "weight/coef/hist_avg"}


def test_a_players_weight_decay_spares_its_components_trained_weight():
    """AdamW decayed a component's trained weight with the player's network (see ``test_weight_decay``)."""
    generator, discriminator, *_ = players()
    hist_avg = HistoricalAverage(name="hist_avg", weight={"value": 0.1, "trainable": True,
                                                          "parametrization": "softplus"})
    model = GANModel(generator, discriminator, (), [hist_avg], seed=SEED)
    model.compile(generator_optimizer=keras.optimizers.AdamW(0.01, weight_decay=0.1),
                  discriminator_optimizer=keras.optimizers.AdamW(0.01, weight_decay=0.1))
    optimizer = model.player_optimizer("discriminator")
    assert not optimizer._use_weight_decay(hist_avg.weighting.raw_weight)  # Keras' own test of each variable
    assert all(optimizer._use_weight_decay(w) for w in discriminator.trainable_weights)


def test_saved_gan_reloads_with_its_components_state_and_optimizers(tmp_path):
    generator, discriminator, *_ = players()
    model = compiled(generator, discriminator, generator_components=[HistoricalAverage(name="hist_avg_g")],
                     discriminator_components=[HistoricalAverage(name="hist_avg_d", mode="ema")])
    model.fit(real_batches(2), batch_size=BATCH, epochs=1, verbose=0)
    path = tmp_path / "gan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    z = np.random.default_rng(0).standard_normal((5, LATENT)).astype("float32")
    np.testing.assert_allclose(loaded(z), model(z), rtol=1e-6)
    assert [c.mode for c in loaded.player_components("discriminator")] == ["ema"]
    saved, reloaded = model.generator_components[0], loaded.player_components("generator")[0]
    for got, want in zip(reloaded.reference_values(), saved.reference_values()):
        np.testing.assert_array_equal(got, want)
    assert int(loaded.player_optimizer("generator").iterations) == 2
    assert float(loaded.player_optimizer("discriminator").learning_rate) == pytest.approx(LR["discriminator"])


def test_mixed_float16_from_the_config_scales_each_players_loss_and_trains_as_the_python_api():
    """``model=gan trainer.precision=mixed_float16``: each player's optimizer is Keras' LossScaleOptimizer (Keras'
    compile wraps ``model.optimizer`` alone), and a few steps end with the breakdown and weights of a GANModel
    built from Python under the policy with both optimizers wrapped by hand."""
    from conftest import composed_config
    from lossexp.data import load
    from lossexp.optimizers import build_optimizer
    from lossexp.training.devices import placement
    from lossexp.training.trainer import for_config

    config = composed_config("model=gan", "data=ring", "data.n_samples=64", f"model.latent_dim={LATENT}",
                             "model.generator_units=[8]", "model.discriminator_units=[8]", "loss=hist_avg",
                             "loss.hist_avg.weight=0.5", f"trainer.batch_size={BATCH}", "trainer.precision=mixed_float16",
                             "trainer.jit_compile=false", "trainer.steps_per_execution=1")
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    keras.utils.set_random_seed(config.trainer.seed)
    with placement(config.trainer):
        from_config = trainer.build(data)
    keras.utils.set_random_seed(config.trainer.seed)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        generator, discriminator, *_ = network("gan", data, **config.model.options)
        components = {p: [HistoricalAverage(name=f"hist_avg_{p}", weight=0.5)] for p in ("generator", "discriminator")}
        by_hand = GANModel(generator, discriminator, components["generator"], components["discriminator"],
                           seed=config.trainer.seed)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    by_hand.compile(**{f"{p}_optimizer": keras.optimizers.LossScaleOptimizer(build_optimizer(config.optimizer))
                       for p in ("generator", "discriminator")}, steps_per_execution=config.trainer.execution_steps,
                    jit_compile=False)
    assert all(isinstance(from_config.player_optimizer(p), keras.optimizers.LossScaleOptimizer)
               for p in ("generator", "discriminator"))
    assert from_config.optimizer is from_config.discriminator_optimizer  # Keras' own count is the discriminator's
    histories = [model.fit(data.joined_x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
                 for model in (from_config, by_hand)]
    assert histories[0] == histories[1] and len(histories[0]) == 8
    for got, expected in zip(from_config.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert [int(from_config.player_optimizer(p).iterations) for p in ("generator", "discriminator")] == [4, 4]


def test_each_players_rate_and_constant_weights_come_out_of_the_step_with_its_logs():
    """The recorder's samples take each player's learning rate and each constant component weight from what the
    last compiled call carried out (no variable read after it: 0.2 ms of CPU for the first, 0.04 ms each next);
    the callbacks see the breakdown only, and the rate a callback sets (the discriminator's, Keras'
    ``model.optimizer``) is recorded from the next call on."""
    from lossexp.tracking.callback import MetricSink, RunRecorder
    from lossexp.training import step_values

    seen = []

    class Keys(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(sorted(logs))

    generator, discriminator, *_ = players()
    model = GANModel(generator, discriminator, [HistoricalAverage(name="hist_avg_g", weight=0.25)], [], seed=SEED)
    model.compile(generator_optimizer=keras.optimizers.SGD(LR["generator"]),
                  discriminator_optimizer=keras.optimizers.SGD(LR["discriminator"]), steps_per_execution=2,
                  jit_compile=False)
    sink = MetricSink(None, None)
    halving = keras.callbacks.LearningRateScheduler(lambda epoch, rate: LR["discriminator"] / 2 ** epoch)
    model.fit(real_batches(4), batch_size=BATCH, epochs=2, verbose=0,
              callbacks=[halving, RunRecorder(sink, 2, drift=False), Keys()])
    assert seen and all(keys == sorted(model.metric_names()) for keys in seen)
    carried = step_values.last(model)
    assert sorted(carried) == ["constant_weight/hist_avg_g", "learning_rate/discriminator", "learning_rate/generator"]
    assert float(carried["learning_rate/discriminator"]) == pytest.approx(LR["discriminator"] / 2)
    assert float(carried["constant_weight/hist_avg_g"]) == pytest.approx(0.25)
    assert dict(sink.history["learning_rate/discriminator"]) == pytest.approx(
        {0: LR["discriminator"], 2: LR["discriminator"], 4: LR["discriminator"], 6: LR["discriminator"] / 2,
         8: LR["discriminator"] / 2})
    assert list(dict(sink.history["learning_rate/generator"]).values()) == pytest.approx([LR["generator"]] * 5)
