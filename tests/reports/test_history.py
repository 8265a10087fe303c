"""Histories read for ``lossexp compare``: binned in SQLite's one query exactly as through MLflow's reader,
against values computed by hand, and combined over seeds."""
import math

import numpy as np
import pytest
from mlflow.entities import Metric

from lossexp.reports.history import Series, band, bin_width, read_histories
from lossexp.tracking import store


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """(uri, client, ids): run a logs ``loss`` = step at steps 1…250 (NaN at 7, inf at 8), run b 2·step;
    only run a logs ``val_loss``, at 50, 100, …, 250; run short logs ``loss`` = step at steps 1…25."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('history') / 'mlflow.db'}"
    client = store.open_client(uri)  # a copy of an empty store: no schema migration
    experiment = client.create_experiment("lossexp")
    ids = {}
    for name, scale in (("a", 1.0), ("b", 2.0)):
        run_id = client.create_run(experiment, run_name=name).info.run_id
        values = {step: scale * step for step in range(1, 251)}
        if name == "a":
            values.update({7: math.nan, 8: math.inf})
        metrics = [Metric("loss", v, 1000 + s, s) for s, v in values.items()]
        if name == "a":
            metrics += [Metric("val_loss", s / 100, 1000 + s, s) for s in range(50, 251, 50)]
        client.log_batch(run_id, metrics=metrics)
        ids[name] = run_id
    ids["short"] = client.create_run(experiment, run_name="short").info.run_id
    client.log_batch(ids["short"], metrics=[Metric("loss", float(s), 1000 + s, s) for s in range(1, 26)])
    return uri, client, ids


def test_sqlite_and_mlflow_readers_bin_alike_and_as_by_hand(two_runs):
    uri, client, ids = two_runs
    keys = ["loss", "val_loss", "loss/absent"]
    fast = read_histories(client, uri, [[ids["a"], ids["b"]]], keys, max_points=10)
    slow = read_histories(client, None, [[ids["a"], ids["b"]]], keys, max_points=10)
    assert sorted(fast) == sorted(slow) == sorted([(ids["a"], "loss"), (ids["b"], "loss"), (ids["a"], "val_loss")])
    for pair in fast:
        for field in ("bins", "steps", "values"):
            np.testing.assert_allclose(getattr(fast[pair], field), getattr(slow[pair], field))
    assert bin_width(250, 10) == 26  # bins of 26 steps: 0-25, 26-51, …, 234-259
    a = fast[ids["a"], "loss"]
    assert list(a.bins) == list(range(10)) and a.steps[0] == 13  # steps 1…25
    assert a.values[0] == pytest.approx((325 - 7 - 8) / 23)  # NaN and inf left out of the mean
    assert a.values[1] == pytest.approx(np.mean(np.arange(26, 52)))
    assert list(fast[ids["a"], "val_loss"].values) == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_a_series_shorter_than_max_points_keeps_every_point(two_runs):
    uri, client, ids = two_runs
    series = read_histories(client, uri, [[ids["b"]]], ["loss"])[ids["b"], "loss"]
    assert list(series.steps) == list(range(1, 251)) and list(series.values) == [2.0 * s for s in range(1, 251)]


def test_each_group_is_binned_over_its_own_longest_run(two_runs):
    """A 25-step run beside 250-step ones keeps its detail: bins of 3 steps (at most 10 over its 25), not
    the long group's 26 (one bin); both readers alike."""
    uri, client, ids = two_runs
    groups = [[ids["a"], ids["b"]], [ids["short"]]]
    fast = read_histories(client, uri, groups, ["loss"], max_points=10)
    slow = read_histories(client, None, groups, ["loss"], max_points=10)
    for pair in fast:
        for field in ("bins", "steps", "values"):
            np.testing.assert_allclose(getattr(fast[pair], field), getattr(slow[pair], field))
    assert len(fast[ids["a"], "loss"].bins) == len(fast[ids["b"], "loss"].bins) == 10
    short = fast[ids["short"], "loss"]
    assert list(short.bins) == list(range(9)) and list(short.steps[:2]) == [1.5, 4.0]  # steps 1-2, then 3-5
    assert list(short.values) == list(short.steps)  # its loss is its step


def test_band_is_the_mean_and_standard_error_per_bin_over_the_runs_with_a_value():
    a = Series(np.array([0, 1]), np.array([5.0, 15.0]), np.array([1.0, np.nan]))
    b = Series(np.array([0, 1, 2]), np.array([5.0, 15.0, 25.0]), np.array([3.0, 4.0, 6.0]))
    c = Series(np.array([0]), np.array([5.0]), np.array([5.0]))
    combined = band([a, b, c])
    assert list(combined.steps) == [5.0, 15.0, 25.0] and list(combined.n) == [3, 1, 1]
    assert list(combined.mean) == [3.0, 4.0, 6.0]
    assert combined.se[0] == pytest.approx(2 / math.sqrt(3)) and np.isnan(combined.se[1:]).all()  # std 2 over 3
