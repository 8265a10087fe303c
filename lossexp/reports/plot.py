"""The sweep's figure: the objective against each swept parameter, and each child's final
per-component losses (``loss/<c>``), so a composition's terms can be compared at a glance."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import List, Sequence

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
