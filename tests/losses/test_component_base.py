"""The component contract's defaults: what a run records of a component's own trained variables."""
from __future__ import annotations

import numpy as np
from keras import ops

from lossexp.losses.base import LossComponent, LossContext
from lossexp.tracking.callback import MetricSink, RunRecorder


class Projection(LossComponent):
    """term = mean ‖h·M − v‖² + b² over hidden_1's outputs h: M, v and b are the component's own."""

    def attach(self, network):
        self.m = self.add_weight(name="m", shape=(8, 8), initializer="identity", trainable=True)
        self.v = self.add_weight(name="v", shape=(8,), initializer="ones", trainable=True)
        self.b = self.add_weight(name="b", shape=(), initializer="ones", trainable=True)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", trainable=False)

    def outputs_needed(self):
        return ["hidden_1"]

    def term(self, context):
        residual = ops.matmul(context.outputs["hidden_1"], self.m) - self.v
        return ops.mean(ops.sum(ops.square(residual), axis=-1)) + ops.square(self.b)


def test_a_components_own_trained_variables_are_recorded_at_each_sample(tiny_network, compose, regression_data):
    """Before, a run recorded none of them (only the saved model held M, v and b); now each sample records a
    scalar's value and a tensor's norm, `weight/var/<c>/<v>`, beside a trainable weight's `weight/coef/<c>`."""
    x, y = regression_data
    component = Projection(name="proj", weight={"value": 0.5, "trainable": True, "parametrization": "softplus"})
    model = compose(tiny_network(), [component])
    sink = MetricSink(None, None)
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[RunRecorder(sink, every_n_steps=1,
                                                                                           drift=False)])
    recorded = {key for key in sink.history if key.startswith("weight/")}
    assert recorded == {"weight/proj", "weight/coef/proj", "weight/var/proj/m.norm", "weight/var/proj/v.norm",
                        "weight/var/proj/b", "weight/state/proj/count"}  # its non-trainable count: tests/losses/test_state.py
    assert [step for step, _ in sink.history["weight/var/proj/m.norm"]] == [0, 1, 2]
    assert sink.history["weight/var/proj/m.norm"][0][1] == np.sqrt(8.0)  # the identity it started at
    np.testing.assert_allclose(sink.history["weight/var/proj/m.norm"][-1][1], np.linalg.norm(component.m.numpy()),
                               rtol=1e-6)
    np.testing.assert_allclose(sink.history["weight/var/proj/v.norm"][-1][1], np.linalg.norm(component.v.numpy()),
                               rtol=1e-6)
    assert sink.history["weight/var/proj/b"][-1][1] == float(component.b.numpy()) < 1.0  # trained down from 1


class KernelOrthogonality(LossComponent):
    """term = ‖KᵀK − I‖² of hidden_1's kernel K, kept as an attribute as a user writes it (Keras then tracks the
    network's kernel as the component's variable too)."""

    def attach(self, network):
        self.kernel = network.get_layer("hidden_1").kernel

    def term(self, context):
        gram = ops.matmul(ops.transpose(self.kernel), self.kernel)
        return ops.sum(ops.square(gram - ops.eye(gram.shape[0])))


def test_a_networks_variable_kept_as_an_attribute_is_not_recorded_as_the_components(tiny_network, compose,
                                                                                     regression_data):
    """It was ``weight/var/ortho/kernel.norm``: the network's kernel, named the component's own trained variable."""
    x, y = regression_data
    component = KernelOrthogonality(name="ortho", weight=0.1)
    model = compose(tiny_network(), [component])
    sink = MetricSink(None, None)
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[RunRecorder(sink, every_n_steps=1,
                                                                                           drift=False)])
    assert any(variable is component.kernel for variable in component.trainable_variables)  # Keras' tracking
    assert [key for key in sink.history if key.startswith("weight/")] == []  # its weight a constant: none


class TwoLayerHead(LossComponent):
    """term = mean ‖Dense(Dense(h))‖² over hidden_1's outputs h (a projection head of two Dense layers, each with
    a ``kernel`` and a ``bias``); two non-trainable scalars both named ``seen`` count steps and twice the steps."""

    def attach(self, network):
        import keras

        self.first, self.second = keras.layers.Dense(4), keras.layers.Dense(2)
        self.first.build((None, 8))
        self.second.build((None, 4))
        self.seen = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)
        self.seen_twice = self.add_weight(name="seen", shape=(), initializer="zeros", trainable=False)

    def outputs_needed(self):
        return ["hidden_1"]

    def term(self, context):
        if context.training:
            self.seen.assign_add(1.0)
            self.seen_twice.assign_add(2.0)
        return ops.mean(ops.sum(ops.square(self.second(self.first(context.outputs["hidden_1"]))), axis=-1))


def test_variables_of_one_name_get_a_key_each(tiny_network, compose, regression_data):
    """A head of two Dense layers has two ``kernel``s: before, both wrote ``weight/var/head/kernel.norm`` (the
    second's value, the first's lost); now each is named by its path below the component, and two variables of
    one path are numbered."""
    x, y = regression_data
    component = TwoLayerHead(name="head")
    model = compose(tiny_network(), [component])
    sink = MetricSink(None, None)
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[RunRecorder(sink, every_n_steps=1,
                                                                                           drift=False)])
    first, second = component.first.name, component.second.name
    keys = {f"weight/var/head/{first}/kernel.norm": component.first.kernel,
            f"weight/var/head/{first}/bias.norm": component.first.bias,
            f"weight/var/head/{second}/kernel.norm": component.second.kernel,
            f"weight/var/head/{second}/bias.norm": component.second.bias,
            "weight/state/head/seen_1": component.seen, "weight/state/head/seen_2": component.seen_twice}
    assert {key for key in sink.history if key.startswith("weight/")} == set(keys)
    for key, variable in keys.items():
        np.testing.assert_allclose(sink.history[key][-1][1], np.linalg.norm(variable.numpy()), rtol=1e-6)
    assert sink.history["weight/state/head/seen_2"][-1][1] == 4.0 == 2 * sink.history["weight/state/head/seen_1"][-1][1]


