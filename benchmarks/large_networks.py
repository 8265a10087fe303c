"""lossexp's compiled train step and its monitors' samples on large networks, against plain Keras.

Networks researchers bring at their real sizes (builders in :mod:`benchmarks.other_models`):
``keras.applications.ResNet50`` (``weights=None``, 64×64×3, batch 16, 23.6M parameters), a
Transformer encoder classifier (6 blocks, d_model 256, 8 heads, sequences of 128 over 20,000 words,
batch 16, 9.9M) and ``keras.applications.EfficientNetB0`` (64×64×3, batch 16, 4.0M in 311 tensors).

Each variant is built and traced once, then one-epoch fits of the same batches are interleaved,
variant after variant, repeat after repeat, in one process (the order rotated at each repeat), and
timed by the process's CPU time per step (every thread: the machine is shared and loaded, wall
time is not comparable between fits). The same Adam (1e-3), sparse cross-entropy, ``accuracy``,
batch and ``steps_per_execution`` on every side:

* ``keras``     the network compiled by Keras;
* ``task``      ``lossexp.compose(network)``, no component: lossexp's step with the task loss only;
* ``hand``      the default maths (hist_avg's float64 mean reference, the activity penalty on one
                hidden layer) written by hand in a Keras ``train_step`` (:func:`benchmarks.scale.reference_model`);
* ``ha_act``    ``lossexp.compose(network, ["hist_avg", activity on that layer])``.

Between the fits, the monitors' samples are timed on the ``ha_act`` model the same way: one gradient
diagnostics sample (``measure_gradients``: one backward pass per part of the loss, the Gramians) and
one drift measurement (:class:`lossexp.training.drift.WeightDrift` of every weighted layer). By
default each runs every 100 steps, so a sample's cost over 100 is what it adds to a step.
MLflow's writes between calls are not in these numbers (``benchmarks/other_models.py`` times whole
``lossexp.fit`` runs, callbacks included).

``python -m benchmarks.large_networks --networks transformer --repeats 5`` writes
``benchmarks/large_networks.json`` and prints the table of docs/performance.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from benchmarks import other_models
from benchmarks.common import machine

OUT = Path(__file__).resolve().parent / "large_networks.json"
#: name → (builder, batch, the layer ``activity`` reads)
NETWORKS: Dict[str, Tuple[Callable[[Any], Any], int, str]] = {
    "resnet50": (other_models.resnet50_64, 16, "conv3_block4_out"),
    "transformer": (other_models.transformer, 16, "hidden_3"),
    "efficientnet_b0": (other_models.efficientnet_b0, 16, "block4a_expand_activation"),
}
LABELS = {"resnet50": "ResNet50, 64×64×3, batch 16", "transformer": "Transformer encoder, 6×256, seq 128, batch 16",
          "efficientnet_b0": "EfficientNetB0, 64×64×3, batch 16"}
VARIANTS = ("keras", "task", "hand", "ha_act")
STEPS_PER_EXECUTION = 10


def data(name: str, steps: int) -> Tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of synthetic inputs and labels for ``name``."""
    n = steps * NETWORKS[name][1]
    rng = np.random.default_rng(0)
    y = rng.integers(0, other_models.CLASSES, n).astype("int32")
    if name == "transformer":
        return rng.integers(0, other_models.VOCAB, (n, other_models.TOKENS)).astype("int32"), y
    return rng.random((n, 64, 64, 3), dtype=np.float32), y


def build(name: str, variant: str) -> Any:
    """The variant's model, compiled (one network each, the same initial weights)."""
    import keras

    import lossexp
    from benchmarks.scale import reference_model

    keras.utils.set_random_seed(0)
    builder, _, hidden = NETWORKS[name]
    network = builder(keras)
    if variant == "keras":
        model = network
    elif variant == "hand":
        model = reference_model(network, "default", hidden=hidden)
    else:
        loss = [] if variant == "task" else ["hist_avg", ("activity", {"layers": [hidden]})]
        model = lossexp.compose(network, loss, task_loss="sparse_categorical_crossentropy")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=STEPS_PER_EXECUTION)
    return model


