"""What ``lossexp train`` prints: one line per epoch with the loss breakdown, and a summary.

``trainer.verbose``: 2 (default) one line per epoch, written here so that the total reads as its
parts (``loss 0.59 = task 0.39 + hist_avg 0.050 + activity 0.070``), validation beside it; 1 Keras'
progress bar (which lists every ``loss/<c>`` too); 0 nothing but the closing summary. The summary
gives the final task and component losses, the components' weights, the learning rate, the run id and the run's
address in the MLflow UI.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import keras

from lossexp import metric_names

History = Mapping[str, Sequence[Tuple[int, float]]]
PROGRESS_BAR, EPOCH_LINES = 1, 2


def _number(value: float) -> str:
    return f"{value:.4g}"


def loss_breakdown(values: Mapping[str, float], components: Sequence[str], prefix: str = "") -> Optional[str]:
    """``0.5925 = task 0.3936 + hist_avg 0.0496 + activity 0.0695`` from ``<prefix>loss``,
    ``<prefix>loss/task`` and ``<prefix>loss/<c>`` (None without a total)."""
    total = values.get(prefix + metric_names.LOSS)
    parts = [(part, values[prefix + metric_names.loss(part)]) for part in (metric_names.TASK, *components)
             if prefix + metric_names.loss(part) in values]
    if total is None:
        return " ".join(f"{part} {_number(value)}" for part, value in parts) or None
    return _number(total) + (" = " + " + ".join(f"{p} {_number(v)}" for p, v in parts) if parts else "")


def component_names(values: Mapping[str, float], known: Sequence[str] = ()) -> List[str]:
    """Components with a ``loss/<c>``: those of ``known`` first, in their order, then any other."""
    seen = [key.split("/", 1)[1] for key in values if metric_names.is_loss_part(key) and not key.startswith("val_")]
    seen = [name for name in seen if name != metric_names.TASK]
    return [name for name in known if name in seen] + sorted(set(seen) - set(known))


def other_metrics(values: Mapping[str, float]) -> List[Tuple[str, float, Optional[float]]]:
    """(name, training value, validation value) of the task metric and the like (accuracy, ring/…)."""
    skip = (metric_names.LOSS + "/", "term/", metric_names.WEIGHT_PREFIX, metric_names.DRIFT_PREFIX,
            metric_names.GRAD_PREFIX, metric_names.LEARNING_RATE)
    names = [k for k in values if not k.startswith("val_") and k not in (metric_names.LOSS, "epoch")
             and k != metric_names.STARTUP and not k.startswith(skip)]
    return [(k, values[k], values.get(metric_names.validation(k))) for k in names]


def epoch_line(epoch: int, epochs: int, logs: Mapping[str, float], components: Sequence[str],
               seconds: float) -> str:
    """``epoch 2/5  loss 1.55 = task 1.52 + … │ val_loss 1.04 = … │ accuracy 0.72 (val 0.84) │ 1.2s``."""
    names = component_names(logs, components)
    fields = [f"epoch {epoch}/{epochs}"]
    train = loss_breakdown(logs, names)
    if train:
        fields.append(f"loss {train}")
    validation = loss_breakdown(logs, names, prefix="val_")
    if validation:
        fields.append(f"val_loss {validation}")
    for name, value, val in other_metrics(logs):
        fields.append(f"{name} {_number(value)}" + (f" (val {_number(val)})" if val is not None else ""))
    fields.append(f"{seconds:.1f}s")
    return "  ".join(fields[:2]) + "".join(f" │ {f}" for f in fields[2:])


class EpochLines(keras.callbacks.Callback):
    """Prints :func:`epoch_line` at each epoch's end (``trainer.verbose=2``)."""

    def __init__(self, epochs: int, components: Sequence[str] = ()) -> None:
        super().__init__()
        self.epochs = epochs
        self.components = list(components)
        self._started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self._started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        values = {k: float(v) for k, v in (logs or {}).items() if keras.ops.ndim(v) == 0}
        print(epoch_line(epoch + 1, self.epochs, values, self.components, time.monotonic() - self._started),
              flush=True)


