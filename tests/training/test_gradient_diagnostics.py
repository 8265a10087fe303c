"""Gradient diagnostics against an independent NumPy backward pass: on the tiny tanh network with
MSE + activity on hidden_1 + historical averaging (previous step), the norms, cosines, shares and
conflicts measured between two training steps — for every shared weight and for hidden_1 — are
those of the gradients NumPy computes by hand at those weights with the next step's context; the
measurement leaves the model as it was (the next step is still the plain sum with historical
averaging's reference intact); the probe samples the first step of every interval during fit."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp import metric_names as names
from lossexp.losses.activity import ActivityPenalty
from lossexp.losses.hist_avg import HistoricalAverage

LR, W_ACTIVITY, W_HIST = 0.1, 0.05, 0.5


def numpy_gradients(weights, x, y, sample_weight=None):
    """Per task, the gradient of its weighted contribution on [W1, b1, W2, b2, W3, b3] (float64); the
    task's MSE weighs example i by ``sample_weight[i]`` (Keras: Σ wᵢ·lossᵢ / batch size)."""
    (w1, b1, w2, b2, w3, b3), n = weights, len(x)
    h1 = np.tanh(x @ w1 + b1)
    h2 = np.tanh(h1 @ w2 + b2)
    out = h2 @ w3 + b3

    def backward(d_out, d_h1_extra):
        d_h2 = d_out @ w3.T
        d_z2 = d_h2 * (1 - h2 ** 2)
        d_h1 = d_z2 @ w2.T + d_h1_extra
        d_z1 = d_h1 * (1 - h1 ** 2)
        return [x.T @ d_z1, d_z1.sum(0), h1.T @ d_z2, d_z2.sum(0), h2.T @ d_out, d_out.sum(0)]

    weight = np.ones((n, 1)) if sample_weight is None else np.asarray(sample_weight, np.float64)[:, None]
    task = backward(2 * weight * (out - y) / n, 0.0)
    zero_out = np.zeros_like(out)
    activity = backward(zero_out, W_ACTIVITY * 2 * h1 / n)
    activity[2:] = [np.zeros_like(g) for g in activity[2:]]  # nothing above hidden_1
    return {"task": task, "activity": activity}


def statistics(gradients, tasks, indices):
    """Norms, cosines, shares (α = 1), conflicts of the tasks' gradients on the given tensors."""
    flat = {t: np.concatenate([gradients[t][i].ravel() for i in indices]) for t in tasks}
    total = sum(flat.values())
    found = {}
    for i, t in enumerate(tasks):
        found[("norm", t)] = np.linalg.norm(flat[t])
        found[("share", t)] = flat[t] @ total / (total @ total)
        for u in tasks[:i]:
            product = np.linalg.norm(flat[t]) * np.linalg.norm(flat[u])
            found[(f"cos_{u}", t)] = flat[t] @ flat[u] / product if product > 0 else 0.0
    found["conflicts"] = sum(flat[t] @ flat[u] < 0 for i, t in enumerate(tasks) for u in tasks[:i])
    found["update"] = np.linalg.norm(total)
    return found


@pytest.fixture
def batch(regression_data):
    x, y = regression_data
    return x.astype(np.float64), y.astype(np.float64)


