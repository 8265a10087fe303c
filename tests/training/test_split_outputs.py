"""``task.split_outputs``: a network of several outputs whose task loss is one part per output, each
the loss that output was compiled with, weighed by a weighting method and measured apart."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from lossexp.errors import ConfigError


def two_heads():
    """A shared trunk, a softmax head ``cls`` and a linear head ``reg``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    trunk = keras.layers.Dense(8, activation="tanh", name="trunk")(inputs)
    return keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls")(trunk),
                                "reg": keras.layers.Dense(1, name="reg")(trunk)}, name="two_heads")


def data(n: int = 40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, {"cls": rng.integers(0, 3, n), "reg": x[:, :1] * 2.0}


def numpy_head_losses(network, x, y) -> np.ndarray:
    """Sparse cross-entropy of ``cls`` and mean squared error of ``reg`` at the network's weights."""
    predicted = network.predict(x, verbose=0)
    cross_entropy = -np.mean(np.log(predicted["cls"][np.arange(len(x)), y["cls"]]))
    return np.array([cross_entropy, np.mean((predicted["reg"] - y["reg"]) ** 2)])


def test_each_heads_loss_is_a_part_the_weighting_method_weighs_apart():
    """One plain-SGD step with ``uncertainty``: each head's log-variance moves by its own weighted loss,
    s₁ = s₀ − lr·(1 − exp(−s₀)·wₒLₒ), Lₒ from NumPy, and the parts sum to the task loss."""
    import keras

    from lossexp.balancing.uncertainty import UncertaintyWeighting
    from lossexp.training.supervised import compose

    x, y = data()
    lr, s0, weights = 0.1, 0.2, np.array([1.0, 0.5])
    network = two_heads()
    losses = weights * numpy_head_losses(network, x, y)
    model = compose(network, [], task_loss="mse", weighting=UncertaintyWeighting(log_variance=s0),
                    split_outputs=["cls", "reg"])
    assert model.tasks() == ["task.cls", "task.reg"]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
                  loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"}, loss_weights={"cls": 1.0, "reg": 0.5})
    parts = model.composed_loss(y, network(x), None, training=False).parts
    np.testing.assert_allclose([float(p) for p in parts], losses, rtol=1e-5)
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history
    assert history["loss/task"][0] == pytest.approx(losses.sum(), rel=1e-5)
    tracked = {key: float(value) for key, value in model.tracked_weights().items()}
    s1 = s0 - lr * (1 - np.exp(-s0) * losses)
    for i, part in enumerate(["task.cls", "task.reg"]):
        assert tracked[f"weight/uncertainty/{part}"] == pytest.approx(np.exp(-s0), rel=1e-6)
        assert tracked[f"weight/uncertainty/log_variance/{part}"] == pytest.approx(s1[i], rel=1e-5)


def test_a_run_splitting_its_outputs_records_each_heads_weight_and_gradients_and_reloads(tmp_path, monkeypatch):
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    history, run_id = lossexp.fit(two_heads(), data(), loss=[("activity", {"weight": 0.01, "layers": ["trunk"]})],
                                  weighting={"name": "dwa", "temperature": 2.0},
                                  task={"split_outputs": True, "loss_weights": {"reg": 0.5}},
                                  trainer={"epochs": 2, "verbose": 0, "validation_split": 0.25},
                                  tracking={"plots": False, "gradients_every_n_steps": 1})
    run = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}").get_run(run_id)
    metrics = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.params["task.split_outputs"] == "True"
    assert {"weight/dwa/task.cls", "weight/dwa/task.reg", "weight/dwa/activity"} <= set(metrics)
    assert {"weight_grad/task.cls/norm", "weight_grad/task.reg/cos_task.cls", "weight_grad/activity/norm"} \
        <= set(metrics), sorted(m for m in metrics if m.startswith("weight_grad"))
    assert sum(metrics[f"weight/dwa/{t}"] for t in ("task.cls", "task.reg", "activity")) == pytest.approx(3.0)
    saved = next((tmp_path / "outputs").rglob("model.keras"))
    reloaded = keras.saving.load_model(saved)
    assert reloaded.tasks() == ["task.cls", "task.reg", "activity"]


def test_splitting_the_task_loss_of_a_network_of_one_output_is_one_line(tmp_path, monkeypatch):
    import keras

    import lossexp

    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((6,))
    network = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    with pytest.raises(ConfigError, match=r"^Invalid value for task.split_outputs: expected false for a network of "
                                          r"one output .*, got True$"):
        lossexp.fit(network, (data()[0], data()[1]["reg"]), task={"split_outputs": True}, trainer={"epochs": 1})
    with pytest.raises(ConfigError, match=r"^Invalid value for task.split_outputs: expected true or false, got 'yes'$"):
        lossexp.fit(network, (data()[0], data()[1]["reg"]), task={"split_outputs": "yes"}, trainer={"epochs": 1})


def test_a_dict_outputs_keys_name_its_parts_when_its_heads_layers_are_named_otherwise():
    """Keras pairs targets and losses with a dict output's keys; ``output_names`` lists the heads'
    layer names (cls_head, reg_head). The parts are the keys', their losses NumPy's, as in Keras' fit."""
    import keras

    from lossexp.balancing.heads import shared_by
    from lossexp.balancing.uncertainty import UncertaintyWeighting
    from lossexp.training.network_checks import as_arrays
    from lossexp.training.supervised import compose

    x, y = data()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    trunk = keras.layers.Dense(8, activation="tanh", name="trunk")(inputs)
    network = keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls_head")(trunk),
                                   "reg": keras.layers.Dense(1, name="reg_head")(trunk)})
    assert network.output_names == ["cls_head", "reg_head"]
    assert sorted(as_arrays(network, network.predict(x, verbose=0))) == ["cls", "reg"]
    assert shared_by(network, ["cls", "reg"]) >= {"trunk"}
    model = compose(network, [], task_loss="mse", weighting=UncertaintyWeighting(), split_outputs=["cls", "reg"])
    assert model.tasks() == ["task.cls", "task.reg"]
    model.compile(optimizer="sgd", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    parts = model.composed_loss(y, network(x), None, training=False).parts
    np.testing.assert_allclose([float(p) for p in parts], numpy_head_losses(network, x, y), rtol=1e-5)


def test_a_run_names_a_dict_outputs_parts_and_loss_weights_by_its_keys():
    """The run's path (the supervised regime's build): ``task.loss_weights`` and the split parts by key."""
    import keras

    import lossexp

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    trunk = keras.layers.Dense(8, activation="tanh", name="trunk")(inputs)
    network = keras.Model(inputs, {"cls": keras.layers.Dense(3, activation="softmax", name="cls_head")(trunk),
                                   "reg": keras.layers.Dense(1, name="reg_head")(trunk)})
    history, _ = lossexp.fit(network, data(), weighting="uncertainty",
                             task={"split_outputs": True, "loss_weights": {"reg": 0.5}},
                             trainer={"epochs": 1, "verbose": 0, "validation_split": 0.25},
                             tracking={"enabled": False})
    # one batch of 30 examples: Keras' per-output losses are the batch's, the task loss their weighted sum
    assert history["loss/task"][0] == pytest.approx(history["cls_loss"][0] + 0.5 * history["reg_loss"][0], rel=1e-6)
