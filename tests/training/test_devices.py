"""Several devices and mixed precision: the same global batch trained on one device and under
MirroredStrategy on two logical CPU devices gives the same metric history — task loss, every
component's term and weighted contribution, coefficients, schedules, the gradient diagnostics —
and bfloat16 layers keep the terms in float32."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import composed_config

CASES = {
    # hist_avg in both modes (a second entry of the same class), a trained coefficient (a variable of the loss
    # that the optimizer updates under the strategy, as uncertainty's log-variances), an activity penalty
    "hist_avg_mean_ema+coef+activity": ["model=mlp", "model.hidden_units=[16,8]", "data=regression",
                                        "data.n_samples=320", "loss=hist_avg+coef+activity",
                                        "+loss.hist_avg_ema={kind: hist_avg, mode: ema, decay: 0.9}"],
    # weighting methods: the losses and the tasks' gradients they see are the global batch's on either
    "pcgrad": ["model=mlp", "model.hidden_units=[16,8]", "data=regression", "data.n_samples=320",
               "loss=hist_avg+activity", "weighting=pcgrad"],
    # Keras' regularizers of kernels and outputs (an activity regularizer Keras would keep in layer.losses,
    # one list the replicas share: the component's tap keeps each replica's own)
    "regularizer": ["model=mlp", "model.hidden_units=[16,8]", "data=regression", "data.n_samples=320",
                    "loss=regularizer", "loss.regularizer.kernel.l2=0.01", "loss.regularizer.activity.l1=0.01"],
    "gradnorm": ["model=mlp", "model.hidden_units=[16,8]", "data=regression", "data.n_samples=320",
                 "loss=hist_avg+activity", "weighting=gradnorm"],
    # kl on an encoder without sampling noise (each replica would draw the noise of its half-batch from the
    # same seed, where one device draws it for the whole batch): the project's model below
    "kl_schedule": ["model=mean_vae", "data=digits", "data.n_samples=320", "loss=kl",
                    "loss.kl.weight={schedule: linear, start: 0, end: 1, steps: 12}"],
}
#: the terms a case must record (its entries are not all named in its overrides' loss=)
TERMS = {"hist_avg_mean_ema+coef+activity": ("hist_avg", "hist_avg_ema", "coef", "activity")}
#: a user project whose model has the VAE's z_mean and z_log_var layers and decodes them, without sampling
PROJECT = {
    "pyproject.toml": '[tool.lossexp]\nmodules = ["mean_vae"]\n',
    "mean_vae.py": (
        "import keras\nimport lossexp\n\n\n"
        "@lossexp.register_model('mean_vae', task='reconstruction')\n"
        "def mean_vae(data):\n"
        "    inputs = keras.Input(data.input_shape)\n"
        "    h = keras.layers.Dense(16, activation='relu')(keras.layers.Flatten()(inputs))\n"
        "    z_mean, z_log_var = keras.layers.Dense(2, name='z_mean')(h), keras.layers.Dense(2, name='z_log_var')(h)\n"
        "    h = keras.layers.Dense(16, activation='relu')(keras.layers.Concatenate()([z_mean, z_log_var]))\n"
        "    return keras.Model(inputs, keras.layers.Dense(data.num_outputs, activation='sigmoid')(h))\n"),
}
#: 320 examples: 256 train and 64 validate, whole batches of 32 that split evenly over two replicas (Keras
#: averages the replicas' losses with equal weight, so an uneven last batch would weigh examples unequally)
COMMON = ["trainer.epochs=2", "trainer.batch_size=32", "trainer.steps_per_execution=1", "trainer.log_every_n_steps=4",
          "tracking.plots=false", "tracking.log_model=false", "tracking.drift=false"]


def histories(uri: str, run_name: str) -> dict:
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id],
                               f"attributes.run_name = '{run_name}'")
    assert run.info.status == "FINISHED"
    keys = [k for k in run.data.metrics
            if k.split("/")[0] in ("loss", "val_loss", "term", "val_term", "coef", "weight", "weight_grad")]
    return {key: [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key),
                                                     key=lambda m: m.step)] for key in keys}


@pytest.mark.slow
@pytest.mark.integration  # two processes per case (about 80 s of the suite): make test-integration runs them
@pytest.mark.parametrize("case", list(CASES))
def test_two_replicas_train_like_one_device(run_cli, store_uri, tmp_path, case):
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    for devices, extra in (("one", []), ("two", ["trainer.distribute=mirrored", "trainer.logical_devices=2"])):
        result = run_cli("train", *CASES[case], *COMMON, *extra, f"tracking.run_name={devices}")
        assert result.returncode == 0, result.stderr[-3000:]
    one, two = histories(store_uri, "one"), histories(store_uri, "two")
    assert set(one) == set(two) and any(k.startswith("term/") for k in one)
    assert {f"term/{name}" for name in TERMS.get(case, ())} <= set(one)
    for key in one:
        assert [s for s, _ in one[key]] == [s for s, _ in two[key]], key
        for (step, a), (_, b) in zip(one[key], two[key]):
            # the replicas sum their gradients in another order: float noise, amplified in hist_avg's θ − r
            assert b == pytest.approx(a, rel=1e-3, abs=1e-6), f"{key} at step {step}"


def test_steps_per_execution_above_one_is_refused_under_a_strategy():
    from lossexp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"trainer.steps_per_execution: expected null or 1 with trainer.distribute"):
        composed_config("trainer.distribute=mirrored", "trainer.steps_per_execution=10")
    assert composed_config("trainer.distribute=mirrored").trainer.execution_steps == 1


@pytest.mark.slow
def test_bfloat16_layers_keep_the_terms_in_float32(run_cli, store_uri, tmp_path):
    import keras

    import lossexp.losses.activity  # noqa: F401  (registers the classes of the saved model)
    import lossexp.losses.hist_avg  # noqa: F401
    import lossexp.training.composed_model  # noqa: F401

    result = run_cli("train", "model=mlp", "data=regression", "data.n_samples=320", "loss=hist_avg+activity",
                     "trainer.epochs=2", "trainer.precision=mixed_bfloat16", "tracking.plots=false")
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["trainer.precision"] == "mixed_bfloat16"
    [path] = list((tmp_path / "outputs" / "runs").rglob("model.keras"))
    model = keras.saving.load_model(path)
    hidden = model.network.get_layer("hidden_1")
    assert hidden.compute_dtype == "bfloat16" and hidden.kernel.dtype == "float32"
    for component in model.components:  # the state in full precision (hist_avg's count int64, its references float64)
        assert all(v.dtype in ("float32", "float64", "int64") for v in component.variables)
    metrics = run.data.metrics
    assert metrics["loss"] == pytest.approx(metrics["loss/task"] + metrics["loss/hist_avg"] + metrics["loss/activity"],
                                            rel=1e-4)


def test_a_network_built_under_mixed_float16_trains_loss_scaled_and_one_built_in_float32_is_told(
        tmp_path, monkeypatch, capsys):
    """A network of the user's built under ``mixed_float16`` computes in float16: its optimizer is
    wrapped in Keras' LossScaleOptimizer, as Keras' compile would wrap it; ``trainer.precision`` cannot
    change a network built before the run, and one line says so."""
    import keras
    import numpy as np

    import lossexp

    monkeypatch.chdir(tmp_path)
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["optimizer"] = type(self.model.optimizer).__name__

    def network(name: str):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden_1"),
                                 keras.layers.Dense(1, dtype="float32")], name=name)

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    quiet = {"tracking": {"plots": False, "log_model": False}}
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = network("half")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert half.get_layer("hidden_1").compute_dtype == "float16"
    history = lossexp.fit(half, (x, x[:, :1]), loss=["activity"], callbacks=[Spy()], trainer={"epochs": 1, "verbose": 0},
                          **quiet).history
    assert seen["optimizer"] == "LossScaleOptimizer" and np.isfinite(history["loss"][0])
    lossexp.fit(network("full"), (x, x[:, :1]), trainer={"epochs": 1, "verbose": 0, "precision": "mixed_bfloat16"},
                **quiet)
    assert ("lossexp: warning: trainer.precision=mixed_bfloat16 is the policy of the layers lossexp builds; "
            "full's were built in float32") in capsys.readouterr().err


#: a notebook's session on two logical CPUs: a network built in its own MirroredStrategy's scope, two heads
#: whose losses are parts of their own (task.split_outputs) under uncertainty weighting, one SGD step
USERS_STRATEGY = """
import sys, numpy as np, tensorflow as tf
sys.path.insert(0, sys.argv[1])
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import lossexp
from test_split_outputs import data, numpy_head_losses, two_heads
x, y = data(40)
with tf.distribute.MirroredStrategy().scope():
    network = two_heads()
