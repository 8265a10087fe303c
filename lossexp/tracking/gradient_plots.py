"""``plots/gradients.png``: which part of the loss moved the weights, over training.

Three panels from the run's gradient diagnostics (all shared weights):

* the pairwise cosines between the parts' gradients as a heat map — one row per pair, one column
  per sampled step, red where two parts pull against each other (cosine < 0), blue where they agree;
* each part's gradient norm, log scale (its own weight applied);
* each part's share of the update direction (they sum to 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lossexp import metric_names  # noqa: E402

History = Dict[str, List[Tuple[int, float]]]


def _players(history: History) -> set:
    """The players of in-step diagnostics (``weight_grad/<player>/<part>/<stat>``): their
    ``weight_grad/<player>/norm`` is an update's norm, not a part's (a GAN run has no plot)."""
    return {key.split("/")[1] for key in history if metric_names.is_gradient(key) and key.count("/") == 3}


def _series(history: History, stat: str) -> Dict[str, List[Tuple[int, float]]]:
    """task → its whole-network series of ``stat`` (``norm``, ``share``, ``cos_<other>``)."""
    found, players = {}, _players(history)
    for key, points in history.items():
        parts = metric_names.gradient_parts(key)
        if parts is not None and parts[1] is None and parts[2] == stat and points and parts[0] not in players:
            found[parts[0]] = points
    return found


def _pairs(history: History) -> Dict[str, List[Tuple[int, float]]]:
    """``a · b`` → the cosine series of every pair of parts."""
    found = {}
    for key, points in history.items():
        parts = metric_names.gradient_parts(key)
        if parts is not None and parts[1] is None and parts[2].startswith("cos_") and points:
            found[f"{parts[2][len('cos_'):]} · {parts[0]}"] = points
    return found


def has_gradients(history: History) -> bool:
    return bool(_series(history, "norm"))


def _heat_map(ax, fig, pairs: Dict[str, List[Tuple[int, float]]]) -> None:
    steps = sorted({step for points in pairs.values() for step, _ in points})
    column = {step: i for i, step in enumerate(steps)}
    grid = np.full((len(pairs), len(steps)), np.nan)
    for row, points in enumerate(pairs.values()):
        for step, value in points:
            grid[row, column[step]] = value
    edges = np.array(steps + [steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1)], dtype=float)
    mesh = ax.pcolormesh(edges, np.arange(len(pairs) + 1), np.ma.masked_invalid(grid), cmap="RdBu", vmin=-1, vmax=1,
                         shading="flat")
    ax.set_yticks(np.arange(len(pairs)) + 0.5, list(pairs), fontsize=8)
    ax.set_title("Cosine between the parts' gradients (red: they conflict)", pad=34)
    fig.colorbar(mesh, ax=ax, location="top", fraction=0.08, pad=0.02, aspect=60)  # keeps the step axes aligned


def _lines(ax, series: Dict[str, List[Tuple[int, float]]], title: str, log: bool) -> None:
    for task, points in series.items():
        steps, values = zip(*points)
        values = np.asarray(values, dtype=float)
        if log:
            values = np.where(values > 0, values, np.nan)
        ax.plot(steps, values, label=task, linewidth=1.3)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)


def gradient_figure(history: History, title: str):
    """The figure (Matplotlib, Agg), not yet saved."""
    pairs = _pairs(history)
    panels = (1 if pairs else 0) + 2
    fig, axes = plt.subplots(panels, 1, figsize=(9, 3.2 * panels), squeeze=False, sharex=True)
    axes = list(axes[:, 0])
    if pairs:
        _heat_map(axes.pop(0), fig, pairs)
    _lines(axes[0], _series(history, "norm"), "Gradient norm of each part (its weight applied)", log=True)
    _lines(axes[1], _series(history, "share"), "Share of the update direction", log=False)
    for ax in fig.axes[:panels]:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: gradients")
    fig.tight_layout()
    return fig


def plot_gradients(history: History, path: Path, title: str) -> Optional[Path]:
    """Write :func:`gradient_figure` to ``path`` (PNG) and return it; None when the run has no diagnostics."""
    if not has_gradients(history):
        return None
    fig = gradient_figure(history, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
