"""The checks before training: a network's outputs against the targets, for labels one per example
and one per position (a sequence's tokens, an image's pixels); a network compiled with its own loss."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.data.dataset import as_dataset
from lossexp.errors import ConfigError
from lossexp.training.network_checks import check_outputs, keras_xla_warning_silenced, replaced_compile, xla_not_in_effect


def outputs(*shape):
    return np.zeros((8, *shape), "float32")


def refusal(data, y_pred) -> str:
    with pytest.raises(ConfigError) as info:
        check_outputs("mine", data, data.y[:8], y_pred)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_labels_per_position_take_one_output_per_class_at_each_position():
    tokens = as_dataset("tokens", (np.zeros((8, 12)), np.arange(96).reshape(8, 12) % 5))
    check_outputs("mine", tokens, tokens.y, outputs(12, 5))
    message = refusal(tokens, outputs(12, 4))
    assert "one output per class per position of labels of shape (12,): outputs of shape (12, 5)" in message
    assert "got 'model=mine with outputs of shape (12, 4)'" in message
    assert "task.type=regression if the integer targets are numbers" in message
    pixels = as_dataset("pixels", (np.zeros((8, 4, 4, 1)), (np.arange(128).reshape(8, 4, 4, 1) % 2)))
    check_outputs("mine", pixels, pixels.y, outputs(4, 4, 2))
    check_outputs("mine", pixels, pixels.y, outputs(4, 4, 1))  # two classes: one unit per pixel
    assert "outputs of shape (4, 4, 2)" in refusal(pixels, outputs(2, 2))
    tags = as_dataset("tags", (np.zeros((8, 3)), np.arange(40).reshape(8, 5) % 2))  # multi-label: 0/1 per label
    check_outputs("mine", tags, tags.y, outputs(5))  # one score per label


def test_one_label_per_example_keeps_its_rules():
    labels = as_dataset("labels", (np.zeros((8, 3)), np.arange(8) % 3))
    check_outputs("mine", labels, labels.y, outputs(3))
    check_outputs("mine", labels, labels.y, outputs(10))  # a 10-class network on data of 3 of its classes
    assert "outputs of shape (3,) (sparse labels, or more classes)" in refusal(labels, outputs(2))
    one_hot = as_dataset("one_hot", (np.zeros((8, 3)), np.eye(3, dtype="float32")[np.arange(8) % 3]))
    check_outputs("mine", one_hot, one_hot.y, outputs(3))
    message = refusal(one_hot, outputs(12, 3))
    assert "outputs of shape (3,) (one-hot labels)" in message and "regression" not in message
    assert "outputs of shape (3,) (one-hot labels)" in refusal(one_hot, outputs(4))  # one-hot rows fix the classes


def test_each_output_of_several_is_checked_against_its_own_targets_as_one_output_is():
    """Targets swapped between two heads (a one-unit regressor's and a 3-class classifier's) trained
    silently — the regressor as a classifier, the logits regressed — and a label one head cannot score
    at example 100 failed mid-training in a traceback: each is the one line one output gets."""
    rng = np.random.default_rng(0)
    value, kind = rng.normal(size=(200, 1)).astype("float32"), np.arange(200) % 3
    right = {"reg": outputs(1)[:, :1], "cls": outputs(3)}
    data = as_dataset("two", (np.zeros((200, 4)), {"reg": value, "cls": kind}))
    check_outputs("mine", data, {k: v[:8] for k, v in data.y.items()}, right)
    swapped = as_dataset("swapped", (np.zeros((200, 4)), {"reg": kind, "cls": value}))
    with pytest.raises(ConfigError, match=r"^Invalid value for model: expected outputs of shape \(1,\) like the "
                       r"targets for output 'cls' of data 'swapped' \(regression\), got \"model=mine with output "
                       r"'cls' of shape \(3,\)\"$"):
        check_outputs("mine", swapped, {k: v[:8] for k, v in swapped.y.items()}, right)
    beyond = kind.copy()
    beyond[100] = 4
    late = as_dataset("late", (np.zeros((200, 4)), {"reg": value, "cls": beyond}))
    with pytest.raises(ConfigError, match=r"example 100 has label 4 \(outputs 0 … 2\) for output 'cls' of data "
                       r"'late' \(classification\)"):
        check_outputs("mine", late, {k: v[:8] for k, v in late.y.items()}, right)
    wide = as_dataset("wide", (np.zeros((200, 4)), {"reg": np.repeat(value, 2, axis=1), "cls": kind}))
    with pytest.raises(ConfigError, match=r"expected outputs of shape \(2,\) like the targets for output 'reg'"):
        check_outputs("mine", wide, {k: v[:8] for k, v in wide.y.items()}, right)


def test_an_output_of_integer_counts_under_a_loss_for_numbers_is_a_regression():
    """Integer counts on a one-unit head trained under ``task.loss.count=poisson`` before outputs were
    checked one by one; they are numbers, not classes, when the config names a loss that is no cross-entropy."""
    counts = np.random.default_rng(0).poisson(2.0, size=(200, 1))
    data = as_dataset("counts", (np.zeros((200, 4)), {"count": counts, "cls": np.arange(200) % 3}))
    y_pred, y_true = {"count": outputs(1), "cls": outputs(3)}, {k: v[:8] for k, v in data.y.items()}
    check_outputs("mine", data, y_true, y_pred, {"count": "poisson", "cls": "sparse_categorical_crossentropy"})
    with pytest.raises(ConfigError, match="for output 'count' of data 'counts' \\(classification\\)"):
        check_outputs("mine", data, y_true, y_pred)  # no loss named: integer targets are class labels


def test_a_network_compiled_before_it_came_is_told_what_replaces_its_loss_optimizer_and_metrics():
    import keras


    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert replaced_compile(network, "mine", "mean_squared_error", "adam") is None
    network.compile(optimizer="sgd", loss=keras.losses.Huber(delta=2.0))
    assert replaced_compile(network, "mine", "mean_squared_error", "adam") == (
        "model=mine was compiled with loss huber_loss and optimizer SGD; lossexp trains it with "
        "task.loss=mean_squared_error and optimizer=adam (set task.loss= and optimizer= to choose; a loss of your "
        "own: a loss component)")
    network.compile(optimizer="sgd", loss="mae", metrics=["mse", keras.metrics.RootMeanSquaredError()])
    assert replaced_compile(network, "mine", "mean_squared_error", "adam", ["mean_absolute_error"]) == (
        "model=mine was compiled with loss mae, optimizer SGD and metrics mse, root_mean_squared_error; lossexp trains "
        "it with task.loss=mean_squared_error, optimizer=adam and metrics mean_absolute_error (set task.loss=, "
        "optimizer= and task.metrics=[…] to choose; a loss of your own: a loss component)")
    by_output = {"count": ["mean_absolute_error"], "cls": [keras.metrics.SparseCategoricalAccuracy()]}
    assert "and metrics mean_absolute_error, sparse_categorical_accuracy (set" in replaced_compile(
        network, "mine", "mean_squared_error", "adam", by_output)


def test_regression_targets_match_outputs_up_to_a_trailing_unit_axis():
    series = as_dataset("series", (np.zeros((8, 12, 3)), np.ones((8, 12), "float32")))  # (n, T) targets
    check_outputs("mine", series, series.y, outputs(12, 1))  # a sequence model's (n, T, 1)
    assert "outputs of shape (12,) like the targets" in refusal(series, outputs(12, 2))
    assert "class labels stored as floats" not in refusal(series, outputs(12, 2))
    grids = as_dataset("grids", (np.zeros((8, 3)), np.ones((8, 2, 3), "float32")))
    check_outputs("mine", grids, grids.y, outputs(2, 3))
    # as many values in another shape fail in Keras' loss ((8, 2, 3) − (8, 6)): refused before, in one line
    assert "outputs of shape (2, 3) like the targets" in refusal(grids, outputs(6))
    scalars = as_dataset("scalars", (np.zeros((8, 3)), np.ones(8, "float32")))
    check_outputs("mine", scalars, scalars.y, outputs())
    check_outputs("mine", scalars, scalars.y, outputs(1))


def test_class_labels_stored_as_floats_are_told_of_task_type_classification():
    grades = as_dataset("grades", (np.zeros((8, 3)), (np.arange(8) % 3).astype("float64")))
    message = refusal(grades, outputs(3))
    assert "outputs of shape (1,) like the targets — or task.type=classification if the targets are class labels " \
        "stored as floats" in message
    assert "stored as floats" not in refusal(as_dataset("levels", (np.zeros((8, 3)), np.linspace(0, 1, 8))), outputs(3))


def test_targets_of_several_outputs_name_every_output_and_no_other():
    """A head without targets, or targets of no head, were a KeyError / Keras structure traceback. A head without
    (an inference-only output, an argmax beside its logits) then said nothing of what to do; now how to train
    the others."""
    heads = as_dataset("heads", (np.zeros((8, 3)), {"cls": np.arange(8) % 3, "reg": np.zeros((8, 1), "float32")}))
    y_pred = {"cls": outputs(3), "reg": outputs(1)}
    check_outputs("mine", heads, heads.y, y_pred)
    with pytest.raises(ConfigError) as info:
        check_outputs("mine", heads, heads.y, {**y_pred, "aux": outputs(1)})
    assert str(info.value) == ("Invalid value for data: expected one target array per output of model=mine, by name "
                               "(aux, cls, reg), got 'targets named cls, reg (aux without: every output trains; train "
                               "a model of the same layers whose outputs have targets, keras.Model(inputs, {…}), and "
                               "predict with this one)'")
    with pytest.raises(ConfigError, match=r"by name \(it has one output: one array of targets\), got 'targets "
                                          r"named cls, reg'"):
        check_outputs("mine", heads, heads.y, outputs(3))


def dropout_network(noise_shape):
    """A network whose Dropout only runs in training: a wrong ``noise_shape`` passes every check made
    with ``training=False`` and fails in the first training step, inside Keras' code."""
    import keras

    inputs = keras.Input((10,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.5, noise_shape=noise_shape)(hidden)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden), name="dropping")