losses = np.array([1.0, 0.5]) * numpy_head_losses(network, x, y)
history, run_id = lossexp.fit(network, (x, y), overrides=["weighting=uncertainty", "optimizer=sgd",
                              "optimizer.learning_rate=0.1"], task={"split_outputs": True, "loss_weights": {"reg": 0.5}},
                              trainer={"epochs": 1, "verbose": 0, "validation_split": 0, "batch_size": 40,
                                       "distribute": "mirrored"}, tracking={"plots": False, "log_model": False})
from mlflow.tracking import MlflowClient
metrics = MlflowClient("sqlite:///outputs/mlflow.db").get_run(run_id).data.metrics
got = [metrics[f"weight/uncertainty/log_variance/task.{head}"] for head in ("cls", "reg")]
np.testing.assert_allclose(got, -0.1 * (1 - losses), rtol=1e-5)
print("ok", got)
"""


@pytest.mark.slow
def test_a_network_built_in_the_users_strategy_trains_under_it_and_one_built_outside_is_one_line(tmp_path,
                                                                                                  monkeypatch):
    import subprocess
    import sys
    from pathlib import Path

    import keras

    import lossexp
    from lossexp.errors import ConfigError

    done = subprocess.run([sys.executable, "-c", USERS_STRATEGY, str(Path(__file__).parent)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "\nok [" in done.stdout, done.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((3,))
    outside = keras.Model(inputs, keras.layers.Dense(1)(inputs), name="outside")
    x = np.zeros((8, 3), "float32")
    with pytest.raises(ConfigError, match=r"^Invalid value for trainer.distribute: expected, for mirrored, a network "
                                          r"built in a tf.distribute.MirroredStrategy's scope .*got outside built "
                                          r"outside one$"):
        lossexp.fit(outside, (x, x[:, :1]), trainer={"distribute": "mirrored", "epochs": 1})


def test_a_softmax_computed_in_bfloat16_is_probabilities_and_trains_as_keras_fit(tmp_path, monkeypatch):
    """A classifier built under ``mixed_bfloat16`` whose softmax computes in bfloat16: its rows sum to
    1 only within bfloat16's rounding (± 0.003), yet they are probabilities — lossexp's cross-entropy
    was ``from_logits`` of them (first-epoch loss 1.19 where Keras' fit gives 1.41). Trained as Keras'
    fit trains it: the same losses, bit for bit."""
    import keras
    import numpy as np

    import lossexp
    from lossexp.training.task import outputs_logits

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 3, 40)

    def network():
        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                                     keras.layers.Dense(3, activation="softmax")])
        finally:
            keras.mixed_precision.set_global_policy("float32")

    ours, theirs = network(), network()
    rows = np.asarray(ours(x))
    assert rows.dtype.name == "bfloat16" and np.max(np.abs(rows.astype("float64").sum(-1) - 1)) > 1e-3
    assert not outputs_logits(rows)
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    want = theirs.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, shuffle=False, verbose=0).history
    got = lossexp.fit(ours, (x, y), trainer={"epochs": 2, "batch_size": 8, "shuffle": "none", "verbose": 0},
                      optimizer={"name": "sgd", "learning_rate": 0.1},
                      tracking={"plots": False, "log_model": False, "gradients": False}).history
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert got[key] == want[key], key
