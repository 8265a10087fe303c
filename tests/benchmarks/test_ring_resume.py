"""The ring benchmark resumes a run where it stopped: its checkpoint holds every variable a training
step changes (both players with their batch-norm statistics, the components' state, the noise seed,
both optimizers), and restoring it brings back those values and the run's curve up to it."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from benchmarks import ring

RUN = ring.Run("gan_hist_avg", seed=0, weight=0.01, epochs=ring.PAPER_EPOCHS)
pytestmark = pytest.mark.xdist_group("ring_resume")  # one worker builds and traces the module's model once


@pytest.fixture(scope="module")
def model_and_batch():
    """The model of ``RUN`` as :func:`benchmarks.ring.train` builds it, and one batch of its data."""
    import keras

    from benchmarks.common import lossexp_config
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    config = lossexp_config(*RUN.overrides())
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.trainer.seed)
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    batch = trainer.fit_arguments(data)["x"][: config.trainer.batch_size]
    return trainer.build(data), batch


def values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


def every_variable(model):
    """The model's variables and both optimizers', each once."""
    optimizers = [model.player_optimizer(p).variables for p in ("generator", "discriminator")]
    found = [*model.variables, *(v for o in optimizers for v in o)]
    return list({id(v): v for v in found}.values())


def test_every_variable_a_step_changes_is_in_the_checkpoint(model_and_batch):
    model, batch = model_and_batch
    variables = every_variable(model)
    before = values(variables)
    model.train_on_batch(batch)
    changed = {id(v) for v, old in zip(variables, before) if not np.array_equal(keras.ops.convert_to_numpy(v), old)}
    metrics = {id(v) for metric in model.metrics for v in metric.variables}
    kept = {id(v) for v in ring.state(model)}
    assert changed - metrics, "a training step changed nothing"
    assert changed - metrics <= kept
    assert any(c.variables for c in model.components)  # hist_avg's reference is among them


def test_restore_brings_back_the_saved_state_and_the_curve_up_to_it(model_and_batch, tmp_path):
    model, batch = model_and_batch
    checkpoint, path, samples = tmp_path / "run.npz", tmp_path / "run.json", tmp_path / "samples.npz"
    model.train_on_batch(batch)
    ring.save(model, checkpoint, epochs_done=10)
    saved = values(ring.state(model))
    epochs = list(range(1, 13))  # the run went on to epoch 12 before it stopped
    path.write_text(json.dumps({"epochs": epochs, "modes": epochs, "hq": epochs, "per_mode": epochs,
                                "losses": epochs, "seconds": epochs}))
    np.savez(samples, **{f"epoch_{e}": np.full((2, 2), e, "float32") for e in (10, 12)})
    model.train_on_batch(batch)
    assert not all(np.array_equal(a, b) for a, b in zip(values(ring.state(model)), saved))

    record, kept = {}, {}
    assert ring.restore(model, checkpoint, path, samples, record, kept) == 10
    for variable, value in zip(ring.state(model), saved):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)
    assert record["epochs"] == list(range(1, 11)) and record["resumed_at"] == [10]
    assert list(kept) == ["epoch_10"]


def test_without_a_checkpoint_a_run_starts_from_its_first_epoch(model_and_batch, tmp_path):
    model, _ = model_and_batch
    assert ring.restore(model, tmp_path / "none.npz", tmp_path / "none.json", tmp_path / "none_samples.npz",
                        {}, {}) == 0


def test_a_checkpoint_with_float32_references_restores_them_widened(model_and_batch, tmp_path):
    """A run checkpointed before hist_avg's references became float64 (6 December) resumes: its float32
    references load into the float64 ones."""
    model, batch = model_and_batch
    checkpoint, path = tmp_path / "run.npz", tmp_path / "run.json"
    model.train_on_batch(batch)
    ring.save(model, checkpoint, epochs_done=3)
    with np.load(checkpoint) as saved:  # as the older lossexp wrote it
        arrays = {name: saved[name].astype("float32") if saved[name].dtype == np.float64 else saved[name]
                  for name in saved.files}
    np.savez(checkpoint, **arrays)
    references = [r for c in model.components for r in getattr(c, "references", [])]
    written = [np.float32(keras.ops.convert_to_numpy(r)) for r in references]
    assert references and all(r.dtype == "float64" for r in references)
    path.write_text(json.dumps({key: [1, 2, 3] for key in ("epochs", "modes", "hq", "per_mode", "losses", "seconds")}))
    model.train_on_batch(batch)
    assert ring.restore(model, checkpoint, path, tmp_path / "samples.npz", {}, {}) == 3
    for reference, value in zip(references, written):
        assert reference.dtype == "float64"
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(reference), value)
