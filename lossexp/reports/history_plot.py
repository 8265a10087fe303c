"""The history figure of ``lossexp compare``: per panel one metric against the MLflow step (the global
training step), the objective's first, then each component's ``loss/<c>`` (solid) and ``val_loss/<c>``
(dashed); per group a line, its runs' mean, in a band of ± one standard error when it has several."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from lossexp.reports.groups import Group
from lossexp.reports.history import Series, band
from lossexp.reports.plot import run_label

PANEL_WIDTH, PANEL_HEIGHT, COLUMNS = 4.5, 3.4, 3


def history_keys(objective: str, components: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """(panel title, its keys): the objective's metric, then each component's training and validation loss."""
    panels = [(objective, [objective])]
    panels += [(f"loss/{c}", [f"loss/{c}", f"val_loss/{c}"]) for c in components]
    return panels


def history_figure(groups: Sequence[Group], histories: Dict[Tuple[str, str], Series], objective: str,
                   title: str):
    """The figure (Matplotlib, Agg), not yet saved; a panel whose metric no run recorded is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    components = sorted({c for g in groups for c in g.components}, key=lambda c: (c != "task", c))  # task first
    recorded = {key for _, key in histories}
    panels = [(name, [k for k in keys if k in recorded]) for name, keys in history_keys(objective, components)]
    panels = [(name, keys) for name, keys in panels if keys]
    columns = max(1, min(COLUMNS, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_WIDTH * columns, PANEL_HEIGHT * rows + 0.8), squeeze=False,
                             layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, keys) in zip(axes.flat, panels):
        low, high = math.inf, 0.0
        for i, group in enumerate(groups):
            for key in keys:
                series = [histories[r.run_id, key] for r in group.rows if (r.run_id, key) in histories]
                if not series:
                    continue
                combined = band(series)
                shown = np.isfinite(combined.mean)
                style = "--" if key.startswith("val_") and key != objective else "-"
                ax.plot(combined.steps[shown], combined.mean[shown], style, color=colors[i % len(colors)],
                        label=group.label if key == keys[0] else None, linewidth=1.2)
                spread = shown & np.isfinite(combined.se)
                if spread.any():
                    ax.fill_between(combined.steps[spread], (combined.mean - combined.se)[spread],
                                    (combined.mean + combined.se)[spread], color=colors[i % len(colors)], alpha=0.2,
                                    linewidth=0)
                if shown.any():
                    low, high = min(low, float(combined.mean[shown].min())), max(high, float(combined.mean[shown].max()))
        if 0 < low and high >= 10 * low:  # all positive over a decade or more
            ax.set_yscale("log")
        ax.set_title(" · ".join(f"{k} ({'--' if k.startswith('val_') and len(keys) > 1 else '—'})" for k in keys),
                     fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, [run_label(label) for label in labels], loc="outside lower center",
                   ncols=min(len(labels), 3), fontsize="small", frameon=False)
    fig.suptitle(textwrap.fill(f"history (mean ± se over runs) · {title}", int(12 * PANEL_WIDTH * columns)),
                 fontsize="medium")
    return fig


def plot_history(groups: Sequence[Group], histories: Dict[Tuple[str, str], Series], objective: str, title: str,
                 path: Path) -> Path:
    """Write :func:`history_figure` to ``path`` (PNG) and return it."""
    import matplotlib.pyplot as plt

    fig = history_figure(groups, histories, objective, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
