"""The sweep's parent run: created before any job (or reopened, when a study resumes), closed
with a summary of its children.

The parent ends FINISHED when every child did and the sweep itself completed, KILLED when the
launching process was stopped by a signal, FAILED otherwise (a failed or missing child, a job
that raised). Children of trials that a killed sweep abandoned and a later run re-asked (tag
``lossexp.retried``) do not count against it. Its metrics summarise the sweep:
``sweep/children``, ``sweep/finished``, ``sweep/failed``, ``sweep/killed`` (stopped by a signal, the
sweep's interruption included: not failures of the job), ``sweep/pruned`` (finished early by an
Optuna pruner: tag ``optuna.state=PRUNED``), and for one objective ``sweep/best_objective`` with
the tags ``sweep.best_run_id`` and ``sweep.best_run_name``; for several objectives, the
Pareto-optimal children: tag ``sweep.pareto_run_ids`` (comma-separated), metric ``sweep/pareto``,
and on each scored child the tag ``sweep.pareto`` (``true``/``false``). Pruned children are never best.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

from lossexp.sweeps.job import PARENT_TAG, TRIAL_TAG
from lossexp.sweeps.objective import best, objective_keys
from lossexp.sweeps.pareto import front

#: the tag of a child that ended early because Optuna pruned its trial
STATE_TAG = "optuna.state"
RETRIED_TAG = "lossexp.retried"
#: the tags that identify an Optuna study's parent run (a resumed study reopens it)
STUDY_KEYS = ("optuna.study", "optuna.storage")
#: runs read per search of a sweep's children (MLflow's SQL store serves up to 50,000)
CHILDREN_PAGE = 1000


def create_parent(uri: str, experiment: str, name: str, tags: Dict[str, str]) -> str:
    """Create the store (schema migration happens here, once), the experiment and the parent run."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    experiment_id = store.ensure_experiment(client, experiment, uri)
    return store.start_run(client, experiment_id, name, tags)


def find_study_parent(uri: str, experiment: str, study_tags: Dict[str, str]) -> Optional[object]:
    """The newest sweep parent of the study named by ``study_tags`` (``optuna.study``, ``optuna.storage``)."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    found = store.retrying(lambda: client.get_experiment_by_name(experiment))
    if found is None:
        return None
    where = " and ".join(f"tags.`{key}` = '{value}'" for key, value in study_tags.items())
    query = f"tags.`lossexp.role` = 'sweep' and {where}"
    runs = store.retrying(lambda: client.search_runs([found.experiment_id], query, max_results=1,
                                                     order_by=["attributes.start_time DESC"]))
    return runs[0] if runs else None


def trial_child(uri: str, experiment: str, study_tags: Dict[str, str], trial_number: int) -> Optional[str]:
    """The run of trial ``trial_number`` among the children of the study's parent (None if it has none).

    A trial's job writes its run into the trial only once its data and network are built: a job
    killed before that left a RUNNING trial with no run, and its child — not marked retried when the
    study resumed — failed the resumed sweep's parent (seen under a load of 14 on 2 cores)."""
    from lossexp.tracking import store

    parent = find_study_parent(uri, experiment, study_tags)
    if parent is None:
        return None
    runs = tagged_children(store.open_client(uri), parent, TRIAL_TAG, str(trial_number), max_results=1)
    return runs[0].info.run_id if runs else None


def tagged_children(client: Any, parent: Any, tag: str, value: str, **search: Any) -> List[Any]:
    """The child runs of the sweep ``parent`` whose ``tag`` is ``value``, in one filtered search
    (``search``: ``search_runs``' own options, e.g. ``order_by``, ``max_results``)."""
    from lossexp.tracking import store

    query = f"tags.`{PARENT_TAG}` = '{parent.info.run_id}' and tags.`{tag}` = '{value}'"
    return store.retrying(lambda: client.search_runs([parent.info.experiment_id], query, **search))


