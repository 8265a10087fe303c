"""``gradnorm`` against Chen et al.'s Algorithm 1, step by step in NumPy: the network follows the
current weights; the weights then take one gradient step on L_grad = Σ|Gᵢ − Ḡ·rᵢ^α| (target held
constant) and are renormalised to sum to K. The shared layer W defaults to the last one with weights."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import subclassed_heads, two_heads as shared_trunk_heads
from lossexp.balancing.gradnorm import FLOOR, GradNorm
from lossexp.errors import ConfigError
from weighting_helpers import attached, weights


def two_heads():
    """A trunk of 6 under head ``a`` and head ``b`` (with a hidden layer of 3)."""
    return shared_trunk_heads(trunk_units=6, head_units=3, seed=0)


#: the tasks' gradients on W: task 0 pulls hard, task 2 not at all (a term on a lower layer)
J = np.array([[3.0, 0.0, 1.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])


def reference_step(w, norms, losses, initial, alpha, lr):
    """Algorithm 1 over the parts with a gradient on W; a part without one keeps its weight."""
    w = np.array(w, np.float64)
    on = norms > 0
    scaled = w[on] * norms[on]
    ratio = np.where(initial > 0, losses / np.where(initial > 0, initial, 1), 1.0)[on]
    target = scaled.mean() * (ratio / ratio.mean()) ** alpha
    stepped = np.maximum(w[on] - lr * np.sign(scaled - target) * norms[on], FLOOR)
    w[on] = on.sum() * stepped / stepped.sum()
    return w


def test_two_steps_follow_the_algorithm():
    method = attached(GradNorm(alpha=1.5, lr=0.1), 3)
    assert method.gradient_layers() == ["output"]
    norms = np.linalg.norm(J, axis=1)
    first, second = np.array([2.0, 1.0, 0.0]), np.array([1.0, 0.9, 0.5])  # task 2's loss starts at 0
    np.testing.assert_allclose(weights(method, J, first), np.ones(3))  # the network follows w = 1 first
    w1 = reference_step(np.ones(3), norms, first, np.array([2.0, 1.0, 0.0]), 1.5, 0.1)
    np.testing.assert_allclose(method.loss_weights.numpy(), w1, rtol=1e-5)
    # by hand: task 0 is above the mean norm of the two with a gradient on W (stepped down by lr·‖g₀‖), task 1
    # below (up), both renormalised to sum 2; task 2 has no gradient on W: left out, kept at 1
    stepped = np.array([1 - 0.1 * norms[0], 1 + 0.1 * norms[1]])
    np.testing.assert_allclose(w1, [*(2 * stepped / stepped.sum()), 1.0], rtol=1e-6)
    np.testing.assert_allclose(weights(method, J, second), w1, rtol=1e-5)
    initial = np.array([2.0, 1.0, 0.5])  # a task's L(0) is its first positive loss
    np.testing.assert_allclose(method.initial_losses.numpy(), initial)
    w2 = reference_step(w1, norms, second, initial, 1.5, 0.1)
    np.testing.assert_allclose(method.loss_weights.numpy(), w2, rtol=1e-5)
    assert w2.sum() == pytest.approx(3.0) and w2[0] < 1.0  # the task that dominates W is weighted down


def test_the_layer_must_have_trainable_weights():
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: layer 'inputs' is not a layer of the "
                                          r"model with trainable weights; those are hidden_1, hidden_2, output$"):
        attached(GradNorm(layer="inputs"), 2)
    assert attached(GradNorm(layer="hidden_1"), 2).gradient_layers() == ["hidden_1"]


def test_split_heads_are_balanced_on_the_layer_they_share_and_one_step_follows_the_algorithm():
    """With ``task.split_outputs`` the default W is the last layer under every head (``trunk``), not the
    last head (``b``, on which head ``a`` has no gradient, so GradNorm balanced nothing); one SGD step
    moves the weights as Algorithm 1 from the heads' gradient norms on the trunk (TensorFlow's tape)."""
    import keras
    import tensorflow as tf

    from lossexp.training.supervised import compose

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = {"a": rng.normal(size=(16, 1)).astype("float32"), "b": 3.0 * rng.normal(size=(16, 2)).astype("float32")}
    network = two_heads()
    with tf.GradientTape(persistent=True) as tape:
        predicted = network(x)
        losses = [tf.reduce_mean(tf.square(y[o] - predicted[o])) for o in ("a", "b")]
    trunk = network.get_layer("trunk").trainable_weights
    norms = np.array([np.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in tape.gradient(loss, trunk))) for loss in losses])
    method = GradNorm(alpha=1.5, lr=0.1)
    model = compose(network, [], task_loss="mse", weighting=method, split_outputs=["a", "b"])
    assert method.gradient_layers() == ["trunk"]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss={"a": "mse", "b": "mse"})
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    loss_values = np.array([float(v) for v in losses])
    expected = reference_step(np.ones(2), norms, loss_values, loss_values, 1.5, 0.1)
    np.testing.assert_allclose(method.loss_weights.numpy(), expected, rtol=1e-4)
    assert abs(expected[0] - 1.0) > 0.05  # both heads moved: a real balancing step


def test_a_layer_of_one_head_is_one_line_listing_the_shared_layers():
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: expected a layer every split output "
                                          r"\(a, b\) is computed through, GradNorm's shared W: trunk, got 'b_hidden'$"):
        GradNorm(layer="b_hidden").attach(["task.a", "task.b", "hist_avg"], two_heads())
    assert GradNorm().attach(["task.a", "task.b"], two_heads()) is not None
    assert GradNorm(layer="b").attach(["task", "hist_avg"], two_heads()) is not None  # one part for the heads: any layer


def test_outputs_that_share_no_layer_are_one_line_saying_what_to_do():
    # GradNorm balances the gradients on the last shared layer W (Chen et al. 2018): heads that share none
    # have nothing to balance. The line named the key but not what to do instead
    import keras

    inputs = keras.Input((4,), name="x")
    network = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(keras.layers.Dense(3, name="a_hidden")(inputs)),
                                   "b": keras.layers.Dense(2, name="b")(inputs)})
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting=gradnorm: expected outputs that share a layer "
                                          r"with trainable weights \(GradNorm's W, the last shared layer\), got none "
                                          r"shared by the split outputs a, b: set task.split_outputs=false \(one part "
                                          r"for all outputs\) or use a weighting that reads the losses only \(dwa, "
                                          r"uncertainty, equal\)$"):
        GradNorm().attach(["task.a", "task.b"], network)


def test_a_part_without_a_gradient_on_w_keeps_its_weight_and_does_not_floor_the_others():
    """Counted in the mean, its G of 0 put every other part's G above the target: ``model=mlp
    loss=activity`` (activity has no gradient on the output layer) ended task 0.001, activity 1.999."""
    method = attached(GradNorm(alpha=1.5, lr=0.1), 2)
    jacobian = np.array([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # the task, and a term below W
    for _ in range(50):
        weights(method, jacobian, [1.0, 0.5])
    np.testing.assert_allclose(method.loss_weights.numpy(), [1.0, 1.0])  # one balanced part: nothing to balance
    assert method.warning([0.001, 1.999]) is None  # its tasks are t0, t1: no task loss to speak of


def test_the_task_loss_floored_by_a_term_is_said_once_in_a_line():
    method = GradNorm()
    method.attach(["task", "hist_avg"], two_heads())
    line = method.warning([0.001, 1.999])
    assert line.startswith("weighting=gradnorm weighs the task loss 0.001 and hist_avg 2: GradNorm raises the part "
                           "whose loss falls slowest relative to its first (hist_avg's)")
    assert method.warning([0.9, 1.1]) is None


def test_a_subclassed_network_of_split_heads_must_name_the_shared_layer():
    """Its graph unread, the default W was its last layer with weights — in attribute order a head's own
    (``reg_head``): the other head had no gradient there and GradNorm floored the regression head."""
    network = subclassed_heads("two_heads_subclassed", "trunk", {"cls": ("cls_head", 3), "reg": ("reg_head", 1)})
    network(np.zeros((2, 4), "float32"))
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: null for Heads 'two_heads_subclassed', "
                                          r"whose graph lossexp cannot read \(a subclassed model\), so the last layer "
                                          r"every split output \(cls, reg\) is computed through is unknown: name "
                                          r"GradNorm's shared W, one of trunk, cls_head, reg_head$"):
        GradNorm().attach(["task.cls", "task.reg"], network)
    named = GradNorm(layer="trunk")
    named.attach(["task.cls", "task.reg"], network)
    assert named.gradient_layers() == ["trunk"]


def test_the_shared_layer_may_be_a_layer_inside_a_nested_backbone():
    """``weighting.layer=backbone/trunk_2`` was refused (the network's own layers only), so W could be the whole
    backbone's weights but not its last layer, as Chen et al.'s last shared layer; loss components took the path."""
    import keras

    inputs = keras.Input((4,))
    backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, name="trunk_1"),
                                 keras.layers.Dense(6, name="trunk_2")], name="backbone")
    shared = backbone(inputs)
    network = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(shared),
                                   "b": keras.layers.Dense(2, name="b")(shared)})
    method = GradNorm(layer="backbone/trunk_2")
    method.attach(["task.a", "task.b"], network)
    assert method.gradient_layers() == ["backbone/trunk_2"]
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: expected a layer every split output "
                                          r"\(a, b\) is computed through, GradNorm's shared W: backbone, got 'a'$"):
        GradNorm(layer="a").attach(["task.a", "task.b"], network)
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: layer 'backbone/nope' is not"):
        GradNorm(layer="backbone/nope").attach(["task", "hist_avg"], network)
    # a path that goes nowhere inside the shared backbone: the key, and the paths there are (it was "weighting:
    # expected gradnorm's gradient_layers() to name …", the nested paths left out)
    with pytest.raises(ConfigError, match=r"^Invalid value for weighting.layer: layer 'backbone/trunk_9' is not a layer "
                                          r"of the model with trainable weights; those are backbone, backbone/trunk_1, "
                                          r"backbone/trunk_2, a, b$"):
        GradNorm(layer="backbone/trunk_9").attach(["task.a", "task.b"], network)
