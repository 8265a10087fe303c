"""``python -m benchmarks.hist_avg_precision``: what hist_avg's exact (float64) reference costs, and the ways
of keeping it exact that were measured against it.

Three networks a researcher trains (a 1M-parameter MLP; a text classifier whose ``Embedding(50_000, 64)``
holds 3.2M weights; a CNN of 20 ``Conv2D(16)`` + ``BatchNormalization`` blocks on 8×8×3, 82 small tensors), each step
variant a compiled loop of ``STEPS`` train steps on one batch (no Python between steps), timed in process
CPU with one TensorFlow thread, in interleaved blocks (the machine is shared):

* ``plain``: Keras' own step (the same network, optimizer and loss, no component);
* ``float64``: ``loss=hist_avg`` as lossexp runs it (references in float64, updated in place);
* ``float32``: the same with float32 references, the inexact code before 6 December (r + rate·(θ − r)
  loses every increment under half an ulp of r): the floor any exact scheme would have to approach;
* ``kahan``: a float32 reference plus a float32 compensation (a Kahan pair: as many bytes as float64, in
  float32's twice-as-wide vector ops), written as TensorFlow ops. A lower bound on its cost: the rate 1/t
  is a float32 here (an exact pair would need the product rate·(θ − r) compensated too, more ops);
* ``xla``: the float64 update, difference, term and gradient of every tensor fused into one XLA-compiled
  function (``tf.function(jit_compile=True)``) inside the step.

``kahan`` and ``xla`` replace :meth:`HistoricalAverage.closed_form_gradients` (``mode: mean``, squared L2)
for the measurement only. Neither beat ``float64`` (docs/performance.md, "hist_avg's references in float64"):
the step is a handful of memory-bound passes per tensor, which the pair makes more of, and XLA's CPU code for
the conversions and the sum is slower than TensorFlow's own kernels.
Written to ``benchmarks/hist_avg_precision.json``; a measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from benchmarks.common import looped, machine

OUT = Path(__file__).resolve().parent / "hist_avg_precision.json"
STEPS = {"mlp_1M": 20, "text_3M": 10, "cnn_bn": 10}
BATCH = 32
VARIANTS = ("plain", "float64", "float32", "kahan", "xla")


def network(name: str) -> Any:
    """A fresh, seeded network."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    if name == "mlp_1M":  # 784-1000-200-10: 987k parameters in 6 tensors
        inputs = keras.Input((784,))
        x = layers.Dense(200, activation="relu")(layers.Dense(1000, activation="relu")(inputs))
    elif name == "text_3M":  # a text classifier: 3.2M embedding weights, 40 tokens a sequence
        inputs = keras.Input((40,), dtype="int32")
        x = layers.GlobalAveragePooling1D()(layers.Embedding(50_000, 64, mask_zero=True)(inputs))
    else:  # 20 Conv2D(16) + BatchNormalization blocks on 8×8×3: 82 small tensors, 45k parameters
        inputs = keras.Input((8, 8, 3))
        x = inputs
        for _ in range(20):
            x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(x)))
        x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def batch(name: str) -> Tuple[Any, Any]:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    if name == "text_3M":
        x = rng.integers(1, 50_000, (BATCH, 40)).astype("int32")
    else:
        x = rng.random((BATCH, *((784,) if name == "mlp_1M" else (8, 8, 3))), dtype=np.float32)
    return tf.constant(x), tf.constant(rng.integers(0, 10, BATCH).astype("int32"))


def kahan_closed_form(component: Any) -> Callable[..., Any]:
    """``closed_form_gradients`` (mean mode, squared L2) on a float32 reference hi and compensation lo."""
    import tensorflow as tf

    his = [tf.Variable(tf.zeros(w.shape)) for w in component._watched]
    los = [tf.Variable(tf.zeros(w.shape)) for w in component._watched]

    def closed_form(context: Any, scale: Any) -> Any:
        t = component.steps_seen + 1
        component.steps_seen.assign(t)
        rate = 1.0 / tf.cast(t, tf.float32)
        keep = 1.0 - rate
        diffs = []
        for weight, hi, lo in zip(component._watched, his, los):
            h, low = tf.convert_to_tensor(hi), tf.convert_to_tensor(lo)
            diff = (tf.convert_to_tensor(weight) - h) - low
            increment = rate * diff
            new = h + increment
            hi.assign(new)
            lo.assign((increment - (new - h)) + low)
            diffs.append(diff)
        term = 2.0 * tf.square(keep) * tf.add_n([tf.nn.l2_loss(d) for d in diffs])
        return term, [(w, d * (2.0 * keep * scale)) for w, d in zip(component._watched, diffs)]

    return closed_form


