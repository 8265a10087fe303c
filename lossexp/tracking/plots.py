"""A one-page PNG of a run: the loss breakdown, component weights and weight drift.

Made to be read, not just drawn:

* the total ``loss`` and ``loss/task`` share a panel, the total as a wide pale band under the task
  loss's thin line, so the two stay distinguishable however small the components are;
* each component's weighted contribution ``loss/<c>`` gets its own colour in a panel of its own
  (log scale when positive), labelled with its share of the final total;
* validation values (``val_…``, one per epoch) are dashed lines with a marker at every epoch (at
  every k-th of a run of more than 40 epochs), in the colour of their training series;
* the total and task loss are on a log scale when they span a factor of 10 or more (a long run's);
* weights (``weight/<c>``, ``weight/coef/<c>``) and ``weight_drift/from_init/<layer>`` follow
  when the run has them (of a deep network, the layers that drifted most named, the rest pale).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lossexp import metric_names  # noqa: E402

History = Dict[str, List[Tuple[int, float]]]
#: drift lines named in the legend at most (a deep network has hundreds of layers)
DRIFT_LABELLED = 10
#: validation markers drawn at most per line (a run of hundreds of epochs has a point per epoch)
VALIDATION_MARKERS = 40
#: the total and task loss are drawn on a log scale when their values span at least this factor
LOG_SPAN = 10.0
TOTAL, TASK = metric_names.LOSS, metric_names.loss(metric_names.TASK)


def _components(history: History) -> List[str]:
    """Component names with a ``loss/<c>`` (or ``val_loss/<c>``) series, task excluded."""
    names = {key.split("/", 1)[1] for key in history if metric_names.is_loss_part(key)}
    return sorted(names - {metric_names.TASK})


def _final(history: History, key: str) -> float | None:
    return history[key][-1][1] if history.get(key) else None


def _draw(ax, history: History, key: str, label: str, **style) -> None:
    """``key`` and its validation twin (dashed, a marker per epoch) in one colour."""
    colour = None
    if history.get(key):
        steps, values = zip(*history[key])
        (line,) = ax.plot(steps, values, label=label, **style)
        colour = line.get_color()
    val_key = metric_names.validation(key)
    if history.get(val_key):
        steps, values = zip(*history[val_key])
        ax.plot(steps, values, label=f"{label} (validation)", color=colour or style.get("color"),
                linestyle="--", marker="o", markersize=4, linewidth=1.2,
                markevery=max(1, -(-len(steps) // VALIDATION_MARKERS)))  # a marker an epoch, up to 40 of them


def _positive(history: History, keys: Sequence[str]) -> bool:
    values = [v for k in keys for key in (k, metric_names.validation(k)) for _, v in history.get(key, [])]
    return bool(values) and all(v > 0 for v in values)


def _spans_decades(history: History, keys: Sequence[str]) -> bool:
    """Whether the values of ``keys`` (and their validation twins) are all positive and span at least
    :data:`LOG_SPAN`: a long run's loss falls by orders of magnitude, and on a linear axis everything
    after its first epochs lay flat on zero (a 100-epoch run: 4.7 at the start, 0.02 from step 2,000 on)."""
    values = [v for k in keys for key in (k, metric_names.validation(k)) for _, v in history.get(key, [])]
    return bool(values) and min(values) > 0 and max(values) >= LOG_SPAN * min(values)


def _total_and_task(ax, history: History) -> None:
    _draw(ax, history, TOTAL, "loss (total)", color="0.55", linewidth=5, alpha=0.6, solid_capstyle="butt")
    _draw(ax, history, TASK, "loss/task", color="tab:blue", linewidth=1.3)
    if _spans_decades(history, [TOTAL, TASK]):
        ax.set_yscale("log")
    ax.set_title("Total and task loss")


def _breakdown(ax, history: History) -> None:
    total = _final(history, TOTAL)
    components = _components(history)
    for component in components:
        key = metric_names.loss(component)
        final = _final(history, key)
        share = f", {100 * final / total:.2g}% of loss" if final is not None and total else ""
        _draw(ax, history, key, f"loss/{component}{share}", linewidth=1.3)
    if _positive(history, [metric_names.loss(c) for c in components]):
        ax.set_yscale("log")
    ax.set_title("Components (weighted contribution to the loss)")


def _weighting(key: str) -> bool:
    """A weight or coefficient of the panel of weights: not a component's state (``weight/state/…``), whose scale
    (a queue's norm: thousands) would flatten the weights' lines; MLflow charts it on its own."""
    return key.startswith(metric_names.WEIGHT_PREFIX) and not metric_names.is_component_state(key)


def _weights(ax, history: History) -> None:
    for key in sorted(k for k in history if _weighting(k)):
        steps, values = zip(*history[key])
        ax.plot(steps, values, label=key, linewidth=1.3, linestyle=":" if metric_names.is_coef(key) else "-")
    ax.set_title("Component weights and trained coefficients")


def _drift(ax, history: History) -> None:
    """One line per layer; a deep network's (more than :data:`DRIFT_LABELLED` layers) names only its
    layers that drifted most by the end, the others pale and unlabelled, so the legend fits the panel."""
    keys = sorted(k for k in history if metric_names.is_drift(k, "from_init"))
    labelled = sorted(keys, key=lambda k: history[k][-1][1], reverse=True)[:DRIFT_LABELLED] \
        if len(keys) > DRIFT_LABELLED else keys  # most drift first in the legend
    for key in [k for k in keys if k not in labelled] + labelled:
        steps, values = zip(*history[key])
        if key in labelled:
            ax.plot(steps, values, label=key.rsplit("/", 1)[1], linewidth=1.3)
        else:
            ax.plot(steps, values, color="0.8", linewidth=0.8)
    if len(keys) > len(labelled):
        ax.plot([], [], color="0.8", linewidth=0.8, label=f"{len(keys) - len(labelled)} other layers")
    title = "Weight drift from init (relative L2), per layer"
    ax.set_title(title if len(keys) == len(labelled) else f"{title} (the {DRIFT_LABELLED} that drifted most named)")


Panel = Tuple[Callable[[History], bool], Callable]
PANELS: Tuple[Panel, ...] = (
    (lambda h: bool(h.get(TOTAL) or h.get(TASK)), _total_and_task),
    (lambda h: bool(_components(h)), _breakdown),
    (lambda h: any(_weighting(k) for k in h), _weights),
    (lambda h: any(metric_names.is_drift(k, "from_init") for k in h), _drift),
)


def run_figure(history: History, title: str):
    """The figure: every panel that has data (Matplotlib, Agg), not yet saved."""
    drawers = [draw for has_data, draw in PANELS if has_data(history)]
    fig, axes = plt.subplots(len(drawers) or 1, 1, figsize=(9, 3.3 * max(len(drawers), 1)), squeeze=False)
    for ax, draw in zip(axes[:, 0], drawers):
        draw(ax, history)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_run(history: History, path: Path, title: str) -> Path:
    """Write :func:`run_figure` to ``path`` (PNG); return ``path``."""
    fig = run_figure(history, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