def test_statistics_between_steps_are_those_of_numpy_gradients(tiny_network, compose, batch):
    x, y = batch
    components = [HistoricalAverage(name="hist_avg", weight=W_HIST, mode="previous"),
                  ActivityPenalty(name="activity", weight=W_ACTIVITY, layers=["hidden_1"])]
    model = compose(tiny_network(), components, learning_rate=LR)
    model.watch_gradients()
    assert model.tasks() == ["task", "hist_avg", "activity"]

    def weights():
        return [np.asarray(w.numpy(), np.float64) for w in model.network.trainable_weights]

    def step():
        model.fit(x.astype("float32"), y.astype("float32"), batch_size=len(x), epochs=1, verbose=0)

    step()  # step 1
    theta_2 = weights()
    step()  # step 2
    theta_3 = weights()
    recorded = model.measure_gradients(x.astype("float32"), y.astype("float32"))  # as step 3 would see them
    assert model.gradient_diagnostics() is None  # measure_gradients keeps nothing for the recorder
    again = model.measure_gradients(x.astype("float32"), y.astype("float32"))  # the model as it was found
    assert again == pytest.approx(recorded, rel=1e-5, abs=1e-7)

    gradients = numpy_gradients(theta_3, x, y)
    gradients["hist_avg"] = [W_HIST * 2 * (a - b) for a, b in zip(theta_3, theta_2)]  # mode previous: r = θ₂
    tasks = ["task", "hist_avg", "activity"]
    for layer, indices in ((None, range(6)), ("hidden_1", range(2))):
        expected = statistics(gradients, tasks, indices)
        for (stat, task), value in ((k, v) for k, v in expected.items() if isinstance(k, tuple)):
            got = recorded[names.gradient(task, stat, layer)]
            assert got == pytest.approx(value, rel=1e-4, abs=1e-6), (layer, task, stat)
        assert recorded[names.conflicts(layer)] == expected["conflicts"]
    assert recorded[names.update_norm()] == pytest.approx(statistics(gradients, tasks, range(6))["update"], rel=1e-4)
    assert sum(recorded[names.gradient(t, "share")] for t in tasks) == pytest.approx(1.0, abs=1e-5)
    assert recorded[names.gradient("hist_avg", "norm")] > 1e-4  # a real historical-averaging gradient
    assert names.gradient("activity", "norm", "hidden_2") not in recorded  # only the named layers

    # measuring changed nothing: step 3's update is the sum of the tasks' gradients at θ₃ with r = θ₂ (plain SGD)
    step()
    total = [sum(gradients[t][i] for t in tasks) for i in range(6)]
    for after, before, g in zip(weights(), theta_3, total):
        np.testing.assert_allclose(after, before - LR * g, rtol=1e-4, atol=1e-6)


def test_a_layer_of_a_nested_model_that_a_component_names_has_its_statistics(batch):
    """The tiny network with hidden_1 and hidden_2 in a backbone sub-model: activity on
    ``backbone/hidden_1`` gets that layer's statistics, ``weight_grad/<t>/backbone.hidden_1.<stat>``,
    those of NumPy's gradients on its kernel and bias (they were silently left out)."""
    import keras

    from conftest import compose_model

    x, y = batch
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,), name="inputs")
    hidden = keras.layers.Dense(4, activation="tanh", name="hidden_2")(
        keras.layers.Dense(8, activation="tanh", name="hidden_1")(inputs))
    backbone = keras.Model(inputs, hidden, name="backbone")
    outer = keras.Input(shape=(4,))
    network = keras.Model(outer, keras.layers.Dense(1, name="output")(backbone(outer)), name="nested")
    model = compose_model(network, [ActivityPenalty(name="activity", weight=W_ACTIVITY, layers=["backbone/hidden_1"])])
    model.watch_gradients()
    recorded = model.measure_gradients(x.astype("float32"), y.astype("float32"))

    weights = [np.asarray(w.numpy(), np.float64) for w in network.trainable_weights]  # W1, b1, W2, b2, W3, b3
    expected = statistics(numpy_gradients(weights, x, y), ["task", "activity"], range(2))
    for (stat, task), value in ((k, v) for k, v in expected.items() if isinstance(k, tuple)):
        name = names.gradient(task, stat, "backbone/hidden_1")
        assert name.startswith(f"weight_grad/{task}/backbone.hidden_1.")  # in the task's section
        assert recorded[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    assert recorded["weight_grad/backbone.hidden_1.conflicts"] == expected["conflicts"]
    assert names.gradient_parts("weight_grad/activity/backbone.hidden_1.norm") == ("activity", "backbone.hidden_1",
                                                                                   "norm")


def reading_probe(sampled: list):
    """A GradientProbe class whose instances append each sample they take, (step, statistics), to ``sampled``."""
    from lossexp.training.gradient_probe import GradientProbe

    class Reader(GradientProbe):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            found = self.model.gradient_diagnostics()
            if found is not None:
                sampled.append(found)

    return Reader


def test_the_probe_samples_the_first_step_of_every_interval(tiny_network, compose, batch):
    x, y = (a.astype("float32") for a in batch)
    model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=W_ACTIVITY)], learning_rate=LR)
    model.watch_gradients()
    sampled = []
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[reading_probe(sampled)(lambda step: (x[:8], y[:8]), 3)])
    assert [step for step, _ in sampled] == [1, 4, 7, 10]  # 5 steps an epoch


