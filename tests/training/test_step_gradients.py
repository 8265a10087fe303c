"""The GAN's in-step gradient diagnostics against a plain ``tf.GradientTape`` per part, at the sampled steps of
a compiled ``fit`` of several steps per call (float32 and ``mixed_float16``), and a run with them trains to the
same weights, bit for bit, as one without."""
from __future__ import annotations

from typing import Dict

import keras
import numpy as np
import pytest
import tensorflow as tf
from mlflow.tracking import MlflowClient

from conftest import composed_config, dataset, network
from lossexp.losses.hist_avg import HistoricalAverage
from lossexp.training.gan_model import GANModel
from lossexp.training.step_gradients import Reader, StepGradients, next_sample, readers

BATCH, STEPS, EVERY, PER_CALL = 16, 7, 3, 2  # sampled at steps 1, 4, 7; calls end at 2, 4, 6, 7


def gan(diagnostics: bool, updates: str = "simultaneous", precision: str = "float32") -> GANModel:
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(3)
        generator, discriminator, *_ = network("gan", dataset("ring", n_samples=BATCH), latent_dim=3,
                                               generator_units=[8], discriminator_units=[8], activation="tanh")
        components = {p: [HistoricalAverage(name=f"hist_avg_{p}", weight=0.5)] for p in ("generator", "discriminator")}
        model = GANModel(generator, discriminator, components["generator"], components["discriminator"], seed=5,
                         updates=updates)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    optimizer = (lambda lr: keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(lr))) \
        if precision == "mixed_float16" else keras.optimizers.Adam
    model.compile(generator_optimizer=optimizer(0.01), discriminator_optimizer=optimizer(0.005),
                  steps_per_execution=PER_CALL, jit_compile=False)
    if diagnostics:
        model.watch_gradients(EVERY, PER_CALL)
    return model


def real(steps: int = STEPS) -> np.ndarray:
    return dataset("ring", n_samples=BATCH * steps, seed=1).x


def fit(model: GANModel, x: np.ndarray) -> None:
    readers = [Reader(model.step_gradients)] if model.step_gradients is not None else []
    model.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=readers)


def plain(model: GANModel, batch: np.ndarray) -> Dict[str, float]:
    """The step's statistics from one plain tape per part, eagerly; the model's state (noise, hist_avg's
    references) is left as it was."""
    state = [(v, v.numpy()) for v in model.variables if not v.trainable]
    statistics = {}
    with tf.GradientTape(persistent=True) as tape:
        fake = model.generate(BATCH, training=True)
        d_total, _, _, d_parts, logits_fake = model.discriminator_objective(tf.constant(batch), fake)
        g_total, _, _, g_parts = model.objective("generator", keras.ops.mean(keras.ops.softplus(-logits_fake)),
                                                 batch, fake)
        scales = {p: model.player_optimizer(p).scale_loss(1.0) for p in ("discriminator", "generator")}
        scaled = {p: {**{k: v * scales[p] for k, v in parts.items()}, "total": total * scales[p]}
                  for p, parts, total in (("discriminator", d_parts, d_total), ("generator", g_parts, g_total))}
    for variable, value in state:
        variable.assign(value)
    for player, parts in scaled.items():
        variables = model.player_variables(player)

        def flat(loss):
            return np.concatenate([np.zeros(v.shape).ravel() if g is None else np.asarray(g, np.float64).ravel()
                                   for g, v in zip(tape.gradient(loss, variables), variables)]) / float(scales[player])

        update = flat(parts.pop("total"))
        statistics[f"weight_grad/{player}/norm"] = np.linalg.norm(update)
        for name, loss in parts.items():
            g = flat(loss)
            statistics[f"weight_grad/{player}/{name}/norm"] = np.linalg.norm(g)
            product = np.linalg.norm(g) * np.linalg.norm(update)
            statistics[f"weight_grad/{player}/{name}/cos_update"] = g @ update / product if product > 0 else 0.0
    return statistics


def worst_relative_error(got: Dict[str, float], expected: Dict[str, float]) -> float:
    assert sorted(got) == sorted(expected)
    return max(abs(got[k] - expected[k]) / max(abs(expected[k]), 1e-6) for k in expected)


@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-4), ("mixed_float16", 2e-3)])
def test_sampled_statistics_are_a_plain_tapes_per_part_at_each_sampled_step(precision, tolerance):
    x = real()
    watched = gan(True, precision=precision)
    fit(watched, x)
    sampled = dict(watched.step_gradients.read())
    assert sorted(sampled) == [1, 4, 7]
    unwatched = gan(False, precision=precision)  # trains as the watched one did: its state before each sampled step
    done = 0
    for step in sorted(sampled):
        if step - 1 > done:
            fit(unwatched, x[done * BATCH:(step - 1) * BATCH])
        done = step - 1
        expected = plain(unwatched, x[done * BATCH:step * BATCH])
        assert worst_relative_error(sampled[step], expected) < tolerance
    assert -1.0 <= min(v for k, v in sampled[4].items() if k.endswith("cos_update"))
    assert sampled[4]["weight_grad/generator/hist_avg_generator/norm"] > 0.0  # the generator has moved by step 4
    fit(unwatched, x[done * BATCH:])  # its last step
    assert_same_weights(watched, unwatched)