def reopen_parent(uri: str, parent_run_id: str, tags: Dict[str, str]) -> None:
    """Set a resumed study's parent RUNNING again, with this run's tags and a resume count."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    previous = store.retrying(lambda: client.get_run(parent_run_id))
    resumes = int(previous.data.tags.get("sweep.resumes", "0")) + 1
    for key, value in {**tags, "sweep.resumes": str(resumes)}.items():
        store.set_tag(client, parent_run_id, key, value)
    store.retrying(lambda: client.update_run(parent_run_id, status="RUNNING"))


def children(client, parent_run_id: str) -> List:
    """Every run whose ``mlflow.parentRunId`` is ``parent_run_id``, oldest first, read in pages of
    :data:`CHILDREN_PAGE` (one search stops at its ``max_results``: a sweep of 1,001 jobs listed 1,000)."""
    parent = client.get_run(parent_run_id)
    runs, token = [], None
    while True:
        page = client.search_runs([parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  max_results=CHILDREN_PAGE, order_by=["attributes.start_time ASC"],
                                  page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def finish_parent(uri: str, parent_run_id: str, directions: Sequence[str], sweep_completed: bool,
                  metrics: Sequence[str] = (), interrupted: bool = False) -> str:
    """Summarise the children into the parent and end it; returns the parent's status. An interrupted
    sweep ends its children still RUNNING as KILLED.

    ``metrics`` are the objective metrics (several: a Pareto front instead of a best child)."""
    from lossexp.tracking import store

    client = store.open_client(uri)
    runs = [r for r in children(client, parent_run_id) if r.data.tags.get(RETRIED_TAG) != "true"]
    if interrupted:  # a launcher's workers (joblib's loky) end with the sweep, before their runs can end
        for run in runs:
            if run.info.status == "RUNNING":
                store.set_tag(client, run.info.run_id, "error", "the sweep was interrupted before this job ended")
                store.end_run(client, run.info.run_id, "KILLED")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    pruned = [r for r in finished if r.data.tags.get(STATE_TAG) == "PRUNED"]
    scored = [r for r in finished if r.data.tags.get(STATE_TAG) != "PRUNED"]
    killed = [r for r in runs if r.info.status == "KILLED" or (interrupted and r.info.status == "RUNNING")]
    points = [("sweep/children", len(runs), 0), ("sweep/finished", len(finished), 0),
              ("sweep/failed", len(runs) - len(finished) - len(killed), 0), ("sweep/killed", len(killed), 0),
              ("sweep/pruned", len(pruned), 0)]
    names = {r.info.run_id: r.info.run_name for r in runs}
    keys = objective_keys(metrics)
    if len(keys) == 1:
        scores = {r.info.run_id: r.data.metrics[keys[0]] for r in scored if keys[0] in r.data.metrics}
        winner = best(scores, directions[0] if directions else "minimize")
        if winner is not None:
            points.append(("sweep/best_objective", scores[winner], 0))
            store.set_tag(client, parent_run_id, "sweep.best_run_id", winner)
            store.set_tag(client, parent_run_id, "sweep.best_run_name", names[winner])
    else:
        values = {r.info.run_id: [r.data.metrics[k] for k in keys] for r in scored
                  if all(k in r.data.metrics for k in keys)}
        optimal = front(values, directions)
        points.append(("sweep/pareto", len(optimal), 0))
        store.set_tag(client, parent_run_id, "sweep.pareto_run_ids", ",".join(optimal))
        for run_id in values:  # a resumed study's front moves: every scored child says where it stands
            store.set_tag(client, run_id, "sweep.pareto", str(run_id in optimal).lower())
    store.log_metrics(client, parent_run_id, points)
    ok = sweep_completed and bool(runs) and len(finished) == len(runs)
    status = "KILLED" if interrupted else "FINISHED" if ok else "FAILED"
    store.set_tag(client, parent_run_id, "sweep.ended", time.strftime("%Y-%m-%dT%H:%M:%S"))
    store.end_run(client, parent_run_id, status)
    return status
