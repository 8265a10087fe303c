"""Historical averaging: reference state, term and gradient against NumPy, for every mode and
distance, in a hand-written SGD loop and in the composed model's real train step."""
from __future__ import annotations

from typing import List

import numpy as np
import pytest

import keras
import tensorflow as tf

from lossexp.errors import ConfigError
from lossexp.losses.base import LossContext
from lossexp.losses.hist_avg import HistoricalAverage

MODES = ["mean", "ema", "previous"]
DISTANCES = ["squared_l2", "mean_abs"]
DECAY = 0.7
STEPS = 5
BATCH = 8


# --- the independent NumPy reference ---------------------------------------------------------
def np_references(history: List[List[np.ndarray]], mode: str, decay: float = DECAY) -> List[List[np.ndarray]]:
    """r_t for t = 1..k from the weights θ_1..θ_k (each a list of tensors), per the docstring."""
    refs: List[List[np.ndarray]] = []
    for t in range(1, len(history) + 1):
        theta = history[t - 1]
        if mode == "mean":
            r = [np.mean(np.stack([h[i] for h in history[:t]]), axis=0) for i in range(len(theta))]
        elif mode == "ema":
            r = list(theta) if t == 1 else [decay * p + (1.0 - decay) * th for p, th in zip(refs[-1], theta)]
        else:  # previous
            r = list(theta) if t == 1 else list(history[t - 2])
        refs.append(r)
    return refs


def np_term(theta: List[np.ndarray], ref: List[np.ndarray], distance: str) -> float:
    if distance == "squared_l2":
        return float(sum(np.sum((th - r) ** 2) for th, r in zip(theta, ref)))
    return float(sum(np.mean(np.abs(th - r)) for th, r in zip(theta, ref)))


def np_grad(theta: np.ndarray, ref: np.ndarray, distance: str) -> np.ndarray:
    if distance == "squared_l2":
        return 2.0 * (theta - ref)
    return np.sign(theta - ref) / theta.size


def assert_grad_close(got: np.ndarray, theta: np.ndarray, ref: np.ndarray, distance: str) -> None:
    expected = np_grad(theta, ref, distance)
    if distance == "squared_l2":
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        return
    # sign(θ − r): float32 vs float64 rounding can only matter where θ − r is ~0.
    decided = np.abs(theta - ref) > 1e-6
    np.testing.assert_allclose(got[decided], expected[decided], rtol=1e-5, atol=1e-9)
    assert np.all(np.abs(got[~decided]) <= 1.0 / theta.size + 1e-9)


def snapshot(variables) -> List[np.ndarray]:
    return [np.array(v.numpy(), dtype=np.float64) for v in variables]


