"""The end of a sweep's parent run: an interrupted sweep leaves none of its children RUNNING."""
from __future__ import annotations

from lossexp.sweeps.job import PARENT_TAG
from lossexp.sweeps.parent import finish_parent


def test_an_interrupted_sweep_ends_its_children_still_running_killed(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment).info.run_id
    done, running = (client.create_run(experiment, tags={PARENT_TAG: parent}).info.run_id for _ in range(2))
    client.set_terminated(done, "FINISHED")  # a job that ended before the Ctrl-C; the other's worker was ended
    assert finish_parent(uri, parent, ["minimize"], sweep_completed=False, interrupted=True) == "KILLED"
    assert client.get_run(done).info.status == "FINISHED"
    killed = client.get_run(running)
    assert killed.info.status == "KILLED" and killed.data.tags["error"] == "the sweep was interrupted before this job ended"
    summary = client.get_run(parent).data.metrics  # a job the interruption stopped did not fail
    assert summary["sweep/killed"] == 1 and summary["sweep/failed"] == 0 and summary["sweep/finished"] == 1


def test_a_child_whose_objective_is_nan_is_never_the_best(tmp_path):
    from mlflow.tracking import MlflowClient

    from lossexp.tracking import store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client: MlflowClient = store.open_client(uri)
    experiment = client.create_experiment("sweep")
    parent = client.create_run(experiment).info.run_id
    children = {}
    for job, value in enumerate([float("nan"), 2.0, 1.5]):  # the NaN child is the oldest: first in the summary
        run_id = client.create_run(experiment, start_time=1_000 + job, tags={PARENT_TAG: parent}).info.run_id
        client.log_metric(run_id, "objective", value)
        client.set_terminated(run_id, "FINISHED")
        children[value] = run_id
    assert finish_parent(uri, parent, ["minimize"], sweep_completed=True) == "FINISHED"
    summary = client.get_run(parent).data
    assert summary.tags["sweep.best_run_id"] == children[1.5] and summary.metrics["sweep/best_objective"] == 1.5


def test_a_trial_killed_before_its_job_named_its_run_is_found_among_the_studys_children(tmp_path):
    from mlflow.tracking import MlflowClient

    from lossexp.sweeps.job import TRIAL_TAG
    from lossexp.sweeps.parent import trial_child

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lossexp")
    study = {"optuna.study": "s", "optuna.storage": "sqlite:///optuna.db"}
    other = client.create_run(experiment, tags={"lossexp.role": "sweep", **study, "optuna.study": "t"}).info.run_id
    parent = client.create_run(experiment, tags={"lossexp.role": "sweep", **study}).info.run_id
    client.create_run(experiment, tags={PARENT_TAG: other, TRIAL_TAG: "1"})  # another study's trial #1
    first, killed = (client.create_run(experiment, tags={PARENT_TAG: parent, TRIAL_TAG: str(n)}).info.run_id
                     for n in (0, 1))
    assert trial_child(uri, "lossexp", study, 1) == killed and trial_child(uri, "lossexp", study, 0) == first
    assert trial_child(uri, "lossexp", study, 2) is None and trial_child(uri, "other", study, 1) is None