def assert_same_weights(a: GANModel, b: GANModel) -> None:
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_alternating_steps_with_diagnostics_end_with_the_weights_of_steps_without():
    x = real()
    models = [gan(diagnostics, "alternating") for diagnostics in (True, False)]
    for model in models:
        fit(model, x)
    assert [step for step, _ in models[0].step_gradients.read()] == [1, 4, 7]
    assert_same_weights(*models)


class TwoParts(keras.Model):
    """A regime's own step, the helper called as docs/own_problem.md says: a fit and a penalty of one network."""

    step_gradients = None

    def __init__(self, network: keras.Model) -> None:
        super().__init__()
        self.network = network

    def parts(self, x, y):
        fit = keras.ops.mean(keras.ops.square(keras.ops.cast(self.network(x), "float32") - y))  # mixed_float16's too
        return {"fit": fit, "penalty": 0.1 * keras.ops.sum([keras.ops.sum(w * w) for w in self.network.trainable_weights])}

    def train_step(self, data):
        x, y = data
        variables = self.network.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            parts = self.parts(x, y)
            scaled = self.optimizer.scale_loss(parts["fit"] + parts["penalty"])
        gradients = tape.gradient(scaled, variables)
        if self.step_gradients is not None:
            self.step_gradients.measure("network", tape, parts, variables, gradients, self.optimizer)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return {"loss/network": parts["fit"] + parts["penalty"]}


def test_a_regime_of_ones_own_calls_measure_in_its_step_and_trains_as_without():
    x, y = np.random.default_rng(0).normal(size=(2, BATCH * STEPS, 3)).astype("float32")
    models = []
    for watched in (True, False):
        keras.utils.set_random_seed(1)
        model = TwoParts(keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                                           keras.layers.Dense(3)]))
        model.compile(optimizer=keras.optimizers.SGD(0.1), steps_per_execution=STEPS)  # 3 samples in one call
        if watched:
            model.step_gradients = StepGradients({"network": ["fit", "penalty"]}, EVERY, STEPS)
        models.append(model)
    watched, unwatched = models
    watched.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=readers(watched))
    sampled = dict(watched.step_gradients.read())
    assert sorted(sampled) == [1, 4, 7] and len(watched.variables) == len(unwatched.variables)
    done = 0
    for step in sorted(sampled):
        if step - 1 > done:
            unwatched.fit(x[done * BATCH:(step - 1) * BATCH], y[done * BATCH:(step - 1) * BATCH], batch_size=BATCH,
                          shuffle=False, verbose=0)
        done = step - 1
        rows = slice(done * BATCH, step * BATCH)
        variables = unwatched.network.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            parts = unwatched.parts(x[rows], y[rows])
        flat = {name: np.concatenate([np.asarray(g, np.float64).ravel() for g in tape.gradient(loss, variables)])
                for name, loss in parts.items()}
        update = flat["fit"] + flat["penalty"]
        expected = {"weight_grad/network/norm": np.linalg.norm(update)}
        for name, g in flat.items():
            expected[f"weight_grad/network/{name}/norm"] = np.linalg.norm(g)
            expected[f"weight_grad/network/{name}/cos_update"] = g @ update / (np.linalg.norm(g) * np.linalg.norm(update))
        assert worst_relative_error(sampled[step], expected) < 1e-5
    unwatched.fit(x[done * BATCH:], y[done * BATCH:], batch_size=BATCH, shuffle=False, verbose=0)
    for a, b in zip(watched.get_weights(), unwatched.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_sample_that_overflows_at_the_loss_scale_is_taken_again_at_the_next_step():
    x, y = np.random.default_rng(0).normal(size=(2, BATCH * STEPS, 3)).astype("float32") * 3.0
    keras.utils.set_random_seed(1)
    model = TwoParts(keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(3)]))
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1e-6), initial_scale=2.0 ** 127)
    model.compile(optimizer=optimizer, steps_per_execution=STEPS)
    model.step_gradients = StepGradients({"network": ["fit", "penalty"]}, EVERY, STEPS)
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=readers(model))
    skipped = STEPS - int(optimizer.iterations.numpy())  # updates the scale overflowed: not counted
    sampled = model.step_gradients.read()
    # the batches 1, 2 and 4 overflow (as steps_per_execution=1 shows, the count after each batch 0 0 1 1 2 3 4):
    # the samples due at 1 and 4 are taken at the next finite batches, and carry their steps (it was 1, 2, 4)
    assert skipped == 3 and [step for step, _ in sampled] == [3, 5, 7]
    assert all(np.isfinite(v) for _, values in sampled for v in values.values())


