"""``benchmarks/RESULTS.md`` from ``benchmarks/results.json``: tables, goals met or missed."""
from __future__ import annotations

from typing import Any, Dict, List

from benchmarks.scale import PROFILE_PARTS


def _r(stat: Dict[str, Any]) -> str:
    """A ratio of the fastest fits, with the per-repeat ratios' median and range."""
    return f"{stat['of_fastest']:.3f} (per repeat {stat['median']:.3f}, {stat['min']:.3f}–{stat['max']:.3f})"


def _ms(stat: Dict[str, Any]) -> str:
    """The fastest repeat's epoch, with the median and slowest."""
    return f"{stat['min'] * 1000:.1f} ms (median {stat['median'] * 1000:.1f}, max {stat['max'] * 1000:.1f})"


def _s(stat: Dict[str, Any]) -> str:
    return f"{stat['median']:.2f} s ({stat['min']:.2f}–{stat['max']:.2f})"


def _verdict(value: float, goal: float, lower_is_better: bool = True) -> str:
    met = value <= goal if lower_is_better else value >= goal
    return f"{'met' if met else 'MISSED'} (goal {'≤' if lower_is_better else '≥'} {goal:g})"


def _scale(s: Dict[str, Any]) -> List[str]:
    setup, goals = s["setup"], s["goals"]
    repeats = f"{setup['repeats']} interleaved repeats of {setup['epochs']} epochs ({setup['timed']})"
    partial = ([f"**Partial run**: networks {', '.join(setup['networks'])}; batch "
                f"{', '.join(map(str, setup['batches']))}; sections {', '.join(setup['sections'])}.", ""]
               if setup.get("partial") else [])
    when = sorted(set(setup.get("measured", {}).values()))
    measured = ([f"Measured in {len(when)} runs: " + "; ".join(
        f"{', '.join(section for section, t in setup['measured'].items() if t == at)} at {at}" for at in when)
        + " (the same benchmark code, each section whole).", ""] if len(when) > 1 else [])
    lines = [*partial, *measured,
        "## 1. lossexp against plain Keras, same `steps_per_execution`", "",
        f"Every variant: the same freshly built network, synthetic data, Adam, `steps_per_execution = "
        f"{setup['steps_per_execution']}`; {repeats}. **Headline**: lossexp's default config "
        f"(`loss={'+'.join(setup['default_loss'])}`, drift statistics, tracking into a real MLflow store) "
        "over plain `keras.Model.fit` of the same network. *As written*: the same lossexp run over plain "
        "Keras at its default `steps_per_execution = 1` — labelled, not the headline.", "",
        "| network | parameters | batch | plain epoch | lossexp epoch | **same batching** | verdict | as written |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, ratio in s["same_batching_ratio"].items():
        name, batch = key.split("/")
        times = s["epoch_seconds"][key]
        lines.append(f"| {name} | {s['parameters'][name]:,} | {batch.split('_')[1]} | {_ms(times['plain'])} | "
                     f"{_ms(times['default'])} | **{_r(ratio)}** | "
                     f"{_verdict(ratio['of_fastest'], goals['same_batching_ratio'])} | {_r(s['as_written_ratio'][key])} |")
    if s.get("headline_split"):
        lines += ["", "### The headline split: the maths, and lossexp's own share", "",
                  "The same default maths written by hand in a Keras `train_step` (`benchmarks/scale.py: "
                  "reference_model(..., 'default')`: hist_avg's mean mode with its gradient added per variable, "
                  "the activity penalty through the tape; no tracking, drift or diagnostics), timed in the same "
                  "interleaved repeats: *hand-written / plain* is what the maths costs however it is written, "
                  "*lossexp / hand-written* what lossexp adds to it (composition, breakdown metrics, drift, "
                  "gradient diagnostics, tracking).", "",
                  "| network | batch | hand-written / plain | **lossexp / hand-written** | verdict |", "|---|---|---|---|---|"]
        for key, value in s["headline_split"].items():
            name, batch = key.split("/")
            lines.append(f"| {name} | {batch.split('_')[1]} | {_r(value['hand_written_over_plain'])} | "
                         f"**{_r(value['lossexp_over_hand_written'])}** | "
                         f"{_verdict(value['lossexp_over_hand_written']['of_fastest'], goals['same_batching_ratio'])} |")
    lines += ["", "### Drift statistics", "",
              f"`loss=none` with drift statistics on over off (batch 32, tracking on); {repeats}.", "",
              "| network | drift on / off | verdict |", "|---|---|---|"]
    for key, value in s.get("drift_cost", {}).items():
        lines.append(f"| {key.split('/')[0]} | {_r(value['ratio'])} | "
                     f"{_verdict(value['ratio']['of_fastest'], goals['drift_cost'])} |")
    lines += ["", "### Weight-space terms at the limit", "",
              "One term, drift and tracking off, against the hand-written TensorFlow step for the same maths "
              f"(`benchmarks/scale.py: reference_model`), batch 32; {repeats}.", "",
              "| network / term | lossexp / reference | verdict | lossexp / plain | reference / plain |",
              "|---|---|---|---|---|"]
    for key, value in s.get("weight_space_terms", {}).items():
        lines.append(f"| {key} | {_r(value['lossexp_over_reference'])} | "
                     f"{_verdict(value['lossexp_over_reference']['of_fastest'], goals['lossexp_over_reference'])} | "
                     f"{_r(value['lossexp_over_plain'])} | {_r(value['reference_over_plain'])} |")
    lines += _profile(s.get("profile", {}), setup)
    growth = s.get("growth_at_1M")
    if growth is None:
        return lines + [""]
    taps = growth.get("taps_only")
    lines += ["", "### Growth with the number of components (mlp_1M, batch 32, drift and tracking off)", "",
              "*Mixed*: `benchmarks/scale.py: GROWTH` — hist_avg in its three modes, cross_layer, coef and "
              "activity, most of them reading every weight. *Taps only*: n activity penalties over the three "
              "layers (`GROWTH_TAPS`), lossexp's composition with little maths.", "",
              "| components | mixed / plain | taps only / plain |", "|---|---|---|",
              *(f"| {n} | {_r(r)} | {_r(taps['ratios'][n]) if taps and n in taps['ratios'] else '—'} |"
                for n, r in growth["ratios"].items()), ""]
    for label, line in (("Mixed", growth), ("Taps only", taps)):
        if line:
            lines.append(f"{label}: least-squares line ratio ≈ {line['at_zero']:.3f} + {line['per_component']:.4f} × "
                         f"components, {_verdict(line['per_component'], goals['per_component'])} per component.  ")
    return lines + [""]


def _profile(profile: Dict[str, Any], setup: Dict[str, Any]) -> List[str]:
    """Where the headline's time goes (``benchmarks/scale.py: PROFILE``)."""
    if not profile:
        return []
    n = next(iter(profile.values()))["epoch_seconds"]["plain"]["n"]
    repeats = f"{n} interleaved repeats of {setup['epochs']} epochs ({setup['timed']})"
    lines = ["", "### Where the headline's time goes", "",
             "lossexp's default run built up one part at a time (`benchmarks/scale.py: PROFILE`), each variant "
             "the one before plus one part; batch 32, tracking into a real MLflow store, metrics every 10 steps, "
             f"drift and gradient diagnostics every 100; {repeats}. *Added* is the part's cost "
             "per training step: the median (min–max) over repeats of its variant's epoch minus the one before "
             "it, timed side by side.", "",
             "| network | plain step | part added | variant / plain | added per step |", "|---|---|---|---|---|"]
    for key, table in profile.items():
        name = key.split("/")[0]
        for i, (variant, row) in enumerate(table["parts"].items()):
            plain_step = f"{table['plain_us_per_step']:.0f} µs" if i == 0 else ""
            lines.append(f"| {name if i == 0 else ''} | {plain_step} | {PROFILE_PARTS[variant]} | "
                         f"{_r(row['over_plain'])} | {_us(row['added_us_per_step'])} |")
    return lines


def _us(stat: Dict[str, Any]) -> str:
    """Signed microseconds: median (min–max)."""
    return f"{stat['median']:+.0f} µs ({stat['min']:+.0f} – {stat['max']:+.0f})"


def render(results: Dict[str, Any]) -> str:
    m = results["machine"]
    lines: List[str] = [
        "# lossexp benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`) from `benchmarks/results.json`. Ratios are of",
        "measurements taken side by side in one run, variants interleaved. Section 1 (scale): the ratio of",
        "the two sides' fastest repeats (interference on this shared machine only adds time), then the",
        "per-repeat ratios' median and range; the other sections: median (min–max over repeats).",
        "",
        "| machine | |", "|---|---|",
        f"| cores | {m['cores']} |", f"| CPU | {m['cpu']} |", f"| Python | {m['python']} |",
        f"| TensorFlow | {m['tensorflow']} |", f"| Keras | {m['keras']} |",
        f"| date | {results['date']} |",
        f"| wall time | {results['wall_seconds']:.0f} s ("
        + ", ".join(f"{name} {s:.0f} s" for name, s in results.get("measure_seconds", {}).items()) + ") |", "",
    ]
    if "scale" in results:
        lines += _scale(results["scale"])
    if "recompile" in results:
        r = results["recompile"]
        lines += [
            "## 2. Against R0's recompile-after-every-batch", "",
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
        margin = s["tiny_run_over_import"]["median"]
        lines += [
            "## 3. Start-up", "", "| command | wall time |", "|---|---|",
            f"| `lossexp --help` | {_s(s['help_seconds'])}, {_verdict(s['help_seconds']['median'], s['goal_seconds'])} |",
            f"| `lossexp components` | {_s(s['components_seconds'])}, "
            f"{_verdict(s['components_seconds']['median'], s['goal_seconds'])} |",
            f"| TensorFlow's import: `python -c \"import os, tensorflow; os._exit(0)\"` (no teardown) | "
            f"{_s(s['tensorflow_import_seconds'])} |",
            f"| the same with the interpreter's teardown: `python -c \"import tensorflow\"` | "
            f"{_s(s['tensorflow_import_and_exit_seconds'])} |",
            f"| `{s['tiny_command']}`, existing store | {_s(s['tiny_run_seconds'])} |",
            f"| the tiny run minus TensorFlow's import | {_s(s['tiny_run_over_import'])}, "
            f"{_verdict(margin, s['goal_margin_over_import'])} |",
            f"| to the end of the first compiled call (`startup/first_step_seconds`) | {_s(s['first_step_seconds'])} |",
            "",
        ]
        if "where_the_time_goes" in s:
            lines += [
                "Where the tiny run's time goes (`benchmarks/startup.py: BUILT_UP`): the imports, then the run "
                "built up one part at a time (each row's command is the one before plus that part, the last "
                "is the tiny run as shipped); each row is the median (min–max) over the interleaved repeats of "
                "its command's time minus the one before it.", "", "| part | seconds |", "|---|---|",
                *(f"| {part} | {_s(stat)} |" for part, stat in s["where_the_time_goes"].items()), ""]
    if "sweeps" in results:
        w = results["sweeps"]
        lines += [
            "## 4. Sweeps", "", f"`{w['command']}`", "", "| launcher | wall time |", "|---|---|",
            *(f"| {name} | {_s(stat)} |" for name, stat in w["wall_seconds"].items()),
            f"| **joblib speed-up** | **{w['joblib_speedup']['median']:.2f}×** |", "",
        ]
    return "\n".join(lines)
