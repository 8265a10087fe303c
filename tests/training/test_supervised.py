"""The supervised regime's evaluation of a saved model: a one-unit binary classifier and a tagger
scored as NumPy scores them."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import numpy_cross_entropy
from lossexp.data.dataset import as_dataset


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


def test_a_validation_split_of_other_classes_than_training_is_a_warning(capsys):
    """Examples sorted by class: Keras' validation_split (the last examples) would validate on the
    last class alone. A random order is not warned about."""
    from omegaconf import OmegaConf

    from lossexp.training.supervised import SupervisedTrainer

    config = OmegaConf.create({"trainer": {"validation_split": 0.2}, "task": {"type": None}})
    labels = np.repeat([0, 1, 2], [400, 300, 300])
    x = np.zeros((1000, 2), "float32")
    SupervisedTrainer(config, meta={}).prepare(as_dataset("mine", (x, labels)))
    assert capsys.readouterr().err.strip() == (
        "lossexp: warning: the validation split (the last 20% of data 'mine', as Keras' validation_split takes "
        "them) holds classes unlike the training split's (training {0: 400, 1: 300, 2: 100}, validation {2: 200}; "
        "χ² test p < 1e-6): are the examples sorted by class? Shuffle them first")
    shuffled = np.random.default_rng(0).permutation(labels)
    SupervisedTrainer(config, meta={}).prepare(as_dataset("mine", (x, shuffled)))
    assert capsys.readouterr().err == ""


def test_task_type_classification_takes_class_labels_stored_as_floats_and_refuses_other_numbers():
    from omegaconf import OmegaConf

    from lossexp.errors import ConfigError
    from lossexp.training.supervised import SupervisedTrainer

    config = OmegaConf.create({"trainer": {"validation_split": 0.0}, "task": {"type": "classification"}})
    x = np.zeros((6, 2), "float32")
    data = SupervisedTrainer(config, meta={}).prepare(as_dataset("grades", (x, np.array([0., 2., 1., 2., 0., 1.]))))
    assert (data.task, data.num_outputs, data.y.dtype) == ("classification", 3, np.int64)
    np.testing.assert_array_equal(data.y, [0, 2, 1, 2, 0, 1])
    with pytest.raises(ConfigError, match=r"task.type: expected classification needs class labels \(integers, or "
                                          r"floats of whole values\); data 'levels' has other numbers"):
        SupervisedTrainer(config, meta={}).prepare(as_dataset("levels", (x, np.linspace(0, 1, 6))))
