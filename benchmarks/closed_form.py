"""``python -m benchmarks.closed_form``: hist_avg's gradient in closed form against the tape's.

The same network, data, optimizer and batch, three ways: plain Keras; lossexp with
``loss=hist_avg`` (tracking off) differentiating the term through the tape; the same with the
gradient 2λ(θ − r) added in closed form (the plain update's default,
:meth:`lossexp.losses.base.LossComponent.closed_form_gradients`). Each variant's compiled
``train_step`` runs in a graph loop of ``STEPS`` steps (no Python between steps, as with a large
``steps_per_execution``); the loops are timed in interleaved blocks and the per-step medians
compared. Written to ``benchmarks/closed_form.json``; a measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from benchmarks import scale
from benchmarks.common import looped, machine

OUT = Path(__file__).resolve().parent / "closed_form.json"
STEPS = {"mlp_10k": 100, "mlp_1M": 20}


def variants(name: str, batch: int) -> Dict[str, Callable[[], None]]:
    """The three variants at ``name``, each a compiled loop."""
    import keras
    import tensorflow as tf

    import lossexp
    from lossexp.losses.hist_avg import HistoricalAverage

    x, y = scale.synthetic(name, batch * 20)
    xb, yb = tf.constant(x[:batch]), tf.constant(y[:batch])
    steps = STEPS[name]
    plain = scale.build_network(name)
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x, y, batch_size=batch, epochs=1, verbose=0)

    def composed(closed: bool) -> Callable[[], None]:
        grab = keras.callbacks.Callback()
        lossexp.fit(scale.build_network(name), (x, y), loss=["hist_avg"], callbacks=[grab],
                    trainer={"epochs": 1, "batch_size": batch, "validation_split": 0.0, "verbose": 0},
                    tracking={"enabled": False})
        own = HistoricalAverage.gives_closed_form_gradients
        if not closed:  # the tape differentiates the term, as it does for weighting methods
            HistoricalAverage.gives_closed_form_gradients = property(lambda self: False)
        try:
            return looped(grab.model, xb, yb, steps)
        finally:
            HistoricalAverage.gives_closed_form_gradients = own

    return {"plain": looped(plain, xb, yb, steps), "hist_avg_tape": composed(False), "hist_avg_closed": composed(True)}


def measure(name: str, batch: int, blocks: int) -> Dict[str, Any]:
    """Per-step µs of each variant over ``blocks`` interleaved blocks, and the ratios of medians."""
    runs = variants(name, batch)
    times: Dict[str, List[float]] = {key: [] for key in runs}
    for _ in range(blocks):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - start) / STEPS[name] * 1e6)
    median = {key: statistics.median(values) for key, values in times.items()}
    return {"network": name, "batch": batch, "steps_per_block": STEPS[name], "blocks": blocks,
            "median_us": median, "min_us": {key: min(values) for key, values in times.items()},
            "tape_over_plain": median["hist_avg_tape"] / median["plain"],
            "closed_over_plain": median["hist_avg_closed"] / median["plain"],
            "closed_over_tape": median["hist_avg_closed"] / median["hist_avg_tape"], "us": times}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.closed_form", description=__doc__)
    parser.add_argument("--blocks", type=int, default=15, help="interleaved blocks per network")
    args = parser.parse_args()
    results = [measure(name, 32, args.blocks) for name in STEPS]
    OUT.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    print("| network | plain step | tape / plain | closed form / plain | closed form / tape |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['network']} | {r['median_us']['plain']:.0f} µs | {r['tape_over_plain']:.3f} | "
              f"{r['closed_over_plain']:.3f} | {r['closed_over_tape']:.3f} |")


if __name__ == "__main__":
    main()