def test_attaching_a_tapping_component_to_a_network_without_its_tap_is_one_line():
    """A training regime of the user's that attached ``activity`` to its own network, not rewired with
    the tap, failed at the first step: ``AttributeError: 'NoneType' object has no attribute 'latest_penalty'``."""
    import keras
    import pytest

    from lossexp.errors import ConfigError
    from lossexp.losses.activity import ActivityPenalty
    from lossexp.losses.base import attach
    from lossexp.training.rewire import insert_taps

    inputs = keras.Input((2,))
    network = keras.Model(inputs, keras.layers.Dense(3, name="hidden_1")(inputs), name="critic")
    with pytest.raises(ConfigError, match="loss.activity reads the loss tap it inserts after layer.s. hidden_1, which the "
                                          r"network lacks .* lossexp.training.rewire.insert_taps\(network, "):
        attach(ActivityPenalty(layers=["hidden_1"], name="activity"), network)
    activity = ActivityPenalty(layers=["hidden_1"], name="activity")
    tapped = insert_taps(network, {layer: [tap] for layer, tap in activity.insert_after().items()})
    attach(activity, tapped)
    tapped(np.ones((4, 2), "float32"))
    assert float(activity.term(LossContext(y_true=None, y_pred=None, network=tapped, training=True))) > 0


class WeightedError(LossComponent):
    """term = Σ wᵢ(ŷᵢ − yᵢ)² / Σ wᵢ, w the batch's sample weights (1 where the data gives none)."""

    def term(self, context):
        error = ops.square(context.y_pred - context.y_true)[:, 0]
        weights = ops.ones_like(error) if context.sample_weight is None else ops.cast(context.sample_weight, "float32")
        return ops.sum(weights * error) / ops.sum(weights)


def test_a_term_reads_the_batchs_sample_weights_in_training_and_validation(tiny_network, compose, regression_data):
    """Before, the context had no sample weights (a focal-style reweighting could not be written: an
    AttributeError); now ``context.sample_weight`` is the data's, its term equal to NumPy's."""
    x, y = regression_data
    weights = np.linspace(0.0, 2.0, 16).astype("float32")
    model = compose(tiny_network(), [WeightedError(name="wse", weight=0.5)])
    model.fit(x[:16], y[:16], sample_weight=weights, batch_size=16, epochs=1, verbose=0)
    logs = model.evaluate(x[:16], y[:16], sample_weight=weights, batch_size=16, verbose=0, return_dict=True)
    error = (model.network.predict(x[:16], verbose=0).astype(np.float64) - y[:16]) ** 2
    np.testing.assert_allclose(logs["term/wse"], np.sum(weights * error[:, 0]) / np.sum(weights), rtol=1e-5)
    unweighted = model.evaluate(x[:16], y[:16], batch_size=16, verbose=0, return_dict=True)["term/wse"]
    np.testing.assert_allclose(unweighted, np.mean(error), rtol=1e-5)


class NamesLayers(LossComponent):
    """A component of the user's naming layers it finds itself (``network.get_layer``), not by path."""

    def __init__(self, layers=("hidden",), **kwargs) -> None:
        super().__init__(**kwargs)
        self.layers = list(layers)

    def attach(self, network) -> None:
        self.require_layers(network, self.layers)

    def term(self, context: LossContext):
        return ops.zeros(())


def test_a_nested_layer_is_named_by_its_path_where_the_component_reaches_it_else_told_to_name_its_model():
    """A layer the component reads the output of (``outputs_needed``) is reached by its path, lossexp
    reading it; one a component of the user's finds itself, only when it says it can
    (``reaches_nested_layers``)."""
    import keras
    import pytest

    from lossexp.errors import ConfigError

    inner = keras.Input((4,))
    backbone = keras.Model(inner, keras.layers.Dense(3, name="hidden")(inner), name="backbone")
    inputs = keras.Input((4,), name="x")
    network = keras.Model(inputs, keras.layers.Dense(1, name="head")(backbone(inputs)))
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.mine.layers: layer 'hidden' is not in the model "
                                          r"\(it is 'backbone/hidden', inside 'backbone': loss.mine.layers takes the "
                                          r"network's own layers, so name 'backbone' or build the network flat\); "
                                          r"its layers are x, backbone, head$"):
        NamesLayers(name="mine").attach(network)
    with pytest.raises(ConfigError, match=r"layer 'backbone/hidden' is not in the model"):
        NamesLayers(name="mine", layers=["backbone/hidden"]).attach(network)

    class ReadsHidden(NamesLayers):
        def outputs_needed(self):
            return self.layers

    ReadsHidden(name="mine", layers=["backbone/hidden"]).attach(network)  # read by lossexp: reached


def test_a_layer_output_no_component_asked_for_says_where_to_ask_for_it():
    """It was a bare ``KeyError: 'hidden_1'``: the term's author did not learn of outputs_needed()."""
    import pytest

    context = LossContext(y_true=None, y_pred=None, network=None, training=True, outputs={"hidden_2": 1.0})
    assert context.outputs["hidden_2"] == 1.0 and dict(context.outputs) == {"hidden_2": 1.0}
    with pytest.raises(KeyError, match=r"context.outputs holds the layers the components' outputs_needed\(\) name "
                                       r"\('hidden_2'\), not 'hidden_1': return it from your component's outputs_needed"):
        context.outputs["hidden_1"]
