"""The supervised regime's evaluation of a saved model: a one-unit binary classifier and a tagger
scored as NumPy scores them."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import numpy_cross_entropy
from lossexp.data.dataset import as_dataset
from lossexp.errors import ConfigError


def test_evaluate_scores_a_one_unit_binary_classifier_and_a_tagger_as_numpy_does():
    import keras
    from omegaconf import OmegaConf

    from lossexp.training.supervised import SupervisedTrainer, compose
    from lossexp.training.task import resolve

    rng = np.random.default_rng(0)
    config = OmegaConf.create({"trainer": {"validation_split": 0.5, "batch_size": 16},
                               "task": {"loss": None, "metrics": None, "from_logits": None}})
    trainer = SupervisedTrainer(config, meta={})
    x = rng.normal(size=(40, 3)).astype("float32")
    cases = {"binary": (x, (x[:, 0] > 0).astype("int64"), keras.layers.Dense(1)),
             "tagger": (x, (rng.normal(size=(40, 5)) > 0).astype("int64"),
                        keras.Sequential([keras.layers.Dense(10), keras.layers.Reshape((5, 2))]))}
    for name, (inputs, labels, head) in cases.items():
        data = as_dataset(name, (inputs, labels))
        network = keras.Sequential([keras.Input((3,)), head])
        y_pred = np.asarray(network(inputs[:8]))
        task = resolve(config.task, data.task, labels[:8], y_pred, [], {})
        model = compose(network, [], task_loss=task.loss_name)
        model.compile(optimizer="sgd", loss=task.loss, metrics=task.metrics)
        scores = trainer.evaluate(model, data)
        logits = np.asarray(network(inputs[20:])).astype(np.float64)
        if name == "binary":  # a logit per example
            p, y = 1 / (1 + np.exp(-logits[:, 0])), labels[20:]
            expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            accuracy = np.mean((logits[:, 0] > 0) == y)
        else:  # two logits per position
            expected = np.mean(numpy_cross_entropy(logits, labels[20:]))
            accuracy = np.mean(logits.argmax(-1) == labels[20:])
        assert scores["loss/task"] == pytest.approx(expected, rel=1e-5), name
        assert scores["accuracy"] == pytest.approx(accuracy), name


def test_evaluate_takes_padded_sequences_into_an_input_of_any_length():
    """``keras.Input((None,))`` (a text classifier's) takes the data's 6 tokens: it was refused as
    "expected data with inputs of shape (None,) … got (6,)"."""
    import keras
    from omegaconf import OmegaConf

    from lossexp.training.supervised import SupervisedTrainer, compose

    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(40, 6))
    labels = rng.integers(0, 3, size=40)
    inputs = keras.Input((None,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4, mask_zero=True)(inputs))
    network = keras.Model(inputs, keras.layers.Dense(3)(pooled))
    config = OmegaConf.create({"trainer": {"validation_split": 0.5, "batch_size": 16}})
    model = compose(network, [], task_loss="sparse_categorical_crossentropy")
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    scores = SupervisedTrainer(config, meta={}).evaluate(model, as_dataset("text", (tokens, labels)))
    logits = np.asarray(network(tokens[20:])).astype(np.float64)
    assert scores["loss/task"] == pytest.approx(np.mean(numpy_cross_entropy(logits, labels[20:])), rel=1e-5)


def test_the_train_step_is_traced_once(tmp_path, monkeypatch):
    """The optimizer's and the compiled metrics' variables exist before ``fit``: Keras' TensorFlow trainer
    would create them in the first trace of the step, and TensorFlow would trace the step again."""
    import keras

    import lossexp
    from lossexp.training.composed_model import ComposedModel

    traces = []
    own_step = ComposedModel.train_step

    def counted(self, data):  # Python runs only while TensorFlow traces the step
        traces.append(1)
        return own_step(self, data)

    monkeypatch.setattr(ComposedModel, "train_step", counted)
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(inputs)))
    rng = np.random.default_rng(0)
    x, y = rng.random((80, 4)).astype("float32"), rng.integers(0, 3, 80)  # 64 training rows: 2 whole batches
    lossexp.fit(network, (x, y), loss=["hist_avg"], trainer={"epochs": 2, "verbose": 0, "steps_per_execution": 1},
                tracking={"plots": False, "log_model": False, "gradients": False})
    assert len(traces) == 1


def test_compose_refuses_a_network_with_a_training_step_of_its_own():
    """``lossexp.compose`` trained such a network with the composed step, its own skipped in silence
    (``lossexp.fit`` and the command line refused it)."""
    import keras

    from lossexp.errors import ConfigError
    from lossexp.training.supervised import compose

    class Augmented(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            x, y = data
            return super().train_step((x + 0.1, y))

    with pytest.raises(ConfigError, match=r"model=augmented whose class Augmented overrides train_step, which "
                                          r"training would silently skip"):
        compose(Augmented(name="augmented"), [])


@pytest.mark.parametrize("method", ["compute_metrics", "fit", "evaluate"])
def test_a_network_with_its_own_metrics_fit_or_evaluate_is_refused(method):
    """The composed model trains and scores the network: its own compute_metrics, fit or evaluate
    would never run (they were skipped in silence)."""
    import keras

    from lossexp.errors import ConfigError
    from lossexp.training.supervised import compose

    def own(self, *args, **kwargs):
        raise AssertionError("never reached: lossexp refuses the network first")

    Own = type("Own", (keras.Model,), {method: own})
    inputs = keras.Input((3,))
    with pytest.raises(ConfigError, match=rf"model=own whose class Own overrides {method}, which training "
                                          r"would silently skip"):
        compose(Own(inputs, keras.layers.Dense(1)(inputs), name="own"), [])


def test_components_refuse_a_network_not_built_yet_and_say_how_to_build_it():
    """A Sequential without a keras.Input has no weights until it is built: hist_avg tracked none and
    its term was 0 at every step, in silence; a tap's message called the network subclassed."""
    import keras

    from lossexp.errors import ConfigError
    from lossexp.losses.activity import ActivityPenalty
    from lossexp.losses.hist_avg import HistoricalAverage
    from lossexp.training.supervised import compose

    for component in (HistoricalAverage(name="hist_avg"), ActivityPenalty(name="activity", layers=["hidden"])):
        network = keras.Sequential([keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1)], name="unbuilt")
        with pytest.raises(ConfigError, match=r"Invalid value for model: expected a built network for the loss components "
                                              r"to attach to \(start a Sequential with keras.Input\(shape=…\), or call "
                                              r"the network on a batch before composing it: network\(x\[:2\]\)\), got "
                                              r"'unbuilt, a Sequential not built yet'"):
            compose(network, [component])
    network = keras.Sequential([keras.layers.Dense(4, name="hidden"), keras.layers.Dense(1)])
    network(np.zeros((2, 3), "float32"))
    assert compose(network, [HistoricalAverage(name="hist_avg")]).components[0].references  # built: one per weight


