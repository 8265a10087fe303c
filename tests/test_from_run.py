"""``lossexp train --from-run RUN_ID`` trains exactly the logged config again: every metric history
of the re-run equals the original's, bit for bit; overrides apply on top and change only what
they name; a bad run id is one line."""
from __future__ import annotations

import http.server
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import assert_same_histories, cli, local_http_server
from crafted_runs import composed_config, crafted_run, dump

ORIGINAL = ["model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=120", "loss=hist_avg+coef",
            "loss.coef.penalty=prediction_mean", "trainer.epochs=2", "trainer.batch_size=16", "trainer.seed=7",
            "trainer.log_every_n_steps=2", "optimizer=sgd", "optimizer.learning_rate=0.01",
            "tracking.plots=false", "tracking.log_model=false"]


#: the replaying user's secret, which a crafted config tries to read through OmegaConf's oc.env resolver
SECRET = "s3cr3t-token-value"


def histories(client: MlflowClient, run) -> dict:
    keys = [key for key in run.data.metrics if key != "startup_seconds"]  # wall-clock time
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)) for key in keys}


def rerun(cwd: Path, client: MlflowClient, run, *args: str):
    """The run that ``lossexp train --from-run RUN_ID ARGS`` adds to the store."""
    experiment = [run.info.experiment_id]
    before = {r.info.run_id for r in client.search_runs(experiment)}
    result = cli(cwd, "train", "--from-run", run.info.run_id, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    [new] = [r for r in client.search_runs(experiment) if r.info.run_id not in before]
    assert new.info.status == "FINISHED" and new.data.tags["lossexp.from_run"] == run.info.run_id
    return new


@pytest.mark.slow
def test_from_run_reproduces_the_logged_run_and_overrides_apply_on_top(tmp_path):
    """One test, so that the original is trained once whatever the xdist scheduling."""
    result = cli(tmp_path, "train", *ORIGINAL)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("lossexp").experiment_id])
    expected = histories(client, run)

    # nothing on the command line but the run id: the config comes from the run's config.yaml artifact
    again = rerun(tmp_path, client, run)
    assert again.data.params == run.data.params
    assert len(expected) > 10
    assert_same_histories(histories(client, again), expected)

    # an override changes its key and nothing else
    reseeded = rerun(tmp_path, client, run, "trainer.seed=1")
    changed = {key for key in run.data.params if reseeded.data.params.get(key) != run.data.params[key]}
    assert set(reseeded.data.params) == set(run.data.params) and changed == {"trainer.seed"}
    assert (run.data.params["trainer.seed"], reseeded.data.params["trainer.seed"]) == ("7", "1")
    got = histories(client, reseeded)
    assert set(got) == set(expected)
    assert [step for step, _ in got["loss"]] == [step for step, _ in expected["loss"]]  # the same schedule
    assert got["loss"] != expected["loss"] and got["val_loss"] != expected["val_loss"]  # another seed

    # a group chosen afresh takes its own YAML's options (adam's learning rate, not the run's sgd 0.01);
    # the rest stays the run's
    adam = rerun(tmp_path, client, run, "optimizer=adam", "loss=hist_avg")
    changed = {key for key in set(run.data.params) | set(adam.data.params)
               if adam.data.params.get(key) != run.data.params.get(key)}
    assert (adam.data.params["optimizer.name"], adam.data.params["optimizer.learning_rate"]) == ("adam", "0.001")
    assert not any(key.startswith("loss.coef") for key in adam.data.params) and "loss.coef.penalty" in changed
    assert not any(key.startswith(("model.", "data.", "trainer.")) for key in changed)


