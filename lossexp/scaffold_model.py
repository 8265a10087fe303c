"""The files ``lossexp new model NAME`` writes: a registered network builder, its YAML and its test.

The builder is a Dense stack whose layers are named as lossexp's components read them by default
(``hidden_1`` …, ``output``), so ``lossexp train model=NAME loss=hist_avg+activity`` runs as written.
The test checks what a user's edits most often break: one output per class (or target column) for
data of each task, a gradient reaching every trainable weight (a layer left out of the graph), and a
saved network that reloads to the same predictions (a layer class not registered).
Formatted with ``str.format(name=…, cls=…)``: literal braces are doubled.
"""
from __future__ import annotations

CODE = '''"""The ``{name}`` model (one registered builder, one YAML: conf/model/{name}.yaml)."""
from typing import Sequence

import keras

import lossexp


@lossexp.register_model("{name}")
def {name}(data, hidden_units: Sequence[int] = (64, 32), activation: str = "relu"):
    """Dense layers ``hidden_1 … hidden_n`` on the flattened inputs, then a linear ``output`` — replace with
    your network, and say here what it is.

    ``data`` is the run's data: ``data.input_shape`` (``data.input_shapes`` for several inputs),
    ``data.num_outputs`` (classes, or the targets' width) and ``data.task``. The layers' names are what a
    loss component reads (``loss.activity.layers=[hidden_1]``). A layer class of your own needs
    ``@keras.saving.register_keras_serializable()`` for the run's saved model to reload.

    Options: ``hidden_units`` (one layer per entry); ``activation``.
    """
    inputs = keras.Input(shape=data.input_shape, name="inputs")
    x = keras.layers.Flatten()(inputs)
    for index, units in enumerate(hidden_units, start=1):
        x = keras.layers.Dense(units, activation=activation, name=f"hidden_{{index}}")(x)
    # linear: a classifier's logits (lossexp's task loss takes them as logits), a regression's values
    return keras.Model(inputs, keras.layers.Dense(data.num_outputs, name="output")(x), name="{name}")
'''

YAML = '''# {cls}: describe the network in one line (lossexp components lists it). Layers: hidden_1 … hidden_n, output.
name: {name}
hidden_units: [64, 32]
activation: relu
'''

TEST = '''"""{name}: one output per class or target column, a gradient for every weight, and a saved network that reloads."""
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))  # the project's modules

import lossexp  # noqa: E402
from {name} import {name}  # noqa: E402


def options():
    """conf/model/{name}.yaml's options: what ``model={name}`` builds with."""
    config = OmegaConf.to_container(OmegaConf.load(PROJECT / "conf" / "model" / "{name}.yaml"))
    return {{key: value for key, value in config.items() if key != "name"}}


def probe_data(task):
    """16 examples of 6 features (replace the shape with your data's): 3 classes, or 2 target columns."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype("float32")
    y = np.arange(16) % 3 if task == "classification" else rng.normal(size=(16, 2)).astype("float32")
    return lossexp.Dataset("probe", task, x=x, y=y, num_outputs=3 if task == "classification" else 2)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_one_output_per_class_or_target_column(task):
    data = probe_data(task)
    network = {name}(data, **options())
    assert tuple(network(data.x).shape) == (16, data.num_outputs)


def test_every_trainable_weight_gets_a_gradient():
    data = probe_data("classification")
    network = {name}(data, **options())
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.ops.square(network(data.x, training=True)))
    gradients = tape.gradient(loss, network.trainable_weights)
    assert not [w.path for w, g in zip(network.trainable_weights, gradients) if g is None]


def test_the_saved_network_reloads_to_the_same_predictions(tmp_path):
    data = probe_data("classification")
    network = {name}(data, **options())
    network.save(tmp_path / "{name}.keras")
    reloaded = keras.saving.load_model(tmp_path / "{name}.keras")
    np.testing.assert_allclose(reloaded(data.x), network(data.x), rtol=1e-6)
'''