def test_a_network_failing_only_in_training_mode_is_one_line_and_its_run_failed(tmp_path, monkeypatch):
    import lossexp
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 10)).astype("float32"), rng.integers(0, 3, 96)
    with pytest.raises(ConfigError) as info:
        lossexp.fit(dropout_network((None, 5)), (x, y), trainer={"epochs": 1, "verbose": 0},
                    tracking={"plots": False, "log_model": False})
    message = str(info.value)
    assert message.startswith("Invalid value for model: dropping fails in training mode (training=True) on a "
                              "batch of 32 examples of data 'python'") and "Dropout.call()" in message, message
    assert "\n" not in message
    [run] = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").search_runs(["1"])
    assert run.info.status == "FAILED"


def test_a_training_failure_the_network_does_not_repeat_keeps_its_traceback():
    from lossexp.training.network_checks import training_mode_failures

    class Composed:  # what training_mode_failures reads of a composed model: the network it trains
        network = dropout_network(None)

    data = as_dataset("zeros", (np.zeros((40, 10), "float32"), np.zeros(40, "int64")))
    with pytest.raises(ValueError, match="^lossexp's own$"):
        with training_mode_failures(Composed(), data, "dropping", 32):
            raise ValueError("lossexp's own")


def test_a_term_failing_on_the_first_examples_with_a_message_of_several_lines_is_one_line(tmp_path, monkeypatch,
                                                                                         restored_registry):
    import keras

    import lossexp

    @lossexp.register_component("broken_on_first_examples")
    class Broken(lossexp.LossComponent):
        def term(self, context):
            raise ValueError("predictions out of range\nCondition x < y did not hold")

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    x = np.zeros((16, 4), "float32")
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network, (x, x[:, :1]), loss=[Broken(name="broken_on_first_examples")], trainer={"epochs": 1})
    assert str(info.value).endswith("ValueError: predictions out of range Condition x < y did not hold")
    assert str(info.value).startswith("Invalid loss component 'broken_on_first_examples': term() failed at ")