def test_a_weighting_method_with_one_part_to_weigh_is_one_warning_line(capsys):
    """``loss=none`` on a network of one output, or of several not split: the method has one part, the
    task loss, and nothing to balance; a line says so and how to make parts (split outputs named)."""
    from conftest import built, composed_config

    built(composed_config("weighting=mgda", "loss=none", "model=mlp", "data=regression", "data.n_samples=60"))
    assert capsys.readouterr().err.splitlines() == [
        "lossexp: warning: weighting=mgda balances the parts of the loss, and this run has one, task: nothing is "
        "balanced (add loss components)"]
    built(composed_config("weighting=mgda", "loss=activity", "model=mlp", "data=regression", "data.n_samples=60"))
    assert capsys.readouterr().err == ""


def test_the_warning_names_the_outputs_a_network_of_several_could_split():
    import keras

    from lossexp.balancing.mgda import MGDA
    from lossexp.training.supervised import compose, one_part

    inputs = keras.Input((3,))
    network = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(inputs), "b": keras.layers.Dense(1, name="b")(inputs)})
    assert one_part(compose(network, [], weighting=MGDA()), ["a", "b"]) == (
        "weighting=mgda balances the parts of the loss, and this run has one, task: nothing is balanced (add loss "
        "components; task.split_outputs=true makes each output's loss a part (a, b))")
    assert one_part(compose(network, [], weighting=MGDA(), split_outputs=["a", "b"]), ["a", "b"]) is None
    assert one_part(compose(network, []), ["a", "b"]) is None  # equal: the plain sum, nothing to warn of


