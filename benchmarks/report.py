"""``benchmarks/RESULTS.md`` from ``benchmarks/results.json``: tables, goals met or missed."""
from __future__ import annotations

from typing import Any, Dict, List


def _r(stat: Dict[str, Any]) -> str:
    return f"{stat['median']:.3f} ({stat['min']:.3f}–{stat['max']:.3f})"


def _ms(stat: Dict[str, Any]) -> str:
    return f"{stat['median'] * 1000:.1f} ms ({stat['min'] * 1000:.1f}–{stat['max'] * 1000:.1f})"


def _s(stat: Dict[str, Any]) -> str:
    return f"{stat['median']:.2f} s ({stat['min']:.2f}–{stat['max']:.2f})"


def _verdict(value: float, goal: float, lower_is_better: bool = True) -> str:
    met = value <= goal if lower_is_better else value >= goal
    return f"{'met' if met else 'MISSED'} (goal {'≤' if lower_is_better else '≥'} {goal:g})"


def render(results: Dict[str, Any]) -> str:
    m = results["machine"]
    lines: List[str] = [
        "# lossexp benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`) from `benchmarks/results.json`. Ratios are of",
        "measurements taken side by side in one run, variants interleaved; median (min–max over repeats).",
        "",
        "| machine | |", "|---|---|",
        f"| cores | {m['cores']} |", f"| CPU | {m['cpu']} |", f"| Python | {m['python']} |",
        f"| TensorFlow | {m['tensorflow']} |", f"| Keras | {m['keras']} |",
        f"| date | {results['date']} |", f"| wall time of the run | {results['wall_seconds']:.0f} s |", "",
    ]
    if "overhead" in results:
        o = results["overhead"]
        lines += [
            "## 1–2. Overhead and tracking cost", "", f"`{o['setup']['command']}` (drift statistics on, "
            f"log every {o['setup']['log_every_n_steps']} steps), {o['setup']['repeats']} repeats of "
            f"{o['setup']['epochs']} epochs; epoch time is the median of epochs 2..E.", "",
            "| variant | epoch time |", "|---|---|",
            *(f"| {v} | {_ms(s)} |" for v, s in o["epoch_seconds"].items()), "",
            "| ratio | per-repeat median (range) | of medians | verdict |", "|---|---|---|---|",
            f"| overhead: lossexp / plain Keras | {_r(o['overhead_ratio'])} | {o['overhead_ratio']['of_medians']:.3f} "
            f"| {_verdict(o['overhead_ratio']['median'], o['goals']['overhead_ratio'])} |",
            f"| lossexp / plain Keras with the same `steps_per_execution` "
            f"({o['setup']['steps_per_execution']}) | {_r(o['overhead_ratio_same_batching'])} "
            f"| {o['overhead_ratio_same_batching']['of_medians']:.3f} | (for reference) |",
            f"| tracking: on / off | {_r(o['tracking_ratio'])} | {o['tracking_ratio']['of_medians']:.3f} "
            f"| {_verdict(o['tracking_ratio']['median'], o['goals']['tracking_ratio'])} |", "",
        ]
    if "recompile" in results:
        r = results["recompile"]
        lines += [
            "## 3. Against R0's recompile-after-every-batch", "",
            f"{r['setup']['network']} on the {r['setup']['data']} data, batch {r['setup']['batch_size']}.", "",
            "| | time per training step |", "|---|---|",
            f"| seed: get weights, compile, fit one batch | {_ms(r['step_seconds']['seed_recompile'])} |",
            f"| lossexp `hist_avg` (in-graph state) | {_ms(r['step_seconds']['lossexp_hist_avg'])} |",
            f"| **speed-up** | **{r['speedup']['median']:.0f}×** "
            f"({r['speedup']['min']:.0f}–{r['speedup']['max']:.0f}), "
            f"{_verdict(r['speedup']['median'], r['goal'], lower_is_better=False)} |", "",
        ]
    if "startup" in results:
        s = results["startup"]
        lines += [
            "## 4. Start-up", "", "| command | wall time |", "|---|---|",
            f"| `lossexp --help` | {_s(s['help_seconds'])}, "
            f"{_verdict(s['help_seconds']['median'], s['goal_seconds'])} |",
            f"| `lossexp components` | {_s(s['components_seconds'])}, "
            f"{_verdict(s['components_seconds']['median'], s['goal_seconds'])} |",
            f"| `{s['train_command']}`: to the end of the first training step | {_s(s['train_first_step_seconds'])} |",
            f"| the same, whole command | {_s(s['train_wall_seconds'])} |", "",
        ]
    if "growth" in results:
        g = results["growth"]
        params = g["setup"]["parameters"]
        lines += [
            "## 5. Growth", "", f"MLP on digits, {g['setup']['repeats']} repeats of {g['setup']['epochs']} epochs.", "",
            f"By model size ({', '.join(g['setup']['size_series_components'])}):", "",
            "| size | parameters | overhead ratio |", "|---|---|---|",
            *(f"| {size} | {params[size]:,} | {_r(stat)} |" for size, stat in g["overhead_by_size"].items()), "",
            "By number of components (100k model):", "", "| components | overhead ratio |", "|---|---|",
            *(f"| {n} | {_r(stat)} |" for n, stat in g["overhead_by_components_at_100k"].items()), "",
            f"Least-squares line through the component series: ratio ≈ "
            f"{g['components_linear_fit']['ratio_at_zero']:.3f} + "
            f"{g['components_linear_fit']['ratio_per_component']:.4f} × components.", "",
        ]
    if "sweeps" in results:
        w = results["sweeps"]
        lines += [
            "## 6. Sweeps", "", f"`{w['command']}`", "", "| launcher | wall time |", "|---|---|",
            *(f"| {name} | {_s(stat)} |" for name, stat in w["wall_seconds"].items()),
            f"| **joblib speed-up** | **{w['joblib_speedup']['median']:.2f}×** |", "",
        ]
    return "\n".join(lines)