def xla_closed_form(component: Any) -> Callable[..., Any]:
    """``closed_form_gradients`` (mean mode, squared L2) with every tensor's work in one XLA function."""
    import tensorflow as tf

    @tf.function(jit_compile=True, autograph=False)
    def fused(thetas: List[Any], references: List[Any], rate: Any, factor: Any) -> Any:
        squares, gradients = [], []
        for theta, reference in zip(thetas, references):
            before = reference.read_value()
            diff = tf.cast(theta, tf.float64) - before
            reference.assign(before + rate * diff)
            d = tf.cast(diff, tf.float32)
            squares.append(tf.reduce_sum(d * d))
            gradients.append(d * factor)
        return tf.add_n(squares), gradients

    def closed_form(context: Any, scale: Any) -> Any:
        t = component.steps_seen + 1
        component.steps_seen.assign(t)
        rate = 1.0 / tf.cast(t, tf.float64)
        keep = tf.cast(1.0 - rate, tf.float32)
        squares, gradients = fused([tf.convert_to_tensor(w) for w in component._watched],
                                   [r.value for r in component.references], rate, 2.0 * keep * scale)
        return tf.square(keep) * squares, list(zip(component._watched, gradients))

    return closed_form


def build(name: str, variant: str) -> Tuple[Callable[[], None], float]:
    """The variant's compiled loop and the CPU seconds its first call (trace, compile, run) took."""
    import keras

    import lossexp
    from lossexp.losses.hist_avg import HistoricalAverage

    x, y = batch(name)
    start = time.process_time()
    if variant == "plain":
        model = network(name)
    else:
        own = HistoricalAverage._reference_dtype
        if variant == "float32":
            HistoricalAverage._reference_dtype = property(lambda self: "float32")
        try:
            model = lossexp.compose(network(name), "hist_avg", task_loss="sparse_categorical_crossentropy")
        finally:
            HistoricalAverage._reference_dtype = own
        component = next(c for c in model.components if c.name == "hist_avg")
        if variant == "float32":  # the rate in the reference's dtype, as before 6 December
            rate = component._rate
            object.__setattr__(component, "_rate", lambda t: keras.ops.cast(rate(t), "float32"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    if variant in ("kahan", "xla"):  # on the attached component
        replacement = (kahan_closed_form if variant == "kahan" else xla_closed_form)(component)
        object.__setattr__(component, "closed_form_gradients", replacement)
    run = looped(model, x, y, STEPS[name])
    return run, time.process_time() - start


def measure(name: str, blocks: int, variants: List[str]) -> Dict[str, Any]:
    """CPU ms a step of each variant over ``blocks`` interleaved blocks; ratios to ``plain`` per block."""
    runs, first = {}, {}
    for variant in variants:
        runs[variant], first[variant] = build(name, variant)
    for run in runs.values():  # an untimed round: after building them all, each one's first block took up to 10× longer
        run()
    times: Dict[str, List[float]] = {key: [] for key in runs}
    for _ in range(blocks):
        for key, run in runs.items():
            start = time.process_time()
            run()
            times[key].append((time.process_time() - start) / STEPS[name] * 1e3)
    ratios = {key: [t / p for t, p in zip(values, times["plain"])] for key, values in times.items() if key != "plain"}
    print(f"{name}: CPU ms a step {', '.join(f'{k} {statistics.median(v):.2f}' for k, v in times.items())}", flush=True)
    return {"network": name, "batch": BATCH, "steps_per_block": STEPS[name], "blocks": blocks,
            "first_call_cpu_s": first, "median_ms": {k: statistics.median(v) for k, v in times.items()},
            "over_plain": {k: [statistics.median(v), min(v), max(v)] for k, v in ratios.items()}, "ms": times}


def main() -> None:
    import tensorflow as tf

    parser = argparse.ArgumentParser(prog="python -m benchmarks.hist_avg_precision", description=__doc__)
    parser.add_argument("--blocks", type=int, default=7, help="interleaved blocks per network")
    parser.add_argument("--networks", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS[1:], default=list(VARIANTS[1:]))
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    results = [measure(name, args.blocks, ["plain", *args.variants]) for name in args.networks]
    OUT.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    print("| network | plain step (CPU ms) | " + " | ".join(f"{v} / plain" for v in args.variants) + " |")
    print("|---|---|" + "---|" * len(args.variants))
    for r in results:
        cells = [f"{m:.2f} ({lo:.2f}–{hi:.2f})" for m, lo, hi in (r["over_plain"][v] for v in args.variants)]
        print(f"| {r['network']} | {r['median_ms']['plain']:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
