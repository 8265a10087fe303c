"""Params are what a reader compares; where and how a run is recorded stays in config.yaml."""
from lossexp.tracking.params import compared_params


def test_tracking_and_console_keys_are_not_params():
    flat = {"model.name": "cnn", "loss.hist_avg.weight": 0.01, "optimizer.learning_rate": 0.001,
            "trainer.epochs": 5, "trainer.verbose": 2, "trainer.log_every_n_steps": 10, "data.seed": 0,
            "tracking.uri": "sqlite:///x", "tracking.heartbeat_s": 30, "objective.metric": "val_loss",
            "task.loss": "huber"}
    assert compared_params(flat) == {"model.name": "cnn", "loss.hist_avg.weight": 0.01,
                                     "optimizer.learning_rate": 0.001, "trainer.epochs": 5, "data.seed": 0,
                                     "objective.metric": "val_loss", "task.loss": "huber"}


def test_a_param_a_resume_changed_is_a_tag_that_readers_take_over_the_param_mlflow_keeps(tmp_path):
    """``--resume RUN trainer.epochs=8`` of a 60-epoch run trained 8 epochs, but its param stayed 60 (MLflow
    keeps a param's first value): ``lossexp runs`` showed ``epochs=60``, and ``compare`` grouped it there
    (probe J). The changed value is a ``lossexp.param.`` tag, and the reports read a run's params with it."""
    from mlflow.tracking import MlflowClient

    from lossexp.reports.query import param_value
    from lossexp.reports.selection import varying_keys
    from lossexp.tracking.params import changed_params, run_params

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("resumed")
    runs = []
    for epochs in (60, 8):
        run = client.create_run(experiment)
        client.log_param(run.info.run_id, "trainer.epochs", 60)
        client.log_param(run.info.run_id, "model.name", "mlp")
        changed = changed_params(client.get_run(run.info.run_id).data.params,
                                 {"trainer.epochs": epochs, "model.name": "mlp", "trainer.seed": 0})
        assert changed == ({} if epochs == 60 else {"lossexp.param.trainer.epochs": "8"})
        for key, value in changed.items():
            client.set_tag(run.info.run_id, key, value)
        runs.append(client.get_run(run.info.run_id))
    assert [run_params(r)["trainer.epochs"] for r in runs] == ["60", "8"]
    assert [param_value(r, "trainer.epochs") for r in runs] == ["60", "8"]
    assert varying_keys(runs) == ["trainer.epochs"]
