"""``lossexp ablate``: one sweep of the whole composition and each leave-one-out composition × seeds
(in one process, and under joblib in the integration tier); the parent's table (metrics and artifact) is the children's own objectives, paired by
seed; ``lossexp compare`` plots it. The table's arithmetic on its own, and the request checks."""
from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from lossexp.errors import ConfigError
from lossexp.sweeps import ablation

TINY = ("model=mlp", "model.hidden_units=[8]", "data=regression", "data.n_samples=300", "trainer.epochs=1",
        "tracking.log_model=false", "tracking.plots=false", "tracking.drift=false", "tracking.gradients=false")


def child(leave_out, seed, value, status="FINISHED"):
    return SimpleNamespace(info=SimpleNamespace(status=status),
                           data=SimpleNamespace(params={"ablation.leave_out": leave_out, "trainer.seed": seed},
                                                metrics={"objective": value}))


def test_the_table_pairs_each_seed_with_the_whole_composition():
    runs = [child("None", "0", 1.0), child("None", "1", 2.0), child("a", "0", 1.5), child("a", "1", 2.1),
            child("b", "0", 0.5), child("b", "1", 9.0, status="FAILED")]
    found = ablation.table(runs, ["a", "b"])
    assert found["whole"] == {"0": 1.0, "1": 2.0} and found["whole_mean"] == 1.5
    a, b = found["rows"]
    assert a["deltas"] == pytest.approx({"0": 0.5, "1": 0.1}) and a["n"] == 2
    assert a["mean"] == pytest.approx(0.3) and a["std"] == pytest.approx(statistics.stdev([0.5, 0.1]))
    assert b["deltas"] == {"0": -0.5} and b["std"] == 0.0  # the failed child is left out


def test_requests_it_cannot_run():
    with pytest.raises(ConfigError, match=r"^Invalid value for loss: expected at least 2 components .* got 1 \(kl\)"):
        ablation.check_request([], ["kl"], 2)
    with pytest.raises(ConfigError, match="--seeds: expected a whole number >= 1, got 0"):
        ablation.check_request([], ["a", "b"], 0)
    with pytest.raises(ConfigError, match="sweeps trainer.seed itself"):
        ablation.check_request(["trainer.seed=3"], ["a", "b"], 1)
    for swept in ("loss.a.weight=0.1,0.2", "loss.a.weight=choice(0.1,0.2)", "trainer.epochs=range(1,3)"):
        with pytest.raises(ConfigError, match=rf"^Invalid override for lossexp ablate: {re.escape(swept)}: expected one "
                                              "value \\(an ablation sweeps the components left out and the seeds alone"):
            ablation.check_request([swept], ["a", "b"], 1)  # it was Hydra's "Ambiguous value for argument"
    ablation.check_request(["loss.a.layers=[h1,h2]", "model.hidden_units=[8,4]", "data.path='a,b.csv'"], ["a", "b"], 1)
    assert ablation.sweep_overrides(["loss=a+b"], ["a", "b"], 5, 2) == [
        "loss=a+b", "objective.metric=val_loss/task", "ablation.leave_out=null,a,b", "trainer.seed=5,6"]
    assert ablation.sweep_overrides(["objective.metric=val_loss"], ["a", "b"], 0, 1)[1] == "ablation.leave_out=null,a,b"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [(), pytest.param(("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"),
                                                       marks=pytest.mark.integration, id="joblib")], ids=["basic", "joblib"])
