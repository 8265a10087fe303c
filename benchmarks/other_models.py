"""lossexp against plain Keras on networks not written for lossexp's own benchmarks.

Seven networks, each sized so a training step is 5–50 ms on a 2-core CPU: a 1D-conv + GRU sequence
classifier, a small ViT-like patch transformer on 32×32×3, a wide-and-deep tabular model of several
``Embedding`` inputs (a dict of inputs), ``keras.applications.ResNet50`` (``weights=None``, 32×32×3),
a 40-layer MLP of narrow ``Dense`` layers (many small tensors), a per-pixel U-Net (labels (32, 32))
and a masked GRU tagger (padded token ids, a label per position). For each, at
``steps_per_execution`` 1 and 16, interleaved in one process (repeat after repeat):

* ``keras``    ``keras.Model.fit`` of the network (Adam 1e-3, sparse cross-entropy, accuracy,
               ``validation_split=0.2``, the same batch and ``steps_per_execution``);
* ``bare``     ``lossexp.fit`` with the task loss only and no monitoring (``loss=none``, drift and
               gradient diagnostics off; metrics still recorded into MLflow);
* ``monitor``  ``lossexp.fit`` with the task loss only and the default monitoring (gradient
               diagnostics and drift sampled every 100 steps, metrics every 10);
* ``ha_act``   ``lossexp.fit`` with ``hist_avg+activity`` and the default monitoring.

lossexp's runs track into a real MLflow SQLite store; plots and the logged model are off (end-of-run
costs, not the step's); the checkpoint at each epoch's end is on (lossexp's default).
Per fit (:class:`Probe`): wall and process CPU per training step over epochs 2..E (process CPU counts
every thread: TensorFlow's pool, MLflow's writer); the epoch boundary (validation, the callbacks'
epoch-end work, the checkpoint) and validation alone; the time from ``fit``'s call to its second
compiled call (set-up, tracing, the first call); and the peak of the process's resident memory
during the fit over its level before it (sampled every 20 ms).

``python -m benchmarks.other_models --networks gru vit --repeats 3`` writes
``benchmarks/other_models.json``; ratios are of the medians of the per-repeat ratios, paired in one repeat.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from benchmarks.common import machine

CLASSES = 10
OUT = Path(__file__).resolve().parent / "other_models.json"


# --- networks and data --------------------------------------------------------------------------
def gru(keras: Any) -> Any:
    inputs = keras.Input((64, 16), name="inputs")
    x = keras.layers.Conv1D(48, 5, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling1D(2, name="pool")(x)
    x = keras.layers.GRU(64, name="hidden_1")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax", name="output")(x), name="gru")


def vit(keras: Any) -> Any:
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), name="inputs")
    x = layers.Conv2D(64, 4, strides=4, name="patches")(inputs)             # 8×8 patches of 4×4
    x = layers.Reshape((64, 64), name="tokens")(x)
    x = x + layers.Embedding(64, 64, name="position")(keras.ops.arange(64))
    for i in range(1, 3):
        y = layers.LayerNormalization(name=f"ln{i}a")(x)
        y = layers.MultiHeadAttention(4, 16, name=f"attention_{i}")(y, y)
        x = layers.Add(name=f"res{i}a")([x, y])
        y = layers.LayerNormalization(name=f"ln{i}b")(x)
        y = layers.Dense(128, activation="gelu", name=f"hidden_{i}")(y)
        x = layers.Add(name=f"res{i}b")([x, layers.Dense(64, name=f"mlp{i}")(y)])
    x = layers.GlobalAveragePooling1D(name="pool")(layers.LayerNormalization(name="ln")(x))
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="output")(x), name="vit")


WIDE_DEEP_VOCAB = {"user": 5000, "item": 20000, "city": 300, "device": 40}


def wide_deep(keras: Any) -> Any:
    layers = keras.layers
    inputs = {name: keras.Input((1,), dtype="int32", name=name) for name in WIDE_DEEP_VOCAB}
    inputs["numeric"] = keras.Input((13,), name="numeric")
    embedded = [layers.Flatten()(layers.Embedding(v, 32, name=f"emb_{n}")(inputs[n])) for n, v in WIDE_DEEP_VOCAB.items()]
    deep = layers.Concatenate(name="deep_in")([*embedded, inputs["numeric"]])
    deep = layers.Dense(512, activation="relu", name="hidden_1")(deep)
    deep = layers.Dense(256, activation="relu", name="hidden_2")(deep)
    wide = layers.Concatenate(name="wide_in")([layers.Flatten()(layers.Embedding(v, 1, name=f"wide_{n}")(inputs[n]))
                                               for n, v in WIDE_DEEP_VOCAB.items()] + [inputs["numeric"]])
    logits = layers.Add(name="sum")([layers.Dense(CLASSES, name="deep_out")(deep), layers.Dense(CLASSES, name="wide_out")(wide)])
    return keras.Model(inputs, layers.Softmax(name="output")(logits), name="wide_deep")


def resnet50(keras: Any) -> Any:
    return keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=CLASSES)


def resnet50_64(keras: Any) -> Any:
    return keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=CLASSES)


def efficientnet_b0(keras: Any) -> Any:
    return keras.applications.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classes=CLASSES)


TOKENS, VOCAB = 128, 20_000


def transformer(keras: Any) -> Any:
    """A Transformer encoder classifier: 6 blocks, d_model 256, 8 heads, FFN 1024, sequences of 128
    tokens from a 20,000-word vocabulary (9.9M parameters, 5.1M of them the embedding)."""
    layers = keras.layers
    inputs = keras.Input((TOKENS,), dtype="int32", name="inputs")
    x = layers.Embedding(VOCAB, 256, name="embedding")(inputs)
    x = x + layers.Embedding(TOKENS, 256, name="position")(keras.ops.arange(TOKENS))
    for i in range(1, 7):
        y = layers.MultiHeadAttention(8, 32, name=f"attention_{i}")(x, x)
        x = layers.LayerNormalization(name=f"ln{i}a")(layers.Add(name=f"res{i}a")([x, y]))
        y = layers.Dense(1024, activation="gelu", name=f"hidden_{i}")(x)
        y = layers.Dense(256, name=f"ffn{i}")(y)
        x = layers.LayerNormalization(name=f"ln{i}b")(layers.Add(name=f"res{i}b")([x, y]))
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="output")(x), name="transformer")


def deep_mlp(keras: Any) -> Any:
    inputs = keras.Input((64,), name="inputs")
    x = inputs
    for i in range(1, 41):
        x = keras.layers.Dense(32, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax", name="output")(x), name="deep_mlp")


def unet(keras: Any) -> Any:
    """Per-pixel segmentation: a two-level U-Net of 32×32×3 images, a class per pixel."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), name="inputs")
    enc = layers.Conv2D(16, 3, padding="same", activation="relu", name="enc")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="hidden_1")(layers.MaxPooling2D(name="down")(enc))
    x = layers.Concatenate(name="skip")([layers.UpSampling2D(name="up")(x), enc])
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="dec")(x)
    return keras.Model(inputs, layers.Conv2D(CLASSES, 1, activation="softmax", name="output")(x), name="unet")


