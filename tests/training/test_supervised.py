"""The supervised regime's checks before training: a network's outputs against the targets, for
labels one per example and one per position (a sequence's tokens, an image's pixels)."""
from __future__ import annotations

import numpy as np
import pytest

from lossexp.data.dataset import as_dataset
from lossexp.errors import ConfigError
from lossexp.training.supervised import check_outputs


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


def test_one_label_per_example_keeps_its_rules():
    labels = as_dataset("labels", (np.zeros((8, 3)), np.arange(8) % 3))
    check_outputs("mine", labels, labels.y, outputs(3))
    assert "outputs of shape (3,) (sparse labels)" in refusal(labels, outputs(2))
    one_hot = as_dataset("one_hot", (np.zeros((8, 3)), np.eye(3, dtype="float32")[np.arange(8) % 3]))
    check_outputs("mine", one_hot, one_hot.y, outputs(3))
    message = refusal(one_hot, outputs(12, 3))
    assert "outputs of shape (3,) (one-hot labels)" in message and "regression" not in message


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
            log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            expected = -np.mean(np.take_along_axis(log_p, labels[20:, :, None], axis=-1))
            accuracy = np.mean(logits.argmax(-1) == labels[20:])
        assert scores["loss/task"] == pytest.approx(expected, rel=1e-5), name
        assert scores["accuracy"] == pytest.approx(accuracy), name


def test_a_network_compiled_before_it_came_is_told_what_replaces_its_loss_and_optimizer():
    import keras

    from lossexp.training.supervised import replaced_compile

    network = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert replaced_compile(network, "mine", "mean_squared_error", "adam") is None
    network.compile(optimizer="sgd", loss=keras.losses.Huber(delta=2.0))
    assert replaced_compile(network, "mine", "mean_squared_error", "adam") == (
        "model=mine was compiled with loss huber_loss and optimizer SGD; lossexp trains it with "
        "task.loss=mean_squared_error and optimizer=adam (set task.loss= and optimizer= to choose; a loss of your "
        "own: a loss component)")
