"""``python -m benchmarks.optuna_sweeps [--quick]``: Optuna sweeps, measured (not a test).

1. **Pruning.** On a weight sweep with a known good region (``loss.hist_avg.weight`` and
   ``loss.activity.weight`` on the digits CNN, 8 epochs), TPE with median pruning against a
   16-point grid (4 × 4 log-spaced weights) over the same box, for 3 seeds (``trainer.seed`` and
   the sampler's seed): epochs spent and the best ``val_loss`` of each strategy.
2. **Fixed cost per job.** The 8-job sweep of the issue (``model=mlp data=regression loss=hist_avg
   trainer.epochs=10``, 250 steps each, plots and model off) under the basic launcher and joblib at
   2 workers: per job, the time from the job's start (Hydra's ``on_job_start``) to the end of its
   first compiled step call (``startup/first_step_seconds``) and from its last step (the time of
   its last epoch's metrics, after that epoch's validation) to the job's end (``on_job_end``);
   the medians over jobs after the first in each worker.

Writes ``benchmarks/optuna_results.json`` and ``benchmarks/OPTUNA.md``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from benchmarks.common import REPO, lossexp_cli, machine, spread

HERE = Path(__file__).resolve().parent
EPOCHS = 8
HIST_AVG = (1e-4, 1e-3, 1e-2, 1e-1)
ACTIVITY = (1e-5, 1e-4, 1e-3, 1e-2)
WEIGHT_SWEEP = ["train", "-m", "model=cnn", "loss=hist_avg+activity", f"trainer.epochs={EPOCHS}", "trainer.verbose=0",
                "tracking.plots=false", "tracking.log_model=false", "hparams_search=optuna_weights",
                "hydra.sweeper.study_name=bench"]
STRATEGIES = {
    "grid": ["hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=16",
             "loss.hist_avg.weight=choice(" + ",".join(map(str, HIST_AVG)) + ")",
             "loss.activity.weight=choice(" + ",".join(map(str, ACTIVITY)) + ")"],
    "tpe_median": ["hydra.sweeper.sampler=tpe", "hydra.sweeper.pruner=median", "hydra.sweeper.n_trials=10",
                   f"loss.hist_avg.weight=tag(log,interval({HIST_AVG[0]},{HIST_AVG[-1]}))",
                   f"loss.activity.weight=tag(log,interval({ACTIVITY[0]},{ACTIVITY[-1]}))"],
}
THROUGHPUT_SWEEP = ["train", "-m", "model=mlp", "data=regression", "loss=hist_avg", "trainer.epochs=10",
                    "trainer.verbose=0", "tracking.plots=false", "tracking.log_model=false",
                    "loss.hist_avg.weight=0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3",
                    "+hydra.callbacks.job_timing._target_=benchmarks.job_timing.JobTiming"]
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def _run(argv: List[str], cwd: Path, **env: str) -> float:
    import subprocess

    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=3600,
                            env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def weight_sweep(strategy: str, seed: int) -> Dict[str, Any]:
    """One sweep of ``strategy`` at ``seed``: epochs spent, trials pruned, the best val_loss."""
    import optuna
    from optuna.trial import TrialState

    with tempfile.TemporaryDirectory() as tmp:
        wall = _run(lossexp_cli() + WEIGHT_SWEEP + STRATEGIES[strategy]
                    + [f"trainer.seed={seed}", f"hydra.sweeper.seed={seed}"], Path(tmp))
        study = optuna.load_study(study_name="bench", storage=f"sqlite:///{tmp}/outputs/optuna.db")
        trials = study.get_trials(deepcopy=False)
    epochs = [int(t.user_attrs.get("lossexp.pruned_epoch", EPOCHS)) for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)
    return {"seed": seed, "trials": len(trials), "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "epochs": sum(epochs), "best_val_loss": best.value, "best_params": best.params, "wall_seconds": wall}


def fixed_costs(launcher: str) -> Dict[str, Any]:
    """The 8-job sweep under ``launcher``: fixed cost per job, before its first step and after its last."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        times = Path(tmp) / "job_times.jsonl"
        wall = _run(lossexp_cli() + THROUGHPUT_SWEEP + LAUNCHERS[launcher], Path(tmp), LOSSEXP_JOB_TIMES=str(times))
        events = [json.loads(line) for line in times.read_text().splitlines()]
        client = MlflowClient(f"sqlite:///{tmp}/outputs/mlflow.db")
        runs = {int(r.data.tags["sweep.job"]): r for r in client.search_runs(["1"]) if "sweep.job" in r.data.tags}
        jobs = []
        for job, run in runs.items():
            start = next(e for e in events if e["job"] == job and e["event"] == "start")
            end = next(e for e in events if e["job"] == job and e["event"] == "end")
            first_step = start["process_start"] + run.data.metrics["startup/first_step_seconds"]
            last_step = max(m.timestamp for m in client.get_metric_history(run.info.run_id, "epoch")) / 1000
            jobs.append({"job": job, "pid": start["pid"], "start": start["time"],
                         "to_first_step": first_step - start["time"],
                         "after_last_step": end["time"] - last_step, "training": last_step - first_step,
                         "total": end["time"] - start["time"]})
    jobs.sort(key=lambda j: j["start"])
    seen, later = set(), []
    for job in jobs:  # the first job of each worker pays the process's start-up: left out
        (later.append(job) if job["pid"] in seen else seen.add(job["pid"]))
    starts = [j["start"] for j in jobs]
    return {"wall_seconds": wall, "workers": len(seen), "jobs": jobs,
            "to_first_step": spread([j["to_first_step"] for j in later]),
            "after_last_step": spread([j["after_last_step"] for j in later]),
            "fixed_per_job": spread([j["to_first_step"] + j["after_last_step"] for j in later]),
            "training": spread([j["training"] for j in later]),
            "start_interval": statistics.median(b - a for a, b in zip(starts, starts[1:]))}


