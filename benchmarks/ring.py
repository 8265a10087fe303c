"""PacGAN's 2-D ring (Lin et al. 2018, Table 1) reproduced with lossexp, then historical averaging on it.

Variants, each the paper's setup as shipped (``experiment=ring_pacgan`` / ``ring_pacgan2``):

* ``gan``, ``pacgan2`` — the paper's rows GAN and PacGAN2;
* ``gan_hist_avg``, ``pacgan2_hist_avg`` — the same with ``loss=hist_avg`` (Salimans et al.'s
  historical averaging on both players) at ``loss.hist_avg.weight=W``.

Seed s sets the data draw, the packing, the initial weights and the noise (``data.seed=s
trainer.seed=s``). A run trains through the product's own pieces — Hydra composition and
validation, the adversarial regime's ``build`` / ``fit_arguments`` / ``callbacks`` (the ring scorer
on 2,500 samples of fixed noise after every epoch of 1,000 steps) — without MLflow, which does not
change training. After every epoch it writes its curve (modes covered, % high quality, high-quality
samples per mode, the players' losses) to ``benchmarks/ring_paper/runs/<run>.json`` and every 10
epochs its samples to ``benchmarks/ring_paper/samples/<run>.npz``. The first E
epochs of a longer run are the same computation as a run of E epochs (same seeds, same data order,
scores at each epoch end), so a result at E epochs is read from any stored run that reached E.
Finished work is never redone: run the same command again to resume after an interruption. Every
10 epochs a run also saves its state — every variable of the model (both players, batch-norm
statistics, the noise generator's seed state) and of both optimizers — to
``benchmarks/ring_paper/checkpoints/<run>.npz`` (about 11 MB, deleted when the run finishes; committed
with the run's samples while it is unfinished, since a session's uncommitted files do not outlive
it); a run stopped short of its length resumes from its last checkpoint. A resumed run is the same
training from the same state; observed to be the uninterrupted run exactly: gan and pacgan2 seed 0,
resumed at epochs 30 and 60 (gan) and 20 and 50 (pacgan2), scored every one of their 117 and 99
epochs (modes, high quality, per-mode counts, losses to 5 digits) as the same runs trained from
epoch 0 without a stop (same software, same kind of machine).

    python -m benchmarks.ring --stage curves              # gan, pacgan2, seeds 0 and 1, the paper's 400 epochs
    python -m benchmarks.ring --stage plateau              # plot the curves: benchmarks/ring_paper/plateau.png
    python -m benchmarks.ring --stage sweep --sweep-epochs S   # hist_avg weights on gan (seeds 0–2) at S epochs
    python -m benchmarks.ring --stage table --epochs E --weight W   # 10 seeds of the four variants
    python -m benchmarks.ring --stage table --epochs E --variants gan,pacgan2   # … of some of them
    python -m benchmarks.ring --stage report --epochs E --weight W --sweep-epochs S  # ring_paper.json, tables.md, PNGs
    python -m benchmarks.ring --stage time                 # seconds per epoch, gan and pacgan2, XLA on and off

``--jobs`` runs (default 2) train at once, each with one TensorFlow thread; run the whole thing
under ``nice -n 19``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
STORE = HERE / "ring_paper"
RUNS = STORE / "runs"
SAMPLES = STORE / "samples"
CHECKPOINTS = STORE / "checkpoints"
RESULTS = HERE / "ring_paper.json"
TABLE = HERE / "RING.md"
PAPER_EPOCHS = 400
STEPS_PER_EPOCH = 1000
SAMPLES_EVERY = 10
#: epochs the time stage trains (the first includes tracing and compiling)
TIMED_EPOCHS = 2
#: epochs in the running mean of the plateau plot
WINDOW = 10

#: variant → (experiment, with historical averaging)
VARIANTS = {"gan": ("ring_pacgan", False), "pacgan2": ("ring_pacgan2", False),
            "gan_hist_avg": ("ring_pacgan", True), "pacgan2_hist_avg": ("ring_pacgan2", True)}
#: Lin et al. 2018, Table 1, 2-D ring: mean ± standard error over 10 trials
PAPER = {"gan": {"modes": (6.3, 0.5), "hq": (98.2, 0.2)}, "pacgan2": {"modes": (7.9, 0.1), "hq": (95.6, 2.0)}}


@dataclass(frozen=True)
class Run:
    """One training run: a variant, a seed, the hist_avg weight (None without it), its epochs."""

    variant: str
    seed: int
    weight: Optional[float]
    epochs: int

    @property
    def key(self) -> str:
        """The run's identity without its length: runs of one key share their first epochs."""
        weight = "" if self.weight is None else f"-w{self.weight:g}"
        return f"{self.variant}{weight}-s{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.key}-e{self.epochs}"

    def overrides(self) -> List[str]:
        experiment, hist_avg = VARIANTS[self.variant]
        extra = ["loss=hist_avg", f"loss.hist_avg.weight={self.weight}"] if hist_avg else []
        # trainer.shuffle=once: the order every run of the table began with (Keras' fit on arrays under a
        # fixed seed: one order, every epoch), kept so that its 40 runs are trained alike (RING.md)
        return [f"experiment={experiment}", f"data.seed={self.seed}", f"trainer.seed={self.seed}",
                f"trainer.epochs={self.epochs}", "trainer.shuffle=once", *extra]