# --- hand-written SGD loop: term and gradient at every step -----------------------------------
@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mode", MODES)
def test_term_gradient_and_reference_match_numpy_in_sgd_loop(mode, distance, tiny_network, regression_data):
    x, y = regression_data
    network = tiny_network()
    component = HistoricalAverage(name="hist_avg", weight=0.5, mode=mode, decay=DECAY, distance=distance)
    component.attach(network)
    tracked = network.trainable_weights
    assert len(component.reference_values()) == len(tracked) == 6
    lr = 0.2

    history: List[List[np.ndarray]] = []
    for step in range(STEPS):
        xb, yb = x[step * BATCH:(step + 1) * BATCH], y[step * BATCH:(step + 1) * BATCH]
        history.append(snapshot(tracked))  # θ_t, read before the step's update
        with tf.GradientTape(persistent=True) as tape:
            y_pred = network(xb, training=True)
            task = tf.reduce_mean(tf.square(yb - y_pred))
            term = component.term(LossContext(y_true=yb, y_pred=y_pred, network=network, training=True))
            total = task + component.weighting.contribution(term)
        term_grads = tape.gradient(term, tracked)
        total_grads = tape.gradient(total, tracked)
        del tape

        ref = np_references(history, mode)[-1]
        np.testing.assert_allclose(float(term), np_term(history[-1], ref, distance), rtol=1e-4, atol=1e-7)
        for grad, theta, r in zip(term_grads, history[-1], ref):
            assert_grad_close(np.asarray(grad, np.float64), theta, r, distance)
        for variable, grad in zip(tracked, total_grads):
            variable.assign_sub(lr * grad)

    assert float(component.steps_seen) == STEPS
    # The weights really moved, so the history is not trivial.
    assert not np.allclose(history[0][0], history[-1][0])
    stored = component.reference_values()
    # mean/ema store r_k; previous stores θ_k, the reference of the next step.
    expected = history[-1] if mode == "previous" else np_references(history, mode)[-1]
    for got, want in zip(stored, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_running_mean_equals_numpy_mean_of_weight_history(tiny_network, regression_data):
    """The stated property: after k steps, the reference is the NumPy mean of θ_1..θ_k."""
    x, y = regression_data
    network = tiny_network(seed=3)
    component = HistoricalAverage(name="hist_avg", mode="mean")
    component.attach(network)
    history = []
    for step in range(STEPS):
        history.append(snapshot(network.trainable_weights))
        with tf.GradientTape() as tape:
            y_pred = network(x, training=True)
            loss = tf.reduce_mean(tf.square(y - y_pred))
            component.term(LossContext(y, y_pred, network, training=True))
        for variable, grad in zip(network.trainable_weights, tape.gradient(loss, network.trainable_weights)):
            variable.assign_sub(0.3 * grad)
    for got, *thetas in zip(component.reference_values(), *history):
        np.testing.assert_allclose(got, np.mean(thetas, axis=0), rtol=1e-5, atol=1e-6)


# --- the composed model's real (compiled) train step -------------------------------------------
class WeightHistory(keras.callbacks.Callback):
    """Records θ_t at the beginning of every train batch (i.e. before the step's update)."""

    def __init__(self, variables):
        super().__init__()
        self.variables = variables
        self.history: List[List[np.ndarray]] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.history.append(snapshot(self.variables))


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mode", MODES)
def test_train_step_updates_state_and_weights_as_numpy(mode, distance, tiny_network, compose, regression_data):
    x, y = regression_data
    weight, lr = 0.5, 0.2
    component = HistoricalAverage(name="hist_avg", weight=weight, mode=mode, decay=DECAY, distance=distance)
    model = compose(tiny_network(), [component], learning_rate=lr)
    tracked = model.network.trainable_weights
    recorder = WeightHistory(tracked)
    n = STEPS * BATCH
    logs = model.fit(x[:n], y[:n], batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[recorder]).history
    history = recorder.history + [snapshot(tracked)]  # θ_1..θ_k, θ_{k+1}
    thetas = history[:STEPS]
    assert len(thetas) == STEPS
    refs = np_references(thetas, mode)

    assert float(component.steps_seen) == STEPS
    expected_state = thetas[-1] if mode == "previous" else refs[-1]
    for got, want in zip(component.reference_values(), expected_state):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    # Equal batch sizes: the epoch mean of the term is the mean of the per-step terms.
    terms = [np_term(th, r, distance) for th, r in zip(thetas, refs)]
    np.testing.assert_allclose(logs["term/hist_avg"][0], np.mean(terms), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logs["loss/hist_avg"][0], weight * np.mean(terms), rtol=1e-4, atol=1e-8)

    # Each SGD update is -lr·(∇task + weight·∇term) with ∇term from NumPy; ∇task from a clone.
    clone = keras.models.clone_model(tiny_network())
    for t in range(STEPS):
        clone.set_weights([w.astype(np.float32) for w in thetas[t]])
        xb, yb = x[t * BATCH:(t + 1) * BATCH], y[t * BATCH:(t + 1) * BATCH]
        with tf.GradientTape() as tape:
            task = tf.reduce_mean(tf.square(yb - clone(xb, training=True)))
        task_grads = tape.gradient(task, clone.trainable_weights)
        for theta, r, g_task, theta_next in zip(thetas[t], refs[t], task_grads, history[t + 1]):
            term_grad = np_grad(theta, r, distance)
            expected = theta - lr * (np.asarray(g_task, np.float64) + weight * term_grad)
            if distance == "mean_abs":
                decided = np.abs(theta - r) > 1e-6
                np.testing.assert_allclose(theta_next[decided], expected[decided], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_allclose(theta_next, expected, rtol=1e-5, atol=1e-6)


def test_the_running_mean_counts_exactly_past_two_to_the_24_steps(tiny_network, compose, regression_data):
    # the count was float32: t + 1 rounds back to t = 2**24, so from there r moved by a constant 1/2**24 (an EMA,
    # not the mean: at step 2**25 the first 2**24 steps weighed e⁻¹ = 0.37 of r instead of ½)
    x, y = regression_data
    component = HistoricalAverage(name="hist_avg", weight=0.5, mode="mean")
    model = compose(tiny_network(), [component], learning_rate=0.2)
    start = 2 ** 24 - 1
    component.steps_seen.assign(start)  # r_start = 0 (the initial references), as if after 2**24 − 1 steps
    tracked = model.network.trainable_weights
    recorder = WeightHistory(tracked)
    model.fit(x[:3 * BATCH], y[:3 * BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0,
              callbacks=[recorder])
    assert int(component.steps_seen) == start + 3
    references = [np.zeros_like(w) for w in recorder.history[0]]
    for t, thetas in enumerate(recorder.history, start=start + 1):
        references = [r + (theta - r) / t for r, theta in zip(references, thetas)]  # r_t = r_{t−1} + (θ_t − r_{t−1})/t
    for got, want in zip(component.reference_values(), references):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_a_model_with_hist_avg_exports_as_a_saved_model(tiny_network, compose, tmp_path):
    """The component's own list of the weights it watches is not Keras' ``_tracked`` (the names of a TensorFlow
    layer's tracked collections, which SavedModel export reads as attribute names): sharing the name, the
    export failed with "attribute name must be string, not 'Variable'"."""
    model = compose(tiny_network(), [HistoricalAverage(name="hist_avg")])
    tf.saved_model.save(model, str(tmp_path / "exported"))
    assert (tmp_path / "exported" / "saved_model.pb").exists()


def test_a_float32_count_an_older_lossexp_saved_loads(tiny_network):
    # checkpoints and saved models before the count was int64 hold it as float32: Keras casts it on assign
    component = HistoricalAverage(name="hist_avg")
    component.attach(tiny_network())
    component.steps_seen.assign(np.array(2.0 ** 24, np.float32))
    assert component.steps_seen.dtype == "int64" and int(component.steps_seen) == 2 ** 24


def test_layers_option_tracks_only_those_layers(tiny_network, compose, regression_data):
    x, y = regression_data
    component = HistoricalAverage(name="hist_avg", weight=1.0, mode="mean", layers=["hidden_2"])
    model = compose(tiny_network(), [component], learning_rate=0.2)
    hidden_2 = model.network.get_layer("hidden_2")
    assert [tuple(r.shape) for r in component.reference_values()] == [(8, 4), (4,)]

    recorder = WeightHistory(hidden_2.trainable_weights)
    model.fit(x[:24], y[:24], batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    thetas = recorder.history
    for got, *per_step in zip(component.reference_values(), *thetas):
        np.testing.assert_allclose(got, np.mean(per_step, axis=0), rtol=1e-5, atol=1e-6)

    # The term depends on hidden_2 only: no gradient reaches the other layers.
    network = model.network
    with tf.GradientTape() as tape:
        y_pred = network(x[:BATCH], training=True)
        before = snapshot(hidden_2.trainable_weights), component.reference_values()
        term = component.term(LossContext(y[:BATCH], y_pred, network, training=True))
    grads = dict(zip([v.path for v in network.trainable_weights], tape.gradient(term, network.trainable_weights)))
    for path, grad in grads.items():
        if path.startswith("hidden_2/"):
            assert grad is not None
        else:
            assert grad is None or not np.any(np.asarray(grad)), path
    theta, old_ref = before
    ref = [r + (th - r) / 4.0 for th, r in zip(theta, old_ref)]  # 4th step of the running mean
    np.testing.assert_allclose(float(term), np_term(theta, ref, "squared_l2"), rtol=1e-4, atol=1e-7)


def test_validation_call_is_zero_and_leaves_state_alone(tiny_network, compose, regression_data):
    x, y = regression_data
    component = HistoricalAverage(name="hist_avg", weight=1.0, mode="ema", decay=0.5)
    model = compose(tiny_network(), [component], learning_rate=0.2)
    model.fit(x[:16], y[:16], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    steps, refs = float(component.steps_seen), component.reference_values()
    assert steps == 2

    y_pred = model.network(x, training=False)
    term = component.term(LossContext(y, y_pred, model.network, training=False))
    assert float(term) == 0.0
    results = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    assert not any("hist_avg" in key for key in results)
    model.predict(x, verbose=0)

    assert float(component.steps_seen) == steps
    for got, want in zip(component.reference_values(), refs):
        np.testing.assert_array_equal(got, want)


def test_unknown_layer_is_a_config_error(tiny_network):
    component = HistoricalAverage(name="hist_avg", layers=["hidden_3"])
    with pytest.raises(ConfigError, match=r"loss\.hist_avg\.layers.*'hidden_3'.*hidden_1, hidden_2, output"):
        component.attach(tiny_network())


def test_an_input_layer_is_refused_rather_than_a_silent_zero_term(tiny_network, compose):
    with pytest.raises(ConfigError) as info:
        compose(tiny_network(), [HistoricalAverage(name="hist_avg", layers=["inputs"])])
    assert str(info.value) == ("Invalid value for loss.hist_avg.layers: expected layers with trainable weights (inputs "
                               "(an input layer) has none; the model's layers with some: hidden_1, hidden_2, output), "
                               "got 'inputs'")


def test_every_named_layer_without_trainable_weights_is_listed(compose):
    """An input, a Dropout and a frozen Dense add nothing to the term: named together, with the layers that would."""
    inputs = keras.Input((4,), name="inputs")
    x = keras.layers.Dense(8, name="hidden_1")(inputs)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Dense(8, name="frozen", trainable=False)(x)
    network = keras.Model(inputs, keras.layers.Dense(1, name="output")(x))
    with pytest.raises(ConfigError) as info:
        compose(network, [HistoricalAverage(name="hist_avg", layers=["hidden_1", "drop", "frozen", "inputs"])])
    assert str(info.value) == ("Invalid value for loss.hist_avg.layers: expected layers with trainable weights (drop (a "
                               "Dropout), frozen (a frozen Dense) and inputs (an input layer) have none; the model's "
                               "layers with some: hidden_1, output), got 'drop'")


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("mode", MODES)
def test_the_closed_form_gradient_trains_as_differentiating_the_term_does(mode, distance, tiny_network, regression_data,
                                                                           monkeypatch):
    """The plain update adds 2λ(θ − r) (λ·sign(θ − r)/size) itself; differentiating the term gives the same step,
    also under a loss-scaling optimizer (mixed float16)."""
    x, y = regression_data

    def trained(closed: bool, loss_scaling: bool):
        if not closed:
            monkeypatch.setattr(HistoricalAverage, "gives_closed_form_gradients", property(lambda self: False))
        from lossexp.training.supervised import compose

        component = HistoricalAverage(name="hist_avg", weight=0.5, mode=mode, decay=DECAY, distance=distance)
        model = compose(tiny_network(), [component])
        optimizer = keras.optimizers.SGD(0.2)
        model.compile(optimizer=keras.optimizers.LossScaleOptimizer(optimizer) if loss_scaling else optimizer,
                      loss="mean_squared_error")
        logs = model.fit(x[:40], y[:40], batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
        monkeypatch.undo()
        return [w.numpy() for w in model.network.trainable_weights], logs["term/hist_avg"][0]

    for loss_scaling in (False, True) if (mode, distance) == ("mean", "squared_l2") else (False,):
        (closed, closed_term), (tape, tape_term) = trained(True, loss_scaling), trained(False, loss_scaling)
        assert closed_term == pytest.approx(tape_term, rel=1e-6)
        for got, want in zip(closed, tape):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weight", [{"value": 2.0, "trainable": True, "parametrization": "softplus"},
                                    {"value": 2.0, "trainable": True, "parametrization": "uncertainty"},
                                    {"schedule": "linear", "start": 0.0, "end": 3.0, "steps": 10},
                                    {"value": 1.0, "trainable": True, "parametrization": "dual", "lr": 0.1,
                                     "epsilon": 0.0}], ids=["softplus", "uncertainty", "linear", "dual"])
def test_the_closed_form_gradient_trains_every_weight_form_as_the_tape_does(weight, tiny_network, regression_data,
                                                                            monkeypatch):
    """A trained, scheduled or dual weight on hist_avg: the weight's own gradient still comes from the
    tape (through w·term), the weights' from the closed form scaled by w — the same step as the tape's."""
    from lossexp.training.supervised import compose

    x, y = regression_data

    def trained(closed: bool):
        if not closed:
            monkeypatch.setattr(HistoricalAverage, "gives_closed_form_gradients", property(lambda self: False))
        component = HistoricalAverage(name="hist_avg", weight=weight, mode="ema", decay=DECAY)
        model = compose(tiny_network(), [component])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mean_squared_error")
        model.fit(x[:32], y[:32], batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        monkeypatch.undo()
        return [w.numpy() for w in model.trainable_weights]

    for got, want in zip(trained(True), trained(False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


# --- a network of many small weight tensors ----------------------------------------------------
def many_tensor_network(blocks: int = 12, seed: int = 0) -> keras.Model:
    """Dense(3) + BatchNormalization blocks: 4 small trainable tensors each (kernel, bias, γ, β), as in
    a ResNet's BatchNorm-heavy stack, and an output Dense: 4·blocks + 2 tensors."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,), name="inputs")
    x = inputs
    for i in range(blocks):
        x = keras.layers.Dense(3, activation="tanh", name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"norm_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="output")(x))


@pytest.mark.parametrize("mode", MODES)
def test_term_and_gradients_match_numpy_on_a_network_of_many_small_tensors(mode):
    """Both paths — the closed form the plain update adds, and the term the tape differentiates — against the
    paper's formula in float64, tensor by tensor, over steps of moving weights (34 tensors)."""
    network = many_tensor_network(blocks=8)
    tracked = network.trainable_weights
    closed = HistoricalAverage(name="hist_avg", mode=mode, decay=DECAY)
    taped = HistoricalAverage(name="hist_avg_tape", mode=mode, decay=DECAY)
    closed.attach(network)
    taped.attach(network)
    assert len(tracked) == 34
    context = LossContext(None, None, network, training=True)
    rng = np.random.default_rng(7)
    history: List[List[np.ndarray]] = []
    for step in range(3):
        history.append(snapshot(tracked))
        term, gradients = closed.closed_form_gradients(context, tf.constant(0.5))
        with tf.GradientTape() as tape:
            tape_term = taped.term(context)
        tape_gradients = tape.gradient(tape_term, tracked)
        ref = np_references(history, mode)[-1]
        expected = np_term(history[-1], ref, "squared_l2")
        np.testing.assert_allclose(float(term), expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float(tape_term), expected, rtol=1e-5, atol=1e-7)
        assert [id(w) for w, _ in gradients] == [id(w) for w in tracked]
        for (_, grad), tape_grad, theta, r in zip(gradients, tape_gradients, history[-1], ref):
            np.testing.assert_allclose(np.asarray(grad, np.float64), 0.5 * np_grad(theta, r, "squared_l2"),
                                       rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(np.asarray(tape_grad, np.float64), np_grad(theta, r, "squared_l2"),
                                       rtol=1e-4, atol=1e-6)
        for variable in tracked:  # the weights move between steps, as training moves them
            variable.assign_add(rng.normal(0.0, 0.1, variable.shape).astype("float32"))
    expected_state = history[-1] if mode == "previous" else np_references(history, mode)[-1]
    for component in (closed, taped):
        for got, want in zip(component.reference_values(), expected_state):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def executed_ops(function) -> int:
    """The operations a traced function runs: its graph's and its nested functions', less the captures,
    constants and identities that cost nothing to run."""
    graph = function.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(node for library in graph.library.function for node in library.node_def)]
    return sum(node.op not in ("Placeholder", "Const", "Identity", "NoOp") for node in nodes)


@pytest.mark.parametrize("mode", ["mean", "previous"])
def test_the_closed_form_step_costs_few_ops_per_weight_tensor(mode):
    """A network of many small tensors (BatchNorm's γ and β, biases) pays for every op per tensor, whatever its
    size: the closed form reads θ and r once each, updates r and gives Σ(θ − r)² (one L2Loss) and the
    gradient — 8 ops per tensor (7 for ``previous``), where forming θ − r_t again, squaring and summing it
    took 12 (10)."""

    def ops_per_network(blocks: int) -> int:
        network = many_tensor_network(blocks)
        component = HistoricalAverage(name="hist_avg", mode=mode)
        component.attach(network)
        context = LossContext(None, None, network, training=True)

        @tf.function
        def step():
            term, gradients = component.closed_form_gradients(context, tf.constant(1.0))
            return term, [gradient for _, gradient in gradients]

        return executed_ops(step)

    per_tensor = (ops_per_network(6) - ops_per_network(1)) / 20  # 26 tensors against 6
    assert per_tensor <= (7 if mode == "previous" else 8)


def test_tracing_the_term_registers_no_gradient_that_outlives_the_graph(tiny_network, regression_data):
    """A graph-mode ``custom_gradient`` is registered in TensorFlow's process-wide gradient registry under
    a new name at every trace and never removed, keeping the traced graph alive: each run of a sweep in
    one process kept its train step and gradient diagnostics (13 MB a job of a 45-job sweep)."""
    from tensorflow.python.framework import ops as tf_ops

    def custom_gradients() -> int:
        return sum(name.startswith("CustomGradient") for name in tf_ops._gradient_registry.list())

    x, y = regression_data
    network = tiny_network()
    component = HistoricalAverage(name="hist_avg", weight=0.5)
    component.attach(network)

    @tf.function
    def gradients(xb):
        with tf.GradientTape() as tape:
            y_pred = network(xb, training=True)
            term = component.term(LossContext(y_true=y[:BATCH], y_pred=y_pred, network=network, training=True))
        return term, tape.gradient(term, network.trainable_weights)

    before = custom_gradients()
    term, grads = gradients(x[:BATCH])
    assert custom_gradients() == before
    assert all(g is not None for g in grads) and np.isfinite(float(term))


# --- a long run: the reference exact to float64 -------------------------------------------------
@pytest.mark.parametrize("path", ["closed_form", "tape"])
@pytest.mark.parametrize("mode", ["mean", "ema"])
def test_a_long_runs_reference_follows_slowly_drifting_weights_as_the_papers_formula_in_float64(mode, path,
                                                                                                 tiny_network):
    """From t = 10⁶, θ drifting by 10⁻⁵ a step: r + rate·(θ − r) in a float32 reference loses every increment
    below half an ulp of r (rate = 1/t: |θ − r|/|r| < ~t·6·10⁻⁸), so r stayed where it was (a relative error
    of 5·10⁻⁷, all its movement) and ema 0.9999 lost 4 % of its movement. r must be NumPy's float64 formula."""
    network = tiny_network(seed=5)
    tracked = network.trainable_weights
    decay, start, steps = 0.9999, 10**6, 300
    component = HistoricalAverage(name="hist_avg", mode=mode, decay=decay)
    component.attach(network)
    component.steps_seen.assign(start)
    initial = snapshot(tracked)  # the mean of the first 10⁶ steps: the weights now (float32 values)
    for reference, value in zip(component.references, initial):
        reference.assign(value)
    context = LossContext(None, None, network, training=True)

    @tf.function
    def step():
        for variable in tracked:
            variable.assign(variable * (1.0 + 1e-5))
        if path == "tape":
            with tf.GradientTape() as tape:
                term = component.term(context)
            return term, tape.gradient(term, tracked)
        term, gradients = component.closed_form_gradients(context, tf.constant(1.0))
        return term, [gradient for _, gradient in gradients]

    total, expected = [np.zeros_like(value) for value in initial], list(initial)
    for k in range(1, steps + 1):
        term, gradients = step()
        theta = snapshot(tracked)
        total = [s + th for s, th in zip(total, theta)]
        if mode == "mean":  # r_t = (1/t) Σ_{i ≤ t} θ_i, the first 10⁶ of them the initial weights
            expected = [(start * r0 + s) / (start + k) for r0, s in zip(initial, total)]
        else:
            expected = [decay * r + (1.0 - decay) * th for r, th in zip(expected, theta)]
    moved = max(np.max(np.abs(want - r0)) for want, r0 in zip(expected, initial))
    assert moved > 4e-7  # far beyond the tolerance below
    for got, want in zip(component.reference_values(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(float(term), np_term(theta, expected, "squared_l2"), rtol=1e-5)
    for gradient, th, r in zip(gradients, theta, expected):
        np.testing.assert_allclose(np.asarray(gradient, np.float64), 2.0 * (th - r), rtol=1e-5, atol=1e-12)
