"""A sweep's pre-check of its objectives reads what the first job's regime records in one step: a GAN's keys
are per player (``loss/generator``), and ``loss`` is not among them; a 2-trial Optuna sweep of a tiny GAN on a
ring metric runs."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from conftest import composed_config
from lossexp.errors import ConfigError
from lossexp.sweeps.checks import check_objectives_recorded

GAN = ("model=gan", "data=ring", "data.n_samples=64", "model.latent_dim=4", "model.generator_units=[8]",
       "model.discriminator_units=[8]", "loss=hist_avg", "trainer.batch_size=32")


def test_a_gan_objective_of_loss_is_one_line_listing_what_its_run_records():
    with pytest.raises(ConfigError) as error:
        check_objectives_recorded(composed_config(*GAN, "objective.metric=loss"))
    message = str(error.value)
    assert message.startswith("Invalid value for objective.metric: 'loss' is not recorded by this run; valid choices "
                              "are loss/discriminator, loss/discriminator/adversarial, loss/generator, ")
    assert "ring/modes_covered" in message and "\n" not in message


@pytest.mark.parametrize("metric", ["loss/generator", "val_loss"])  # val_loss: the ring's modes missed stand in
def test_a_gan_objective_it_records_or_falls_back_to_passes(metric):
    check_objectives_recorded(composed_config(*GAN, f"objective.metric={metric}"))


def test_checking_the_objectives_of_many_jobs_in_one_process_prints_no_retracing_warning(caplog, monkeypatch):
    """Each distinct job is trained one step: the sixth printed TensorFlow's "triggered tf.function retracing"
    (twice) before a sweep's parent run (``objective.metric=val_loss/task`` over three compositions; probe J),
    although nothing retraced within a run. The check drops it as a run does (the filter's effect on real
    fits: tests/test_quiet.py)."""
    import logging

    tensorflow_logger = logging.getLogger("tensorflow")
    monkeypatch.setattr(tensorflow_logger, "filters", [])  # as in a process that has trained nothing yet
    caplog.set_level(logging.WARNING, logger="tensorflow")
    check_objectives_recorded(composed_config("model=mlp", "data=regression", "data.n_samples=64", "loss=hist_avg",
                                              "objective.metric=val_loss/task"))
    tensorflow_logger.warning("6 out of the last 6 calls to <function TensorFlowTrainer._make_function.<locals>."
                              "multi_step_on_iterator at 0x7f> triggered tf.function retracing. Tracing is expensive")
    assert "retracing" not in caplog.text


@pytest.mark.slow  # a 2-trial sweep through the CLI: 10–25 s
@pytest.mark.integration  # Optuna end to end: the CI budget
def test_a_two_trial_optuna_sweep_of_a_gan_on_a_ring_metric_runs(run_cli, store_uri):
    result = run_cli("train", "-m", *GAN, "trainer.epochs=1", "tracking.plots=false", "tracking.log_model=false",
                     "hydra/sweeper=lossexp_optuna", "hydra.sweeper.n_trials=2",
                     "optimizer.learning_rate=tag(log, interval(1e-4, 1e-2))", "objective.metric=ring/modes_covered",
                     "objective.direction=maximize")
    assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(store_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(r.data.metrics["objective"] == r.data.metrics["ring/modes_covered"] for r in children)
