"""``lossexp train --resume RUN_ID``: a run stopped after its second epoch continues from its
checkpoint in the same MLflow run — epochs 3 and 4 recorded once each after the first two, its
steps continuing, the run FINISHED and its checkpoint gone; a run that cannot continue is one line."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from crafted_runs import SMALL, composed_config, crafted_run, dump
from lossexp.errors import ConfigError
from lossexp.tracking import resume


#: in-memory arrays, and a CSV streamed through tf.data (shuffled within a buffer, not permuted)
SOURCES = {"arrays": ("regression", ["data.n_samples=100"]),
           "stream": ("csv", ["data.path=table.csv", "data.target=y", "data.stream=true"])}


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_a_stopped_run_continues_in_the_same_run_from_its_last_epoch(tmp_path, monkeypatch, run_cli, store_uri,
                                                                     source):
    import keras
    import numpy as np

    import lossexp

    data, options = SOURCES[source]
    rows = np.random.default_rng(0).standard_normal((100, 4))
    np.savetxt(tmp_path / "table.csv", np.c_[rows, rows @ [1.0, -2.0, 0.5, 0.0]], delimiter=",",
               header="a,b,c,d,y", comments="")

    class StopAfterTwoEpochs(keras.callbacks.Callback):  # as Ctrl-C would, between two epochs
        def on_epoch_begin(self, epoch, logs=None):  # a Ctrl-C between epochs (checkpoint written)
            if epoch == 2:
                raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit("mlp", data, loss=["hist_avg", "activity"], callbacks=[StopAfterTwoEpochs()],
                    trainer={"epochs": 4, "verbose": 0, "log_every_n_steps": 5},
                    overrides=[*options, "tracking.plots=false", "tracking.log_model=false"])
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    saved = Path(run.data.tags["lossexp.checkpoint"])
    assert run.info.status == "KILLED" and (saved / "progress.json").is_file()

    result = run_cli("train", "--resume", run.info.run_id)
    assert result.returncode == 0, result.stderr[-3000:]
    [resumed] = client.search_runs([run.info.experiment_id])
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    epochs = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "epoch"))
    assert [value for _, value in epochs] == [1, 2, 3, 4]
    steps_per_epoch = epochs[0][0]
    assert [step for step, _ in epochs] == [steps_per_epoch * n for n in (1, 2, 3, 4)]  # the steps continue
    for key in ("loss", "term/hist_avg", "val_loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)), key  # no step recorded twice
    assert resumed.data.tags["lossexp.resumed"] == f"from epoch 2 (step {2 * steps_per_epoch}) to 4 epochs"
    assert "error" not in resumed.data.tags  # the stopped attempt's KeyboardInterrupt: it finished since
    assert not saved.exists()  # finished: nothing left to continue

    # the same call never stopped: each epoch's examples in the same order (trainer.shuffle), the same numbers
    _, uninterrupted = lossexp.fit("mlp", data, loss=["hist_avg", "activity"],
                                   trainer={"epochs": 4, "verbose": 0, "log_every_n_steps": 5},
                                   overrides=[*options, "tracking.plots=false", "tracking.log_model=false"])
    for key in ("loss", "term/hist_avg", "val_loss"):
        continued = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(continued) == sorted((m.step, m.value) for m in client.get_metric_history(uninterrupted, key)), key


#: (overrides, the steps of the discriminator's diagnostics): under mixed_float16 a ring of radius 3,000 overflows
#: the discriminator's loss scale at 9 of its 12 updates, its sample due at 7 retried at 8 and taken at 9
PRECISIONS = {"float32": ([], [1, 4, 7, 10]),
              "mixed_float16": (["trainer.precision=mixed_float16", "data.radius=3000"], [9, 10])}


@pytest.mark.slow  # three GAN runs in this process: 13 s of CPU (under mixed_float16: the integration tier, CI's budget)
@pytest.mark.parametrize("precision", ["float32", pytest.param("mixed_float16", marks=pytest.mark.integration)])
def test_a_stopped_gan_run_with_gradient_diagnostics_continues_as_the_run_that_never_stopped(tmp_path, monkeypatch,
                                                                                          store_uri, precision):
    """``model=gan`` with its in-step gradient diagnostics (every 3 steps), stopped after 2 of 3 epochs of 4
    steps and resumed: every metric — both players' losses and terms, the ring's scores, the drift, the
    diagnostics, still sampled past the checkpoint's step 8 — is recorded once at the steps and with the
    values of the same run never stopped, and the weights end bit-identical to its."""
    import keras
    import numpy as np

    import lossexp

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # a Ctrl-C between epochs (checkpoint written)
            if epoch == 2:
                raise KeyboardInterrupt

    class LastWeights(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.weights = [w.numpy() for w in self.model.weights]

    monkeypatch.chdir(tmp_path)
    settings = {"loss": "hist_avg", "trainer": {"epochs": 3, "batch_size": 16, "verbose": 0, "log_every_n_steps": 2},
                "overrides": ["data.n_samples=64", "model.latent_dim=3", "model.generator_units=[8]",
                              "model.discriminator_units=[8]", "tracking.gradients_every_n_steps=3",
                              "trainer.jit_compile=false", "tracking.plots=false", "tracking.log_model=false",
                              *PRECISIONS[precision][0]]}
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit("gan", "ring", callbacks=[CtrlC()], **settings)
    client = MlflowClient(store_uri)
    [stopped] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    resumed, whole = LastWeights(), LastWeights()
    _, run_id = lossexp.fit("gan", "ring", callbacks=[resumed], resume=stopped.info.run_id, **settings)
    _, never_stopped = lossexp.fit("gan", "ring", callbacks=[whole], **settings)
    assert run_id == stopped.info.run_id and client.get_run(run_id).info.status == "FINISHED"
    keys = set(client.get_run(run_id).data.metrics) - {"startup_seconds"}  # each attempt's own start-up
    assert keys == set(client.get_run(never_stopped).data.metrics) - {"startup_seconds"}
    histories = {key: [sorted((m.step, m.value) for m in client.get_metric_history(run, key))
                       for run in (run_id, never_stopped)] for key in keys}
    for key, (continued, expected) in histories.items():
        assert continued == expected, key
    assert [step for step, _ in histories["epoch"][0]] == [4, 8, 12]
    assert [step for step, _ in histories["loss/generator"][0]] == [2, 4, 6, 8, 10, 12]
    diagnostics = [key for key in keys if key.startswith("weight_grad/")]
    assert len(diagnostics) == 10 and {"ring/modes_covered", "term/hist_avg_generator"} <= keys
    for key in diagnostics:
        expected = PRECISIONS[precision][1] if key.startswith("weight_grad/discriminator/") else [1, 4, 7, 10]
        assert [step for step, _ in histories[key][0]] == expected, key
    assert len(resumed.weights) == len(whole.weights) == 20
    for got, expected in zip(resumed.weights, whole.weights):
        np.testing.assert_array_equal(got, expected)


@pytest.fixture
def stopped(store_uri, tmp_path):
    """A KILLED run of 3 epochs (its config logged as lossexp logs it) with a checkpoint after epoch 2."""
    from lossexp.tracking import store

    run_id = crafted_run(store_uri, dump(composed_config([*SMALL, "trainer.epochs=3"])))
    client = store.open_client(store_uri)
    client.update_run(run_id, status="KILLED")
    client.log_param(run_id, "trainer.epochs", 3)
    saved = tmp_path / "outputs" / "runs" / "a" / "checkpoint"
    saved.mkdir(parents=True)
    (saved / "state-2.npz").write_bytes(b"")
    (saved / "progress.json").write_text('{"epochs": 2, "step": 8, "state": "state-2.npz"}')
    client.set_tag(run_id, "lossexp.checkpoint", str(saved))
    return run_id, client, saved


def one_line(run_id: str, *args: str) -> str:
    with pytest.raises(ConfigError) as info:
        resume.resume_args(run_id, list(args))
    return str(info.value)


def test_a_run_that_cannot_continue_is_one_line(stopped, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    run_id, client, saved = stopped
    assert one_line(run_id, "model=cnn") == (
        "Invalid value for --resume: expected overrides of trainer.epochs, tracking.uri only (the run continues as "
        "it was configured; --from-run RUN_ID trains it again with changes), got 'model=cnn'")
    assert one_line(run_id, "trainer.epochs=2") == (
        f"Invalid value for trainer.epochs: expected more than the 2 epochs run {run_id} finished (to train it "
        "longer), got 2")
    assert one_line(run_id, "trainer.epochs=ten") == "Invalid value for trainer.epochs: expected a whole number of epochs, got 'ten'"
    assert one_line("nope") == f"Unknown run 'nope' for --resume: no such run in sqlite:///{tmp_path}/outputs/mlflow.db"
    (saved / "progress.json").unlink()
    assert one_line(run_id).startswith(f"Invalid value for --resume: expected a run with a checkpoint, got '{run_id}, "
                                       "which has none (it stopped before its first epoch ended")
    client.set_terminated(run_id, "FINISHED")
    assert one_line(run_id) == (
        f"Invalid value for --resume: expected a run that stopped (KILLED or FAILED), got '{run_id}, FINISHED: "
        f"nothing to continue (train it again, longer: --from-run {run_id} trainer.epochs=…)'")


def test_a_sweeps_child_continues_to_its_sweeps_epochs_alone(stopped, monkeypatch, tmp_path):
    """``--resume CHILD trainer.epochs=4`` trained a 3-epoch sweep's child 4 epochs, its params (which MLflow never
    changes) still 3: the sweep's resume counted it finished, and compare a replicate of its 3-epoch siblings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_RESUME", raising=False)
    run_id, client, _ = stopped
    client.set_tag(run_id, "mlflow.parentRunId", "a" * 32)
    assert one_line(run_id, "trainer.epochs=4") == (
        f"Invalid value for trainer.epochs: expected the 3 epochs of its sweep: run {run_id} is a sweep's child, "
        f"compared with its siblings by its params (continue it as it was, or the sweep: lossexp train -m … --resume "
        f"{'a' * 32}; --from-run {run_id} trains it again, longer), got 4")
    assert resume.resume_args(run_id, ["trainer.epochs=3"])[-2] == "trainer.epochs=3"  # as it was: it continues
    assert resume.os.environ.pop("LOSSEXP_RESUME") == run_id


