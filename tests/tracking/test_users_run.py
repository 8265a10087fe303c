"""``lossexp.fit`` inside the user's own ``mlflow.start_run()``, with ``mlflow.autolog()`` on: the fit's run
is the child of the user's run, which stays theirs (active, RUNNING); autologging records nothing more."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import lossexp
from lossexp.errors import ConfigError


def _network():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,), name="inputs")
    return keras.Model(inputs, keras.layers.Dense(1, name="output")(inputs), name="in_my_run")


def _data():
    x = np.random.default_rng(0).random((64, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


QUICK = {"trainer": {"epochs": 1, "verbose": 0, "batch_size": 16},
         "tracking": {"log_model": False, "plots": False, "drift": False, "gradients": False}}


@pytest.mark.slow
def test_a_fit_inside_the_users_run_is_its_child_and_leaves_it_running_without_autologging_twice(tmp_path,
                                                                                                 monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mine.db'}"  # the user's store, not lossexp's default outputs/mlflow.db
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("my_study")
    mlflow.keras.autolog(log_models=False, silent=True)
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name="my_sweep") as mine:
            _, run_id = lossexp.fit(_network(), _data(), loss="hist_avg", **QUICK)
            assert mlflow.active_run() is not None and mlflow.active_run().info.run_id == mine.info.run_id
            mlflow.log_metric("best", 1.0)
    finally:
        mlflow.keras.autolog(disable=True)
        while mlflow.active_run() is not None:
            mlflow.end_run()
    child = client.get_run(run_id)
    assert child.info.status == "FINISHED" and child.info.experiment_id == experiment_id
    assert child.data.tags["mlflow.parentRunId"] == mine.info.run_id
    runs = client.search_runs([experiment_id])
    assert sorted(run.info.run_id for run in runs) == sorted([mine.info.run_id, run_id])  # no autologged run
    users = client.get_run(mine.info.run_id)
    assert users.info.status == "FINISHED" and set(users.data.metrics) == {"best"}  # ended by its block, not the fit
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_tracking_uri_of_another_store_inside_the_users_run_is_one_line_and_records_nothing(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    try:
        with mlflow.start_run() as mine:
            with pytest.raises(ConfigError, match=r"^Invalid value for tracking.uri: expected, inside your active "
                                                  rf"MLflow run {mine.info.run_id} .* got '{other}'"):
                lossexp.fit(_network(), _data(), tracking={"uri": other})
            assert mlflow.active_run().info.run_id == mine.info.run_id
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
    assert not (tmp_path / "other.db").exists()


def test_a_fit_records_into_the_experiment_the_notebook_set_and_a_given_one_wins(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)  # mlflow.set_experiment's $MLFLOW_EXPERIMENT_ID: undone by conftest's fixture
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("my_study")
    client = MlflowClient(uri)

    def experiment_of(**sections):
        _, run_id = lossexp.fit(_network(), _data(), loss=["hist_avg"], **{**QUICK, **sections})
        return client.get_experiment(client.get_run(run_id).info.experiment_id).name

    assert experiment_of() == "my_study"
    assert experiment_of(tracking={**QUICK["tracking"], "experiment": "given"}) == "given"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "4242")  # chosen in another store
    with pytest.raises(ConfigError, match=r"^Invalid value for MLFLOW_EXPERIMENT_ID \(mlflow.set_experiment's\): "
                                          r"expected an active experiment of the store the fit records in, "
                                          rf"{uri}, got '4242'; choose one with tracking="):
        experiment_of()


def test_mlflow_experiment_name_chooses_the_experiment_unless_it_is_given(monkeypatch):
    from conftest import composed_config

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "cluster_study")
    assert composed_config().tracking.experiment == "cluster_study"
    assert composed_config("tracking.experiment=mine").tracking.experiment == "mine"
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    assert composed_config().tracking.experiment == "lossexp"