# --- one run (a subprocess) ----------------------------------------------------------------------
def _write_json(path: Path, payload: Dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload) + "\n")
    temporary.replace(path)


def train(run: Run) -> None:
    """Train ``run`` and write its curve after every epoch (see the module docstring)."""
    from lossexp.sweeps.job import set_tensorflow_threads

    set_tensorflow_threads(1)
    import keras
    import numpy as np

    from benchmarks.common import lossexp_config
    from lossexp.data import load
    from lossexp.evaluation.ring import score
    from lossexp.training.trainer import for_config

    config = lossexp_config(*run.overrides())
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.trainer.seed)
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    own = trainer.callbacks(model, data)
    [scores] = own
    path, samples_path = RUNS / f"{run.name}.json", SAMPLES / f"{run.name}.npz"
    checkpoint = CHECKPOINTS / f"{run.name}.npz"
    record: Dict[str, Any] = {"run": vars(run), "overrides": run.overrides(), "finished": False, "epochs": [],
                              "modes": [], "hq": [], "per_mode": [], "losses": [], "seconds": []}
    kept: Dict[str, Any] = {}
    done = restore(model, checkpoint, path, samples_path, record, kept)
    if done:
        print(f"{run.name}: resumed after epoch {done}", flush=True)

    class Curve(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            result = score(scores.samples, scores.scorer.modes, scores.scorer.std)
            record["epochs"].append(epoch + 1)
            record["modes"].append(result.modes_covered)
            record["hq"].append(round(result.high_quality, 4))
            record["per_mode"].append(list(result.per_mode))
            record["losses"].append({k: round(float(v), 5) for k, v in logs.items() if k.startswith(("loss", "term"))})
            record["seconds"].append(round(time.perf_counter() - self.start, 2))
            kept[f"epoch_{epoch + 1}"] = scores.samples.astype("float32")
            if (epoch + 1) % SAMPLES_EVERY == 0 or epoch + 1 == run.epochs:
                np.savez_compressed(samples_path.with_suffix(".tmp.npz"), **kept)
                samples_path.with_suffix(".tmp.npz").replace(samples_path)
                save(model, checkpoint, epoch + 1)
            _write_json(path, record)

    model.fit(**trainer.fit_arguments(data), initial_epoch=done, epochs=run.epochs, callbacks=[*own, Curve()],
              verbose=0)
    record["finished"] = True
    _write_json(path, record)
    checkpoint.unlink(missing_ok=True)  # only a run stopped short of its length resumes


def state(model: Any) -> List[Any]:
    """Every variable training changes, in a fixed order, each once: both players' networks (with their
    batch-norm statistics), the components' state, the noise seed state and each player's optimizer's
    (not the running metrics, which every epoch resets)."""
    players = ("generator", "discriminator")
    variables = [*(v for p in players for v in model.player_network(p).variables),
                 *(v for c in model.components for v in c.variables), model.noise.state,
                 *(v for p in players for v in model.player_optimizer(p).variables)]
    return list({id(v): v for v in variables}.values())


def save(model: Any, checkpoint: Path, epochs_done: int) -> None:
    import numpy as np

    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    temporary = checkpoint.with_suffix(".tmp.npz")
    np.savez(temporary, epochs_done=epochs_done, **{f"v{i}": np.asarray(v) for i, v in enumerate(state(model))})
    temporary.replace(checkpoint)


def restore(model: Any, checkpoint: Path, path: Path, samples_path: Path, record: Dict[str, Any],
            kept: Dict[str, Any]) -> int:
    """Load ``checkpoint`` (if any) into ``model``, and the run's record and samples up to it; returns
    the epochs it had done (0 without a checkpoint)."""
    import numpy as np

    if not checkpoint.exists() or not path.exists():
        return 0
    saved = np.load(checkpoint)
    variables = state(model)
    if len(saved.files) - 1 != len(variables):
        raise SystemExit(f"{checkpoint}: {len(saved.files) - 1} variables saved, the model has {len(variables)}")
    for i, variable in enumerate(variables):
        variable.assign(saved[f"v{i}"])
    done = int(saved["epochs_done"])
    stored_record = json.loads(path.read_text())
    for key in ("epochs", "modes", "hq", "per_mode", "losses", "seconds"):
        record[key] = stored_record[key][:done]
    record["resumed_at"] = [*stored_record.get("resumed_at", []), done]
    if samples_path.exists():
        with np.load(samples_path) as samples:
            kept.update({name: samples[name] for name in samples.files if int(name.split("_")[1]) <= done})
    return done


def time_epochs(variant: str, jit_compile: bool, epochs: int) -> Dict[str, Any]:
    """Wall and CPU seconds of each of ``epochs`` epochs of ``variant`` (seed 0) with one
    TensorFlow thread, as :func:`train` runs; the first epoch includes tracing and compiling."""
    from lossexp.sweeps.job import set_tensorflow_threads

    set_tensorflow_threads(1)
    import keras

    from benchmarks.common import lossexp_config
    from lossexp.data import load
    from lossexp.training.trainer import for_config

    config = lossexp_config(*Run(variant, 0, None, epochs).overrides(), f"trainer.jit_compile={str(jit_compile).lower()}")
    keras.utils.set_random_seed(0)
    trainer = for_config(config)
    data = trainer.prepare(load(config.data))
    model = trainer.build(data)
    wall: List[float] = []
    cpu: List[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:  # before the ring scorer's callback
            wall.append(round(time.perf_counter() - self.start[0], 2))
            cpu.append(round(time.process_time() - self.start[1], 2))

    model.fit(**trainer.fit_arguments(data), epochs=epochs, callbacks=[Timer(), *trainer.callbacks(model, data)],
              verbose=0)
    return {"variant": variant, "jit_compile": jit_compile, "wall_seconds": wall, "cpu_seconds": cpu}


# --- the store of runs -----------------------------------------------------------------------------
def stored() -> List[Dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]


def reaching(key: str, epochs: int, records: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A stored run of ``key`` that has scored ``epochs`` epochs (the longest such), else None."""
    found = [r for r in records if Run(**r["run"]).key == key and len(r["epochs"]) >= epochs]
    return max(found, key=lambda r: len(r["epochs"]), default=None)


def at(record: Dict[str, Any], epochs: int) -> Dict[str, Any]:
    """The run's scores after ``epochs`` epochs."""
    i = epochs - 1
    return {"seed": record["run"]["seed"], "modes": record["modes"][i], "hq": record["hq"][i],
            "per_mode": record["per_mode"][i], "epochs": epochs, "from_run": Run(**record["run"]).name}


def schedule(runs: Sequence[Run], jobs: int) -> None:
    """Train every run not yet covered by a stored run, ``jobs`` at a time, each in its own process."""
    records = stored()
    todo = [run for run in runs if reaching(run.key, run.epochs, records) is None]
    print(f"{len(runs) - len(todo)} of {len(runs)} runs already stored; {len(todo)} to train", flush=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    SAMPLES.mkdir(parents=True, exist_ok=True)
    running: Dict[Any, Run] = {}
    failed: List[str] = []
    while todo or running:
        while todo and len(running) < jobs:
            run = todo.pop(0)
            args = [sys.executable, "-m", "benchmarks.ring", "--one", json.dumps(vars(run))]
            running[subprocess.Popen(args, cwd=HERE.parent)] = run
            print(f"{time.strftime('%H:%M:%S')} start {run.name}", flush=True)
        time.sleep(5)
        for process in [p for p in running if p.poll() is not None]:
            run = running.pop(process)
            status = "done" if process.returncode == 0 else f"FAILED ({process.returncode})"
            if process.returncode != 0:
                failed.append(run.name)
            print(f"{time.strftime('%H:%M:%S')} {status} {run.name}", flush=True)
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)}")


# --- statistics and the report ---------------------------------------------------------------------
def summary(values: Sequence[float]) -> Dict[str, float]:
    import numpy as np

    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "sem": std / float(np.sqrt(len(values)))}


def variant_result(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    modes, hq = summary([r["modes"] for r in rows]), summary([r["hq"] for r in rows])
    return {"n_seeds": len(rows), "modes_mean": modes["mean"], "modes_sem": modes["sem"], "modes_std": modes["std"],
            "hq_mean": hq["mean"], "hq_sem": hq["sem"], "hq_std": hq["std"], "seeds": rows}


def within(mean: float, sem: float, paper: tuple) -> bool:
    """Do the intervals mean ± sem (ours) and the paper's mean ± its standard error overlap?"""
    return abs(mean - paper[0]) <= sem + paper[1]


def compare(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
    """Two-sided Welch t-test and Mann–Whitney U of ``b`` against ``a`` (independent seeds)."""
    from scipy import stats

    welch = stats.ttest_ind(b, a, equal_var=False)
    if len(set(a) | set(b)) > 1:
        mann_whitney = float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    else:
        mann_whitney = 1.0
    difference = float(sum(b) / len(b) - sum(a) / len(a))
    t_p = float(welch.pvalue) if welch.pvalue == welch.pvalue else 1.0  # identical constant samples: no difference
    return {"difference": difference, "welch_p": t_p, "mann_whitney_p": mann_whitney}


def plot_curves(records: Sequence[Dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, record in enumerate(records):
        steps = np.array(record["epochs"]) * STEPS_PER_EPOCH / 1000
        label, colour = Run(**record["run"]).key, f"C{i}"
        if not record["finished"]:
            label += f", partial: {len(record['epochs'])} of {record['run']['epochs']} epochs"
        for axis, values in ((left, record["modes"]), (right, record["hq"])):
            axis.plot(steps, values, color=colour, linewidth=0.6, alpha=0.35)
            if len(values) >= WINDOW:  # the running mean over WINDOW epochs, at its window's last epoch
                mean = np.convolve(values, np.ones(WINDOW) / WINDOW, mode="valid")
                axis.plot(steps[WINDOW - 1:], mean, color=colour, linewidth=1.6, label=f"{label} ({WINDOW}-epoch mean)")
    left.set(xlabel="thousand steps", ylabel="modes covered (of 8)", ylim=(-0.2, 8.4))
    right.set(xlabel="thousand steps", ylabel="high-quality samples (%)", ylim=(0, 100))
    for axis in (left, right):
        axis.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower right")
    partial = " — PARTIAL: unfinished runs" if not all(r["finished"] for r in records) else ""
    fig.suptitle(f"PacGAN's 2-D ring with lossexp: score after every epoch (1,000 steps), 2,500 samples{partial}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_samples(row: Dict[str, Any], variant: str, path: Path) -> Path:
    import numpy as np

    from lossexp.data.ring import modes
    from lossexp.evaluation.ring import RingScorer

    samples = np.load(SAMPLES / f"{row['from_run']}.npz")[f"epoch_{row['epochs']}"]
    title = f"{variant}, seed {row['seed']}, {row['epochs'] * STEPS_PER_EPOCH:,} steps"
    return RingScorer(modes(1.0), 0.01).plot(samples, path, title)


def report(epochs: int, weight: float, seeds: int, sweep_weights: Sequence[float], sweep_seeds: int,
           sweep_epochs: int) -> Dict:
    records = stored()
    table: Dict[str, Any] = {}
    for variant, (_, hist_avg) in VARIANTS.items():
        rows = []
        for seed in range(seeds):
            record = reaching(Run(variant, seed, weight if hist_avg else None, epochs).key, epochs, records)
            if record is not None:
                rows.append(at(record, epochs))
        if rows:
            table[variant] = variant_result(rows)
    sweep = {}
    for w in sweep_weights:
        rows = [at(r, sweep_epochs) for s in range(sweep_seeds)
                if (r := reaching(Run("gan_hist_avg", s, w, sweep_epochs).key, sweep_epochs, records)) is not None]
        if rows:
            sweep[f"{w:g}"] = variant_result(rows)
    tests = {}
    for base in ("gan", "pacgan2"):
        with_hist = f"{base}_hist_avg"
        if base in table and with_hist in table:
            a, b = table[base]["seeds"], table[with_hist]["seeds"]
            tests[with_hist] = {"modes": compare([r["modes"] for r in a], [r["modes"] for r in b]),
                                "hq": compare([r["hq"] for r in a], [r["hq"] for r in b])}
    verdicts = {}
    for variant, paper in PAPER.items():
        if variant in table:
            row = table[variant]
            verdicts[variant] = {"modes_within": within(row["modes_mean"], row["modes_sem"], paper["modes"]),
                                 "hq_within": within(row["hq_mean"], row["hq_sem"], paper["hq"])}
    curves = [r for r in records if r["run"]["epochs"] == PAPER_EPOCHS]
    results = {
        **table,
        "setup": {"experiments": {v: e for v, (e, _) in VARIANTS.items()}, "epochs": epochs,
                  "steps": epochs * STEPS_PER_EPOCH, "paper_steps": PAPER_EPOCHS * STEPS_PER_EPOCH,
                  "hist_avg_weight": weight, "eval_samples": 2500, "seeds_planned": seeds},
        "paper": PAPER,
        "verdicts": verdicts,
        "hist_avg_tests": tests,
        "hist_avg_sweep": {"variant": "gan_hist_avg", "epochs": sweep_epochs, "weights": sweep},
        "full_length_runs": {Run(**r["run"]).key: {"epochs_done": len(r["epochs"]), "finished": r["finished"],
                                                   "final_modes": r["modes"][-1], "final_hq": r["hq"][-1]}
                             for r in curves if r["epochs"]},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for variant in table:
        plot_samples(table[variant]["seeds"][0], variant, STORE / f"samples_{variant}.png")
    return results


def _pm(mean: float, sem: float, std: float, digits: int = 1) -> str:
    return f"{mean:.{digits}f} ± {sem:.{digits}f} (± {std:.{digits}f})"


def markdown(results: Dict[str, Any]) -> str:
    """The report's tables: ours beside the paper's rows, the hist_avg tests and sweep, per-seed scores."""
    setup = results["setup"]
    lines = [f"At {setup['steps']:,} steps per player ({setup['epochs']} epochs of 1,000; the paper: "
             f"{setup['paper_steps']:,}); mean ± standard error (± standard deviation) over seeds; 2,500 samples.",
             "", "| variant | seeds | modes (of 8) | high-quality samples (%) | paper: modes | paper: high quality (%) "
             "| within the paper's error bars |", "|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        if variant not in results:
            continue
        row, paper, verdict = results[variant], PAPER.get(variant), results["verdicts"].get(variant)
        paper_modes = f"{paper['modes'][0]} ± {paper['modes'][1]}" if paper else "—"
        paper_hq = f"{paper['hq'][0]} ± {paper['hq'][1]}" if paper else "—"
        if verdict:
            said = (f"modes {'yes' if verdict['modes_within'] else 'no'}, "
                    f"high quality {'yes' if verdict['hq_within'] else 'no'}")
        else:
            said = "(no paper row)"
        lines.append(f"| {variant} | {row['n_seeds']} | {_pm(row['modes_mean'], row['modes_sem'], row['modes_std'], 2)}"
                     f" | {_pm(row['hq_mean'], row['hq_sem'], row['hq_std'])} | {paper_modes} | {paper_hq} | {said} |")
    if results["hist_avg_tests"]:
        lines += ["", "Historical averaging against the same variant without it (two-sided, over seeds):", "",
                  "| variant | measure | difference of means | Welch t-test p | Mann–Whitney U p |",
                  "|---|---|---|---|---|"]
        for variant, test in results["hist_avg_tests"].items():
            for measure, label in (("modes", "modes"), ("hq", "high quality (%)")):
                t = test[measure]
                lines.append(f"| {variant} | {label} | {t['difference']:+.2f} | {t['welch_p']:.3f} "
                             f"| {t['mann_whitney_p']:.3f} |")
    sweep = results["hist_avg_sweep"]["weights"]
    if sweep:
        lines += ["", f"Sweep of `loss.hist_avg.weight` on gan_hist_avg ({results['hist_avg_sweep']['epochs']} "
                  "epochs):", "", "| weight | seeds | modes | high quality (%) | per seed: modes / high quality |",
                  "|---|---|---|---|---|"]
        for weight, row in sweep.items():
            seeds = ", ".join(f"{r['modes']} / {r['hq']:.1f}" for r in row["seeds"])
            modes = _pm(row["modes_mean"], row["modes_sem"], row["modes_std"], 2)
            hq = _pm(row["hq_mean"], row["hq_sem"], row["hq_std"])
            lines.append(f"| {weight} | {row['n_seeds']} | {modes} | {hq} | {seeds} |")
    lines += ["", "Per seed: modes covered, high quality, and the high-quality samples nearest each mode "
              "(mode k at angle k·45°):", "", "| variant | seed | modes | high quality (%) | per-mode counts |",
              "|---|---|---|---|---|"]
    for variant in VARIANTS:
        for row in results.get(variant, {}).get("seeds", []):
            counts = " ".join(str(n) for n in row["per_mode"])
            lines.append(f"| {variant} | {row['seed']} | {row['modes']} | {row['hq']:.2f} | {counts} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("curves", "plateau", "sweep", "table", "report", "time"))
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help="epochs of 1,000 steps")
    parser.add_argument("--weight", type=float, default=0.01, help="loss.hist_avg.weight of the hist_avg variants")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"the table's variants, comma-separated (of {', '.join(VARIANTS)})")
    parser.add_argument("--curve-seeds", type=int, default=2)
    parser.add_argument("--sweep-weights", default="0.001,0.01,0.1")
    parser.add_argument("--sweep-seeds", type=int, default=3)
    parser.add_argument("--sweep-epochs", type=int, help="epochs of the sweep's runs (default: --epochs)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a worker: one run, as JSON
    parser.add_argument("--time-one", help=argparse.SUPPRESS)  # a worker: [variant, jit_compile, epochs]
    args = parser.parse_args(argv)
    if args.one:
        train(Run(**json.loads(args.one)))
        return
    if args.time_one:
        print(json.dumps(time_epochs(*json.loads(args.time_one))), flush=True)
        return
    sweep_weights = [float(w) for w in args.sweep_weights.split(",")]
    sweep_epochs = args.sweep_epochs or args.epochs
    if args.stage == "curves":
        schedule([Run(v, s, None, PAPER_EPOCHS) for s in range(args.curve_seeds) for v in ("gan", "pacgan2")],
                 args.jobs)
    elif args.stage == "plateau":
        curves = [r for r in stored() if r["run"]["epochs"] == PAPER_EPOCHS]
        print(plot_curves(curves, STORE / "plateau.png"))
    elif args.stage == "sweep":
        schedule([Run("gan_hist_avg", s, w, sweep_epochs) for s in range(args.sweep_seeds) for w in sweep_weights],
                 args.jobs)
    elif args.stage == "table":
        chosen = args.variants.split(",")
        if set(chosen) - set(VARIANTS):
            parser.error(f"--variants {args.variants}: choose among {', '.join(VARIANTS)}")
        schedule([Run(v, s, args.weight if hist else None, args.epochs)
                  for s in range(args.seeds) for v, (_, hist) in VARIANTS.items() if v in chosen], args.jobs)
    elif args.stage == "report":
        results = report(args.epochs, args.weight, args.seeds, sweep_weights, args.sweep_seeds, sweep_epochs)
        (STORE / "tables.md").write_text(markdown(results))
        print(markdown(results))
    elif args.stage == "time":  # one process at a time, the variants interleaved
        for variant in ("gan", "pacgan2"):
            for jit_compile in (True, False):
                subprocess.run([sys.executable, "-m", "benchmarks.ring", "--time-one",
                                json.dumps([variant, jit_compile, TIMED_EPOCHS])], cwd=HERE.parent, check=True)
    else:
        parser.error("--stage is required")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