def tagger(keras: Any) -> Any:
    """A sequence tagger: padded token ids (0 pads, masked), a GRU over them, a tag per position."""
    layers = keras.layers
    inputs = keras.Input((48,), dtype="int32", name="inputs")
    x = layers.Embedding(TAGGER_VOCAB, 32, mask_zero=True, name="embed")(inputs)
    x = layers.GRU(64, return_sequences=True, name="hidden_1")(x)
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="output")(x), name="tagger")


TAGGER_VOCAB = 1000

#: name → (builder, batch, training steps per epoch, the layer ``activity`` reads)
NETWORKS: Dict[str, Tuple[Callable[[Any], Any], int, int, str]] = {
    "gru": (gru, 64, 64, "hidden_1"),
    "vit": (vit, 32, 64, "hidden_1"),
    "wide_deep": (wide_deep, 512, 64, "hidden_1"),
    "deep_mlp": (deep_mlp, 512, 64, "hidden_1"),
    "resnet50": (resnet50, 2, 32, "conv2_block1_out"),
    "unet": (unet, 32, 64, "hidden_1"),
    "tagger": (tagger, 64, 64, "hidden_1"),
    "resnet50_64": (resnet50_64, 16, 20, "conv3_block4_out"),
    "transformer": (transformer, 32, 20, "hidden_3"),
    "efficientnet_b0": (efficientnet_b0, 16, 20, "block4a_expand_activation"),
}