def test_from_run_with_an_unknown_run_is_one_line(run_cli, store_uri):
    result = run_cli("train", "--from-run", "0123abcd", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lossexp: error: Unknown run '0123abcd' for --from-run: no such run in {store_uri}"]


def test_the_short_id_lossexp_runs_shows_names_the_run(run_cli, store_uri):
    config = composed_config()
    config["trainer"]["epochs"] = 7
    run_id = crafted_run(store_uri, dump(config))
    result = run_cli("train", "--from-run", run_id[:8], "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load(result.stdout)["trainer"]["epochs"] == 7


def test_a_group_chosen_afresh_drops_the_runs_section_and_brings_what_its_yaml_chooses(tmp_path):
    from lossexp.tracking.from_run import chosen_groups, write_primary_config

    assert chosen_groups(["optimizer=sgd", "optimizer.momentum=0.9", "trainer.seed=1"]) == {"optimizer": None}
    assert chosen_groups(["model=vae"]) == {"loss": ["kl"], "model": None}  # conf/model/vae.yaml: loss=[kl]
    assert chosen_groups(["model=vae", "loss=[]"]) == {"loss": None, "model": None}  # the user's choice wins
    config = composed_config()
    path = write_primary_config(config, tmp_path, chosen_groups(["model=vae"]))
    written = yaml.safe_load(path.read_text())
    assert written["defaults"] == [{"loss": ["kl"]}, {"model": None}, "_self_"]
    assert "model" not in written and "loss" not in written and written["data"] == config["data"]


def test_from_run_of_a_network_given_in_python_is_one_line_naming_what_to_choose(run_cli, store_uri):
    config = composed_config()
    config["model"] = {"name": "functional_1", "source": "python"}
    run_id = crafted_run(store_uri, dump(config))
    result = run_cli("train", "--from-run", run_id, timeout=60)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"lossexp: error: Invalid value for model: run {run_id!r} trained on a model given in Python (lossexp.fit), "
        "which no config builds again: choose model=… on top (e.g. model=keras_file model.path=net.keras, data=npz "
        "data.path=train.npz), or call lossexp.fit again"]


def test_from_run_of_a_projects_run_outside_it_says_where_the_project_is(run_cli, store_uri, tmp_path):
    """A run trained with a project names its parts; replayed from a directory that does not see that
    project, the unknown part's line says which project the run was trained with and how to use it."""
    config = composed_config()
    config["model"] = {"name": "my_net", "units": 8}
    run_id = crafted_run(store_uri, dump(config))
    elsewhere = tmp_path / "my_project"
    MlflowClient(store_uri).set_tag(run_id, "lossexp.project", str(elsewhere))
    result = run_cli("train", "--from-run", run_id, timeout=60)
    [line] = result.stderr.strip().splitlines()
    assert result.returncode == 2 and line.startswith(
        f"lossexp: error: The run was trained with the project {elsewhere}: run lossexp there, or set "
        f"LOSSEXP_PROJECT={elsewhere} — here: Unknown model 'my_net': valid choices are ")
    swept = run_cli("train", "--from-run", run_id, "-m", "trainer.seed=0,1", timeout=60)  # had no hint
    [line] = swept.stderr.strip().splitlines()
    assert swept.returncode == 2 and line.startswith(
        f"lossexp: error: The run was trained with the project {elsewhere}: run lossexp there, or set "
        f"LOSSEXP_PROJECT={elsewhere} — here: Unknown model 'my_net': valid choices are ") and "(in sweep job: " in line


def test_a_rerun_of_an_experiments_run_is_tagged_and_named_as_that_experiments(run_cli, store_uri, all_runs):
    """The replayed config is the experiment's, composed: its re-run lost the experiment tag and its name's prefix."""
    run_id = crafted_run(store_uri, dump(composed_config()))
    MlflowClient(store_uri).set_tag(run_id, "experiment", "my_study")
    result = run_cli("train", "--from-run", run_id[:8], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    [again] = [run for run in all_runs(store_uri) if run.info.run_id != run_id]
    assert again.data.tags["experiment"] == "my_study" and again.data.tags["lossexp.from_run"] == run_id
    assert again.info.run_name == "my_study·mlp·hist_avg"


@pytest.mark.parametrize("args, line", [
    (["trainer.monitor=val_acuracy", "trainer.patience=2"],  # found by one training step, as without --from-run
     "lossexp: error: Invalid value for trainer.monitor: expected a metric the run records at each epoch's end: "),
    (["-m", "trainer.seed=0,1", "objective.metric=val_los"],  # a sweep of a replayed run is checked as any sweep
     "lossexp: error: Invalid value for objective.metric: 'val_los' is not recorded by this run; valid choices are "),
    (["-m", "trainer.epoch=3"],  # was Hydra's "Could not override 'trainer.epoch'" and its hint at a stack trace
     "lossexp: error: Unknown key trainer.epoch: valid keys are batch_size, checkpoint, "),
])
def test_a_mistake_on_top_of_from_run_is_one_line_before_any_run(run_cli, store_uri, all_runs, args, line):
    """Overrides on top of ``--from-run`` get the checks of any command line: a misspelled monitor or objective
    trained an epoch and left a FAILED run (a sweep: a FAILED parent and children)."""
    run_id = crafted_run(store_uri, dump(composed_config()))
    result = run_cli("train", "--from-run", run_id, *args, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    [said] = result.stderr.strip().splitlines()
    assert said.startswith(line)
    assert [run.info.run_id for run in all_runs(store_uri)] == [run_id]


# --- a replayed config is data: someone else's crafted run ----------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers everything with 200 ``{}`` and records each request: the crafted config's server."""

    def _answer(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def crafted_server() -> Iterator[http.server.ThreadingHTTPServer]:
    """A server on 127.0.0.1 standing in for the one a crafted ``tracking.uri`` names."""
    with local_http_server(_Recorder) as server:
        yield server


def test_a_crafted_interpolation_is_refused_and_the_secret_goes_nowhere(run_cli, store_uri, all_runs,
                                                                        crafted_server) -> None:
    config = composed_config()
    config["tracking"]["run_name"] = "${oc.env:SECRET_TOKEN}"
    config["tracking"]["uri"] = f"http://127.0.0.1:{crafted_server.server_address[1]}"
    run_id = crafted_run(store_uri, dump(config))
    result = run_cli("train", "--from-run", run_id, timeout=120, SECRET_TOKEN=SECRET)
    assert result.returncode == 2, result.stderr[-3000:]
    assert SECRET not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"lossexp: error: Invalid value for tracking.run_name in the config.yaml of run {run_id!r}: expected a "
        "plain value (a replayed config is data: no ${…} interpolation is resolved), got '${oc.env:SECRET_TOKEN}'"]
    assert crafted_server.requests == []
    [run] = all_runs(store_uri)  # the crafted run alone: nothing was recorded
    assert run.info.run_id == run_id and SECRET not in str(run.data.params) + str(run.data.tags)


@pytest.mark.slow
def test_where_a_replay_goes_is_decided_by_who_runs_it(run_cli, store_uri, all_runs, crafted_server) -> None:
    """A crafted config names a foreign server, experiment, run name, parent and sweep keys: all ignored."""
    config = composed_config()
    config["tracking"].update(uri=f"http://127.0.0.1:{crafted_server.server_address[1]}", experiment="stolen",
                              run_name="evil", parent_run_id="0" * 32, sweep_keys=["loss"])
    run_id = crafted_run(store_uri, dump(config))
    result = run_cli("train", "--from-run", run_id, "tracking.experiment=replays", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert crafted_server.requests == []
    client = MlflowClient(store_uri)
    assert client.get_experiment_by_name("stolen") is None
    [rerun] = [run for run in all_runs(store_uri) if run.info.run_id != run_id]
    assert rerun.info.experiment_id == client.get_experiment_by_name("replays").experiment_id
    assert rerun.info.status == "FINISHED" and rerun.info.run_name == "mlp·hist_avg"  # the default name
    assert "mlflow.parentRunId" not in rerun.data.tags and rerun.data.tags["lossexp.from_run"] == run_id
    logged = yaml.safe_load(Path(client.download_artifacts(rerun.info.run_id, "config.yaml")).read_text())
    assert logged["tracking"]["uri"] is None and logged["tracking"]["sweep_keys"] == []
    assert rerun.data.params["model.hidden_units"] == "[8]"  # what it trains does come from the replay