def test_a_resumed_fit_samples_the_steps_and_batches_of_the_run_it_continues(tiny_network, compose, batch):
    """Four epochs in one fit, or two and then two more from the step the first two ended at (a
    resumed run's fit): the same steps sampled — not the resumed fit's first call besides — on the
    same batches of the training arrays (they used to restart from the first batch)."""
    from lossexp.data.dataset import Part
    from lossexp.training.gradient_probe import training_batches

    x, y = (a.astype("float32") for a in batch)

    def sampled_in(*epochs):
        model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=W_ACTIVITY)], learning_rate=LR)
        model.watch_gradients()
        sampled = []
        start = 0
        for end in epochs:  # each fit a new probe, as a resumed run builds one
            probe = reading_probe(sampled)(training_batches(Part(arrays=(x, y), size=len(x)), 8, seed=0), 3)
            model.fit(x, y, batch_size=8, initial_epoch=start, epochs=end, shuffle=False, verbose=0, callbacks=[probe])
            start = end
        return sampled

    whole, resumed = sampled_in(4), sampled_in(2, 4)  # 5 steps an epoch
    assert [step for step, _ in whole] == [step for step, _ in resumed] == [1, 4, 7, 10, 13, 16, 19]
    for (step, got), (_, expected) in zip(resumed, whole):
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-7), step  # same weights, same batch


def test_no_diagnostics_unless_watched(tiny_network, compose, batch):
    x, y = batch
    model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=W_ACTIVITY)], learning_rate=LR)
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=8, epochs=1, verbose=0)
    assert model.gradient_diagnostics() is None


def test_names_of_the_statistics():
    from lossexp.training.gradient_diagnostics import statistic_names

    assert statistic_names(["task", "kl"]) == [
        "weight_grad/task/norm", "weight_grad/task/share", "weight_grad/kl/norm", "weight_grad/kl/share",
        "weight_grad/kl/cos_task", "weight_grad/conflicts", "weight_grad/norm"]
    assert statistic_names(["task", "kl"], "dense") == [
        "weight_grad/task/dense.norm", "weight_grad/task/dense.share", "weight_grad/kl/dense.norm",
        "weight_grad/kl/dense.share", "weight_grad/kl/dense.cos_task", "weight_grad/dense.conflicts"]
    assert names.gradient_parts("weight_grad/kl/dense.cos_task") == ("kl", "dense", "cos_task")
    assert names.gradient_parts("weight_grad/kl/cos_task") == ("kl", None, "cos_task")
    assert names.gradient_parts("weight_grad/conflicts") is None and names.gradient_parts("weight_grad/norm") is None
    assert names.gradient_parts("weight_grad/dense.conflicts") is None


class BranchingPenalty(ActivityPenalty):
    """The activity penalty, or nothing while it is tiny, decided by a Python ``if`` on a tensor (which
    only autograph turns into graph control flow)."""

    def term(self, context):
        value = super().term(context)
        if value > 1e-12:
            return value
        return value * 0.0


def test_a_component_branching_on_a_tensor_in_python_is_compiled_with_autograph(tiny_network, compose, batch):
    import tensorflow as tf

    x, y = (a.astype("float32") for a in batch)
    model = compose(tiny_network(), [BranchingPenalty(name="activity", weight=W_ACTIVITY, layers=["hidden_1"])],
                    learning_rate=LR)
    model.watch_gradients()
    tf.config.run_functions_eagerly(True)
    try:
        eager = model.measure_gradients(x, y)  # the same Python code, run op by op
    finally:
        tf.config.run_functions_eagerly(False)
    compiled = model.measure_gradients(x, y)  # traced without autograph, refused, traced again with it
    assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-7)
    assert compiled[names.gradient("activity", "norm")] > 0
    assert model.measure_gradients(x, y) == pytest.approx(eager, rel=1e-5, abs=1e-7)


