"""CAGrad's Fig. 1 reproduced with lossexp's own pieces: the two-objective toy (``experiment=mtl_toy``)
trained by ``equal``, ``mgda``, ``pcgrad`` and ``cagrad`` (c = 0.5) from the papers' starting points.

Each run is what ``lossexp train experiment=mtl_toy weighting=<m> model.init=[x,y]`` trains: the
config composed by Hydra and validated, the registered ``point`` model and ``mtl_toy_l1``/``_l2``
components, the objective regime's ComposedModel and its compiled step with the weighting method;
without MLflow (``tracking.enabled=false``), which does not change training. θ is read every
``--record-every`` steps (one compiled execution each); a run stops before ``--steps`` once θ has
settled (moved less than ``--settle`` over the last ten records; the default 0 runs every step).

Setup (the authors' released ``toy.py``): Adam, learning rate 0.001, 100,000 steps. The starting
points are the CAGrad paper's three, (−8.5, 7.5), (−8.5, −5) and (9, 9), and the three more of
Nash-MTL's five, (0, 0), (−7.5, −0.5) and (9, −1) (Nash-MTL's own runs are 35,000 steps and scale
L₁ by 0.1; neither is used here). Runs are interleaved start by start, so machine load hits every
method alike.

The Pareto set is computed independently of lossexp, in NumPy/SciPy from the formulas: below the
θ₁ axis both losses are c₋(θ₂)·q_i(θ), so the minimiser of λL₁ + (1−λ)L₂ is θ₁ = 7(2λ−1) and
θ₂ = argmin c₋(θ₂)·(19.6λ(1−λ) + 0.01(θ₂+8)² − 20), a curve from (−7, −8.434) to (7, −8.434) through
the average loss's minimum (0, −8.355). A run *reaches* the Pareto set when its last point is within
``--tolerance`` of that curve.

Writes ``benchmarks/mtl_toy_results.json``, ``benchmarks/mtl_toy.png`` (one panel per method, the
trajectories over the average loss's contours, as the paper draws them) and ``benchmarks/MTL_TOY.md``
(the tables; text after its ``<!-- discussion -->`` line is kept).

    nice -n 5 python -m benchmarks.mtl_toy [--steps 100000] [--settle 0] [--jobs 2] [--plot-only]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "mtl_toy_results.json"
FIGURE = HERE / "mtl_toy.png"
REPORT = HERE / "MTL_TOY.md"
MARKER = "<!-- discussion -->"
#: a run stops early when θ moved less than ``--settle`` over this many records
SETTLE_RECORDS = 10

METHODS = {"equal": [], "mgda": [], "pcgrad": [], "cagrad": ["weighting.c=0.5"]}
TITLES = {"equal": "equal (Adam on L₁+L₂)", "mgda": "MGDA", "pcgrad": "PCGrad", "cagrad": "CAGrad (c = 0.5)"}
#: (θ₁, θ₂, where the start comes from)
STARTS = [(-8.5, 7.5, "CAGrad, Nash-MTL"), (-8.5, -5.0, "CAGrad"), (9.0, 9.0, "CAGrad, Nash-MTL"),
          (0.0, 0.0, "Nash-MTL"), (-7.5, -0.5, "Nash-MTL"), (9.0, -1.0, "Nash-MTL")]
#: what the paper says of each method on this problem (its Fig. 1 and the argument around it)
PAPER = {
    "equal": "gradient descent on the average stalls where one task's gradient dominates: not at the Pareto set "
             "from every start",
    "mgda": "reaches the Pareto set, at a point that depends on the start (not the average's minimum)",
    "pcgrad": "reaches the Pareto set, at a point that depends on the start (not the average's minimum)",
    "cagrad": "reaches the Pareto set at the average loss's minimum from every start",
}


# -- the toy, independently of lossexp (NumPy from the released toy.py's formulas) -------------------
def losses(x1: Any, x2: Any) -> Tuple[Any, Any]:
    """(L₁, L₂) at points (x1, x2) (arrays broadcast), exactly as CAGrad's toy.py writes them."""
    x1, x2 = np.asarray(x1, dtype=np.float64), np.asarray(x2, dtype=np.float64)
    f1 = np.log(np.maximum(np.abs(0.5 * (-x1 - 7) - np.tanh(-x2)), 5e-6)) + 6
    f2 = np.log(np.maximum(np.abs(0.5 * (-x1 + 3) + np.tanh(-x2) + 2), 5e-6)) + 6
    c1 = np.maximum(np.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    c2 = np.maximum(np.tanh(-x2 * 0.5), 0)
    return f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2


def gradients(x1: float, x2: float, h: float = 1e-6) -> np.ndarray:
    """∇L₁ and ∇L₂ (rows) by central differences in float64."""
    rows = []
    for task in range(2):
        rows.append([(losses(x1 + h * e[0], x2 + h * e[1])[task] - losses(x1 - h * e[0], x2 - h * e[1])[task]) / (2 * h)
                     for e in ((1, 0), (0, 1))])
    return np.array(rows)


def pareto_set(points: int = 4001) -> np.ndarray:
    """The Pareto set as a curve of ``points`` points (see the module docstring)."""
    from scipy.optimize import minimize_scalar

    curve = []
    for lam in np.linspace(0.0, 1.0, points):
        offset = 19.6 * lam * (1 - lam)
        best = minimize_scalar(lambda y: np.tanh(-y / 2) * (offset + 0.01 * (y + 8) ** 2 - 20), bounds=(-20, -1e-3),
                               method="bounded", options={"xatol": 1e-10})
        curve.append((7 * (2 * lam - 1), best.x))
    return np.array(curve)


def stationarity(x1: float, x2: float) -> float:
    """min over λ ∈ [0, 1] of ‖λ∇L₁ + (1−λ)∇L₂‖: 0 at a Pareto-stationary point."""
    g1, g2 = gradients(x1, x2)
    diff = g1 - g2
    lam = 1.0 if diff @ diff == 0 else float(np.clip(-(g2 @ diff) / (diff @ diff), 0.0, 1.0))
    return float(np.linalg.norm(lam * g1 + (1 - lam) * g2))


# -- one run through lossexp ------------------------------------------------------------------------
def run(method: str, start: Tuple[float, float], steps: int, record_every: int, settle: float) -> Dict[str, Any]:
    """θ every ``record_every`` steps of ``experiment=mtl_toy weighting=<method>`` from ``start``, until
    ``steps`` or until θ has settled: moved less than ``settle`` in the last :data:`SETTLE_RECORDS`
    records (``settle`` 0: never)."""
    import keras

    from benchmarks.common import lossexp_config
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    if steps % record_every:
        raise ValueError(f"--steps ({steps}) must be a multiple of --record-every ({record_every})")
    per_epoch = min(steps, 10 * record_every)
    config = lossexp_config("experiment=mtl_toy", f"weighting={method}", *METHODS[method],
                            f"model.init=[{start[0]},{start[1]}]", "tracking.enabled=false",
                            f"data.n_samples={per_epoch}", f"trainer.epochs={steps // per_epoch}",
                            f"trainer.steps_per_execution={record_every}")
    keras.utils.set_random_seed(config.trainer.seed)
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    theta = model.network.get_layer("theta").theta
    path = [theta.numpy().astype(float).tolist()]

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            path.append(theta.numpy().astype(float).tolist())
            recent = np.array(path[-SETTLE_RECORDS - 1:])
            if settle > 0 and len(recent) > SETTLE_RECORDS and np.abs(recent - recent[-1]).max() < settle:
                self.model.stop_training = True

    began = time.perf_counter()
    model.fit(**trainer.fit_arguments(data), epochs=config.trainer.epochs, verbose=0,
              callbacks=[*trainer.callbacks(model, data), Record()])
    seconds = time.perf_counter() - began
    run_steps = (len(path) - 1) * record_every
    if run_steps > steps:
        raise RuntimeError(f"recorded {len(path)} points for {steps} steps every {record_every}")
    return {"method": method, "start": list(start), "seconds": seconds, "steps": run_steps,
            "settled": run_steps < steps, "trajectory": path}


def _run_job(job: Tuple[str, Tuple[float, float], int, int, float]) -> Dict[str, Any]:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(*job)


# -- what a trajectory shows -----------------------------------------------------------------------
def summarise(result: Dict[str, Any], curve: np.ndarray, tolerance: float, record_every: int) -> Dict[str, Any]:
    path = np.array(result["trajectory"])
    distances = np.min(np.linalg.norm(path[:, None, :] - curve[None, :, :], axis=-1), axis=1)
    final = path[-1]
    l1, l2 = losses(final[0], final[1])
    within = np.nonzero(distances <= tolerance)[0]
    optimum = curve[len(curve) // 2]
    return {
        "final": final.tolist(), "L1": float(l1), "L2": float(l2), "average": float((l1 + l2) / 2),
        "distance_to_pareto_set": float(distances[-1]), "reached": bool(distances[-1] <= tolerance),
        "first_step_within_tolerance": int(within[0] * record_every) if len(within) else None,
        "distance_to_average_optimum": float(np.linalg.norm(final - optimum)),
        "pareto_stationarity": stationarity(*final), "seconds": result["seconds"],
        "steps": result.get("steps", (len(path) - 1) * record_every), "settled": result.get("settled", False),
    }


# -- outputs ---------------------------------------------------------------------------------------
def plot(results: Dict[str, Any], curve: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-11, 11, 400)
    x, y = np.meshgrid(grid, grid)
    l1, l2 = losses(x, y)
    average = (l1 + l2) / 2
    fig, axes = plt.subplots(1, len(METHODS), figsize=(5 * len(METHODS), 5.2), constrained_layout=True)
    optimum = curve[len(curve) // 2]
    for ax, method in zip(axes, METHODS):
        contours = ax.contour(x, y, average, levels=14, cmap="viridis", linewidths=1.2)
        ax.plot(curve[:, 0], curve[:, 1], color="0.55", linewidth=6, zorder=1, label="Pareto set")
        ax.plot(*optimum, marker="*", markersize=16, color="k", zorder=6, label="min of average")
        for start_x, start_y, source in STARTS:
            key = f"{method}@{start_x},{start_y}"
            if key not in results["runs"]:
                continue
            traj = np.array(results["runs"][key]["trajectory"])
            ax.scatter(traj[:, 0], traj[:, 1], c=np.linspace(0, 1, len(traj)), cmap="autumn", s=5, zorder=4)
            ax.plot(start_x, start_y, marker="o", markersize=9, zorder=5, color="k" if "CAGrad" in source else "w",
                    markeredgecolor="k")
        reached = sum(results["runs"][k]["summary"]["reached"] for k in results["runs"] if k.startswith(method + "@"))
        ax.set_title(f"{TITLES[method]}: {reached}/{len(STARTS)} reach the Pareto set", fontsize=11)
        ax.set_xlim(-11, 11)
        ax.set_ylim(-11, 11)
        ax.set_aspect("equal")
        ax.set_xlabel("θ₁")
    axes[0].set_ylabel("θ₂")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.colorbar(contours, ax=axes, shrink=0.8, label="½(L₁ + L₂)")
    fig.suptitle("CAGrad's toy (Liu et al. 2021, Fig. 1) trained by lossexp: trajectories red → yellow; "
                 "● CAGrad paper's starts, ○ Nash-MTL's further starts", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(results: Dict[str, Any], path: Path) -> None:
    settings = results["settings"]
    lines = ["# CAGrad's toy problem (Liu et al. 2021, Fig. 1), reproduced with lossexp", "",
             f"Generated by `python -m benchmarks.mtl_toy` on {settings['date']} ({settings['machine']}; load average "
             f"before / after: {settings['load_before']} / {settings['load_after']}). "
             f"{settings['steps']:,} Adam steps (lr 0.001) per run, θ recorded every {settings['record_every']} steps"
             + (f" (a run stops early once θ moved less than {settings['settle']} over {SETTLE_RECORDS} records)"
                if settings.get("settle") else "") + "; "
             f"a run reaches the Pareto set when its last point is within {settings['tolerance']} of it. "
             f"Figure: [mtl_toy.png](mtl_toy.png); numbers: [mtl_toy_results.json](mtl_toy_results.json).", "",
             "![trajectories](mtl_toy.png)", "", "## Per method", "",
             "| method | reaches the Pareto set | ends at the average's minimum | the paper reports |",
             "| --- | --- | --- | --- |"]
    for method in METHODS:
        runs = [results["runs"][f"{method}@{x},{y}"]["summary"] for x, y, _ in STARTS
                if f"{method}@{x},{y}" in results["runs"]]
        if not runs:
            continue
        reached = sum(r["reached"] for r in runs)
        at_optimum = sum(r["distance_to_average_optimum"] <= settings["tolerance"] for r in runs)
        lines.append(f"| {method} | {reached}/{len(runs)} starts | {at_optimum}/{len(runs)} | {PAPER[method]} |")
    lines += ["", "## Per start", "",
              "| method | start (source) | final θ | L₁ | L₂ | distance to Pareto set | reached at step | "
              "distance to average's minimum | ‖min-norm gradient‖ | steps run | seconds |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method in METHODS:
        for x, y, source in STARTS:
            key = f"{method}@{x},{y}"
            if key not in results["runs"]:
                continue
            s = results["runs"][key]["summary"]
            first = "—" if s["first_step_within_tolerance"] is None else f"{s['first_step_within_tolerance']:,}"
            lines.append(f"| {method} | ({x:g}, {y:g}) ({source}) | ({s['final'][0]:.3f}, {s['final'][1]:.3f}) | "
                         f"{s['L1']:.3f} | {s['L2']:.3f} | {s['distance_to_pareto_set']:.4f} | {first} | "
                         f"{s['distance_to_average_optimum']:.3f} | {s['pareto_stationarity']:.2e} | "
                         f"{s['steps']:,}{' (settled)' if s['settled'] else ''} | {s['seconds']:.0f} |")
    kept = path.read_text().split(MARKER, 1)[1] if path.exists() and MARKER in path.read_text() else "\n"
    path.write_text("\n".join(lines) + "\n\n" + MARKER + kept)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mtl_toy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="Adam steps per run (the released toy.py: 100,000)")
    parser.add_argument("--record-every", type=int, default=500, help="steps between recorded points")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="distance to the Pareto set that counts as reached")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="stop a run when θ moved less than this over 10 records (0, the paper's protocol: "
                             "run every step; 0.005 takes a third of the time)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (processes)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the figure and report from the JSON")
    args = parser.parse_args(argv)
    curve = pareto_set()
    if args.plot_only:
        results = json.loads(RESULTS.read_text())
        for result in results["runs"].values():  # the summaries again, from the trajectories
            result["summary"] = summarise(result, curve, results["settings"]["tolerance"],
                                          results["settings"]["record_every"])
    else:
        import datetime
        import platform

        results = {"settings": {"steps": args.steps, "record_every": args.record_every, "tolerance": args.tolerance,
                                "settle": args.settle,
                                "optimizer": "adam lr 0.001 epsilon 1e-8 (experiment=mtl_toy)",
                                "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores",
                                "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                                                      capture_output=True).stdout.strip(),
                                "load_before": load_average()},
                   "pareto_set": {"ends": [curve[0].tolist(), curve[-1].tolist()],
                                  "average_minimum": curve[len(curve) // 2].tolist()},
                   "runs": {}}
        jobs = [(method, (x, y), args.steps, args.record_every, args.settle)
                for x, y, _ in STARTS for method in METHODS]
        began = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.jobs) as pool:
            for result in pool.imap_unordered(_run_job, jobs):
                key = f"{result['method']}@{result['start'][0]},{result['start'][1]}"
                result["summary"] = summarise(result, curve, args.tolerance, args.record_every)
                results["runs"][key] = result
                results["settings"]["seconds"] = time.perf_counter() - began
                RESULTS.write_text(json.dumps(results))  # as they come: an interruption loses little
                s = result["summary"]
                print(f"{key:>22}: final ({s['final'][0]:7.3f}, {s['final'][1]:7.3f})  distance to Pareto set "
                      f"{s['distance_to_pareto_set']:.4f}  reached {s['reached']}  ({result['seconds']:.0f} s)",
                      flush=True)
        results["settings"]["load_after"] = load_average()
        RESULTS.write_text(json.dumps(results))
    plot(results, curve, FIGURE)
    report(results, REPORT)
    print(f"wrote {RESULTS.name}, {FIGURE.name}, {REPORT.name}")


if __name__ == "__main__":
    main()
