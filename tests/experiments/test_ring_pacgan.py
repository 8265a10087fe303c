"""``experiment=ring_pacgan`` / ``ring_pacgan2``: PacGAN's 2-D ring setup (Lin et al. 2018), as a
user runs it. The networks have the parameter counts of the released code's architecture, the
data and the optimiser its values; a 2-epoch run of each finishes with the ring scores logged."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from conftest import composed_config

#: the released code (2DRing_GAN&PacGAN): generator 2 → 4 × 400 (no bias; batch norm's scale and
#: shift) → 2; discriminator 2m → 3 × 200 maxout of 5 pieces → 1
GENERATOR_PARAMETERS = 2 * 400 + 3 * 400 * 400 + 4 * 2 * 400 + 400 * 2 + 2


def discriminator_parameters(pack: int) -> int:
    return (2 * pack * 1000 + 1000) + 2 * (200 * 1000 + 1000) + (200 + 1)


@pytest.mark.parametrize("experiment, pack", [("ring_pacgan", 1), ("ring_pacgan2", 2)])
def test_the_experiment_is_the_papers_setup(experiment, pack):
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    config = composed_config(f"experiment={experiment}", "data.n_samples=100")
    assert config.data.options == {"seed": 0, "n_samples": 100, "radius": 1.0, "std": 0.01}
    assert composed_config(f"experiment={experiment}").data.options["n_samples"] == 100_000
    assert config.loss == {} and config.model.options["updates"] == "simultaneous"
    assert {k: config.optimizer.options[k] for k in ("learning_rate", "beta_1", "beta_2", "epsilon")} == {
        "learning_rate": 1e-4, "beta_1": 0.8, "beta_2": 0.999, "epsilon": 1e-8}
    assert (config.trainer.batch_size, config.trainer.epochs, config.trainer.validation_split) == (100, 400, 0.0)
    trainer = for_config(config)
    model = trainer.build(trainer.prepare(load(config.data)))
    trainable = {p: sum(int(w.numpy().size) for w in model.player_network(p).trainable_weights)
                 for p in ("generator", "discriminator")}
    assert trainable == {"generator": GENERATOR_PARAMETERS, "discriminator": discriminator_parameters(pack)}
    assert model.pack == pack and model.latent_dim == 2
    optimizers = [model.player_optimizer(p) for p in ("generator", "discriminator")]
    assert optimizers[0] is not optimizers[1] and float(optimizers[0].beta_1) == 0.8  # one Adam per player
    assert composed_config(f"experiment={experiment}", "loss=hist_avg").loss["hist_avg"]["weight"] == 0.01


@pytest.mark.slow
@pytest.mark.parametrize("experiment, pack", [("ring_pacgan", 1), ("ring_pacgan2", 2)])
def test_two_epochs_of_the_experiment_finish_with_ring_scores(experiment, pack, run_cli, store_uri, all_runs):
    result = run_cli("train", f"experiment={experiment}", "trainer.epochs=2", "data.n_samples=200",
                     "trainer.log_every_n_steps=1", "tracking.log_model=false", "tracking.plots=false")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    assert run.info.status == "FINISHED" and run.info.run_name == f"{experiment}·gan·none"
    assert run.data.params["model.pack"] == str(pack) and run.data.params["model.maxout_pieces"] == "5"
    client = MlflowClient(store_uri)
    for key in ("ring/modes_covered", "ring/high_quality"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [2, 4]  # 2 steps per epoch
    assert 0 <= run.data.metrics["ring/modes_covered"] <= 8
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss/generator")] == [1, 2, 3, 4]