def test_a_run_that_can_continue_trains_its_own_config_in_its_own_directory(stopped, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_RESUME", raising=False)
    run_id, _, saved = stopped
    args = resume.resume_args(run_id, ["trainer.epochs=5"])
    assert args[-2:] == ["trainer.epochs=5", f"hydra.run.dir={saved.parent}"]
    assert "--config-name" in args and resume.os.environ.pop("LOSSEXP_RESUME") == run_id
    assert "LOSSEXP_FROM_RUN" not in resume.os.environ


def test_a_notebooks_interrupted_fit_continues_with_resume_and_its_config_may_not_change(tmp_path, monkeypatch,
                                                                                         store_uri):
    """Ctrl-C in a notebook after epoch 2; the same call with ``resume=RUN_ID`` continues that run (a
    network built again, of the same variables); another loss weight is one line, nothing trained."""
    import keras
    import numpy as np

    import lossexp

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")

    def network():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(4, activation="relu", name="hidden_1")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # a Ctrl-C between epochs (checkpoint written)
            if epoch == 2:
                raise KeyboardInterrupt

    settings = {"trainer": {"epochs": 3, "verbose": 0}, "overrides": ["tracking.plots=false", "tracking.log_model=false"]}
    with pytest.raises(KeyboardInterrupt):
        lossexp.fit(network(), (x, y), loss=["hist_avg", "activity"], callbacks=[CtrlC()], **settings)
    client = MlflowClient(store_uri)
    [stopped] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    with pytest.raises(ConfigError, match=r"^Invalid value for loss.activity.weight: expected the value run \w+ "
                                          r"trained with, 0.001 \(a run continues as it was configured\), got 0.5$"):
        lossexp.fit(network(), (x, y), loss=["hist_avg", ("activity", {"weight": 0.5})], resume=stopped.info.run_id,
                    **settings)
    history, run_id = lossexp.fit(network(), (x, y), loss=["hist_avg", "activity"], resume=stopped.info.run_id,
                                  **settings)
    assert run_id == stopped.info.run_id and len(history["loss"]) == 1  # the third epoch only
    assert client.get_run(run_id).info.status == "FINISHED"
    assert [m.value for m in sorted(client.get_metric_history(run_id, "epoch"), key=lambda m: m.step)] == [1, 2, 3]


def test_a_run_whose_process_died_on_this_host_continues_at_once(stopped, monkeypatch, tmp_path):
    """kill -9: the run stays RUNNING with a fresh heartbeat; its process (tagged host:pid) is gone
    from this host, so --resume marks it FAILED and continues it — no wait for the heartbeat to go
    stale. A process that lives (this one) is still training: one line."""
    import socket
    import subprocess
    import time

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOSSEXP_RESUME", raising=False)
    run_id, client, saved = stopped
    client.update_run(run_id, status="RUNNING")
    client.set_tag(run_id, "lossexp.heartbeat", f"{time.time():.3f}")
    client.set_tag(run_id, "lossexp.process", f"{socket.gethostname()}:{resume.os.getpid()}")
    assert one_line(run_id).startswith(f"Invalid value for --resume: expected a run that stopped (KILLED or FAILED), "
                                       f"got '{run_id}, RUNNING: it is still training")
    gone = subprocess.Popen(["sleep", "60"])
    gone.kill()
    gone.wait()
    client.set_tag(run_id, "lossexp.process", f"{socket.gethostname()}:{gone.pid}")
    resume.resume_args(run_id, [])
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["lossexp.reaped"] == f"its process {socket.gethostname()}:{gone.pid} is gone"
    resume.os.environ.pop("LOSSEXP_RESUME")