def test_the_check_of_a_term_that_runs_the_network_again_leaves_the_networks_state_as_it_found_it(restored_registry):
    """A double-backprop or consistency term calls ``context.network(context.x, training=True)``: the
    check of the terms before a run moved a BatchNormalization's moving mean by 0.063 towards the
    check's examples and advanced Dropout's random generator, so the run started from state the
    check had changed (only the component's own state was restored)."""
    import keras
    from keras import ops

    import lossexp
    from lossexp.training.network_checks import check_terms

    @lossexp.register_component("runs_the_network_again")
    class RunsTheNetworkAgain(lossexp.LossComponent):
        def term(self, context):
            return ops.mean(ops.square(context.network(context.x * 1.1, training=context.training)))

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.BatchNormalization()(keras.layers.Dense(16)(inputs)))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model = lossexp.compose(network, [RunsTheNetworkAgain(name="runs_the_network_again")],
                            task_loss="sparse_categorical_crossentropy")
    model.compile(optimizer="sgd")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32") + 3.0
    before = [v.numpy() for v in network.non_trainable_variables]
    check_terms(model, x, np.arange(32) % 3)
    assert len(before) == 3  # the moving mean and variance, the dropout's generator state
    for variable, value in zip(network.non_trainable_variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)


def two_input_network(structure: str):
    """Inputs ``a`` and ``b`` of the same shape, given to keras.Model as a dict or a list; y = f(a, b)."""
    import keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    output = keras.layers.Dense(1, name="output")(keras.layers.Concatenate()([a, keras.layers.Dense(4)(b)]))
    return keras.Model({"a": a, "b": b} if structure == "dict" else [a, b], output)


