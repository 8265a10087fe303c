"""``lossexp compare`` over seeds and over several runs, on a real SQLite store written with MlflowClient the
way ``lossexp train -m loss.hist_avg.weight=0,0.1 trainer.seed=0,1,2`` writes it (no training)."""
from __future__ import annotations

import sys

import pytest
from mlflow.entities import Metric, Param

from lossexp.reports import compare
from lossexp.tracking import store

#: objective (val_loss) per (weight, seed): weight 0 → 1, 2, 3 (mean 2, se 1/√3); weight 0.1 → 4, 5, 6
OBJECTIVES = {("0", "0"): 1.0, ("0", "1"): 2.0, ("0", "2"): 3.0, ("0.1", "0"): 4.0, ("0.1", "1"): 5.0, ("0.1", "2"): 6.0}


def _log(client, run_id, params, objective, steps=20, measure="val_loss"):
    """A run's record: params, and histories of val_loss, loss/task, val_loss/task, loss/hist_avg at 20 steps."""
    metrics = [Metric("objective", objective, 0, steps)]
    for step in range(1, steps + 1):
        decay = 1.0 + 1.0 / step
        metrics += [Metric("val_loss", objective * decay, step, step), Metric("loss/task", 0.5 * decay, step, step),
                    Metric("val_loss/task", 0.6 * decay, step, step), Metric("loss/hist_avg", 0.01 * step, step, step)]
    client.log_batch(run_id, metrics=metrics,
                     params=[Param(k, v) for k, v in {**params, "objective.metric": measure}.items()])
    client.set_terminated(run_id, "FINISHED")


@pytest.fixture(scope="module")
def seeds_store(tmp_path_factory):
    """(uri, parent id, {(weight, seed): child id}, a run of another experiment)."""
    tmp_path = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.open_client(uri)
    experiment = client.create_experiment("lossexp", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep s · loss.hist_avg.weight=0,0.1 trainer.seed=0,1,2", tags={
        "lossexp.role": "sweep", "sweep.keys": "loss.hist_avg.weight,trainer.seed"}).info.run_id
    children = {}
    for job, ((weight, seed), objective) in enumerate(OBJECTIVES.items()):
        run_id = client.create_run(experiment, run_name=f"loss.hist_avg.weight={weight},trainer.seed={seed}", tags={
            "mlflow.parentRunId": parent, "loss": "hist_avg", "sweep.job": str(job)}).info.run_id
        _log(client, run_id, {"loss.hist_avg.weight": weight, "trainer.seed": seed}, objective)
        children[weight, seed] = run_id
    client.set_terminated(parent, "FINISHED")
    other = client.create_experiment("other", artifact_location=(tmp_path / "other").as_uri())
    single = client.create_run(other, run_name="mlp·coef", tags={"loss": "coef"}).info.run_id
    _log(client, single, {"loss.coef.weight": "1", "trainer.seed": "0"}, 7.0, measure="val_loss/task")
    return uri, parent, children, single