def fit_verbosity(verbose: int) -> int:
    """What Keras' ``fit`` is given: its progress bar for 1, silence otherwise (lines come from here)."""
    return PROGRESS_BAR if verbose == PROGRESS_BAR else 0


def callbacks(verbose: int, epochs: int, components: Sequence[str]) -> List[keras.callbacks.Callback]:
    """The console's callbacks for ``trainer.verbose``."""
    return [EpochLines(epochs, components)] if verbose == EPOCH_LINES else []


def final_values(history: History) -> Dict[str, float]:
    """The last recorded value of every series."""
    return {key: points[-1][1] for key, points in history.items() if points}


def weights_line(final: Mapping[str, float], constant_weights: Mapping[str, Any]) -> str:
    """``hist_avg 0.01 · activity 0.001 · coef 0.0084 (trained)``: each component's weight at the end."""
    names = list(constant_weights) + sorted(
        {k[len(metric_names.WEIGHT_PREFIX):] for k in final if k.startswith(metric_names.WEIGHT_PREFIX)
         and not metric_names.is_coef(k) and "/" not in k[len(metric_names.WEIGHT_PREFIX):]} - set(constant_weights))
    shown = []
    for name in names:
        if metric_names.weight(name) in final:
            kind = ("trained" if metric_names.coef(name) in final
                    else "changed in training" if isinstance(constant_weights.get(name), (int, float)) else "scheduled")
            shown.append(f"{name} {_number(final[metric_names.weight(name)])} ({kind})")
        elif isinstance(constant_weights.get(name), (int, float)):
            shown.append(f"{name} {_number(constant_weights[name])}")
    return " · ".join(shown + method_weights(final))


def learning_rates_line(history: History) -> str:
    """``0.001``, or ``0.001 → 2.5e-05`` when a schedule or a callback changed it; a GAN's per player,
    ``generator 0.0001 · discriminator 0.0001``. The optimizer's rate is no metric of the network, so the
    summary gives it a row of its own (``lr``), not one among the metrics."""
    shown = []
    for key in sorted(k for k in history if k.split("/")[0] == metric_names.LEARNING_RATE and history[k]):
        first, last = _number(history[key][0][1]), _number(history[key][-1][1])
        player = key.partition("/")[2]
        shown.append((f"{player} " if player else "") + first + (f" → {last}" if first != last else ""))
    return " · ".join(shown)


def method_weights(final: Mapping[str, float]) -> List[str]:
    """``dwa: task 1.02, hist_avg 0.98``: a weighting method's last weights (``weight/<method>/<task>``)."""
    rows: Dict[str, List[str]] = {}
    for key, value in final.items():
        rest = key[len(metric_names.WEIGHT_PREFIX):]
        if key.startswith(metric_names.WEIGHT_PREFIX) and not metric_names.is_coef(key) and rest.count("/") == 1:
            method, task = rest.split("/")
            rows.setdefault(method, []).append(f"{task} {_number(value)}")
    return [f"{method}: {', '.join(parts)}" for method, parts in rows.items()]


def summary(history: History, components: Mapping[str, Any], run_name: str, run_id: Optional[str],
            run_url: Optional[str], seconds: float, served_by: str = "") -> str:
    """The closing lines of ``lossexp train`` (``components``: name → configured weight; ``served_by``
    follows the URL, e.g. `` (lossexp ui)``)."""
    final = final_values(history)
    names = component_names(final, list(components))
    lines = [f"lossexp: {run_name} trained in {seconds:.1f}s"]
    rows = [("loss", loss_breakdown(final, names)), ("val_loss", loss_breakdown(final, names, prefix="val_")),
            ("metrics", "  ".join(f"{n} {_number(v)}" + (f" (val {_number(val)})" if val is not None else "")
                                  for n, v, val in other_metrics(final))),
            ("weights", weights_line(final, components)), ("lr", learning_rates_line(history)),
            ("run", run_id),
            ("view", f"{run_url}{served_by}" if run_url else None)]
    lines += [f"  {label:<9}{text}" for label, text in rows if text]
    return "\n".join(lines)