def test_a_streams_float_labels_classify_against_sigmoid_outputs_as_arrays_do():
    """Keras' ``image_dataset_from_directory(label_mode="binary")`` gives float 0./1. labels in batches,
    a training and a validation stream: against a sigmoid they are class labels (binary cross-entropy,
    as Keras' fit is compiled), as such arrays are — a stream's were regressed with mean squared error
    (first-epoch loss 0.223 MSE where Keras' fit had 0.702 BCE). Cast to integer labels in training
    and validation alike; another number among them is one line with task.type=classification."""
    import keras
    import tensorflow as tf
    from omegaconf import OmegaConf

    from lossexp.errors import ConfigError
    from lossexp.training.supervised import SupervisedTrainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")  # (n, 1), as label_mode="binary" gives them
    streams = {"train": tf.data.Dataset.from_tensor_slices((x[:30], y[:30])).batch(8),
               "validation": tf.data.Dataset.from_tensor_slices((x[30:], y[30:])).batch(8)}

    def trainer(task_type=None):
        return SupervisedTrainer(OmegaConf.create({"trainer": {"validation_split": 0.2, "batch_size": 8},
                                                   "task": {"type": task_type}}), meta={})

    sigmoid = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    data = trainer().prepare(as_dataset("binary", streams), sigmoid)
    assert (data.task, data.num_outputs, data.held_out) == ("classification", 2, 10)
    train, validation = data.split(0.2)
    labels = [np.concatenate([np.asarray(y) for _, y in part.stream.as_numpy_iterator()]) for part in (train, validation)]
    assert labels[0].dtype == labels[1].dtype == np.int64
    np.testing.assert_array_equal(np.concatenate(labels), y[:, 0])
    linear = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert trainer().prepare(as_dataset("binary", streams), linear).task == "regression"
    soft = tf.data.Dataset.from_tensor_slices((x, np.where(y == 1, 0.5, 0.0).astype("float32")))
    with pytest.raises(ConfigError, match=r"has other numbers \(19 of its targets\), got 'classification'$"):
        trainer("classification").prepare(as_dataset("soft", soft), sigmoid)


def test_a_validation_split_cut_from_a_stream_with_random_ops_is_one_warning_line(capsys):
    """``.map(augment)`` before lossexp cuts the validation split from the stream's end: its validation
    examples were augmented (and, kept in memory, by one draw) without a word."""
    import keras
    import tensorflow as tf
    from omegaconf import OmegaConf

    from lossexp.training.supervised import SupervisedTrainer

    x, y = np.zeros((20, 4, 4, 1), "float32"), np.arange(20) % 2
    flip = keras.layers.RandomFlip()
    trainer = SupervisedTrainer(OmegaConf.create({"trainer": {"validation_split": 0.2}, "task": {"type": None}}),
                                meta={})
    plain = tf.data.Dataset.from_tensor_slices((x, y))
    for stream in (plain.map(lambda a, b: (a + tf.random.normal(tf.shape(a)), b)), plain.map(lambda a, b: (flip(a), b))):
        trainer.prepare(as_dataset("augmented", stream))
        assert capsys.readouterr().err.startswith("lossexp: warning: data 'augmented' passes its examples through "
                                                  "random ops (")
    trainer.prepare(as_dataset("plain", plain.map(lambda a, b: (a * 2.0, b))))
    trainer.prepare(as_dataset("own", {"train": plain.map(lambda a, b: (flip(a), b)), "validation": plain}))
    assert capsys.readouterr().err == ""


def generator_stream(n: int, read: list, labels: bool):
    """A stream of unknown length from a Python generator (``n`` elements: integer labels 0-2, or float
    targets) that appends each element's index to ``read``."""
    import tensorflow as tf

    def rows():
        for i in range(n):
            read.append(i)
            yield np.full(2, i, "float32"), (np.int64(i % 3) if labels else np.float32(i))

    return tf.data.Dataset.from_generator(rows, output_signature=(
        tf.TensorSpec((2,), tf.float32), tf.TensorSpec((), tf.int64 if labels else tf.float32)))


@pytest.mark.parametrize("split, class_weight, passes", [(0.2, None, 0), (0.0, None, 0), (0.2, "balanced", 1)])
def test_a_stream_of_unknown_length_with_its_own_validation_is_read_only_where_needed(split, class_weight, passes):
    """Counted before (500 of its 500 read, a second pass for class weights: 1,000), where nothing needs its
    length: it trains as Keras' fit trains it, its first elements read; class weights read it once."""
    import keras
    from omegaconf import OmegaConf

    from lossexp.training.supervised import SupervisedTrainer

    train, validation = [], []
    labels = class_weight is not None
    data = as_dataset("mine", {"train": generator_stream(500, train, labels),
                               "validation": generator_stream(300, validation, labels)})
    config = OmegaConf.create({"trainer": {"validation_split": split, "batch_size": 16},
                               "task": {"type": None, "class_weight": class_weight}})
    trainer = SupervisedTrainer(config, meta={})
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3 if labels else 1)])
    first = len(train)
    data = trainer.prepare(data, network)
    part, _ = trainer.splits(data)
    read = len(train) - first  # beyond the first elements: the passes, and a sample of 8 of the checks
    assert first < 300 and 500 * passes <= read < 500 * passes + 50 and len(validation) <= 300 * (passes + 1)
    assert part.size == (500 if labels else None) and data.num_outputs == (3 if labels else 1)


