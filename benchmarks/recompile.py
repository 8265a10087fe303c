"""Measure 3: R0's first attempt (recompile and re-fit after every batch, seeds/000) against
lossexp's ``hist_avg`` (state updated inside one compiled step), per training step.

Both train the seed's 4→8→4→1 Dense regression on ``x0*x1 + 2*x1² + x2/x3 + 3*x3`` with Adam
and batches of 32.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Dict, List

import numpy as np

from benchmarks.common import epoch_timer, lossexp_config, ratio_spread, spread


def seed_network() -> Any:
    import keras

    inputs = keras.Input(shape=(4,), name="inputs")
    x = keras.layers.Dense(8, name="hidden_1")(inputs)
    x = keras.layers.Dense(4, name="hidden_2")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="output")(x))


def seed_recompile_step_seconds(x: np.ndarray, y: np.ndarray, batches: int, batch_size: int = 32) -> float:
    """The question's loop: get the weights, compile a loss closing over them, fit one batch."""
    import keras

    def historical_averaging_wrapper(current_weights: List[np.ndarray], prev_weights: List[np.ndarray]) -> Any:
        diff = sum(abs(np.sum(c) + np.sum(p)) for c, p in zip(current_weights, prev_weights))

        def historical_averaging(y_true: Any, y_pred: Any) -> Any:
            return keras.losses.mean_squared_error(y_true, y_pred) + diff
        return historical_averaging

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = seed_network()
    prev_weights = model.get_weights()
    times = []
    for i in range(batches):
        start = time.perf_counter()
        current_weights = model.get_weights()
        model.compile(loss=historical_averaging_wrapper(current_weights, prev_weights), optimizer="adam")
        xb, yb = x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]
        model.fit(xb, yb, epochs=1, batch_size=batch_size, verbose=0)
        prev_weights = current_weights
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def lossexp_step_seconds(cfg: Any, data: Any, epochs: int = 4) -> float:
    import keras

    from lossexp.training.trainer import for_config

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = for_config(cfg).build(data)
    train, _ = data.split(cfg.trainer.validation_split)
    x, y = train.arrays
    timer = epoch_timer()
    model.fit(x, y, epochs=epochs, batch_size=cfg.trainer.batch_size, callbacks=[timer], verbose=0)
    steps = int(np.ceil(len(x) / cfg.trainer.batch_size))
    return statistics.median(timer.times[1:]) / steps


def measure(quick: bool = False) -> Dict[str, Any]:
    from lossexp.data import load

    cfg = lossexp_config("model=mlp", "model.hidden_units=[8,4]", "model.activation=linear", "data=regression",
                         "loss=[hist_avg]", "trainer.validation_split=0.25")
    data = load(cfg.data)
    repeats, batches = (2, 12) if quick else (3, 20)
    seed, ours = [], []
    for _ in range(repeats):
        seed.append(seed_recompile_step_seconds(data.x, data.y, batches))
        ours.append(lossexp_step_seconds(cfg, data))
    return {
        "setup": {"network": "4-8-4-1 Dense", "data": "regression (R0)", "batch_size": 32, "repeats": repeats,
                  "seed_batches_timed": batches - 2},
        "step_seconds": {"seed_recompile": spread(seed), "lossexp_hist_avg": spread(ours)},
        "speedup": ratio_spread(seed, ours),
        "goal": 100,
    }
