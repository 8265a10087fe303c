"""``experiment=mtl_toy``: CAGrad's two-objective toy as a point (model=point) trained on two loss
components by the objective regime; every shipped weighting method trains it in the compiled step,
and ``lossexp train experiment=mtl_toy weighting=cagrad`` records a run as any other."""
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from lossexp import registry
from lossexp.data import load
from lossexp.errors import ConfigError
from lossexp.precheck import compose_validated
from lossexp.training.trainer import for_config

SMALL = ["experiment=mtl_toy", "data.n_samples=40", "trainer.epochs=2", "trainer.log_every_n_steps=10"]


def build(*overrides):
    """The compiled model ``lossexp train`` would fit (with the gradient diagnostics every 10 steps)."""
    config = compose_validated([*SMALL, *overrides])
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    return trainer, data, trainer.build(data)


def test_experiment_is_the_released_toy_setup():
    config = compose_validated(["experiment=mtl_toy"])
    assert (config.model.name, config.data.name, list(config.loss)) == ("point", "steps", ["mtl_toy_l1", "mtl_toy_l2"])
    assert config.model.options["init"] == [-8.5, 7.5]
    assert config.optimizer.name == "adam" and config.optimizer.options["learning_rate"] == 0.001
    assert config.optimizer.options["epsilon"] == 1e-8
    assert config.trainer.epochs * config.data.options["n_samples"] // config.trainer.batch_size == 100_000


@pytest.mark.slow
@pytest.mark.parametrize("method", registry.shipped("weighting"))
def test_every_weighting_method_moves_the_point_downhill(method):
    trainer, data, model = build(f"weighting={method}", "model.init=[9.0,9.0]")
    theta = model.network.get_layer("theta").theta
    assert model.tasks() == ["mtl_toy_l1", "mtl_toy_l2"]  # no task loss: the two objectives are the parts
    start = theta.numpy().copy()
    history = model.fit(**trainer.fit_arguments(data), epochs=2, verbose=0,
                        callbacks=trainer.callbacks(model, data)).history  # as lossexp train fits it
    assert np.all(np.isfinite(theta.numpy())) and not np.allclose(theta.numpy(), start)
    assert history["loss"][-1] < history["loss"][0]
    # 80 Adam steps of lr 0.001 move each coordinate by at most about 0.08
    assert np.abs(theta.numpy() - start).max() <= 80 * 0.001 * 1.05
    step, statistics = model.gradient_diagnostics()  # the diagnostics were sampled during training
    assert step > 0 and statistics and all(np.isfinite(v) for v in statistics.values())


def test_the_objective_regime_needs_components_and_one_device():
    with pytest.raises(ConfigError, match="loss components alone"):
        build("loss=[]")
    with pytest.raises(ConfigError, match=r"trainer.distribute: .* null for model=point"):
        build("trainer.distribute=mirrored")


@pytest.mark.slow
def test_cli_run_records_both_objectives_and_the_method_weights(run_cli, store_uri, all_runs):
    result = run_cli("train", *SMALL, "weighting=cagrad", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(store_uri)
    assert run.info.status == "FINISHED"
    client = MlflowClient(store_uri)
    for key in ("loss/mtl_toy_l1", "loss/mtl_toy_l2", "weight/cagrad/mtl_toy_l1", "weight/cagrad/mtl_toy_l2"):
        history = client.get_metric_history(run.info.run_id, key)
        assert history and all(np.isfinite(m.value) for m in history), key
    assert "loss/task" not in run.data.metrics