def test_seeds_are_averaged_and_tested_against_the_zero_weight(seeds_store, tmp_path, capsys, monkeypatch):
    from scipy.stats import ttest_ind

    uri, parent, _, _ = seeds_store
    monkeypatch.setenv("COLUMNS", "100")
    before = set(sys.modules)
    assert compare.main([parent[:8], "--uri", uri, "--out", str(tmp_path / "s.png")]) == 0
    loaded = {m.split(".")[0] for m in set(sys.modules) - before}
    assert not loaded & {"tensorflow", "keras"}, "compare loaded TensorFlow"  # (run alone, nothing had loaded it)
    out = capsys.readouterr().out
    assert "2 groups (mean ± standard error over trainer.seed)" in out
    [base] = [line for line in out.splitlines() if "(baseline)" in line]
    assert "weight=0 (baseline)" in base and " 3 " in base and "2 ± 0.58" in base  # se = 1/√3
    [other] = [line for line in out.splitlines() if line.lstrip().startswith("weight=0.1 ")]
    p = ttest_ind([4, 5, 6], [1, 2, 3], equal_var=False).pvalue
    assert "5 ± 0.58" in other and "+3" in other and other.split()[-1] == f"{p:.2g}"  # no paired p: every seed +3
    assert "hist_avg 0.2 ± 0 · task 0.525 ± 0" in out  # final loss/<c> at step 20, the same for every seed
    logged = {a.path for a in store.open_client(uri).list_artifacts(parent, "compare")}
    assert {"compare/s.png", "compare/s-history.png"} <= logged
    for name in ("s.png", "s-history.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_named_baseline(seeds_store, tmp_path, capsys):
    uri, parent, _, _ = seeds_store
    argv = [parent, "--uri", uri, "--out", str(tmp_path / "b.png"), "--baseline", "loss.hist_avg.weight=0.1"]
    assert compare.main(argv) == 0
    assert "weight=0.1 (baseline)" in capsys.readouterr().out


def test_averaging_over_another_key(seeds_store, tmp_path, capsys):
    uri, parent, _, _ = seeds_store
    assert compare.main([parent, "--uri", uri, "--out", str(tmp_path / "o.png"), "--over", "loss.hist_avg.weight"]) == 0
    out = capsys.readouterr().out
    assert "3 groups (mean ± standard error over loss.hist_avg.weight)" in out and "trainer.seed=2" in out


def test_several_groups_of_a_zero_weight_say_why_none_is_the_baseline(seeds_store, tmp_path, capsys):
    """Not averaged over the seed, three groups have weight 0: none was the baseline, and the Δ and p columns were
    left out without a word."""
    uri, parent, _, _ = seeds_store
    assert compare.main([parent, "--uri", uri, "--out", str(tmp_path / "z.png"), "--over", ""]) == 0
    assert ("lossexp: note: 3 groups have a swept weight of 0 (loss.hist_avg.weight=0,trainer.seed=0; "
            "loss.hist_avg.weight=0,trainer.seed=1; loss.hist_avg.weight=0,trainer.seed=2): none is the baseline to "
            "test the others against; name one: --baseline KEY=VALUE") in capsys.readouterr().out


def test_several_runs_from_two_experiments_are_written_not_logged(seeds_store, tmp_path, capsys, monkeypatch):
    uri, parent, children, single = seeds_store
    monkeypatch.chdir(tmp_path)
    a, b = children["0", "0"], children["0.1", "1"]
    assert compare.main([a[:8], b, single[:10], "--uri", uri]) == 0
    out = capsys.readouterr().out
    name = f"{a[:8]}+{b[:8]}+{single[:8]}"
    for png in (f"{name}.png", f"{name}-history.png"):
        assert (tmp_path / "outputs" / "compare" / png).read_bytes()[:4] == b"\x89PNG"
    assert "(not logged: several runs have no one parent run)" in out and "3 runs: " in out
    assert "mlp·coef" in out and "loss=coef" in out  # the runs differ in their composition
    assert "the runs' objective.metric differ (val_loss, val_loss/task)" in out


def test_a_parent_among_several_runs_stands_for_its_children_once(seeds_store, tmp_path, capsys):
    uri, parent, children, single = seeds_store
    assert compare.main([parent, children["0", "1"], single, "--uri", uri, "--out", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "7 runs: " in out and sum(run_id[:8] in out for run_id in children.values()) == 6


@pytest.mark.parametrize("argv, message", [
    (["nope1234", "PARENT", "zz"], "Unknown runs 'nope1234', 'zz': no run with that id (lossexp runs lists the runs "
                                   "with their short ids; any unique prefix works)"),
    (["PARENT", "--over", "trainer.sed"], "Invalid value for --over: 'trainer.sed' is not a param of the compared "
                                          "runs; the keys that vary among them are loss.hist_avg.weight, trainer.seed"),
    (["PARENT", "--baseline", "loss.hist_avg.weight=5"], "Invalid value for --baseline: loss.hist_avg.weight=5 "
                                                         "matches no group; the groups are loss.hist_avg.weight=0; "
                                                         "loss.hist_avg.weight=0.1"),
    (["PARENT", "--baseline", "weight"], "Invalid value for --baseline: 'weight': expected KEY=VALUE"),
    ([], "lossexp compare: the following arguments are required: RUN"),
])
def test_mistakes_are_one_line_and_nothing_is_written(seeds_store, tmp_path, capsys, monkeypatch, argv, message):
    uri, parent, _, _ = seeds_store
    monkeypatch.chdir(tmp_path)
    argv = [parent if a == "PARENT" else a for a in argv]
    assert compare.main([*argv, "--uri", uri] if argv else []) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith(f"lossexp: error: {message}"), lines
    assert not (tmp_path / "outputs").exists()