def data(name: str) -> Tuple[Any, np.ndarray]:
    """Synthetic inputs for ``name``: steps × batch training examples and a fifth more to validate."""
    _, batch, steps, _ = NETWORKS[name]
    n = steps * batch * 5 // 4
    rng = np.random.default_rng(0)
    y = rng.integers(0, CLASSES, n).astype("int32")
    if name == "gru":
        return rng.standard_normal((n, 64, 16), dtype=np.float32), y
    if name in ("vit", "resnet50"):
        return rng.random((n, 32, 32, 3), dtype=np.float32), y
    if name in ("resnet50_64", "efficientnet_b0"):
        return rng.random((n, 64, 64, 3), dtype=np.float32), y
    if name == "transformer":
        return rng.integers(0, VOCAB, (n, TOKENS)).astype("int32"), y
    if name == "deep_mlp":
        return rng.standard_normal((n, 64), dtype=np.float32), y
    if name == "unet":
        return rng.random((n, 32, 32, 3), dtype=np.float32), rng.integers(0, CLASSES, (n, 32, 32)).astype("int32")
    if name == "tagger":  # sequences of 8 to 48 tokens, zero-padded; a tag per position (0 on the padding)
        lengths = rng.integers(8, 49, n)
        real = np.arange(48)[None, :] < lengths[:, None]
        tokens = np.where(real, rng.integers(1, TAGGER_VOCAB, (n, 48)), 0).astype("int32")
        return tokens, np.where(real, tokens % CLASSES, 0).astype("int32")
    x = {k: rng.integers(0, v, (n, 1)).astype("int32") for k, v in WIDE_DEEP_VOCAB.items()}
    x["numeric"] = rng.standard_normal((n, 13), dtype=np.float32)
    return x, y


