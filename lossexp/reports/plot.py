"""The sweep's figures: the objective against each swept parameter, and each child's final
per-component losses (``loss/<c>``), so a composition's terms can be compared at a glance; with
several objectives, their Pareto front (:func:`plot_front`).

Laid out so that nothing overlaps at its own size: Matplotlib's constrained layout places every
panel, run names are broken at their commas onto several lines (one override per line), a panel
is as wide as its labels need side by side, and the components' legend sits below the panels,
never over the bars.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lossexp.reports.query import RunRow

PANEL_WIDTH, PANEL_HEIGHT = 4.5, 4.0
#: inches per character of a tick label (font size "small"), with a margin, so labels never touch
INCH_PER_CHAR = 0.085
LABEL_WIDTH = 18


def _numbers(values: Sequence[str]) -> List[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def run_label(name: str) -> str:
    """A run name as a tick label: one override per line, its value on the next when it is long."""
    lines = []
    for part in name.split(","):
        key, sep, value = part.partition("=")
        lines += [key + sep, value] if sep and len(part) > LABEL_WIDTH else [part]
    return "\n".join(lines)


#: standard errors of grouped rows (seeds averaged): run id → (objective's, {component: its})
Errors = Dict[str, Tuple[float, Dict[str, float]]]


def _parameter_panel(ax: Any, rows: Sequence[RunRow], key: str, objective: str, errors: Optional[Errors]) -> None:
    values = [r.params.get(key, "") for r in rows]
    numbers = _numbers(values)
    labels = sorted(set(values))
    xs = numbers if numbers is not None else [labels.index(v) for v in values]
    ys = [r.objective for r in rows]
    if errors:
        ax.errorbar(xs, ys, yerr=[errors[r.run_id][0] for r in rows], fmt="o", capsize=4)
    else:
        ax.scatter(xs, ys)
    if numbers is not None:
        positive = [n for n in numbers if n > 0]
        if len(positive) == len(numbers) and positive and max(positive) / min(positive) >= 10:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(labels)), [run_label(label) for label in labels], fontsize="small")
        ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel(key)
    ax.set_ylabel(f"objective ({objective})")
    ax.grid(alpha=0.3)


def _components_panel(ax: Any, rows: Sequence[RunRow], errors: Optional[Errors]) -> List[str]:
    components = sorted({c for r in rows for c in r.component_losses})
    width = 0.8 / max(len(components), 1)
    for i, component in enumerate(components):
        heights = [r.component_losses.get(component, math.nan) for r in rows]
        spread = [errors[r.run_id][1].get(component, math.nan) for r in rows] if errors else None
        ax.bar([j + i * width for j in range(len(rows))], heights, width, label=component, yerr=spread, capsize=3)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [run_label(r.name) for r in rows],
                  fontsize="small")
    if components and all(r.component_losses.get(c, 1) > 0 for r in rows for c in components):
        ax.set_yscale("log")
    ax.set_title("final loss/<component>")
    return components


def _panel_width(labels: Sequence[str]) -> float:
    """Inches for a panel with these tick labels side by side (at least :data:`PANEL_WIDTH`)."""
    longest = max((len(line) for label in labels for line in run_label(label).splitlines()), default=0)
    return max(PANEL_WIDTH, 0.6 + len(labels) * (longest + 2) * INCH_PER_CHAR)


def sweep_figure(rows: Sequence[RunRow], keys: Sequence[str], title: str, objective: str,
                 errors: Optional[Errors] = None) -> Any:
    """The figure (Matplotlib, Agg), not yet saved; with ``errors``, each row a group's means with error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.objective is not None]
    widths = [_panel_width({r.params.get(key, "") for r in scored}) for key in keys]
    widths.append(_panel_width([r.name for r in rows]))
    fig, axes = plt.subplots(1, len(widths), figsize=(sum(widths), PANEL_HEIGHT + 1), squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": widths})
    for ax, key in zip(axes[0], keys):
        _parameter_panel(ax, scored, key, objective, errors)
    components = _components_panel(axes[0][-1], rows, errors)
    if components:
        fig.legend(loc="outside lower center", ncols=min(len(components), 6), fontsize="small", frameon=False)
    fig.suptitle(textwrap.fill(title, int(12 * sum(widths))), fontsize="medium")
    return fig


def plot_sweep(rows: Sequence[RunRow], keys: Sequence[str], path: Path, title: str, objective: str,
               errors: Optional[Errors] = None) -> Path:
    """Write the figure to ``path`` (PNG, at the figure's own size) and return it."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(rows, keys, title, objective, errors)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_front(points: Dict[str, Sequence[float]], optimal: Sequence[str], names: Dict[str, str],
               metrics: Sequence[str], directions: Sequence[str], path: Path, title: str) -> Path:
    """Several objectives: each pair of them, every scored child a dot, the Pareto-optimal ones
    ringed and joined in order, to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(i, j) for i in range(len(metrics)) for j in range(i + 1, len(metrics))][:3]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.5), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        ax.scatter([v[i] for v in points.values()], [v[j] for v in points.values()], color="tab:gray", alpha=0.6,
                   label="trials")
        front = sorted((points[k] for k in optimal if k in points), key=lambda v: v[i])
        ax.plot([v[i] for v in front], [v[j] for v in front], "o-", color="tab:red", mfc="none", ms=10,
                label="Pareto-optimal")
        for key in optimal:
            if key in points:
                ax.annotate(names.get(key, key).split(" ")[0], (points[key][i], points[key][j]), fontsize="small",
                            xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel(f"{metrics[i]} ({directions[i]})")
        ax.set_ylabel(f"{metrics[j]} ({directions[j]})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(textwrap.fill(f"Pareto front · {title}", 60 * len(pairs)), fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ablation_figure(rows: Sequence[Tuple[str, float, float]], objective: str, title: str) -> Any:
    """An ablation's table as bars: per left-out component, the objective's mean change over the seeds,
    with ± one standard deviation; the title (the sweep's name) wrapped to the figure's width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _, _ in rows]
    width = max(4.0, 1.2 * len(rows) + 2.0)
    fig, ax = plt.subplots(figsize=(width, PANEL_HEIGHT), constrained_layout=True)
    ax.bar(names, [mean for _, mean, _ in rows], yerr=[std for _, _, std in rows], capsize=6, color="tab:blue")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("component left out")
    ax.set_ylabel(f"Δ {objective} (without − whole)")
    ax.set_title(textwrap.fill(title, int(width / INCH_PER_CHAR) - 8), fontsize="medium")
    return fig


def plot_ablation(rows: Sequence[Tuple[str, float, float]], objective: str, path: Path, title: str) -> Path:
    """Write :func:`ablation_figure` to ``path`` (PNG) and return it."""
    import matplotlib.pyplot as plt

    fig = ablation_figure(rows, objective, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