def render(results: Dict[str, Any]) -> str:
    lines = ["# Optuna sweeps: pruning, and the fixed cost per job", "",
             f"`python -m benchmarks.optuna_sweeps` on {results['date']} "
             f"({results['machine'].get('cores')} cores, shared); "
             f"{results['wall_seconds']:.0f} s.", ""]
    if "pruning" in results:
        lines += _render_pruning(results["pruning"])
    if "fixed_cost" in results:
        lines += _render_fixed_cost(results["fixed_cost"])
    return "\n".join(lines)


def _render_pruning(pruning: Dict[str, Any]) -> List[str]:
    lines = ["## TPE + median pruning vs a 16-point grid", "",
             f"Digits CNN, `loss=hist_avg+activity`, {EPOCHS} epochs per trial, objective `val_loss`; grid: "
             f"`loss.hist_avg.weight` ∈ {list(HIST_AVG)} × `loss.activity.weight` ∈ {list(ACTIVITY)}; TPE "
             "(multivariate, 5 random start-up trials) with median pruning (3 start-up trials) over the same box "
             "on a log scale, 10 trials. Seed = `trainer.seed` = the sampler's seed.", "",
             "| strategy | seed | trials | pruned | epochs | best val_loss | wall (s) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for strategy, runs in pruning["runs"].items():
        for run in runs:
            lines.append(f"| {strategy} | {run['seed']} | {run['trials']} | {run['pruned']} | {run['epochs']} | "
                         f"{run['best_val_loss']:.4f} | {run['wall_seconds']:.0f} |")
    summary = pruning["summary"]
    lines += ["", "| strategy | epochs (mean) | best val_loss (mean ± sd over seeds) |", "| --- | --- | --- |"]
    for strategy, row in summary.items():
        lines.append(f"| {strategy} | {row['epochs_mean']:.1f} | {row['best_mean']:.4f} ± {row['best_sd']:.4f} |")
    share = summary["tpe_median"]["epochs_mean"] / summary["grid"]["epochs_mean"]
    lines += ["", f"TPE + median spent **{share:.2f}×** "
              "the grid's epochs; its best val_loss minus the grid's, per seed: "
              + ", ".join(f"{d:+.4f}" for d in pruning["best_difference"]) + ".", ""]
    return lines


def _render_fixed_cost(fixed_cost: Dict[str, Any]) -> List[str]:
    lines = ["## Fixed cost per job (sweep throughput)", "",
              "`lossexp " + " ".join(THROUGHPUT_SWEEP[:-1]) + "` (250 steps per job): medians over the jobs after "
              "the first in each worker.", "",
              "| launcher | wall (s) | workers | start → first step (s) | last step → end (s) | fixed per job (s) | "
              "training (s) | jobs start every (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for launcher, row in fixed_cost.items():
        lines.append(f"| {launcher} | {row['wall_seconds']:.1f} | {row['workers']} | "
                     f"{row['to_first_step']['median']:.2f} | "
                     f"{row['after_last_step']['median']:.2f} | {row['fixed_per_job']['median']:.2f} | "
                     f"{row['training']['median']:.2f} | {row['start_interval']:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optuna_sweeps", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed (a smoke run, not for the record)")
    parser.add_argument("--only", choices=("pruning", "fixed_cost"), help="one part only")
    args = parser.parse_args()
    start = time.perf_counter()
    out = HERE / "optuna_results.json"
    results: Dict[str, Any] = json.loads(out.read_text()) if args.only and out.exists() else {}
    seeds = [0] if args.quick else [0, 1, 2]
    if args.only in (None, "pruning"):
        runs = {strategy: [weight_sweep(strategy, seed) for seed in seeds] for strategy in STRATEGIES}
        summary = {s: {"epochs_mean": statistics.mean(r["epochs"] for r in rs),
                       "best_mean": statistics.mean(r["best_val_loss"] for r in rs),
                       "best_sd": statistics.pstdev(r["best_val_loss"] for r in rs)} for s, rs in runs.items()}
        difference = [t["best_val_loss"] - g["best_val_loss"] for t, g in zip(runs["tpe_median"], runs["grid"])]
        results["pruning"] = {"runs": runs, "summary": summary, "best_difference": difference}
    if args.only in (None, "fixed_cost"):
        results["fixed_cost"] = {launcher: fixed_costs(launcher) for launcher in LAUNCHERS}
    results.update({"date": datetime.date.today().isoformat(), "machine": machine(),
                    "wall_seconds": time.perf_counter() - start, "quick": args.quick})
    out.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "OPTUNA.md").write_text(render(results) + "\n")
    print((HERE / "OPTUNA.md").read_text())


if __name__ == "__main__":
    main()