def test_a_model_builder_reaches_the_runs_training_examples_without_knowing_its_validation_split(monkeypatch):
    """A builder adapting a Normalization on the training rows only wrote data.split(0.2)[0]: the run's
    trainer.validation_split, which it does not see, hard-coded. data.training() is the run's own; the
    old way still works."""
    from conftest import composed_config
    from lossexp import registry
    from lossexp.config import Selection
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    seen = []
    monkeypatch.setitem(registry._ENTRIES["model"], "sees_its_training_rows", None)  # unregistered after the test

    @registry.register_model("sees_its_training_rows")
    def sees_its_training_rows(data):
        seen.append((data.training().arrays[0], data.split(0.2)[0].arrays[0]))
        raise ConfigError("seen: nothing more to build")

    config = composed_config("data=regression", "data.n_samples=60", "trainer.validation_split=0.25", "loss=none")
    config.model = Selection("sees_its_training_rows")
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    with pytest.raises(ConfigError, match="^seen"):
        trainer.build(data)
    [(training, old_way)] = seen
    np.testing.assert_array_equal(training, data.x[:45])
    np.testing.assert_array_equal(old_way, data.x[:48])


def test_a_streams_first_examples_are_read_once_for_the_checks_before_training():
    """The checks' first 8 examples (Dataset.sample) were read 4 times before training — the task's
    check (prepare, and again as build and the run saw the network), build's forward pass —, each a
    generator's Python or an image's decoding: now once, beside the source's first 256 of its checks."""
    import keras

    from conftest import composed_config
    from lossexp.training.trainer import for_config

    read = []
    data = as_dataset("mine", generator_stream(500, read, labels=False))
    before = read.count(0)
    trainer = for_config(composed_config("loss=none", "trainer.validation_split=0", "trainer.batch_size=16"), meta={})
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    data = trainer.prepare(data, network)
    model = trainer.build(data, network=network)
    trainer.prepare_for(data, model.network)  # as the run calls it after build
    assert data.task == "regression" and read.count(0) - before == 1 and max(read) < 256


def test_class_weights_by_mapping_read_no_labels_past_the_first_ones():
    """``task.class_weight={class: weight}`` read every training label before the first step (a pass, and
    with it a stream of unknown length counted) though it needs no count: its classes are the network's.
    Now only the first elements are read; each example is still weighted by its class."""
    import keras

    from conftest import composed_config
    from lossexp.training.trainer import for_config

    read = []
    data = as_dataset("mine", generator_stream(500, read, labels=True))
    trainer = for_config(composed_config("loss=none", "trainer.validation_split=0", "trainer.batch_size=50",
                                         "task.class_weight={2: 3.0}"), meta={})
    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)])  # a class 3 the first labels lack
    data = trainer.prepare(data, network)
    trainer.build(data, network=network)
    part, _ = trainer.splits(data)
    assert max(read) < 300, f"{len(read)} elements read before training"
    x, y, weight = next(iter(trainer.fit_arguments(data)["x"]))
    np.testing.assert_array_equal(np.asarray(weight), np.where(np.asarray(y) == 2, 3.0, 1.0))


def test_a_network_lossexp_sizes_from_labels_with_a_stray_one_is_warned_of(tmp_path, monkeypatch, capsys):
    """model=mlp takes a unit per class up to the highest label: a corrupt row's label 25 among 0 … 19 gave
    26 outputs, silently."""
    import lossexp

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 3)).astype("float32"), np.arange(400) % 4
    y[150] = 9
    lossexp.fit("mlp", (x, y), loss="none", trainer={"epochs": 1, "verbose": 0}, tracking={"enabled": False})
    assert [line for line in capsys.readouterr().err.splitlines() if "stray" in line] == [
        "lossexp: warning: data 'python' has no example of class 4 … 8, and 1 of 400 of class 9 above: its network "
        "gets 10 outputs, a unit per class up to the highest label (a stray label?)"]