def test_a_data_input_the_network_does_not_have_is_one_line_not_a_silent_reordering(tmp_path, all_runs):
    """Keras pairs a dict of arrays with a dict of inputs by sorted position: an extra key sorting
    first fed ``0extra`` to input ``a`` and ``a`` to ``b`` — the run trained, on the wrong inputs."""
    import lossexp

    rng = np.random.default_rng(0)
    a, b, extra = (rng.normal(size=(40, 4)).astype("float32") for _ in range(3))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConfigError) as info:
        lossexp.fit(two_input_network("dict"), ({"a": a, "b": b, "0extra": extra}, a[:, :1]),
                    trainer={"epochs": 1, "verbose": 0}, tracking={"uri": uri})
    message = str(info.value)
    assert "\n" not in message
    assert "Invalid value for data (python): expected inputs named as the network's (a, b; " in message
    assert "got '0extra'" in message
    assert all_runs(uri) == []
    # a network of a list of inputs takes its own by name from the dict (Keras does): the rest is unused
    history, _ = lossexp.fit(two_input_network("list"), ({"a": a, "b": b, "0extra": extra}, a[:, :1]),
                             trainer={"epochs": 1, "verbose": 0}, tracking={"uri": uri})
    assert np.isfinite(history["loss"][-1])


def test_a_layer_of_a_notebooks_network_failing_on_its_first_call_names_its_file_and_line(tmp_path, monkeypatch):
    import inspect

    import keras

    import lossexp

    class OneRowTooMany(keras.layers.Layer):  # its shape is declared, so only a real call shows the bug
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1] + 1, 2))

        def compute_output_shape(self, shape):
            return shape[:-1] + (2,)

        def call(self, x):
            return keras.ops.matmul(x, self.w)

    monkeypatch.chdir(tmp_path)  # no project: the network comes from a notebook's or a script's code
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(OneRowTooMany()(inputs)))
    x, y = np.zeros((16, 4), "float32"), np.zeros(16, "int64")
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network, (x, y), trainer={"epochs": 1, "verbose": 0})
    line = inspect.getsourcelines(OneRowTooMany.call)[1] + 1
    assert str(info.value).startswith(f"Your code failed building the model at {__file__}:{line} (in call): "), \
        str(info.value)


def test_a_components_attach_failing_in_a_notebooks_code_is_one_line_naming_it(tmp_path, monkeypatch,
                                                                             restored_registry):
    """A component of a notebook's or a script's whose ``attach`` raised came out of ``lossexp.fit`` as a
    traceback under an editable install of lossexp (a checkout's: its frames in no ``site-packages``, the
    search for the user's frames never began); one line, as from a wheel's."""
    import inspect

    import keras

    import lossexp

    @lossexp.register_component("attach_fails")
    class AttachFails(lossexp.LossComponent):
        def attach(self, network):
            raise ValueError("my attach is broken")

        def term(self, context):
            return keras.ops.zeros(())

    monkeypatch.chdir(tmp_path)  # no project: the component is this file's code
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network, (np.zeros((16, 4), "float32"), np.arange(16) % 3), loss="attach_fails",
                    trainer={"epochs": 1, "verbose": 0})
    line = inspect.getsourcelines(AttachFails.attach)[1] + 1
    assert str(info.value) == (f"Your code failed building the model at {__file__}:{line} (in attach): "
                               "ValueError: my attach is broken")


@pytest.mark.parametrize("per_position", [False, True])
def test_a_label_beyond_the_outputs_names_its_first_example_and_value(per_position):
    y = np.arange(40) % 3
    y[17], y[29] = 7, 5
    if per_position:  # a tag per position of 4: the bad one at position 2
        y = np.tile(y[:, None] % 3, (1, 4))
        y[17, 2], y[29, 0] = 7, 5
    data = as_dataset("tags", (np.zeros((40, 2), "float32"), y))
    with pytest.raises(ConfigError) as info:
        check_outputs("net", data, y[:8], np.zeros((8,) + y.shape[1:] + (3,), "float32"))
    where = " at position 2" if per_position else ""
    assert f"; example 17 has label 7{where} (outputs 0 … 2) for data 'tags'" in str(info.value), str(info.value)


