"""``lossexp runs`` / ``compare`` / ``ui`` on a real SQLite store written with MlflowClient (no training)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from conftest import NOT_A_STORE, not_a_store
from lossexp.reports import compare, runs, ui


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    """(uri, parent id, {child name: run id}): a finished 3-job sweep over loss and a weight (one
    store for the module: creating a SQLite store's schema takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("reports")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lossexp", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep x · loss=hist_avg,coef loss.coef.weight.value=0.1,1",
                               tags={"lossexp.role": "sweep", "sweep.keys": "loss,loss.coef.weight.value"}).info.run_id
    children = {}
    jobs = [("hist_avg", "0.1", 2.0, {"hist_avg": 0.5}), ("coef", "0.1", 1.0, {"coef": 0.25}),
            ("coef", "1", 3.0, {"coef": 2.5})]
    for num, (loss, weight, objective, parts) in enumerate(jobs):
        name = f"loss={loss},loss.coef.weight.value={weight}"
        run_id = client.create_run(experiment, run_name=name, tags={
            "mlflow.parentRunId": parent, "loss": loss, "sweep.job": str(num)}).info.run_id
        metrics = {"objective": objective, "val_loss": objective, "val_accuracy": 0.5 + num / 10, "loss/task": 1.0,
                   **{f"loss/{k}": v for k, v in parts.items()}}
        client.log_batch(run_id, metrics=[Metric(k, v, 0, 1) for k, v in metrics.items()],
                         params=[Param("loss.coef.weight.value", weight), Param("objective.metric", "val_loss")])
        client.set_terminated(run_id, "FINISHED")
        children[name] = run_id
    client.set_tag(parent, "sweep.best_run_id", children["loss=coef,loss.coef.weight.value=0.1"])
    client.set_terminated(parent, "FINISHED")
    return uri, parent, children


def test_runs_lists_a_sweeps_children_with_their_key_params(sweep_store, capsys):
    uri, parent, children = sweep_store
    assert runs.main(["--uri", uri, "--sweep", parent]) == 0
    out = capsys.readouterr().out
    for name in children:
        assert name in out
    assert "loss.coef.weight.value" in out and "val_acc=0.6" in out and "★ loss=coef,loss.coef.weight.value=0.1" in out
    assert runs.main(["--uri", uri, "--experiment", "lossexp"]) == 0
    assert "4 runs in" in capsys.readouterr().out


