"""Every shipped weighting method trains lossexp's default experiment (the CNN on the digits with
``hist_avg + activity``) end to end in the compiled step: finite losses, the network's weights move,
the weights the method set are logged per part and keep their method's invariant; and a run of
``lossexp train weighting=…`` records them in MLflow beside the gradient diagnostics."""
from __future__ import annotations

import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from conftest import built, composed_config
from lossexp import registry

METHODS = registry.shipped("weighting")
TASKS = ["task", "hist_avg", "activity"]
#: what each method's weights satisfy at every step
INVARIANTS = {
    "equal": lambda w: np.allclose(w, 1.0),
    "dwa": lambda w: np.isclose(w.sum(), 3.0, rtol=1e-5) and (w > 0).all(),
    "gradnorm": lambda w: np.isclose(w.sum(), 3.0, rtol=1e-5) and (w > 0).all(),
    "uncertainty": lambda w: (w > 0).all(),
    "pcgrad": lambda w: (w >= 1.0 - 1e-6).all(),  # 1, plus what projections add (−gᵢ·gⱼ/‖gⱼ‖² > 0)
    "mgda": lambda w: np.isclose(w.sum(), 1.0, atol=1e-5) and (w >= 0).all(),
    "cagrad": lambda w: (w >= 1 / 3 - 1e-6).all(),
    "imtl": lambda w: np.isclose(w.sum(), 1.0, atol=1e-4),
}


def test_every_shipped_method_has_an_invariant():
    assert sorted(INVARIANTS) == METHODS


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_the_default_experiment(method, capsys):
    from lossexp.training.balanced_update import EpochEnd

    model, data = built(composed_config(f"weighting={method}", "data.n_samples=480", "tracking.enabled=true"))
    assert model.tasks() == TASKS and model.weighting.name == method
    train, validation = data.split(0.2)
    before = [w.numpy().copy() for w in model.network.trainable_weights]
    history = model.fit(*train.arrays, batch_size=32, epochs=3, validation_data=validation.arrays, verbose=0,
                        callbacks=[EpochEnd()]).history
    assert all(np.isfinite(history[key]).all() for key in ("loss", "loss/task", "val_loss"))
    told = [re.sub(r"task loss \S+:", "task loss W:", line) for line in capsys.readouterr().err.splitlines()
            if line.startswith("lossexp: warning:")]
    # MGDA's min-norm point is hist_avg's tiny gradient here, and IMTL's equal projections lean on it alike:
    # said once in 3 epochs; no other method warns
    assert told == {"mgda": [
        "lossexp: warning: weighting=mgda weighs the task loss W: the min-norm point of the parts' gradients is "
        "hist_avg's, the smallest (MGDA favours the smallest gradient), so the network follows hist_avg and not "
        "its task; use weighting.normalization=l2 (each gradient normalised: MGDA then balances directions, not "
        "sizes), or weighting=equal"], "imtl": [
        "lossexp: warning: weighting=imtl weighs the task loss W: for equal projections on every part's unit "
        "gradient the update leans on hist_avg's, far smaller than the task's, so the network follows hist_avg and "
        "not its task; balance the task losses alone (a component's weight of its own) or use weighting=equal"]}.get(
        method, []), told
    assert all((a != b).any() for a, b in zip(before, (w.numpy() for w in model.network.trainable_weights)))
    tracked = {key: float(value) for key, value in model.tracked_weights().items()}
    if method == "equal":
        assert tracked == {}
        return
    found = np.array([tracked[f"weight/{method}/{task}"] for task in TASKS])
    assert np.isfinite(found).all() and INVARIANTS[method](found), found
    model.watch_gradients()
    statistics = model.measure_gradients(*(a[:32] for a in train.arrays))
    shares = [statistics[f"weight_grad/{task}/share"] for task in TASKS]
    assert sum(shares) == pytest.approx(1.0, abs=1e-4)  # shares of Σ αᵢgᵢ under the method's last weights


@pytest.mark.slow
def test_a_run_records_the_methods_weights(run_cli, store_uri):
    result = run_cli("train", "weighting=pcgrad", "data.n_samples=300", "trainer.epochs=2", "tracking.log_model=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "  weights  hist_avg 0.01 · activity 0.001 · pcgrad: task " in result.stdout
    client = MlflowClient(store_uri)
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    assert run.data.params["weighting.name"] == "pcgrad" and run.data.params["weighting.seed"] == "0"
    assert run.info.run_name == "cnn·hist_avg+activity·pcgrad"  # told apart from the same run of another method
    for task in TASKS:
        points = client.get_metric_history(run.info.run_id, f"weight/pcgrad/{task}")
        # 8 steps an epoch; none at step 0, before any step weighed (it logged the variable's initial 1s)
        assert [p.step for p in points] == [8, 16] and all(p.value >= 1.0 - 1e-6 for p in points)
    assert "weight_grad/activity/cos_task" in run.data.metrics