def test_a_label_beyond_an_output_of_a_stream_of_targets_by_name_names_its_example():
    """A tf.data stream of targets by output name: the line said the outputs' shape needed, not which example."""
    import keras
    import tensorflow as tf

    import lossexp

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8)(inputs)
    network = keras.Model(inputs, {"cls": keras.layers.Dense(3, name="cls")(hidden),
                                   "reg": keras.layers.Dense(1, name="reg")(hidden)})
    x, kind = np.zeros((40, 4), "float32"), np.arange(40) % 3
    kind[21] = 5
    stream = tf.data.Dataset.from_tensor_slices((x, {"cls": kind, "reg": x[:, :1]}))
    with pytest.raises(ConfigError, match=r"; example 21 has label 5 \(outputs 0 … 2\) for output 'cls' of data 'python'"):
        lossexp.fit(network, stream, trainer={"epochs": 1, "verbose": 0, "batch_size": 8}, tracking={"enabled": False})


def test_a_label_beyond_a_one_unit_output_is_named_as_what_one_unit_scores():
    """One unit scores labels 0 and 1 (binary): the first label beyond is 2, not the first 1, and the line
    said "(outputs 0 … 0)"."""
    y = np.arange(40) % 2
    y[23] = 2
    data = as_dataset("tags", (np.zeros((40, 2), "float32"), y))
    with pytest.raises(ConfigError) as info:
        check_outputs("net", data, y[:8], np.zeros((8, 1), "float32"))
    assert "; example 23 has label 2 (one output scores labels 0 and 1) for data 'tags'" in str(info.value), \
        str(info.value)


def test_jit_compile_true_that_keras_cannot_honour_is_one_warning_naming_the_layer(capsys, recwarn, tmp_path,
                                                                                    monkeypatch):
    """``trainer.jit_compile=true`` on a network holding a ``TextVectorization`` trained without XLA, its config
    reading true, with Keras' warning "Model doesn't support `jit_compile=True`" naming no layer; now one line
    names the layer (not the ``StringLookup`` inside it). A network XLA compiles gets it, and no line."""
    import keras

    import lossexp

    def text_network():
        vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=3, name="vectorize")
        vectorize.adapt(np.array(["good film", "bad plot"]))
        inputs = keras.Input((), dtype="string")
        embedded = keras.layers.Flatten()(keras.layers.Embedding(20, 4)(vectorize(inputs)))
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(embedded))

    network = text_network()
    with keras_xla_warning_silenced():
        network.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert network.jit_compile is False
    assert xla_not_in_effect(network, True) == ("trainer.jit_compile=true is not in effect: Keras trains without XLA, "
                                                "which cannot compile TextVectorization 'vectorize' (a preprocessing "
                                                "layer can move into the data: a tf.data map)")
    assert xla_not_in_effect(network, "auto") is None and capsys.readouterr().err == ""
    assert not [w for w in recwarn if "jit_compile" in str(w.message)]
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with keras_xla_warning_silenced():
        plain.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert plain.jit_compile is True and xla_not_in_effect(plain, True) is None
    monkeypatch.chdir(tmp_path)  # a run says it once, among its lines
    texts = np.array(["good film", "bad plot", "good plot", "bad film"] * 4)
    lossexp.fit(text_network(), (texts, np.arange(16) % 2),
                trainer={"epochs": 1, "verbose": 0, "jit_compile": True}, tracking={"plots": False, "log_model": False})
    assert capsys.readouterr().err.count("trainer.jit_compile=true is not in effect") == 1


def test_a_term_that_is_a_python_number_is_warned_of_as_a_constant(capsys, restored_registry):
    """An integer tensor is refused (no gradient: it trains nothing); a Python float, as constant, trained
    silently (``loss 2.199 = task 2.149 + float_term 0.05``)."""
    import keras

    import lossexp
    from lossexp.training.network_checks import check_terms

    @lossexp.register_component("a_number")
    class ANumber(lossexp.LossComponent):
        def term(self, context):
            return 0.5

    inputs = keras.Input((2,))
    model = lossexp.compose(keras.Model(inputs, keras.layers.Dense(1)(inputs)), [ANumber(name="a_number")])
    check_terms(model, np.ones((4, 2), "float32"), np.zeros((4, 1), "float32"))
    err = capsys.readouterr().err
    assert err.startswith("lossexp: warning: loss.a_number's term() returns the number 0.5, not a tensor computed "
                          "from the network (ANumber.term at ") and err.endswith(
        "): a constant, it adds to the loss and moves no weight\n")