def test_compare_writes_and_logs_the_plot(sweep_store, tmp_path, capsys):
    uri, parent, _ = sweep_store
    out = tmp_path / "cmp" / "sweep.png"
    assert compare.main([parent, "--uri", uri, "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000
    assert [a.path for a in MlflowClient(uri).list_artifacts(parent, "compare")] == ["compare/sweep-history.png",
                                                                                    "compare/sweep.png"]
    assert f"logged to run {parent}" in capsys.readouterr().out


@pytest.mark.parametrize("command, argv, message", [
    (runs, ["--experiment", "nope"], "Unknown experiment 'nope': valid choices are Default, lossexp"),
    (runs, ["--sweep", "nope"], "Unknown sweep 'nope'"),
    (runs, ["--bogus"], "lossexp runs: unrecognized arguments: --bogus"),
    (compare, [], "lossexp compare: the following arguments are required: RUN"),
    (ui, ["--port", "0"], "Invalid value for --port: expected 1..65535, got 0"),
    (runs, ["--limit", "0"], "argument --limit: invalid value '0': expected a whole number from 1 to 50000"),
    (runs, ["--limit", "-5"], "argument --limit: invalid value '-5'"),
    (runs, ["--limit", "60000"], "argument --limit: invalid value '60000'"),
])
def test_bad_arguments_are_one_line_and_exit_2(sweep_store, capsys, command, argv, message):
    uri, _, children = sweep_store
    assert command.main([*argv, "--uri", uri] if command is not compare else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lossexp: error: ") and message in err[0]


def test_compare_and_runs_on_a_run_without_children_say_so(sweep_store, capsys):
    """(``runs --sweep`` printed an empty table and exited 0.)"""
    uri, _, children = sweep_store
    child = next(iter(children.values()))
    assert compare.main([child, "--uri", uri]) == 2
    assert "is not a sweep's parent" in capsys.readouterr().err
    assert runs.main(["--sweep", child, "--uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lossexp: error: Run {child!r} is not a sweep's parent: it has no child runs"]


def test_runs_without_a_store_says_so(tmp_path, capsys):
    assert runs.main(["--uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "No runs yet" in capsys.readouterr().err


@pytest.mark.parametrize("kind, message", NOT_A_STORE)
@pytest.mark.parametrize("command", [runs, compare, ui])
def test_a_store_path_that_is_something_else_is_one_line_and_left_as_it_was(tmp_path, capsys, kind, message, command):
    path = not_a_store(tmp_path, kind)
    before = sorted(p.name for p in tmp_path.rglob("*")), path.read_bytes() if path.is_file() else None
    uri = f"sqlite:///{path}"
    argv = {runs: ["--uri", uri], compare: ["abcd1234", "--uri", uri], ui: ["--uri", uri, "--port", "5999"]}[command]
    assert command.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lossexp: error: Invalid value for --uri: {uri} {message}"), err
    assert (sorted(p.name for p in tmp_path.rglob("*")), path.read_bytes() if path.is_file() else None) == before


def test_report_commands_start_without_mlflow_or_tensorflow():
    code = ("import sys\nfrom lossexp.cli import main\nfor c in ('runs', 'compare', 'ui'):\n"
            "    try:\n        main([c, '--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('tensorflow', 'mlflow', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip().endswith("[]"), result.stderr
    assert "--sweep PARENT" in result.stdout and "--port" in result.stdout


def test_runs_reap_fails_only_runs_whose_heartbeat_stopped(tmp_path, capsys):
    import time

    from lossexp.tracking.heartbeat import INTERVAL_TAG, TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lossexp", artifact_location=(tmp_path / "artifacts").as_uri())
    now = time.time()
    beats = {"dead": now - 600, "alive": now}  # the dead one's process stopped 10 minutes ago
    ids = {name: client.create_run(experiment, run_name=name, tags={TAG: f"{beat:.3f}", INTERVAL_TAG: "30"}).info.run_id
           for name, beat in beats.items()}
    foreign = client.create_run(experiment, run_name="foreign").info.run_id  # no heartbeat: not lossexp's to judge
    assert runs.main(["--uri", uri, "--reap"]) == 0
    waited = time.time() - now  # the reaper's clock read 600 s + up to this much after the dead beat
    assert f"marked 1 dead run(s) FAILED: {ids['dead']}" in capsys.readouterr().out
    status = {name: client.get_run(run_id).info.status for name, run_id in {**ids, "foreign": foreign}.items()}
    assert status == {"dead": "FAILED", "alive": "RUNNING", "foreign": "RUNNING"}
    reason = client.get_run(ids["dead"]).data.tags["lossexp.reaped"]
    silent = re.fullmatch(r"no heartbeat for (\d+) s \(limit 300 s\): the process died without ending the run", reason)
    assert silent and 600 <= int(silent.group(1)) <= 600 + waited + 0.5, reason  # whole seconds, rounded
    assert client.get_run(ids["dead"]).data.tags["error"] == f"reaped: {reason}"
    assert runs.main(["--uri", uri, "--reap", "--stale-after", "0"]) == 2
    assert "--stale-after" in capsys.readouterr().err


def test_runs_nest_children_under_their_parent_with_short_ids(sweep_store, capsys):
    uri, parent, children = sweep_store
    assert runs.main(["--uri", uri, "--experiment", "lossexp"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    starts = [next(i for i, line in enumerate(lines) if line.lstrip().startswith(run_id[:8]))
              for run_id in [parent, *children.values()]]
    assert starts == sorted(starts)  # the parent, then its children in job order
    for name, run_id in children.items():
        row = lines[starts[1 + list(children).index(name)]]
        assert ("└─" if name.endswith("=1") else "├─") + name in row and run_id[8:] not in out
    assert "val_acc=0.6" in out


def test_runs_json_has_full_ids_and_parents(sweep_store, capsys):
    import json

    uri, parent, children = sweep_store
    assert runs.main(["--uri", uri, "--json"]) == 0
    listed = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(listed) == {parent, *children.values()}
    child = listed[children["loss=coef,loss.coef.weight.value=0.1"]]
    assert child["parent_id"] == parent and child["objective"] == 1.0
    assert child["task_metric"] == {"name": "val_accuracy", "value": 0.6} and child["component_losses"]["coef"] == 0.25


def test_names_are_not_cut_at_80_columns(sweep_store, monkeypatch, capsys):
    uri, parent, children = sweep_store
    monkeypatch.setenv("COLUMNS", "80")
    assert runs.main(["--uri", uri, "--sweep", parent[:8]]) == 0  # a short id is accepted back
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    flat = "".join(line.strip() for line in out.splitlines())
    for name in children:
        assert name in flat and "…" not in out


def test_compare_and_ui_accept_what_runs_shows(sweep_store, tmp_path, capsys):
    uri, parent, _ = sweep_store
    assert compare.main([parent[:8], "--uri", uri, "--out", str(tmp_path / "c.png")]) == 0
    assert ui._experiment_id(uri, "lossexp") == MlflowClient(uri).get_experiment_by_name("lossexp").experiment_id
    assert ui._experiment_id(uri, "nope") is None


def test_a_swept_group_shows_its_choice_not_every_option(tmp_path, capsys):
    """A sweep over ``optimizer=adam,sgd`` lists each child's optimizer as ``optimizer=sgd``: the
    section's params joined (amsgrad=False,beta_1=0.9,…,name=adam,…) took 7 wrapped lines a run."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lossexp", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep y · optimizer=adam,sgd",
                               tags={"lossexp.role": "sweep", "sweep.keys": "optimizer"}).info.run_id
    sections = {"adam": {"learning_rate": "0.001", "beta_1": "0.9", "amsgrad": "False"},
                "sgd": {"learning_rate": "0.01", "momentum": "0.0", "nesterov": "False"}}
    for num, (name, options) in enumerate(sections.items()):
        run_id = client.create_run(experiment, run_name=f"optimizer={name}", tags={
            "mlflow.parentRunId": parent, "loss": "activity", "sweep.job": str(num)}).info.run_id
        params = [Param(f"optimizer.{k}", v) for k, v in {"name": name, **options}.items()]
        client.log_batch(run_id, metrics=[Metric("val_loss", 1.0 + num, 0, 1)], params=params)
        client.set_terminated(run_id, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    assert runs.main(["--uri", uri, "--sweep", parent]) == 0
    out = capsys.readouterr().out
    assert "optimizer=adam" in out and "optimizer=sgd" in out
    assert "beta_1" not in out and "momentum" not in out
    assert compare.main(["--uri", uri, parent, "--out", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "activity · optimizer=sgd · val_loss=2" in out and "nesterov" not in out


def test_a_sweep_of_more_children_than_one_search_returns_shows_them_all(tmp_path, capsys, monkeypatch):
    """A search stops at its page size (1,000: a sweep of 1,001 jobs listed 1,000); pages of 4 here."""
    from lossexp.sweeps import parent as sweep_parent
    from lossexp.tracking import store

    monkeypatch.setattr(sweep_parent, "CHILDREN_PAGE", 4)
    client = store.open_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("lossexp")
    parent = client.create_run(experiment, run_name="sweep big", tags={
        "lossexp.role": "sweep", "sweep.keys": "trainer.seed"}).info.run_id
    for job in range(10):
        child = client.create_run(experiment, run_name=f"trainer.seed={job}", start_time=1_000_000 + job, tags={
            "mlflow.parentRunId": parent, "sweep.job": str(job), "loss": "activity"}).info.run_id
        client.log_batch(child, metrics=[Metric("val_loss", 1.0 + job, 0, 1)], params=[Param("trainer.seed", str(job))])
    assert runs.main(["--sweep", parent[:8], "--uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["params"]["trainer.seed"] for row in listed] == [str(job) for job in range(10)]


def test_runs_json_is_json_when_a_run_diverged(tmp_path, capsys):
    from lossexp.tracking import store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    experiment = client.create_experiment("lossexp")
    values = {"nan": float("nan"), "finite": 1.25, "inf": float("inf")}  # (MLflow's SQL store: inf as the largest float)
    for name, value in values.items():
        run_id = client.create_run(experiment, run_name=name, tags={"loss": "activity"}).info.run_id
        client.log_batch(run_id, metrics=[Metric("val_loss", value, 0, 5), Metric("objective", value, 0, 5),
                                          Metric("loss/activity", -value, 0, 5), Metric("val_accuracy", value, 0, 5)])
        client.set_terminated(run_id, "FAILED" if name != "finite" else "FINISHED")
    assert runs.main(["--uri", uri, "--json"]) == 0

    def strict(constant):
        raise AssertionError(f"{constant} is not JSON")

    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out, parse_constant=strict)}
    assert [listed[n]["val_loss"] for n in values] == ["NaN", 1.25, "Infinity"]
    assert [listed[n]["objective"] for n in values] == ["NaN", 1.25, "Infinity"]
    assert [listed[n]["component_losses"]["activity"] for n in values] == ["NaN", -1.25, "-Infinity"]
    assert [listed[n]["task_metric"]["value"] for n in values] == ["NaN", 1.25, "Infinity"]
    assert float(listed["nan"]["val_loss"]) != float(listed["nan"]["val_loss"])  # Python reads NaN back
