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
