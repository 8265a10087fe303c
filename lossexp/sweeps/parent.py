"""The sweep's parent run: created before any job, closed with a summary of its children.

The parent ends FINISHED when every child did and the sweep itself completed, FAILED otherwise
(a failed or missing child, a job that raised). Its metrics summarise the sweep:
``sweep/best_objective``, ``sweep/children``, ``sweep/finished``, ``sweep/failed``; the best child is
named by the tags ``sweep.best_run_id`` and ``sweep.best_run_name``.
"""
from __future__ import annotations

import time
from typing import Dict, List

from lossexp.sweeps.job import PARENT_TAG
from lossexp.sweeps.objective import best

OBJECTIVE_METRIC = "objective"


def create_parent(uri: str, experiment: str, name: str, tags: Dict[str, str]) -> str:
    """Create the store (schema migration happens here, once), the experiment and the parent run."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    experiment_id = store.ensure_experiment(client, experiment, uri)
    return store.start_run(client, experiment_id, name, tags)


def children(client, parent_run_id: str) -> List:
    """Every run whose ``mlflow.parentRunId`` is ``parent_run_id``, oldest first."""
    parent = client.get_run(parent_run_id)
    runs, token = [], None
    while True:
        page = client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  max_results=1000, order_by=["attributes.start_time ASC"], page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def finish_parent(uri: str, parent_run_id: str, direction: str, sweep_completed: bool) -> str:
    """Summarise the children into the parent and end it; returns the parent's status."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    runs = children(client, parent_run_id)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    scores = {r.info.run_id: r.data.metrics[OBJECTIVE_METRIC] for r in finished if OBJECTIVE_METRIC in r.data.metrics}
    points = [("sweep/children", len(runs), 0), ("sweep/finished", len(finished), 0),
              ("sweep/failed", len(runs) - len(finished), 0)]
    winner = best(scores, direction)
    if winner is not None:
        points.append(("sweep/best_objective", scores[winner], 0))
        names = {r.info.run_id: r.info.run_name for r in runs}
        client.set_tag(parent_run_id, "sweep.best_run_id", winner)
        client.set_tag(parent_run_id, "sweep.best_run_name", names[winner])
    store.log_metrics(client, parent_run_id, points)
    ok = sweep_completed and bool(runs) and len(finished) == len(runs)
    status = "FINISHED" if ok else "FAILED"
    client.set_tag(parent_run_id, "sweep.ended", time.strftime("%Y-%m-%dT%H:%M:%S"))
    store.end_run(client, parent_run_id, status)
    return status
