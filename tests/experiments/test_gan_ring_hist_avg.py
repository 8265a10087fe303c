"""``lossexp train experiment=gan_ring_hist_avg`` as a user runs it: the run finishes, the ring
metrics are logged every epoch and each player's historical-averaging term at every logging
step; mistakes specific to the GAN are one line and exit 2 with no run."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from lossexp import CONF_DIR
from lossexp.config import GANConfig, RingConfig, validate

SMALL = ["experiment=gan_ring_hist_avg", "trainer.epochs=2", "data.n_samples=400", "trainer.log_every_n_steps=2"]


def experiment(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=["experiment=gan_ring_hist_avg", *overrides]))


def test_experiment_composes_the_gan_with_hist_avg_and_loss_none_leaves_no_component_behind():
    config = experiment()
    assert isinstance(config.model, GANConfig) and isinstance(config.data, RingConfig)
    assert list(config.loss) == ["hist_avg"] and "player" not in config.loss["hist_avg"]  # both, by default
    assert config.trainer.epochs * config.data.n_samples // config.trainer.batch_size == 4000
    assert experiment("loss=[]").loss == {}  # the plain GAN of the benchmark, same budget


@pytest.mark.slow
def test_gan_ring_experiment_finishes_with_ring_metrics_and_per_player_terms(run_cli, store_uri, all_runs):
    result = run_cli("train", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    client = MlflowClient(store_uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gan·hist_avg" and run.data.tags["model"] == "gan" and run.data.tags["data"] == "ring"
    assert run.data.params["loss.hist_avg.weight"] == "0.01" and run.data.tags["experiment"] == "gan_ring_hist_avg"

    def history(key):
        return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))

    steps_per_epoch = 400 // 100
    for key in ("ring/modes_covered", "ring/high_quality"):
        assert [step for step, _ in history(key)] == [steps_per_epoch, 2 * steps_per_epoch]
    assert all(0 <= v <= 8 and v == int(v) for _, v in history("ring/modes_covered"))
    assert all(0.0 <= v <= 100.0 for _, v in history("ring/high_quality"))
    for player in ("generator", "discriminator"):
        term = history(f"term/hist_avg_{player}")
        assert [step for step, _ in term] == list(range(2, 2 * steps_per_epoch + 1, 2))
        assert term[-1][1] > 0  # the weights moved away from their running mean
        final = run.data.metrics
        assert final[f"loss/{player}"] == pytest.approx(
            final[f"loss/{player}/adversarial"] + final[f"loss/hist_avg_{player}"], rel=1e-4)
        assert f"drift/{player}/from_init" in final
    assert not any(key.startswith("val_") for key in run.data.metrics)
    plots = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
    assert plots == ["plots/ring.png", "plots/run.png"]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/model.keras"]


BAD_GAN_INPUTS = [
    (["model=gan"], "Invalid value for data: expected data=ring with model=gan, got 'digits'"),
    (["experiment=gan_ring_hist_avg", "loss=activity"],
     "Invalid loss component for model=gan: loss.activity (activity) inserts layers into the network"),
    (["experiment=gan_ring_hist_avg", "+loss.hist_avg.player=critic"],
     "Invalid value for loss.hist_avg.player: expected one of generator, discriminator, both, got 'critic'"),
    (["model=mlp", "data=regression", "loss=hist_avg", "+loss.hist_avg.player=both"],
     "Invalid key loss.hist_avg.player: only model=gan has players"),
    (["experiment=gan_ring_hist_avv"], "Unknown experiment 'gan_ring_hist_avv': valid choices are"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", BAD_GAN_INPUTS, ids=[" ".join(a) for a, _ in BAD_GAN_INPUTS])
def test_gan_mistakes_are_one_line_exit_2_and_no_run(run_cli, store_uri, all_runs, args, message):
    result = run_cli("train", "trainer.epochs=1", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("lossexp: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not Path(store_uri[len("sqlite:///"):]).exists() or all_runs(store_uri) == []
