"""``lossexp train experiment=gan_ring_hist_avg`` as a user runs it: the run finishes, the ring
metrics are logged every epoch and each player's historical-averaging term at every logging
step (its bad inputs are rows of tests/test_bad_inputs.py)."""

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from conftest import logged_model_file
from lossexp import CONF_DIR
from lossexp.config import validate

SMALL = ["experiment=gan_ring_hist_avg", "trainer.epochs=2", "data.n_samples=400", "trainer.log_every_n_steps=2"]


def experiment(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=["experiment=gan_ring_hist_avg", *overrides]))


def test_experiment_composes_the_gan_with_hist_avg_and_loss_none_leaves_no_component_behind():
    config = experiment()
    assert config.model.name == "gan" and config.data.name == "ring"
    assert list(config.loss) == ["hist_avg"] and "player" not in config.loss["hist_avg"]  # both, by default
    assert config.trainer.epochs * config.data.options["n_samples"] // config.trainer.batch_size == 4000
    assert experiment("loss=[]").loss == {}  # the plain GAN of the benchmark, same budget


@pytest.mark.slow
def test_gan_ring_experiment_finishes_with_ring_metrics_and_per_player_terms(run_cli, store_uri, all_runs, tmp_path):
    result = run_cli("train", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    client = MlflowClient(store_uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gan_ring_hist_avg·gan·hist_avg"
    assert run.data.tags["model"] == "gan" and run.data.tags["data"] == "ring"
    assert run.data.params["loss.hist_avg.weight"] == "0.01" and run.data.tags["experiment"] == "gan_ring_hist_avg"

    def history(key):
        return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))

    steps_per_epoch = 400 // 100
    for key in ("ring/modes_covered", "ring/high_quality"):
        assert [step for step, _ in history(key)] == [steps_per_epoch, 2 * steps_per_epoch]
    # the last epoch's numbers are the saved generator's, scored on the run's fixed noise
    import keras

    import lossexp.losses.hist_avg  # noqa: F401  (registers what the saved model contains)
    import lossexp.training.gan_model  # noqa: F401
    from lossexp.data.ring import modes
    from lossexp.evaluation.ring import RingScorer, score
    from lossexp.tracking.samples import SampleScores

    params = run.data.params
    ring = SampleScores(RingScorer(modes(float(params["data.radius"])), float(params["data.std"])),
                        int(params["model.latent_dim"]), int(params["trainer.seed"]))
    gan = keras.saving.load_model(logged_model_file(store_uri, run.info.run_id))
    expected = score(keras.ops.convert_to_numpy(gan(ring.noise)), ring.scorer.modes, ring.scorer.std)
    assert history("ring/modes_covered")[-1][1] == expected.modes_covered
    assert history("ring/high_quality")[-1][1] == pytest.approx(expected.high_quality, abs=1e-9)
    for player in ("generator", "discriminator"):
        term = history(f"term/hist_avg_{player}")
        assert [step for step, _ in term] == list(range(2, 2 * steps_per_epoch + 1, 2))
        assert term[-1][1] > 0  # the weights moved away from their running mean
        final = run.data.metrics
        assert final[f"loss/{player}"] == pytest.approx(
            final[f"loss/{player}/adversarial"] + final[f"loss/hist_avg_{player}"], rel=1e-4)
        assert f"weight_drift/from_init/{player}" in final
        assert final[f"learning_rate/{player}"] == pytest.approx(float(run.data.params["optimizer.learning_rate"]))
    assert not any(key.startswith("val_") for key in run.data.metrics)
    plots = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
    assert plots == ["plots/ring.png", "plots/run.png"]
    [model] = client.search_logged_models([run.info.experiment_id])  # the GAN as an MLflow model
    assert model.source_run_id == run.info.run_id and str(model.status) == "READY"
