"""The files ``lossexp new component NAME --stateful`` writes: a component with state, and its NumPy test.

The pattern of docs/own_problem.md's "A component with state" (center loss): the state is a variable
made in ``attach`` with ``add_weight(trainable=False)`` (so it is checkpointed, reloaded and recorded as
``weight/state/NAME/…``), read by the term, and moved inside the compiled step only when
``context.training``, from the global batch (``across_replicas``). The test replays three training
batches in float64 — term, gradient and state after each — and checks that validation leaves the state.
Formatted with ``str.format(name=…, cls=…)``: literal braces are doubled.
"""
from __future__ import annotations

COMPONENT = '''"""The ``{name}`` loss component, with state (one class on lossexp's contract, one YAML: conf/loss/{name}.yaml)."""
from keras import ops

import lossexp


@lossexp.register_component("{name}")
class {cls}(lossexp.LossComponent):
    """term = mean_i ||h_i - m||^2, h = ``layer``'s outputs (per example), m a moving average of the batches'
    mean h, moved after each training batch: m <- m + momentum * (mean_i h_i - m) — replace with your term and
    state, and say here what it computes and why.

    Options: ``weight``; ``layer``; ``momentum`` (0 < momentum <= 1).
    """

    def __init__(self, weight=0.01, layer: str = "hidden_1", momentum: float = 0.1, **kwargs):
        super().__init__(weight=weight, **kwargs)
        self.layer = layer
        self.momentum = self.require_number("momentum", momentum, minimum=0.0, maximum=1.0)
        self.require(self.momentum > 0, "momentum", "0 < momentum <= 1", momentum)

    def outputs_needed(self):  # h arrives in context.outputs[layer]
        return [self.layer]

    def attach(self, network):
        # state: a variable made here, not a Python attribute (checkpointed with the run, reloaded with the
        # model, recorded as weight/state/{name}/average.norm at every logging step)
        self.require_layers(network, [self.layer], option="layer")
        width = int(self.output_shape(network, self.layer)[-1])  # any network's, a subclassed one's too
        self.average = self.add_weight(name="average", shape=(width,), initializer="zeros", trainable=False)

    def term(self, context: lossexp.LossContext):
        h = ops.reshape(ops.cast(context.outputs[self.layer], "float32"), (-1, self.average.shape[0]))
        term = ops.mean(ops.sum(ops.square(h - self.average), axis=-1))
        if context.training:  # validation reads the state, never moves it
            batch_mean = self.across_replicas(ops.mean(ops.stop_gradient(h), axis=0))  # the global batch's
            self.average.assign(self.average + self.momentum * (batch_mean - self.average))
        return term
'''

YAML = '''# {cls}: describe the term and its state in one line (lossexp components lists it).
{name}:
  weight: 0.01
  layer: hidden_1  # the layer whose outputs h the term reads
  momentum: 0.1  # how far the moving average moves towards each training batch's mean h (0 < momentum <= 1)
'''

TEST = '''"""{name} against NumPy: its term, its gradient and its state over three training batches."""
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules

from lossexp import LossContext  # noqa: E402
from {name} import {cls}  # noqa: E402


def numpy_steps(batches, momentum):
    """(term, d term / d h, state after the step) of each training batch, from the formula, in float64."""
    average, steps = np.zeros(batches[0].shape[-1]), []
    for h in batches:
        h = np.asarray(h, np.float64)
        term = np.mean(np.sum((h - average) ** 2, axis=-1))
        gradient = 2.0 * (h - average) / h.shape[0]
        average = average + momentum * (h.mean(axis=0) - average)
        steps.append((term, gradient, average.copy()))
    return steps


def test_term_gradient_and_state_match_numpy():
    inputs = keras.Input((4,))
    network = keras.Model(inputs, keras.layers.Dense(3, name="hidden_1")(inputs))
    component = {cls}(name="{name}", layer="hidden_1", momentum=0.5)
    component.attach(network)
    batches = [np.random.default_rng(seed).normal(size=(8, 3)).astype("float32") for seed in range(3)]
    for h, (term_expected, gradient_expected, state_expected) in zip(batches, numpy_steps(batches, 0.5)):
        h = tf.constant(h)
        with tf.GradientTape() as tape:
            tape.watch(h)
            term = component.term(LossContext(y_true=None, y_pred=None, network=network, training=True,
                                              outputs={{"hidden_1": h}}))
        np.testing.assert_allclose(float(term), term_expected, rtol=1e-5)
        np.testing.assert_allclose(tape.gradient(term, h).numpy(), gradient_expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(component.average.numpy(), state_expected, rtol=1e-5, atol=1e-7)
    before = component.average.numpy().copy()
    component.term(LossContext(y_true=None, y_pred=None, network=network, training=False,
                               outputs={{"hidden_1": tf.constant(batches[0])}}))
    np.testing.assert_array_equal(component.average.numpy(), before)  # validation leaves the state
'''