def test_ablate_records_the_table_and_compare_plots_it(launcher, run_cli, store_uri, tmp_path):
    """In one process (``make test``) and under joblib's processes (the integration tier, with the
    other launchers: two more TensorFlow processes beside the suite's on 2 cores)."""
    result = run_cli("ablate", "--seeds", "2", "loss=hist_avg+activity", *TINY, *launcher, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("lossexp").experiment_id
    [parent] = client.search_runs([experiment], "tags.`lossexp.role` = 'sweep'")
    assert parent.info.status == "FINISHED" and parent.data.tags["lossexp.ablation"] == "hist_avg,activity"
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    jobs = sorted((c.data.params["ablation.leave_out"], c.data.params["trainer.seed"]) for c in children)
    assert jobs == sorted((left, seed) for left in ("None", "hist_avg", "activity") for seed in ("0", "1"))
    assert all(c.info.status == "FINISHED" and c.data.params["objective.metric"] == "val_loss/task" for c in children)
    # the children trained what they say: without hist_avg, no hist_avg term
    for c in children:
        left = c.data.params["ablation.leave_out"]
        assert ("loss/hist_avg" in c.data.metrics) == (left != "hist_avg")
        assert c.data.metrics["objective"] == pytest.approx(c.data.metrics["val_loss/task"])
    objective = {(c.data.params["ablation.leave_out"], c.data.params["trainer.seed"]): c.data.metrics["objective"]
                 for c in children}
    metrics = parent.data.metrics
    for component in ("hist_avg", "activity"):
        deltas = [objective[(component, s)] - objective[("None", s)] for s in ("0", "1")]
        assert metrics[f"ablation/delta/{component}"] == pytest.approx(statistics.fmean(deltas), rel=1e-6, abs=1e-9)
        assert metrics[f"ablation/delta_std/{component}"] == pytest.approx(statistics.stdev(deltas), rel=1e-6,
                                                                            abs=1e-9)
    whole = (objective[("None", "0")] + objective[("None", "1")]) / 2
    assert metrics["ablation/objective/whole"] == pytest.approx(whole)
    table = json.loads(Path(client.download_artifacts(parent.info.run_id, "ablation/ablation.json",
                                                       str(tmp_path))).read_text())
    assert [row["component"] for row in table["rows"]] == ["hist_avg", "activity"]
    assert "| hist_avg |" in result.stdout

    shown = run_cli("compare", parent.info.run_id)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "without hist_avg: Δ val_loss/task = " in shown.stdout
    plot = tmp_path / "outputs" / "compare" / f"{parent.info.run_id}-ablation.png"
    assert plot.stat().st_size > 10_000
    assert f"{parent.info.run_id}-ablation.png" in [a.path.split("/")[-1] for a in
                                                    client.list_artifacts(parent.info.run_id, "compare")]


def test_help_and_a_refused_ablation_do_not_import_tensorflow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, io, contextlib\n"
        "from lossexp.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['ablate', '--help']) == 0\n"
        "    assert main(['ablate', '--seeds', '2', 'loss=activity']) == 2\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=tmp_path)


def _ablation_record(client: MlflowClient, parent: str, folder: Path) -> tuple:
    """What an ablation leaves on its parent: status, the ablation/ metrics, the tag, the table's text."""
    run = client.get_run(parent)
    table = Path(client.download_artifacts(parent, "ablation/ablation.md", str(folder))).read_text()
    return (run.info.status, {k: v for k, v in run.data.metrics.items() if k.startswith("ablation/")},
            run.data.tags.get(ablation.TAG), table)


@pytest.mark.slow
@pytest.mark.integration  # two ablations and a resumed one, 24 s: the CI budget (sweeps' resume: test_resume_sweep)
def test_a_stopped_ablation_continues_with_its_table(run_cli, store_uri, tmp_path):
    """SIGTERM once the whole composition's job finished; the same ablate with --resume PARENT: the
    finished job is not run again, the others run, and the parent holds the same table (metrics, tag,
    ablation.md) as an ablation that was never stopped."""
    import signal
    import time

    from conftest import cli_start

    request = ("loss=hist_avg+activity", *TINY)
    assert run_cli("ablate", *request, "tracking.experiment=whole").returncode == 0
    process = cli_start(tmp_path, "ablate", *request, "tracking.experiment=stopped")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        if (tmp_path / "outputs" / "mlflow.db").exists() and MlflowClient(store_uri).search_runs(
                ["2"], "tags.`mlflow.parentRunId` != '' and attributes.status = 'FINISHED'"):
            process.send_signal(signal.SIGTERM)
            break
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr[-3000:]
    client = MlflowClient(store_uri)
    [whole, stopped] = [client.search_runs([client.get_experiment_by_name(name).experiment_id],
                                           "tags.`lossexp.role` = 'sweep'")[0].info.run_id for name in ("whole", "stopped")]
    assert client.get_run(stopped).info.status == "KILLED"
    assert ("(continue it: lossexp ablate --seeds 1 loss=hist_avg+activity model=mlp 'model.hidden_units=[8]' "
            "data=regression") in stdout and f"tracking.experiment=stopped --resume {stopped})" in stdout

    result = run_cli("ablate", *request, "tracking.experiment=stopped", "--resume", stopped[:8])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("before: not run again") == 1
    assert f"lossexp: ablation table logged to run {stopped} (ablation/ablation.md)" in result.stdout
    assert _ablation_record(client, stopped, tmp_path / "a") == _ablation_record(client, whole, tmp_path / "b")