def test_sample_weights_weigh_the_task_gradient_as_numpy_does(tiny_network, compose, batch):
    x, y = batch
    model = compose(tiny_network(), [ActivityPenalty(name="activity", weight=W_ACTIVITY, layers=["hidden_1"])])
    model.watch_gradients()
    sample_weight = np.linspace(0.0, 2.0, len(x))
    weights = [np.asarray(w.numpy(), np.float64) for w in model.network.trainable_weights]
    recorded = model.measure_gradients(x.astype("float32"), y.astype("float32"), sample_weight.astype("float32"))
    expected = statistics(numpy_gradients(weights, x, y, sample_weight), ["task", "activity"], range(6))
    unweighted = statistics(numpy_gradients(weights, x, y), ["task", "activity"], range(6))
    assert recorded[names.gradient("task", "norm")] == pytest.approx(expected[("norm", "task")], rel=1e-4)
    assert recorded[names.gradient("activity", "cos_task")] == pytest.approx(expected[("cos_task", "activity")],
                                                                              rel=1e-4, abs=1e-6)
    assert abs(expected[("norm", "task")] - unweighted[("norm", "task")]) > 1e-3 * unweighted[("norm", "task")]


def test_under_mixed_float16_the_parts_are_differentiated_loss_scaled_as_the_update_is(tiny_network, compose, batch):
    """A network computing in float16 (trained with Keras' LossScaleOptimizer) and an activity penalty
    weighted 1e-6: its float16 gradient, about 1e-7 per activation, underflows unless the loss scale
    lifts it as in the update. Unscaled, its cosine with the task's was 0.087 and its norm 1.38e-6
    where NumPy's, at the same weights, are 0.204 and 1.64e-6 (now 0.204, 1.64e-6). Keras' first
    scale, 2**15, overflows on this batch: it is halved as the optimizer would halve it."""
    import keras

    x, y = batch
    weight = 1e-6
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = tiny_network()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = compose(network, [ActivityPenalty(name="activity", weight=weight, layers=["hidden_1"])])
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.watch_gradients()
    recorded = model.measure_gradients(x.astype("float32"), y.astype("float32"))

    weights = [np.asarray(w.numpy(), np.float64) for w in network.trainable_weights]
    expected = statistics(numpy_gradients(weights, x, y), ["task", "activity"], range(6))  # cosines: any weight
    assert recorded[names.gradient("activity", "cos_task")] == pytest.approx(expected[("cos_task", "activity")],
                                                                              abs=0.01)
    assert recorded[names.gradient("activity", "norm")] == pytest.approx(
        expected[("norm", "activity")] * weight / W_ACTIVITY, rel=0.01)


def test_the_state_reads_order_the_pass_by_one_control_edge_per_op(compose, batch):
    """The forward pass of a sample waits for the reads of the state it restores (normalisation
    statistics, hist_avg's references, the metrics') through one NoOp: a control input per state
    variable on each op was 628,180 control edges at EfficientNetB0 and most of its first sample's
    21 s of CPU (12.8 s since)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    h = inputs
    for i in range(4):
        h = keras.layers.BatchNormalization(name=f"norm_{i}")(keras.layers.Dense(8, activation="tanh", name=f"hidden_{i + 1}")(h))
    model = compose(keras.Model(inputs, keras.layers.Dense(1, name="output")(h)),
                    [HistoricalAverage(name="hist_avg", weight=W_HIST), ActivityPenalty(name="activity", weight=W_ACTIVITY, layers=["hidden_1"])])
    x, y = (a.astype("float32") for a in batch)
    model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    model.watch_gradients()
    first = model.measure_gradients(x, y)
    graph = model.diagnostics._compiled.get_concrete_function(x, y, None, tf.constant(1.0)).graph
    operations = graph.get_operations()
    edges = sum(len(op.control_inputs) for op in operations)
    state = len([v for v in [*model.variables, *model.metrics_variables] if not v.trainable])
    assert state > 20
    assert edges < len(operations) + 3 * state, (edges, len(operations), state)
    assert model.measure_gradients(x, y) == pytest.approx(first, rel=1e-6)  # the state was restored
