"""A one-page PNG of a run: loss components, trainable coefficients and weight drift.

:func:`run_figure` draws the figure (one panel per kind of series that has data) and
:func:`plot_run` saves it; the split lets the figure's panels and lines be inspected without
decoding the PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

History = Dict[str, List[Tuple[int, float]]]

PANELS = (
    ("Loss components (weighted)", lambda k: k.startswith(("loss/", "val_loss/")) or k in ("loss", "val_loss")),
    ("Trainable coefficients", lambda k: k.startswith("coef/")),
    ("Weight drift from init (relative L2)", lambda k: k.startswith("drift/") and k.endswith("/from_init")),
)


def run_figure(history: History, title: str) -> Figure:
    """The run's figure: a panel per kind of series that has data, a line per series
    (validation series dashed), log scale where every value is positive."""
    panels = [(name, sorted(k for k in history if pick(k))) for name, pick in PANELS]
    panels = [(name, keys) for name, keys in panels if keys]
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(8, 3.2 * max(len(panels), 1)), squeeze=False)
    for ax, (name, keys) in zip(axes[:, 0], panels):
        for key in keys:
            steps, values = zip(*history[key])
            ax.plot(steps, values, label=key, linestyle="--" if key.startswith("val_") else "-")
        if all(value > 0 for key in keys for _, value in history[key]):
            ax.set_yscale("log")  # small components stay visible beside the task loss
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_run(history: History, path: Path, title: str) -> Path:
    """Draw :func:`run_figure` into the PNG file ``path``; return ``path``."""
    fig = run_figure(history, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