def network(name: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    return NETWORKS[name][0](keras)


# --- timing -------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20


class Probe:
    """Wall and process-CPU clocks at the fit's call, each epoch's start, each call's start, each
    validation's start and end, and the peak resident memory over the fit (a thread sampling every
    20 ms). It has no batch-end hook: a callback that has one makes Keras convert every call's logs
    to Python floats in the training thread, where without one (plain ``fit``) Keras does it on a
    thread of its own — the probe would slow the side it measures."""

    def __init__(self) -> None:
        import keras

        probe = self
        self.marks: Dict[str, List[Tuple[float, float]]] = {k: [] for k in (
            "epoch_begin", "first_call", "second_call", "test_begin", "test_end", "epoch_end")}
        self.calls = 0

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                probe.marks["epoch_begin"].append(now())
                probe.calls = 0

            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                if probe.calls < 2:
                    probe.marks[("first_call", "second_call")[probe.calls]].append(now())
                probe.calls += 1

            def on_test_begin(self, logs: Any = None) -> None:
                probe.marks["test_begin"].append(now())

            def on_test_end(self, logs: Any = None) -> None:
                probe.marks["test_end"].append(now())

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                probe.marks["epoch_end"].append(now())

        self.callback = Callback()

    def __enter__(self) -> "Probe":
        self.start = now()
        self.base_rss = self.peak_rss = rss_mb()
        self.running = True

        def sample() -> None:
            while self.running:
                self.peak_rss = max(self.peak_rss, rss_mb())
                time.sleep(0.02)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.running = False
        self.thread.join()

    def result(self, steps: int) -> Dict[str, float]:
        """Per training step: an epoch's start to its validation's start (epochs 2..E); the epoch
        boundary: its validation's start to the next epoch's first call (validation, the epoch-end
        callbacks and checkpoint, the next epoch's start); to the first step: ``fit``'s call to its
        second call's start (set-up, tracing, one call of ``steps_per_execution`` steps)."""
        m = self.marks
        epochs = len(m["epoch_end"])
        return {**{f"step_{clock}_ms": 1e3 * statistics.fmean(
                    (m["test_begin"][e][k] - m["epoch_begin"][e][k]) / steps for e in range(1, epochs))
                   for k, clock in enumerate(("wall", "cpu"))},
                **{f"boundary_{clock}_s": statistics.fmean(
                    m["first_call"][e + 1][k] - m["test_begin"][e][k] for e in range(epochs - 1))
                   for k, clock in enumerate(("wall", "cpu"))},
                **{f"validation_{clock}_s": statistics.fmean(
                    m["test_end"][e][k] - m["test_begin"][e][k] for e in range(1, epochs))
                   for k, clock in enumerate(("wall", "cpu"))},
                "first_step_wall_s": m["second_call"][0][0] - self.start[0],
                "first_step_cpu_s": m["second_call"][0][1] - self.start[1],
                "peak_rss_mb": self.peak_rss - self.base_rss}


def now() -> Tuple[float, float]:
    return time.perf_counter(), time.process_time()


EPOCHS = 3
#: ``--every``: the monitors' cadence (``tracking.gradients_every_n_steps`` and ``drift_every_n_steps``);
#: ``None`` keeps lossexp's default of 100. Set to the steps of an epoch, every timed epoch holds one
#: sample of each, so a sample's cost is in the step time 100/N times as often as by default.
SAMPLE_EVERY: Any = None


def keras_fit(name: str, execution: int, store: str) -> Dict[str, float]:
    import keras

    keras.backend.clear_session()
    x, y = data(name)
    model = network(name)
    probe = Probe()
    with probe:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=execution)
        model.fit(x, y, batch_size=NETWORKS[name][1], epochs=EPOCHS, validation_split=0.2, callbacks=[probe.callback],
                  verbose=0)
    return probe.result(NETWORKS[name][2])


def lossexp_fit(name: str, execution: int, store: str, variant: str) -> Dict[str, float]:
    import keras

    import lossexp

    keras.backend.clear_session()
    x, y = data(name)
    net = network(name)
    loss: Any = []
    if variant == "ha_act":
        loss = ["hist_avg", ("activity", {"layers": [NETWORKS[name][3]]})]
    monitoring = variant != "bare"
    probe = Probe()
    with probe:
        lossexp.fit(net, (x, y), loss=loss, callbacks=[probe.callback],
                    trainer={"epochs": EPOCHS, "batch_size": NETWORKS[name][1], "validation_split": 0.2, "verbose": 0,
                             "steps_per_execution": execution},
                    tracking={"uri": store, "drift": monitoring, "gradients": monitoring, "plots": False,
                              "log_model": False, "experiment": "other_models",
                              **({"gradients_every_n_steps": SAMPLE_EVERY, "drift_every_n_steps": SAMPLE_EVERY}
                                 if SAMPLE_EVERY else {})})
    return probe.result(NETWORKS[name][2])


VARIANTS = ("keras", "bare", "monitor", "ha_act")


def measure(names: List[str], repeats: int, executions: List[int], variants: List[str],
            out: Path = OUT) -> Dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    results: Dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        lossexp_fit("deep_mlp", 16, store, "bare")  # the store's creation and the first imports, untimed
        for name in names:
            for execution in executions:
                runs: Dict[str, List[Dict[str, float]]] = {v: [] for v in variants}
                for repeat in range(repeats):
                    for v in variants:
                        runs[v].append(keras_fit(name, execution, store) if v == "keras"
                                       else lossexp_fit(name, execution, store, v))
                        print(name, execution, repeat, v, {k: round(val, 3) for k, val in runs[v][-1].items()}, flush=True)
                results[f"{name}/spe_{execution}"] = summarise(runs)
                out.with_suffix(".partial.json").write_text(json.dumps(results, indent=1))
    return results