def test_a_term_computed_in_numpy_is_the_graphs_refusal_not_the_constants_warning(capsys, restored_registry):
    """``float(np.mean(context.y_pred.numpy()))`` returns a number on the check's eager tensors: the warning that
    the term is a constant came first, then the run's first step failed on ``.numpy()`` of a traced tensor
    (probe J). Traced as the step traces it, the term's line and what to write instead come before the run."""
    import keras

    import lossexp
    from lossexp.training.network_checks import check_terms

    @lossexp.register_component("in_numpy")
    class InNumpy(lossexp.LossComponent):
        def term(self, context):
            return float(np.mean(context.y_pred.numpy()))

    inputs = keras.Input((2,))
    model = lossexp.compose(keras.Model(inputs, keras.layers.Dense(1)(inputs)), [InNumpy(name="in_numpy")])
    with pytest.raises(ConfigError) as refused:
        check_terms(model, np.ones((4, 2), "float32"), np.zeros((4, 1), "float32"))
    assert str(refused.value).startswith("Invalid loss component 'in_numpy': term() (InNumpy.term at ")
    assert "test_network_checks.py:" in str(refused.value) and ") failed when traced into the compiled step: " \
        "AttributeError: 'SymbolicTensor' object has no attribute 'numpy' (your code is traced into a graph" \
        in str(refused.value)
    assert capsys.readouterr().err == ""


def test_an_output_name_tensorflow_cannot_scope_is_one_line_before_the_run():
    """``{"depth est": …}``: Keras names its loss "depth est_loss", and the first step failed with TensorFlow's
    "is not a valid scope name" in a traceback, the run recorded FAILED."""
    from lossexp.errors import ConfigError
    from lossexp.training.network_checks import check_output_names

    check_output_names("mine", ["cls", "depth/est", "a.b-c"])
    with pytest.raises(ConfigError, match=r"^Invalid value for model: expected outputs named with letters, digits "
                                          r"and _ \. - / only \(model=mine: .+\), got 'depth est'$"):
        check_output_names("mine", ["cls", "depth est"])


def test_a_term_that_makes_a_variable_at_every_call_is_one_line_before_the_run_and_a_lazy_layer_trains(
        tmp_path, all_runs, restored_registry):
    """add_weight inside term() passed the check (one eager call) and failed the compiled step with TensorFlow's
    "tf.function only supports singleton tf.Variables", leaving a FAILED run; a layer a term builds at its first
    call (once) is Keras' lazy build and trains."""
    import inspect

    import keras

    import lossexp

    @lossexp.register_component("variable_per_call")
    class VariablePerCall(lossexp.LossComponent):
        def term(self, context):
            scale = self.add_weight(shape=(), initializer="ones", name="scale")
            return scale * keras.ops.mean(context.y_pred ** 2)

    @lossexp.register_component("lazy_projection")
    class LazyProjection(lossexp.LossComponent):
        def __init__(self, **options):
            super().__init__(**options)
            self.projection = keras.layers.Dense(2)

        def term(self, context):
            return keras.ops.mean(self.projection(context.y_pred) ** 2)

    def network():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(1)(inputs))

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = {"trainer": {"epochs": 2, "verbose": 0}, "tracking": {"uri": uri, "plots": False, "log_model": False}}
    with pytest.raises(ConfigError) as info:
        lossexp.fit(network(), (x, x[:, :1]), loss=["variable_per_call"], **settings)
    line = inspect.getsourcelines(VariablePerCall.term)[1] + 1
    assert str(info.value) == (f"Invalid loss component 'variable_per_call': term() failed at {__file__}:{line}: "
                               "VariableInTerm: it creates a variable at every call (add_weight, tf.Variable, a "
                               "layer made in term()): create the component's state and layers once, in attach()")
    assert all_runs(uri) == []
    history, _ = lossexp.fit(network(), (x, x[:, :1]), loss=["lazy_projection"], **settings)
    assert len(history["term/lazy_projection"]) == 2 and np.isfinite(history["term/lazy_projection"][-1])