def cpu_seconds(run: Callable[[], Any]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def measure(name: str, repeats: int, steps: int) -> Dict[str, Any]:
    from lossexp.tracking.callback import weighted_layers
    from lossexp.training.drift import WeightDrift

    x, y = data(name, steps)
    batch = NETWORKS[name][1]
    models = {v: build(name, v) for v in VARIANTS}

    def fit(v: str) -> float:
        return cpu_seconds(lambda: models[v].fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)) / steps

    composed = models["ha_act"]
    composed.watch_gradients()
    drift = WeightDrift(weighted_layers(composed))
    xb, yb = x[:batch], y[:batch]
    samples: Dict[str, Callable[[], float]] = {
        "gradients": lambda: cpu_seconds(lambda: composed.measure_gradients(xb, yb)),
        "drift": lambda: cpu_seconds(lambda: drift.measure(drift._previous_step + 100)),
    }
    first = {v: fit(v) * steps for v in VARIANTS}  # tracing (Keras traces a step that creates variables twice)
    first.update({k: cpu_seconds(drift.start) + run() if k == "drift" else run() for k, run in samples.items()})
    times: Dict[str, List[float]] = {k: [] for k in [*VARIANTS, *samples]}
    order = list(VARIANTS)
    for repeat in range(repeats):
        for v in order:
            times[v].append(fit(v))
        for k, run in samples.items():
            times[k].append(run())
        order = order[1:] + order[:1]
        print(name, repeat, {k: round(1e3 * t[-1], 1) for k, t in times.items()}, flush=True)
    parameters = int(sum(np.prod(w.shape) for w in models["keras"].trainable_weights))
    tensors = len(models["keras"].trainable_weights)
    return {"parameters": parameters, "trainable_tensors": tensors, "batch": batch, "steps_per_fit": steps,
            "first_cpu_s": first, "cpu_ms": {k: [1e3 * t for t in ts] for k, ts in times.items()},
            "ratios": {v: ratio(times[v], times["keras"]) for v in ("task", "hand", "ha_act")}
            | {"ha_act/hand": ratio(times["ha_act"], times["hand"])}}


def ratio(a: List[float], b: List[float]) -> Dict[str, float]:
    """The per-repeat ratios a/b (paired in one repeat): median and range."""
    paired = [p / q for p, q in zip(a, b)]
    return {"median": statistics.median(paired), "min": min(paired), "max": max(paired)}


def table(results: Dict[str, Any]) -> str:
    """docs/performance.md's table: CPU ms a step and the ratios (median of the per-repeat ratios, range)."""
    def cell(r: Dict[str, float]) -> str:
        return f"**{r['median']:.3f}** ({r['min']:.3f}–{r['max']:.3f})"

    lines = ["| network | parameters (tensors) | Keras CPU ms/step | lossexp task only / Keras | by hand / Keras "
             "| lossexp `hist_avg+activity` / Keras | lossexp / by hand | gradient sample, drift sample: CPU ms "
             "(per step at every 100) |", "| --- " * 8 + "|"]
    for name, row in results.items():
        ms = row["cpu_ms"]
        g, d = statistics.median(ms["gradients"]), statistics.median(ms["drift"])
        keras_ms = statistics.median(ms["keras"])
        lines.append(f"| {LABELS.get(name, name)} | {row['parameters'] / 1e6:.1f}M ({row['trainable_tensors']}) | "
                     f"{keras_ms:.0f} ({min(ms['keras']):.0f}–{max(ms['keras']):.0f}) | "
                     + " | ".join(cell(row["ratios"][k]) for k in ("task", "hand", "ha_act", "ha_act/hand"))
                     + f" | {g:.0f}, {d:.0f} ({(g + d) / 100 / keras_ms:.1%}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="training steps a timed fit")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    for name in args.networks:
        previous.setdefault("results", {})[name] = measure(name, args.repeats, args.steps)
        previous.setdefault("measured", {})[name] = started
        previous["machine"] = machine()
        args.out.write_text(json.dumps(previous, indent=1))
    print(table(previous["results"]))


if __name__ == "__main__":
    main()
