"""A short run id is found by asking the store for the matching runs alone, not by reading every run."""
from __future__ import annotations

from typing import List, Set

import pytest
from mlflow.entities import Metric, Param
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lossexp.reports import query
from lossexp.tracking import from_run, store
from lossexp.tracking.run_ids import ids_starting_with


@pytest.fixture(scope="module")
def twenty_runs(tmp_path_factory):
    """(client, uri, run ids): 20 finished runs over two experiments, with params and metrics as lossexp logs."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('run_ids') / 'mlflow.db'}"
    client = store.open_client(uri)
    experiments = [client.create_experiment("lossexp"), client.create_experiment("other")]
    ids = []
    for i in range(20):
        run_id = client.create_run(experiments[i % 2], run_name=f"cnn·hist_avg+activity {i}",
                                   tags={"loss": "hist_avg+activity"}).info.run_id
        client.log_batch(run_id, metrics=[Metric("val_loss", 1.0 + i, 0, 5), Metric("objective", 1.0 + i, 0, 5)],
                         params=[Param("model.name", "cnn"), Param("trainer.seed", str(i))])
        client.set_terminated(run_id, "FINISHED")
        ids.append(run_id)
    return client, uri, ids


def _run_ids_bound(call) -> Set[str]:
    """The run ids a store was asked about (bound into its SQL statements) while ``call()`` ran."""
    seen: List[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        values = parameters.values() if isinstance(parameters, dict) else parameters or ()
        seen.extend(v for v in values if isinstance(v, str) and len(v) == 32)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    return set(seen)


def test_a_prefix_names_its_run_without_reading_the_others(twenty_runs):
    client, _, ids = twenty_runs
    target = ids[7]
    assert query.resolve_run_id(client, target[:8]) == target
    asked = _run_ids_bound(lambda: query.resolve_run_id(client, target[:8]))
    assert asked <= {target}, f"read {len(asked - {target})} other runs to resolve one prefix"


def test_every_run_is_found_by_its_short_id_in_either_experiment(twenty_runs):
    client, _, ids = twenty_runs
    assert [ids_starting_with(client, run_id[:8]) for run_id in ids] == [[run_id] for run_id in ids]


def test_a_prefix_of_several_runs_gives_them_all(twenty_runs):
    client, _, ids = twenty_runs
    shared = min((a, b) for a in ids for b in ids if a < b and a[0] == b[0])[0][:1]
    several = [run_id for run_id in ids if run_id.startswith(shared)]
    assert ids_starting_with(client, shared) == sorted(several)
    prefix = shared + "%"  # not hex: a LIKE wildcard must not match every run
    assert ids_starting_with(client, prefix) == []


def test_from_run_takes_the_short_id_without_reading_the_others(twenty_runs):
    client, uri, ids = twenty_runs
    target = ids[12]
    args = [f"tracking.uri={uri}"]
    assert from_run.full_run_id(target[:8], args) == target
    asked = _run_ids_bound(lambda: from_run.full_run_id(target[:8], args))
    assert asked <= {target}, f"read {len(asked - {target})} other runs to resolve one prefix"


def test_what_no_run_id_starts_with_names_no_run(twenty_runs):
    client, _, _ = twenty_runs
    assert query.resolve_run_id(client, "zzzz") is None
    assert query.resolve_run_id(client, "0_0_") is None