def test_a_regimes_samples_after_skipped_mixed_float16_updates_carry_the_batchs_step():
    """A regime's own step calling ``measure`` without ``branches``, its network in ``mixed_float16`` and a loss
    scale its float16 gradients overflow for the first updates (skipped, not counted by the optimizer): over two
    epochs, each sample carries the batch's global step — a due sample whose batch overflowed is taken at the next
    batch that did not (it carried the optimizer's count + 1: short by the updates skipped before it)."""
    x, y = np.random.default_rng(0).normal(size=(2, BATCH * STEPS, 3)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(1)
        network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = TwoParts(network)
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=2.0 ** 18)
    model.compile(optimizer=optimizer, steps_per_execution=1)
    model.step_gradients = StepGradients({"network": ["fit", "penalty"]}, EVERY, 1)
    counts = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: counts.append(int(optimizer.iterations)))
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, callbacks=[*readers(model), record])
    skipped = {b + 1 for b, count in enumerate(counts) if count == ([0] + counts)[b]}
    assert 0 < len(skipped) < len(counts), counts
    expected, retry = [], False
    for step in range(1, len(counts) + 1):
        due = retry or (step - 1) % EVERY == 0
        retry = due and step in skipped
        if due and step not in skipped:
            expected.append(step)
    assert [step for step, _ in model.step_gradients.read()] == expected, counts


def test_a_gans_samples_after_skipped_updates_carry_the_batchs_step():
    """Under a loss scale that overflows the discriminator's first updates (skipped, not counted by its optimizer),
    its samples carry the batch's global step, as the run recorder counts it (step_count.py): the sample due at
    step 1 is taken at the first finite step, 1 + skipped, then at 4 and 7 — not at the optimizer's count + 1. The
    generator, whose scale does not overflow, is sampled at 1, 4 and 7 only, not again at each retried step."""
    model = gan(True, "alternating", "mixed_float16")
    scales = {"discriminator": 2.0 ** 19, "generator": 2.0 ** 10}
    model.compile(**{f"{p}_optimizer": keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01), initial_scale=scale)
                     for p, scale in scales.items()}, steps_per_execution=PER_CALL, jit_compile=False)
    model.watch_gradients(EVERY, PER_CALL)
    fit(model, real())
    sampled = model.step_gradients.read()
    skipped = {p: STEPS - int(model.player_optimizer(p).iterations) for p in scales}
    assert 0 < skipped["discriminator"] < EVERY and skipped["generator"] == 0
    for player in scales:
        expected = sorted({1 + skipped[player]} | {s for s in (4, 7) if s > skipped[player]})
        assert [step for step, values in sampled if f"weight_grad/{player}/norm" in values] == expected, player
    assert all(np.isfinite(v) for _, values in sampled for v in values.values())


def test_for_config_follows_tracking_gradients_and_keeps_a_slot_per_sample_of_a_call():
    assert StepGradients.for_config(composed_config("tracking.gradients=false"), {"critic": ["gp"]}) is None
    taken = StepGradients.for_config(composed_config("trainer.steps_per_execution=10",
                                                     "tracking.gradients_every_n_steps=3"), {"critic": ["gp"]})
    assert (taken.every_n_steps, taken.slots, taken.names) == (
        3, 5, {"critic": ["weight_grad/critic/gp/norm", "weight_grad/critic/gp/cos_update", "weight_grad/critic/norm"]})


def test_the_next_sampled_step_follows_one_sampled_or_a_resumed_runs_start():
    assert [next_sample(last, 100) for last in (0, 1, 100, 101, 500, 550)] == [1, 101, 101, 201, 501, 601]


@pytest.mark.slow  # a CLI run: 5–20 s
def test_a_gan_run_records_each_players_parts_at_the_sampled_steps(run_cli, store_uri):
    result = run_cli("train", "model=gan", "data=ring", "data.n_samples=96", "model.latent_dim=4",
                     "model.generator_units=[8]", "model.discriminator_units=[8]", "loss=hist_avg", "trainer.epochs=1",
                     "trainer.batch_size=16", "trainer.steps_per_execution=4", "tracking.gradients_every_n_steps=5",
                     "tracking.plots=false", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    logged = {key for key in run.data.metrics if key.startswith("weight_grad/")}
    assert logged == {f"weight_grad/{p}/{part}/{stat}" for p in ("generator", "discriminator")
                      for part in ("adversarial", f"hist_avg_{p}") for stat in ("norm", "cos_update")} \
        | {"weight_grad/generator/norm", "weight_grad/discriminator/norm"}
    for key in logged:  # 6 steps in calls of 4: step 6 in the second call
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 6]
