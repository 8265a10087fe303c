"""Measure 5: how the overhead ratio grows with model size (about 10k, 100k, 1M parameters) and
with the number of components (1, 5, 10).

An MLP on digits, widths chosen for the parameter counts; the components are the shipped ones,
repeated under other keys with ``kind:`` (e.g. ``hist_avg_ema: {kind: hist_avg, mode: ema}``).
Each lossexp variant is timed against plain Keras of the same network in the same repeat.
"""
from __future__ import annotations

import statistics
from typing import Any, Dict, List, Tuple

from benchmarks.common import epoch_timer, lossexp_config, ratio_spread, spread

SIZES = {"10k": [128], "100k": [384, 192], "1M": [1024, 896]}
COMPONENT_SETS: Dict[int, Dict[str, Dict[str, Any]]] = {
    1: {"hist_avg": {}},
    5: {"hist_avg": {}, "activity": {}, "coef": {}, "cross_layer": {},
        "hist_avg_ema": {"kind": "hist_avg", "mode": "ema"}},
    10: {"hist_avg": {}, "activity": {}, "coef": {}, "cross_layer": {},
         "hist_avg_ema": {"kind": "hist_avg", "mode": "ema"},
         "hist_avg_prev": {"kind": "hist_avg", "mode": "previous", "distance": "mean_abs"},
         "activity_2": {"kind": "activity", "layers": ["hidden_2"]},
         "cross_layer_l1": {"kind": "cross_layer", "norm": "l1", "layers": ["hidden_2"]},
         "coef_mean": {"kind": "coef", "penalty": "prediction_mean"},
         "cross_layer_l2": {"kind": "cross_layer", "norm": "l2", "layers": ["output"]}},
}


def epoch_seconds(hidden_units: List[int], components: Dict[str, Dict[str, Any]] | None, epochs: int) -> Tuple[
        float, int]:
    """(median epoch time, parameter count); ``components=None`` is plain Keras."""
    import keras

    from lossexp.data import load
    from lossexp.models import build_network
    from lossexp.tracking.callback import MetricSink, RunRecorder
    from lossexp.training.assemble import compose, make_optimizer
    from lossexp.losses.registry import build_components

    cfg = lossexp_config("model=mlp", f"model.hidden_units={hidden_units}", "loss=[]")
    data = load(cfg.data)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    network = build_network(cfg.model, data)
    callbacks: List[Any] = [epoch_timer()]
    if components is None:
        model = network
    else:
        model = compose(network, build_components(components), data.task_loss)
        callbacks.append(RunRecorder(MetricSink(None, None), cfg.trainer.log_every_n_steps, drift=True))
    batching = 1 if components is None else cfg.trainer.execution_steps  # each as `lossexp train` / Keras default
    model.compile(optimizer=make_optimizer(cfg.optimizer), loss=data.task_loss, metrics=[data.task_metric],
                  steps_per_execution=batching)
    (x, y), _ = data.split(cfg.trainer.validation_split)
    model.fit(x, y, epochs=epochs, batch_size=cfg.trainer.batch_size, callbacks=callbacks, verbose=0)
    return statistics.median(callbacks[0].times[1:]), network.count_params()


def measure(quick: bool = False) -> Dict[str, Any]:
    repeats, epochs = (2, 3) if quick else (3, 5)
    plan = [(size, 3) for size in SIZES] + [("100k", n) for n in (1, 5, 10)]
    plan = list(dict.fromkeys(plan))  # (100k, 3) is in both series once
    three = {k: COMPONENT_SETS[5][k] for k in ("hist_avg", "activity", "coef")}
    times: Dict[str, List[float]] = {}
    params: Dict[str, int] = {}
    for _ in range(repeats):
        for size in SIZES:
            seconds, params[size] = epoch_seconds(SIZES[size], None, epochs)
            times.setdefault(f"plain/{size}", []).append(seconds)
        for size, count in plan:
            components = three if count == 3 else COMPONENT_SETS[count]
            times.setdefault(f"lossexp/{size}/{count}", []).append(epoch_seconds(SIZES[size], components, epochs)[0])
    by_size = {size: ratio_spread(times[f"lossexp/{size}/3"], times[f"plain/{size}"]) for size in SIZES}
    by_count = {str(n): ratio_spread(times[f"lossexp/100k/{n}"], times["plain/100k"]) for n in (1, 3, 5, 10)}
    counts = [1, 3, 5, 10]
    slope, intercept = linear_fit(counts, [by_count[str(n)]["median"] for n in counts])
    return {
        "setup": {"model": "mlp on digits", "widths": SIZES, "parameters": params, "epochs": epochs,
                  "repeats": repeats, "components": {str(n): list(c) for n, c in COMPONENT_SETS.items()},
                  "size_series_components": list(three)},
        "epoch_seconds": {key: spread(value) for key, value in times.items()},
        "overhead_by_size": by_size,
        "overhead_by_components_at_100k": by_count,
        "components_linear_fit": {"ratio_per_component": slope, "ratio_at_zero": intercept},
    }


def linear_fit(xs: List[float], ys: List[float]) -> Tuple[float, float]:
    """Least-squares slope and intercept of ``ys`` against ``xs``."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return slope, mean_y - slope * mean_x
