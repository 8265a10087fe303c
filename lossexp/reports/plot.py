"""The sweep's figures: the objective against each swept parameter, and each child's final
per-component losses (``loss/<c>``), so a composition's terms can be compared at a glance; with
several objectives, their Pareto front (:func:`plot_front`)."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence

from lossexp.reports.query import RunRow


def _numbers(values: Sequence[str]) -> List[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def plot_sweep(rows: Sequence[RunRow], keys: Sequence[str], path: Path, title: str, objective: str) -> Path:
    """Write the figure to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if r.objective is not None]
    components = sorted({c for r in rows for c in r.component_losses})
    panels = len(keys) + 1
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = [r.params.get(key, "") for r in scored]
        numbers = _numbers(values)
        ys = [r.objective for r in scored]
        if numbers is not None:
            ax.scatter(numbers, ys)
            positive = [n for n in numbers if n > 0]
            if len(positive) == len(numbers) and positive and max(positive) / min(positive) >= 10:
                ax.set_xscale("log")
        else:
            labels = sorted(set(values))
            ax.scatter([labels.index(v) for v in values], ys)
            ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel(key)
        ax.set_ylabel(f"objective ({objective})")
        ax.grid(alpha=0.3)
    ax = axes[0][-1]
    width = 0.8 / max(len(components), 1)
    for i, component in enumerate(components):
        heights = [r.component_losses.get(component, math.nan) for r in rows]
        ax.bar([j + i * width for j in range(len(rows))], heights, width, label=component)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [r.name for r in rows], rotation=20, ha="right")
    if components and all(r.component_losses.get(c, 1) > 0 for r in rows for c in components):
        ax.set_yscale("log")
    ax.set_title("final loss/<component>")
    ax.legend(fontsize="small")
    fig.suptitle(textwrap.fill(title, 40 * panels), fontsize="medium")
    fig.tight_layout()
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
