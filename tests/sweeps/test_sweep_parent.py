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
