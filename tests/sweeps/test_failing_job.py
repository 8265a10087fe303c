"""A sweep's job whose run fails — the project's code failing in training — is one line; the sweep's
other jobs still run, no run is left RUNNING, the parent ends FAILED, and no traceback is printed."""
from __future__ import annotations

import pytest

TERMS = '''
import lossexp
from keras import ops


@lossexp.register_component("python_if")
class PythonIf(lossexp.LossComponent):
    """A Python ``if`` on a tensor: fails once traced in the training step. Options: ``weight``."""

    def term(self, context):
        mean = ops.mean(context.y_pred)
        if mean > 0:
            return mean
        return -mean
'''


@pytest.mark.slow
def test_a_job_failing_in_training_leaves_the_other_jobs_to_run(run_cli, tmp_path, store_uri, all_runs):
    (tmp_path / "pyproject.toml").write_text('[tool.lossexp]\nmodules = ["terms"]\n')
    (tmp_path / "terms.py").write_text(TERMS)
    result = run_cli("train", "-m", "model=mlp", "data=regression", "data.n_samples=100", "loss=python_if,hist_avg",
                     "trainer.epochs=1", "tracking.plots=false", "tracking.log_model=false")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"lossexp: error: Your code failed in training at {tmp_path / 'terms.py'}:12 (in term)" in result.stderr
    status = {run.data.tags.get("loss", "parent") if run.data.tags.get("lossexp.role") != "sweep" else "parent":
              run.info.status for run in all_runs(store_uri)}
    assert status == {"parent": "FAILED", "python_if": "FAILED", "hist_avg": "FINISHED"}


@pytest.mark.slow
@pytest.mark.integration  # Optuna end to end, two studies, 10 s: the CI budget
def test_an_optuna_study_continued_with_its_parent_failed_ends_non_zero(run_cli, tmp_path, store_uri, all_runs):
    """A continued grid study with nothing left to ask (its failed trial a visited point, as Optuna's grid
    counts it) printed "sweep parent run … FAILED" and exited 0; a study stopped by its failure rate said "the
    sweep's other jobs ran" where none did."""
    sweep = ("train", "-m", "hydra/sweeper=lossexp_optuna", "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=2",
             "hydra.sweeper.study_name=nan_lr", "model=mlp", "data=regression", "data.n_samples=100",
             "optimizer=sgd", "optimizer.learning_rate=choice(1e12,0.01)", "trainer.epochs=1", "tracking.plots=false",
             "tracking.log_model=false")
    first = run_cli(*sweep)
    assert first.returncode == 1 and "the sweep's other jobs ran" not in first.stderr, first.stderr[-3000:]
    again = run_cli(*sweep)
    assert again.returncode == 1 and again.stdout.strip().endswith("FAILED"), (again.stdout[-2000:], again.stderr[-2000:])
    assert {run.info.status for run in all_runs(store_uri)} == {"FAILED", "FINISHED"}