def summarise(runs: Dict[str, List[Dict[str, float]]]) -> Dict[str, Any]:
    """Medians and ranges of each measure, and each lossexp variant's per-repeat ratios over Keras'."""
    out: Dict[str, Any] = {}
    for v, fits in runs.items():
        out[v] = {k: {"median": statistics.median(f[k] for f in fits), "min": min(f[k] for f in fits),
                      "max": max(f[k] for f in fits)} for k in fits[0]}
        if v != "keras" and "keras" in runs:
            out[v]["ratio"] = {}
            for k in ("step_wall_ms", "step_cpu_ms"):
                paired = [a[k] / b[k] for a, b in zip(fits, runs["keras"])]
                out[v]["ratio"][k] = {"median": statistics.median(paired), "min": min(paired), "max": max(paired)}
    return out


def main() -> None:
    global EPOCHS, SAMPLE_EVERY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--executions", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs a fit (the first is not timed)")
    parser.add_argument("--every", type=int, default=None, help="the monitors' cadence in steps (default 100)")
    args = parser.parse_args()
    EPOCHS, SAMPLE_EVERY = args.epochs, args.every
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results = measure(args.networks, args.repeats, args.executions, args.variants, args.out)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous.setdefault("results", {}).update(results)
    previous["setup"] = {"measured": started, "repeats": args.repeats, "epochs": EPOCHS,
                         "monitors_every_n_steps": SAMPLE_EVERY or 100, "machine": machine(),
                         "networks": {n: {"batch": NETWORKS[n][1], "steps_per_epoch": NETWORKS[n][2]} for n in NETWORKS}}
    args.out.write_text(json.dumps(previous, indent=1))
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    print(table(previous["results"]))


LABELS = {"gru": "1D-conv + GRU", "vit": "ViT-like, 32×32×3", "wide_deep": "wide-and-deep, 5 dict inputs",
          "resnet50": "ResNet50 (`keras.applications`), 32×32×3", "deep_mlp": "40-layer MLP of `Dense(32)`",
          "unet": "U-Net, a class per pixel, 32×32×3", "tagger": "masked GRU tagger, a tag per position"}


def table(results: Dict[str, Any]) -> str:
    """The table of docs/performance.md: per network and ``steps_per_execution``, Keras' CPU ms a step, each lossexp
    variant's CPU ratio (median of the per-repeat ratios, their range), the wall ratio, and the
    epoch boundary and start (CPU s, medians)."""
    lines = ["| network | spe | Keras CPU ms/step | task only, no monitoring | task only, default monitoring "
             "| `hist_avg+activity`, monitoring | *wall ratio, monitoring* | *epoch boundary, CPU s* "
             "| *fit's call to its 2nd call, CPU s* |", "| --- " * 9 + "|"]
    for key, row in results.items():
        name, spe = key.split("/spe_")
        ratio = {v: row[v]["ratio"]["step_cpu_ms"] for v in ("bare", "monitor", "ha_act") if v in row}
        cells = [f"**{r['median']:.2f}** ({r['min']:.2f}–{r['max']:.2f})" for r in ratio.values()]
        wall = row["monitor"]["ratio"]["step_wall_ms"]
        lines.append(f"| {LABELS.get(name, name)} | {spe} | {row['keras']['step_cpu_ms']['median']:.1f} | "
                     + " | ".join(cells) + f" | {wall['median']:.2f} ({wall['min']:.2f}–{wall['max']:.2f}) | "
                     f"{row['keras']['boundary_cpu_s']['median']:.2f} / {row['monitor']['boundary_cpu_s']['median']:.2f}"
                     f" / {row['ha_act']['boundary_cpu_s']['median']:.2f} | "
                     f"{row['keras']['first_step_cpu_s']['median']:.1f} / {row['monitor']['first_step_cpu_s']['median']:.1f}"
                     f" / {row['ha_act']['first_step_cpu_s']['median']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
